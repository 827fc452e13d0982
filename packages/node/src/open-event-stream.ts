import type { EventEmitter } from 'node:events';
import {
  answerHeadEventStream,
  CUT_SHORT,
  type ErrorReporter,
  type EventContext,
  type EventSourceLike,
  type EventStream,
  HandlerSetup,
  isAbortOf,
  type LetGo,
  letGoSource,
  type MessageEvent,
  pickLastEventId,
  processWide,
  type ResolvedStreamOptions,
  releaseSource,
  serverStreams,
} from '@rxsse/core';
import { trackStreamResponse } from './client-error.js';
import { NodeSink } from './node-sink.js';
import type { NodeRequest, NodeResponse } from './response-close.js';

export type { EventContext, EventHandler } from '@rxsse/core';

/**
 * Streams what `produce` returns to a Node response. `produce` runs before anything is written, so
 * if it throws (say, the client is not authorized) or returns something that is not a source, the
 * promise rejects and the framework can still answer with its own error response (with an `Error`
 * naming it for a throw of a value that is no object, `undefined`, `null` or a string, which
 * frameworks take for no error or answer without a log).
 * One that fails with the abort of its `signal`, its client gone, is the client's close instead.
 *
 * Resolves to `undefined` when no stream was started: a `HEAD` request (`produce` runs as for its
 * GET, and what it returns is never subscribed, an iterator `return()`ed; its refusal rejects as
 * its GET's does, else the headers alone answer it, counted as a stream that completed; while
 * shutting down, as a GET is turned away, with no body), or a request that arrived while the
 * server or the route's group shuts down (answered with a reconnect hint and `Connection: close`,
 * `produce` not run; the same answer, the source left unsubscribed, when the shutdown began while
 * `produce` ran). That shutdown aborts
 * the `signal` of a `produce` still pending, and turns its client away at its deadline, counted
 * then; what `produce` settles with later is let go (an iterator `return()`ed, a failure reported).
 * A client that leaves while `produce` is pending is counted then, as its close, and what
 * `produce` settles with later is let go alike.
 *
 * A response already being written (another stream's, or the route's own) is refused the same
 * way, with an Error and left untouched, whether it began before the call or while `produce` ran:
 * writing it would fail, and that failure would end its owner's response. One that another answered
 * (a timeout's race in front of the route, Fastify's `handlerTimeout`) resolves to `null`: no stream
 * began, so none is counted, least of all as the client's close; `produce` is not run when that
 * answer came first, and what it settles with once the answer came is never subscribed (a failure
 * other than its signal's abort rejects, counted nowhere either).
 *
 * Errors no `onError` takes go to `report`: by default `console.error`, with the method and path.
 */
export async function openEventStream<M extends MessageEvent<unknown>>(
  req: NodeRequest,
  res: NodeResponse,
  produce: (context: EventContext) => EventSourceLike<M> | Promise<EventSourceLike<M>>,
  options: ResolvedStreamOptions,
  report: ErrorReporter = consoleReporter(req),
): Promise<EventStream | null | undefined> {
  if (answeredByAnother(res)) return null;
  const sink = new NodeSink(req, res);
  if (req.method === 'HEAD') return headThrough(req, res, sink, produce, options, report, letGoSource);
  const setup = setupOf(req, sink, options, report);
  if (isClosing(req, options)) return setup.turnAway();
  trackStreamResponse(req, res);
  let source: EventSourceLike<M> | typeof CUT_SHORT;
  try {
    source = await setup.settle(produce(contextOf(req, sink)));
  } catch (error) {
    if (res.writableEnded) return answeredMeanwhile(error, sink);
    return setup.failed(error);
  }
  // The shutdown's deadline came first, or the client left: it is turned away now (one gone counted
  // as its close), and the source let go later.
  if (source === CUT_SHORT) return setup.turnAway();
  // Started, or answered, by another writer while the handler ran: its source is never subscribed,
  // and an iterator it made is returned, as a listener it holds would otherwise leak.
  if (beingSent(res) || res.writableEnded) {
    releaseSource(source, (error) => setup.reportError(error));
    if (res.writableEnded) return null;
    throw new ResponseBeingSentError();
  }
  try {
    return setup.start(source, isClosing(req, options));
  } catch (error) {
    // No source: a failure of the handler's, counted as one.
    return setup.failed(error);
  }
}

/**
 * Answers a HEAD as {@link openEventStream} does, with the stream's headers alone (and those of the
 * source `ready` resolves to, if any: the transport lets it go), once `ready` resolves: for a
 * transport that runs a route's own checks for a HEAD as for its GET (Nest's interceptors), which
 * may hold the request. While `ready` is pending, the HEAD is a pending handler
 * of its server's streams and its route's group, as a GET's is: a shutdown aborts its `signal` and
 * turns it away at the deadline, so a check that never lets it on holds no close. One that
 * arrives while either shuts down is answered at once, `ready` not run, as a GET is turned away
 * (its status and headers, counted `shutdown`); so is one that the shutdown aborted.
 *
 * Rejects with what `ready` rejects with, counted `failed` as its GET's refusal is (a value that is no
 * object as an Error naming it), unless that is the abort of its `signal` (the client left,
 * or the shutdown aborted it): the headers then go to a client still there, and one that left is
 * counted as its GET is, closed by the client. Resolves to `null` when another writer answered the
 * response, and refuses one being written, as {@link openEventStream}.
 */
export async function answerHead(
  req: NodeRequest,
  res: NodeResponse,
  ready: (context: EventContext) => PromiseLike<unknown>,
  options: ResolvedStreamOptions,
  report: ErrorReporter = consoleReporter(req),
): Promise<null | undefined> {
  if (answeredByAnother(res)) return null;
  return headThrough(req, res, new NodeSink(req, res), ready, options, report, ignoreLate);
}

/**
 * A HEAD: `check` runs as its GET's handler would, and `letGo` releases what it resolves to, in
 * time or late; its refusal is counted as its GET's is, and thrown on. Otherwise the stream's headers
 * answer it (turned away as its GET would be, if a shutdown aborted the check or began meanwhile).
 */
async function headThrough(
  req: NodeRequest,
  res: NodeResponse,
  sink: NodeSink,
  check: (context: EventContext) => unknown,
  options: ResolvedStreamOptions,
  report: ErrorReporter,
  letGo: LetGo,
): Promise<null | undefined> {
  if (isClosing(req, options)) {
    answerHeadEventStream(sink, options, report, true);
    return undefined;
  }
  const setup = setupOf(req, sink, options, report);
  let source: unknown;
  try {
    const settled = await setup.settle(check(contextOf(req, sink)), letGo);
    if (settled !== CUT_SHORT) {
      source = settled;
      letGo(settled, (error) => setup.reportError(error));
    }
  } catch (error) {
    if (res.writableEnded) return answeredMeanwhile(error, sink);
    if (!isAbortOf(error, sink.signal)) setup.failed(error);
  }
  if (answeredByAnother(res)) return null;
  setup.answerHead(isClosing(req, options), source);
  return undefined;
}

/**
 * A handler failed after another writer answered its request: no stream began, so none is counted.
 * The abort of the handler's signal that the answer caused is no failure; any other is still the
 * framework's.
 */
function answeredMeanwhile(error: unknown, sink: NodeSink): null {
  if (isAbortOf(error, sink.signal)) return null;
  throw error;
}

/** A HEAD's check whose transport releases what it settles with itself. */
function ignoreLate(): void {}

/**
 * A handler's setup: every stream is one of its server's too, so the server's shutdown ends it
 * whatever its group.
 */
function setupOf(
  req: NodeRequest,
  sink: NodeSink,
  options: ResolvedStreamOptions,
  report: ErrorReporter,
): HandlerSetup {
  const server = serverOf(req);
  return new HandlerSetup(sink, options, report, server && serverStreams(server));
}

/** A handler's context; `signal` is a getter: the sink creates its AbortController only for handlers that use it. */
function contextOf(req: NodeRequest, sink: NodeSink): EventContext {
  return {
    lastEventId: readLastEventId(req),
    get signal() {
      return sink.signal;
    },
  };
}

/**
 * Whether another writer answered the response (a timeout's race): no stream may begin then.
 * @throws {ResponseBeingSentError} for one another writer is still sending.
 */
function answeredByAnother(res: NodeResponse): boolean {
  if (beingSent(res)) throw new ResponseBeingSentError();
  return res.writableEnded;
}

/** Whether another writer (another stream, the route itself) has started the response and not ended it. */
function beingSent(res: NodeResponse): boolean {
  return res.headersSent && !res.writableEnded;
}

class ResponseBeingSentError extends Error {
  override readonly name = 'ResponseBeingSentError';
  constructor() {
    super('the response is already being sent: it cannot take an event stream (one per response)');
  }
}

/**
 * `console.error`, naming the request by its method and path: the channel of frameworks that have
 * no logger of their own. The query is left out: EventSource cannot send headers, so a token
 * travels there.
 */
export function consoleReporter(req: NodeRequest, url: string | undefined = req.url): ErrorReporter {
  return (error) =>
    console.error(`rxsse: event stream ${req.method} ${url?.split('?', 1)[0]} failed:`, error);
}

// One per process, shared by every copy of this package: a server marked through one is closing for all.
const closingServers = processWide('closingServers', () => new WeakSet<object>());

/**
 * Marks a server as shutting down: until it emits 'close', its event-stream requests are answered
 * with a reconnect hint instead of a stream. `closeStreamsOnServerClose` and the Fastify plugin call
 * it; an adapter with its own shutdown hook calls it there.
 */
export function markServerClosing(server: object): void {
  if (closingServers.has(server)) return;
  closingServers.add(server);
  // A server closed may listen again, and must stream again then.
  (server as Partial<EventEmitter>).once?.('close', () => closingServers.delete(server));
}

/** Whether the route's group or the request's server shuts down: then no stream may start. */
function isClosing(req: NodeRequest, options: ResolvedStreamOptions): boolean {
  return options.group.closing || isServerClosing(req);
}

function isServerClosing(req: NodeRequest): boolean {
  const server = serverOf(req);
  return server !== undefined && isMarkedClosing(server);
}

/** Whether `server` was marked closing and has not emitted 'close' since. */
export function isMarkedClosing(server: object): boolean {
  return closingServers.has(server);
}

/** The server that accepted the request's connection (on HTTP/2 too: the session's socket tells). */
function serverOf(req: NodeRequest): object | undefined {
  return (req.socket as { server?: object } | null)?.server ?? undefined;
}

/** The client's last event id: the `Last-Event-ID` header, else the `lastEventId` query parameter. */
export function readLastEventId(req: NodeRequest): string | undefined {
  return pickLastEventId(req.headers['last-event-id'], req.url);
}
