import type { MessageEvent } from '../encode/types.js';
import type { HistoryPage, ReadLimit, StoredMessage } from './engine.js';
import { otherField } from './message-fields.js';
import { sizeWithData } from './message-size.js';
import { dataFromJson } from './stored-data.js';
import {
  compareStreamIds,
  formatStreamId,
  isZeroStreamId,
  nextStreamId,
  parseStreamId,
  type StreamId,
} from './stream-id.js';

/** How much one topic's ring keeps. */
export interface RingLimits {
  /** Most events kept. */
  maxEvents: number;
  /** Most bytes kept (as `messageSize` counts them); the newest event is kept whatever its size. */
  maxBytes: number;
}

/**
 * The history of one topic in memory: the newest events within a count and a byte cap, each
 * findable by id. The oldest go first when either cap is passed.
 */
export class HistoryRing {
  /** Evicted slots (before `#head`) are emptied: only what is kept counts against the caps. */
  #events: (StoredMessage | undefined)[] = [];
  #sizes: number[] = [];
  /** Index in `#events` of the oldest kept event: evicting is O(1), compaction is amortized. */
  #head = 0;
  /** Position (counted since the ring began) of `#events[0]`. */
  #base = 0;
  readonly #positions = new Map<string, number>();
  #bytes = 0;
  #last: StreamId | undefined;
  /** The id of the newest evicted event: a reader that stopped there has missed nothing kept. */
  #lastEvicted: string | undefined;

  constructor(
    private readonly limits: RingLimits,
    private readonly now: () => number = Date.now,
  ) {}

  /** Events kept. */
  get size(): number {
    return this.#events.length - this.#head;
  }

  /** Bytes kept. */
  get bytes(): number {
    return this.#bytes;
  }

  /** The id of the newest event stored, if any was. */
  get lastId(): string | undefined {
    return this.#last && formatStreamId(this.#last);
  }

  /**
   * Stores `message` under its own id (a `<ms>-<seq>` id after the last one, without leading zeros)
   * or a new one, and returns the stored message: the object every subscriber and every replay will
   * be handed. It holds the message's `data`, `id`, `type` and `retry` alone, as Redis stores them,
   * and data other than a string as the JSON it was (what Redis gives back, so a filter reads the
   * same on both, and no object the caller keeps is held past its counted bytes; see
   * {@link dataFromJson}): the message itself if it has a string as data, nothing else, and the id
   * stored, else a copy.
   */
  append(message: MessageEvent<unknown>): StoredMessage {
    const { type, data, retry } = message;
    const isText = typeof data === 'string';
    const text = isText ? data : JSON.stringify(data);
    // Sized first: data that cannot be serialized is refused before it takes an id.
    if (text === undefined) throw new TypeError('Channel data must be a string or JSON-serializable');
    let size = sizeWithData(message, text);
    const id = this.#nextId(message.id);
    let stored = message as StoredMessage;
    if (!isText || message.id !== id || otherField(message) !== undefined) {
      stored = { id, type, data: isText ? data : dataFromJson(text), retry } as StoredMessage;
      size += id.length - (message.id?.length ?? 0);
    }
    this.#positions.set(id, this.#base + this.#events.length);
    this.#events.push(stored);
    this.#sizes.push(size);
    this.#bytes += size;
    this.#evict();
    return stored;
  }

  /** Events after `afterId` within `limit`; `truncated` if `afterId` is unknown or was evicted. */
  read(afterId: string, limit: ReadLimit): HistoryPage {
    let start: number;
    // Ids are kept in their plain form: `007` is `7`, as Redis reads it.
    const parsed = parseStreamId(afterId);
    const id = parsed ? formatStreamId(parsed) : afterId;
    const position = this.#positions.get(id);
    if (position !== undefined) start = position - this.#base + 1;
    else if (id === this.#lastEvicted) start = this.#head;
    else return { events: [], bytes: 0, truncated: true, more: false };

    const events: StoredMessage[] = [];
    let bytes = 0;
    let i = start;
    for (; i < this.#events.length && events.length < limit.count; i++) {
      const size = this.#sizes[i]!;
      if (bytes + size > limit.bytes) break;
      events.push(this.#events[i]!);
      bytes += size;
    }
    return { events, bytes, truncated: false, more: i < this.#events.length };
  }

  #nextId(own: string | undefined): string {
    if (own === undefined) {
      this.#last = nextStreamId(this.#last, this.now());
      return formatStreamId(this.#last);
    }
    const parsed = parseStreamId(own);
    // 0-0 too, as Redis refuses it: no id is below it, so a client could never resume before it.
    if (!parsed || isZeroStreamId(parsed))
      throw new RangeError(`A stored event's id must be <ms>-<seq> above 0-0, not ${JSON.stringify(own)}`);
    if (this.#last && compareStreamIds(parsed, this.#last) <= 0)
      throw new RangeError(`Event id ${own} is not after the last id ${formatStreamId(this.#last)}`);
    this.#last = parsed;
    // In its plain form, as Redis stores it (`007` is `7`): the id a client is sent and resumes from.
    return formatStreamId(parsed);
  }

  #evict(): void {
    const { maxEvents, maxBytes } = this.limits;
    while (this.size > 1 && (this.size > maxEvents || this.#bytes > maxBytes)) {
      const oldest = this.#events[this.#head]!;
      this.#bytes -= this.#sizes[this.#head]!;
      this.#positions.delete(oldest.id);
      this.#lastEvicted = oldest.id;
      // Held until the next compaction, dozens of evicted events would stay in memory, each up to
      // maxMessageBytes, several times the byte cap for a topic of large events.
      this.#events[this.#head] = undefined;
      this.#head++;
    }
    // Drop the evicted prefix once it is half the array, so memory follows what is kept.
    if (this.#head > 32 && this.#head * 2 > this.#events.length) {
      this.#events = this.#events.slice(this.#head);
      this.#sizes = this.#sizes.slice(this.#head);
      this.#base += this.#head;
      this.#head = 0;
    }
  }
}
