import { ErrorReply, MultiErrorReply } from 'redis';
import { type RedisFailing, RedisRecovered, RedisRepeatedFailure } from './errors.js';

/** The wait before the first repeat of a failure is told; it doubles with each repeat told. */
const FIRST_REPEAT_MS = 1000;
/** The longest wait between two reports of the same failure. */
const MAX_REPEAT_MS = 60_000;
/** Failures kept apart in one outage: past this, the oldest is forgotten (told as new if it comes back). */
const MAX_KINDS = 32;

interface Kind {
  /** When this failure may be told again. */
  next: number;
  /** The wait after the next report. */
  wait: number;
  /** Failures of this kind not told since the last report of it. */
  heldBack: number;
}

/**
 * What a retried call tells `onError`. A read Redis refuses for good (an ACL, `MASTERDOWN`,
 * `LOADING`) fails at every retry, twice a second, and a Redis out of reach fails every attempt to
 * reconnect: each failure is told the first time at once, then again only once a wait that doubles
 * up to a minute has passed, saying how many were held back meanwhile. The first success after
 * two failures or more is told once, with their count.
 */
export class FailureReports {
  readonly #kinds = new Map<string, Kind>();
  /** Failures since the last success. */
  #failures = 0;
  /** Of those, not told. */
  #heldBack = 0;

  constructor(
    private readonly failing: RedisFailing,
    private readonly report: (error: unknown) => void,
    private readonly now: () => number = () => Date.now(),
  ) {}

  /** A call failed with `error`. */
  failed(error: unknown): void {
    this.#failures++;
    const key = kindOf(error);
    const now = this.now();
    const kind = this.#kinds.get(key);
    if (kind === undefined) {
      if (this.#kinds.size >= MAX_KINDS) this.#kinds.delete(this.#kinds.keys().next().value!);
      this.#kinds.set(key, { next: now + FIRST_REPEAT_MS, wait: FIRST_REPEAT_MS * 2, heldBack: 0 });
      this.report(error);
      return;
    }
    if (now < kind.next) {
      kind.heldBack++;
      this.#heldBack++;
      return;
    }
    const heldBack = kind.heldBack;
    this.#heldBack -= heldBack;
    kind.heldBack = 0;
    kind.next = now + kind.wait;
    kind.wait = Math.min(MAX_REPEAT_MS, kind.wait * 2);
    this.report(new RedisRepeatedFailure(this.failing, heldBack, error));
  }

  /**
   * A call succeeded: after failures, told once. Not after a lone one: its retry succeeding is what
   * a reader of that one report expects, and a blip would be told twice.
   */
  succeeded(): void {
    if (this.#failures === 0) return;
    const recovered = new RedisRecovered(this.failing, this.#failures, this.#heldBack);
    this.#failures = 0;
    this.#heldBack = 0;
    this.#kinds.clear();
    if (recovered.failures > 1) this.report(recovered);
  }
}

/** What tells two failures apart: Redis's reply, or the error's class and message. */
function kindOf(error: unknown): string {
  if (error instanceof MultiErrorReply)
    return error.replies
      .filter((reply) => reply instanceof ErrorReply)
      .map((reply) => reply.message)
      .join('\n');
  if (error instanceof Error) return `${error.constructor.name}: ${error.message}`;
  return String(error);
}
