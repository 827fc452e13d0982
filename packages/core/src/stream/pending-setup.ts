import type { MessageEvent } from '../encode/types.js';
import { isAbortOf, NO_EVENTS } from '../http/event-context.js';
import type { Sink } from '../http/sink.js';
import {
  checkEventSource,
  describeValue,
  type EventSourceLike,
  isObject,
  isThenable,
} from '../http/source.js';
import {
  answerHeadEventStream,
  type EventStream,
  streamEvents,
  turnAwayEventStream,
} from './event-stream.js';
import type { GroupMember, StreamGroup } from './group.js';
import type { ResolvedStreamOptions } from './options.js';
import { type ErrorReporter, reportTo } from './report.js';
import { heard, releaseSource } from './source-feed.js';

/**
 * What {@link HandlerSetup.settle} resolves to when the shutdown's deadline, or
 * {@link HandlerSetup.cut}, came before the handler settled: the transport answers without it.
 */
export const CUT_SHORT: unique symbol = Symbol('rxsse.cutShort');

/** Releases what a handler settled with too late to be used (see {@link HandlerSetup.settle}). */
export type LetGo = (late: unknown, report: ErrorReporter) => void;

/** What a {@link HandlerSetup} needs of its transport's sink. */
export interface AbortableSink extends Sink {
  /** Whether the connection closed: the client left, or the response ended. */
  readonly closed: boolean;
  onClose(listener: () => void): boolean;
  /** Aborts `signal` while the connection stays open, for the answer that turns its client away. */
  abort(): void;
  /**
   * Whether another writer answered the response (a timeout in front of the route): a handler
   * still pending is then awaited, not cut short, for the transport to hand its failure on.
   */
  readonly answered?: boolean;
}

/**
 * @internal A route's handler, from what it returned to its stream, as every transport runs it.
 * While a promise it returned is pending, it is one of its server's streams, and a pending member of
 * its route's group, so that it cannot hold the close of either for as long as it takes: the close
 * aborts its `signal` (what it settles with is turned away), and the deadline cuts it short, for
 * the transport to turn its client away at once, counted as any request turned away then.
 */
export class HandlerSetup implements GroupMember {
  readonly queuedBytes = 0;
  /** Whether a shutdown aborted the handler's signal: its abort is then no client's close. */
  #shutDown = false;
  #closed: AbortController | undefined;
  /** Resolves a pending {@link settle} with {@link CUT_SHORT}. */
  #cut: (() => void) | undefined;
  /** Whether {@link cut} ran: the deadline of another close then has nothing left to cut. */
  #cutShort = false;
  /** Takes the handler out of its groups while a promise it returned is pending. */
  #leave: (() => void) | undefined;
  #listening = false;

  constructor(
    private readonly sink: AbortableSink,
    private readonly options: ResolvedStreamOptions,
    private readonly report: ErrorReporter,
    private readonly server: StreamGroup | undefined,
  ) {}

  /**
   * What the handler settles with; a promise is one of the server's and the group's until then, or
   * until its client leaves, the shutdown's deadline or {@link cut}: it then resolves to
   * {@link CUT_SHORT} at once (the transport answers a client gone as its close), and
   * what the handler settles with later is handed to `letGo` (by default an iterator is
   * `return()`ed and a result that is no source reported), a failure other than its signal's abort
   * reported: the client was answered without it, but the handler's bug must not go unheard.
   */
  async settle<T>(produced: T | PromiseLike<T>, letGo: LetGo = letGoSource): Promise<T | typeof CUT_SHORT> {
    if (!isThenable(produced)) return produced;
    const { server } = this;
    const { group } = this.options;
    server?.add(this);
    // Pending: the group's gauges count streams, and this is none yet.
    group.add(this, true);
    const leave = () => {
      server?.delete(this);
      group.delete(this);
    };
    // A handler that never settles must not stay in the groups once its client left, nor hold
    // the count of that client's close: it is cut short then, as at the deadline.
    this.#leave = leave;
    const cutShort = new Promise<typeof CUT_SHORT>((resolve) => {
      this.#cut = () => resolve(CUT_SHORT);
    });
    this.#listen();
    try {
      const settled = await Promise.race([produced, cutShort]);
      if (settled === CUT_SHORT) this.#letGoLater(produced, letGo);
      return settled;
    } finally {
      this.#cut = this.#leave = undefined;
      leave();
    }
  }

  /** Cuts a pending {@link settle} short, for a client that left where the transport must answer at once. */
  cut(): void {
    this.#cutShort = true;
    this.#cut?.();
  }

  #letGoLater(produced: PromiseLike<unknown>, letGo: LetGo): void {
    const report = (error: unknown) => this.reportError(error);
    Promise.resolve(produced).then(
      (late) => {
        try {
          letGo(late, report);
        } catch (error) {
          report(error);
        }
      },
      (error: unknown) => {
        if (!isAbortOf(error, this.sink.signal)) report(error);
      },
    );
  }

  /**
   * Streams `source`, unless a shutdown aborted the setup or `closing` says one began while the
   * handler ran: the close has already ended the streams it held, so one started now would keep
   * the closing server open. The source is then never subscribed, and one that is no source at all
   * is reported: the client has its answer, but the handler's bug must not go unheard.
   * @throws what is no source, or what an Observable fails with before its first message: the
   * transport hands it to {@link failed}, as the handler's own throw.
   */
  start(source: EventSourceLike<MessageEvent<unknown>>, closing = false): EventStream | undefined {
    if (!this.#shutDown && !closing)
      return streamEvents(source, this.sink, this.options, this.report, this.server);
    const turnedAway = this.turnAway(source);
    reportNoSource(source, this);
    return turnedAway;
  }

  /**
   * Answers a HEAD whose handler (or route's checks: Nest's chain) let it through with the stream's
   * headers, and those of `source`, the handler's, never subscribed; as its GET would be turned
   * away if a shutdown aborted the setup or `closing` says one began meanwhile. One whose client
   * left meanwhile is counted as its GET is then, closed by the client.
   */
  answerHead(closing: boolean, source?: unknown): EventStream {
    const { sink, options, report } = this;
    if (sink.closed && !this.#shutDown) return streamEvents(NO_EVENTS, sink, options, report, this.server);
    return answerHeadEventStream(sink, options, report, this.#shutDown || closing, source);
  }

  /**
   * Hands an error of the route's that no stream will report (an iterator's `return()` that threw
   * once the transport refused its source) to its `onError`, else to the transport's log.
   */
  reportError(error: unknown): void {
    reportTo(this.options.onError, this.report, error);
  }

  /**
   * A handler that gave its signal to a fetch or a timer fails with the abort once its client left:
   * that is the client's close, counted as one (or, when the shutdown aborted it, the turn-away of
   * a client still there). Any other failure, a result that is no source among them, is counted as
   * `failed` and thrown again, for the framework to answer: a value that is no object as an Error
   * naming it.
   */
  failed(error: unknown): EventStream | undefined {
    // A falsy throw gives the framework no error to answer: Express's `next()` goes on to the next
    // route (a single-page app's page, as a 200), Koa never answers `null` or `undefined` at all.
    // Nor does any other value that is no object: Hono answers a string or a symbol with a 500 it
    // logs nowhere, and Express's `next('route')` passes the request on. Objects stay as they are:
    // a framework may read a status from one.
    if (!isAbortOf(error, this.sink.signal)) {
      this.#countFailed();
      throw isObject(error)
        ? error
        : new Error(`the event handler failed with ${describeValue(error)}, no error`);
    }
    if (this.#shutDown) return this.turnAway();
    return streamEvents(NO_EVENTS, this.sink, this.options, this.report, this.server);
  }

  /** Counts the request that no stream will count: a hook that throws is reported, never fatal. */
  #countFailed(): void {
    const { metrics } = this.options;
    try {
      heard(metrics?.failed?.(), (error) => this.reportError(error));
    } catch (error) {
      this.reportError(error);
    }
  }

  /**
   * Answers with the reconnect hint instead of a stream; `source`, if any, is never subscribed. A
   * client that left before a shutdown reached its handler (while the framework's own async steps
   * ran) closed the connection itself: that is counted as its close, not as turned away.
   */
  turnAway(source?: unknown): EventStream | undefined {
    const { sink, options, report, server } = this;
    if (!this.#shutDown && sink.closed)
      return streamEvents((source ?? NO_EVENTS) as EventSourceLike, sink, options, report, server);
    return void turnAwayEventStream(sink, options, report, source, server);
  }

  /** Aborted once the connection is closed; the group reads it only when it closes. */
  get signal(): AbortSignal {
    if (!this.#closed) {
      this.#closed = new AbortController();
      // The sink's own signal aborts at the shutdown already, with the connection still open. A
      // stream that starts later registers its own listener, but none starts once shut down.
      if (this.sink.closed) this.#closed.abort();
      else this.#listen();
    }
    return this.#closed.signal;
  }

  /** Listens for the connection's close, once: a sink holds one listener. */
  #listen(): void {
    if (this.#listening) return;
    this.#listening = true;
    if (!this.sink.onClose(() => this.#sinkClosed())) this.#sinkClosed();
  }

  #sinkClosed(): void {
    this.#closed?.abort();
    this.#leave?.();
    if (!this.sink.answered) this.#cut?.();
  }

  close(): void {
    // A client that left first keeps its own close: the handler's abort is then its.
    if (this.signal.aborted) return;
    this.#shutDown = true;
    this.sink.abort();
  }

  destroy(): void {
    // Its server's close and its group's may both reach the deadline: the first cuts it short.
    if (this.#cutShort) return;
    if (this.#cut) this.cut();
    else this.sink.destroy();
  }
}

/** Releases a handler's late result: an iterator it made is `return()`ed, what is no source reported. */
export function letGoSource(late: unknown, report: ErrorReporter): void {
  releaseSource(late, report);
  checkEventSource(late);
}

/**
 * Reports what a handler settled with once its client was answered without it, if that is no
 * source: a bug that would fail the request were nothing closing must not go unheard.
 */
function reportNoSource(settled: unknown, setup: HandlerSetup): void {
  try {
    checkEventSource(settled);
  } catch (error) {
    setup.reportError(error);
  }
}
