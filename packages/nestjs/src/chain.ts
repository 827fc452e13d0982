import type { CallHandler } from '@nestjs/common';
import {
  type EventSourceLike,
  type MessageEvent,
  SOURCE_GAP_EVENT,
  SOURCE_HEADERS,
  SOURCE_OPENS_FIRST,
  SOURCE_RELEASE,
  type WithSourceGapEvent,
  type WithSourceHeaders,
  type WithSourceOpensFirst,
  type WithSourceRelease,
} from '@rxsse/core';
import { Observable, type Subscriber, type Subscription } from 'rxjs';
import { type Handoff, isSubscribable, teardownOf } from './handoff.js';

type Source = EventSourceLike<MessageEvent<unknown>>;
type Delivery = (target: Subscriber<unknown>) => void;
/**
 * What the method's source carries for the stream: its headers, its gap event, whether its stream
 * opens before it is subscribed, and how to let go of it unsubscribed (a channel's).
 */
type Carried = WithSourceHeaders & WithSourceGapEvent & WithSourceOpensFirst & WithSourceRelease;

/**
 * Nest's chain for one request (pipes, the inner interceptors, the method), run before the stream
 * writes a byte. `source` settles once the method's source is known, or rejects with what failed
 * before it. An Observable then streams through the chain, so interceptors see each event, unless
 * no other interceptor is bound to the route (`alone`): then it streams as is, since each event
 * would only pass a few rxjs operators of Nest's on the way (a fan-out to 500 clients spent twice
 * the CPU of the plain adapters there). An AsyncIterable streams as is, pulled only as fast as the
 * client reads, unless the chain's events came first: then it follows them through the chain. A
 * bare value the Observable emits (a string, a number) is the data of an event, as with `@Sse()`:
 * the module's options say `bareValues: 'data'`.
 */
export class NestChain {
  readonly source: Promise<Source>;
  #subscription: Subscription | undefined;
  #target: Subscriber<unknown> | undefined;
  #early: Delivery[] = [];
  #streaming = false;
  #settled = false;
  #bridged = false;
  #abandon!: (reason: unknown) => void;
  readonly #handoff: Handoff;

  constructor(next: CallHandler, handoff: Handoff, alone: boolean) {
    this.#handoff = handoff;
    let answered!: () => void;
    let failed!: (error: unknown) => void;
    // Interceptors may answer, or fail, without the method; and the method's own failure arrives
    // here too, as the interceptors made it (mapped, answered with events, retried).
    const early = new Promise<undefined>((resolve, reject) => {
      answered = () => resolve(undefined);
      failed = reject;
    });
    this.#subscription = next.handle().subscribe({
      next: (value) => {
        const target = this.#target;
        if (!target) return this.#hold((early) => early.next(value), answered);
        target.next(value);
        // A synchronous source stops here when the stream ended while it emitted.
        if (target.closed) this.#handoff.unsubscribe(this.#subscription);
      },
      error: (error: unknown) => {
        failed(error);
        if (this.#target) this.#target.error(error);
        else this.#hold((early) => early.error(error));
      },
      complete: () => {
        if (this.#target) this.#target.complete();
        else this.#hold((early) => early.complete(), answered);
      },
    });
    const abandoned = new Promise<never>((_resolve, reject) => {
      this.#abandon = reject;
    });
    this.source = Promise.race([handoff.source, early, abandoned]).then((source) => {
      this.#settled = true;
      if (source !== undefined && !isSubscribable(source)) {
        this.#handoff.unsubscribe(this.#subscription);
        return source;
      }
      const carried = source as Carried | undefined;
      if (source !== undefined && alone) return this.#direct(source, carried);
      return this.#bridge(handoff, carried);
    });
  }

  /**
   * Ends the chain, and rejects `source` with `reason`, unless the source is known already: its
   * response closed, and an interceptor still holding the request would otherwise keep it (and its
   * timers) and run the method for no one.
   */
  abandon(reason: unknown): void {
    if (this.#settled) return;
    // Nest's pipes may still run: their promise goes on, and the method must not run after them.
    this.#handoff.abandoned = { reason };
    this.#handoff.unsubscribe(this.#subscription);
    this.#abandon(reason);
  }

  /** Ends the chain unless the stream took it (the client left during the setup). */
  releaseUnlessStreaming(): void {
    if (this.#streaming) return;
    this.#handoff.unsubscribe(this.#subscription);
    // No stream takes an iterable the method returned through the chain, nor one it returns once
    // the chain ended without a source (an interceptor's timeout, the response closed): an iterator
    // it made (a listener it registered) is ended, as the other adapters end a late handler's.
    if (this.#bridged || !this.#settled) this.#handoff.discard();
  }

  /** What the chain did before the stream subscribed, replayed to it then. */
  #hold(delivery: Delivery, first?: () => void): void {
    this.#early.push(delivery);
    first?.();
  }

  /**
   * The method's own Observable, subscribed by the stream itself; Nest's chain, which never receives
   * it, ends with the stream.
   */
  #direct(source: Observable<MessageEvent<unknown>>, carried: Carried | undefined): Source {
    return this.#streamed(carried, (target) => {
      // The stream's own subscriber, as is: a synchronous source sees it closed at once.
      target.add(teardownOf(source.subscribe(target)));
      return () => this.#handoff.unsubscribe(this.#subscription);
    });
  }

  #bridge(handoff: Handoff, carried: Carried | undefined): Source {
    this.#bridged = true;
    return this.#streamed(carried, (target) => {
      this.#target = target;
      for (const delivery of this.#early.splice(0)) delivery(target);
      handoff.release(target);
      return () => {
        this.#handoff.unsubscribe(this.#subscription);
        // A method still setting up when the stream ended returns into a chain no one reads.
        handoff.discard();
      };
    });
  }

  /**
   * What the stream subscribes to, carrying the method's headers, gap event and opening: events its
   * drop policy drops are dropped after the chain, and the client must be told of them as on the
   * other adapters; a channel that fails at once must still answer 200. Subscribing marks the chain
   * taken.
   */
  #streamed(
    carried: Carried | undefined,
    subscribe: (target: Subscriber<MessageEvent<unknown>>) => () => void,
  ): Source {
    const source: Observable<MessageEvent<unknown>> & Carried = new Observable((target) => {
      this.#streaming = true;
      return subscribe(target);
    });
    // Read as the stream starts, when the method's source decides them (a channel's truncation).
    if (carried && SOURCE_HEADERS in carried) {
      Object.defineProperty(source, SOURCE_HEADERS, { get: () => carried[SOURCE_HEADERS], enumerable: true });
    }
    const gap = carried?.[SOURCE_GAP_EVENT];
    if (typeof gap === 'function') source[SOURCE_GAP_EVENT] = gap;
    if (carried?.[SOURCE_OPENS_FIRST] === true) source[SOURCE_OPENS_FIRST] = true;
    // A stream that never subscribes (turned away, its client gone) lets go of what the method's
    // source holds (a channel's listener) through this one.
    if (typeof carried?.[SOURCE_RELEASE] === 'function')
      source[SOURCE_RELEASE] = () => carried[SOURCE_RELEASE]!();
    return source;
  }
}
