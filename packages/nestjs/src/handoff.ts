import { HttpException } from '@nestjs/common';
import {
  type ErrorReporter,
  type EventSourceLike,
  endIterator,
  isAbortOf,
  type MessageEvent,
  madeIterator,
  releaseHeld,
  releaseSource,
  SUBSCRIBER_DEMAND,
  SUBSCRIBER_GAP_EVENT,
  type WithSubscriberDemand,
  type WithSubscriberGapEvent,
} from '@rxsse/core';
import type { EventContext } from '@rxsse/node';
import {
  defer,
  EMPTY,
  Observable,
  type Subscriber,
  type TeardownLogic,
  type Unsubscribable,
  UnsubscriptionError,
} from 'rxjs';
import { observeIterable } from './iterable.js';

type Source = EventSourceLike<MessageEvent<unknown>>;

/**
 * What a route's method and the interceptor exchange for one request. The interceptor runs Nest's
 * chain (pipes, interceptors, the method) before the stream writes a byte; the method reports its
 * source here. What the method throws is not reported: it travels out through Nest's chain, whose
 * interceptors may map it, answer it with events or run the method again, so the chain's own error
 * is what Nest answers (once the chain ended without it, nothing does: it is reported then). What
 * the method hands back to Nest's chain is held until `release()`, when
 * the stream is open and can take events.
 */
export class Handoff {
  /** Resolves once a run of the method has returned a source; never rejects (see above). */
  readonly source: Promise<Source>;
  /** What the check threw for a result that is no source, so it can be told from the method's own throws. */
  refusal: unknown;
  /** A HEAD, which runs Nest's chain and the method as its GET: the stream's headers are all it gets. */
  head = false;
  /** Set once the response closed before the method's source was known: why. */
  abandoned: { reason: unknown } | undefined;
  #settle!: (source: Source) => void;
  #released = false;
  #stream: (WithSubscriberGapEvent & WithSubscriberDemand) | undefined;
  #waiting: (() => void)[] = [];
  readonly #unfedSources = new Set<() => void>();
  #discarded = false;

  constructor(
    readonly context: EventContext,
    private readonly report: ErrorReporter,
  ) {
    this.source = new Promise((resolve) => {
      this.#settle = resolve;
    });
  }

  /**
   * Ends `subscription`, a part of Nest's chain: what its teardowns throw (an interceptor's
   * `finalize`) is reported, each error apart, instead of thrown into a response's close listener,
   * a promise or rxjs, which would crash the process or drop it.
   */
  unsubscribe(subscription: Unsubscribable | undefined): void {
    try {
      subscription?.unsubscribe();
    } catch (error) {
      for (const each of error instanceof UnsubscriptionError ? error.errors : [error]) this.report(each);
    }
  }

  /**
   * A HEAD's method returned `result`: the chain let it through, as far as its GET's stream opens.
   * A result that fails (or is no source) rejects into the chain, as its GET's; a source is never
   * subscribed (an iterator the method made is ended), and hands the HEAD its own headers.
   */
  async reached(result: unknown, check: (value: unknown) => Source): Promise<Observable<never>> {
    const source = await this.#source(result, check);
    releaseSource(source, this.report);
    this.#settle(source);
    return EMPTY;
  }

  /** The method's result as a source; a refusal is kept, to be told apart from other failures. */
  async #source(result: unknown, check: (value: unknown) => Source): Promise<Source> {
    const value = await this.#value(result);
    try {
      return check(value);
    } catch (error) {
      // A method that answered through `@Res()` owes no source: its answer stands.
      this.refusal = error;
      throw error;
    }
  }

  /**
   * Takes the method's result: what Nest's chain gets back is the same events, held until release.
   * A result that fails (or is no source) rejects into the chain only.
   */
  async take(result: unknown, check: (value: unknown) => Source): Promise<unknown> {
    const source = await this.#source(result, check);
    this.#settle(source);
    // Until a stream takes it, what the source holds (a channel's listener) is the handoff's to let
    // go of: the method need not have passed the request's signal.
    if (isSubscribable(source))
      return this.#held(
        source,
        this.#unfed(() => releaseHeld(source, this.report)),
      );
    // An AsyncIterable streams as is, unless an interceptor's events came first: the stream then
    // takes the chain, and the iterable's events must come through it. Until they do, an iterator
    // the method made (a listener it registered) is the handoff's to end.
    const made = madeIterator(source, this.report);
    const taken = made && this.#unfed(() => endIterator(made, this.report));
    return this.#held(
      defer(() => {
        if (taken) taken();
        return observeIterable(source, this.report, () => this.#stream?.[SUBSCRIBER_DEMAND]?.());
      }),
    );
  }

  /**
   * What a run of the method returned, awaited. What it fails with once the chain ended without it
   * answers no one: the route's bug is reported, as a late handler's failure is on the other
   * adapters (the abort of its signal is none). An HttpException is an answer, which Nest never
   * reports: its client is gone.
   */
  async #value(result: unknown): Promise<unknown> {
    try {
      return await result;
    } catch (error) {
      const expected = error instanceof HttpException || isAbortOf(error, this.context.signal);
      if (this.#discarded && !expected) this.report(error);
      throw error;
    }
  }

  /**
   * Lets go of what the method's sources hold (an iterator it made, a channel's listener) that no
   * stream took, now and from runs of the method still to return: the chain ended without them (the
   * stream closed first, or none began).
   */
  discard(): void {
    this.#discarded = true;
    for (const letGo of this.#unfedSources) letGo();
    this.#unfedSources.clear();
  }

  /**
   * Keeps `letGo` for {@link discard}, or runs it at once once discarded; returns what drops it,
   * for when a stream takes the source.
   */
  #unfed(letGo: () => void): () => void {
    if (this.#discarded) {
      letGo();
      return () => {};
    }
    this.#unfedSources.add(letGo);
    return () => this.#unfedSources.delete(letGo);
  }

  /**
   * Lets held sources subscribe; the stream calls this once it is open, with its subscriber, which
   * places a source's own gap events (a channel's truncation event) as it places its own.
   */
  release(stream?: object): void {
    this.#stream = stream as (WithSubscriberGapEvent & WithSubscriberDemand) | undefined;
    this.#released = true;
    for (const start of this.#waiting.splice(0)) start();
  }

  /** `source`, subscribed once released; `taken` is told when it is. */
  #held(source: Observable<MessageEvent<unknown>>, taken?: () => void): Observable<MessageEvent<unknown>> {
    return new Observable((subscriber: Subscriber<MessageEvent<unknown>>) => {
      // Subscribing with the subscriber itself, so a synchronous source sees it closed at once.
      const start = () => {
        if (subscriber.closed) return;
        taken?.();
        // Nest's chain stands between the source and the stream: the source's gap events skip it,
        // as the stream sends them in its own encoding, whatever the route's `serialize`.
        (subscriber as WithSubscriberGapEvent)[SUBSCRIBER_GAP_EVENT] = (make) =>
          this.#stream?.[SUBSCRIBER_GAP_EVENT]?.(make) ?? false;
        subscriber.add(teardownOf(source.subscribe(subscriber)));
      };
      if (this.#released) start();
      else this.#waiting.push(start);
    });
  }
}

/** An Observable (rxjs or any other with `subscribe`), as the core tells it from an AsyncIterable. */
export function isSubscribable(source: Source): source is Observable<MessageEvent<unknown>> {
  return typeof (source as Partial<Observable<unknown>>).subscribe === 'function';
}

/**
 * What an Observable's `subscribe()` returned, as rxjs takes a teardown: an rxjs source tears down
 * with the subscriber, any other only through what it returned, which may be a subscription, a
 * function (as hand-written ones return) or nothing.
 */
export function teardownOf(returned: unknown): TeardownLogic {
  if (typeof returned === 'function') return returned as () => void;
  if (typeof (returned as Partial<Unsubscribable> | null)?.unsubscribe === 'function')
    return returned as Unsubscribable;
  return undefined;
}

const handoffs = new WeakMap<object, Handoff>();

/** The request's handoff; what ending an iterator the method made throws goes to `report`. */
export function openHandoff(req: object, context: EventContext, report: ErrorReporter): Handoff {
  const handoff = new Handoff(context, report);
  handoffs.set(req, handoff);
  return handoff;
}

export function findHandoff(req: object): Handoff | undefined {
  return handoffs.get(req);
}
