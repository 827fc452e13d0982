import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { Server as HttpServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Http2Session } from 'node:http2';
import { Server as HttpsServer } from 'node:https';
import type { Server, Socket } from 'node:net';
import {
  checkShutdownOptions,
  checkStreamGroup,
  closeEach,
  openStreams,
  type ShutdownOptions,
  type StreamGroup,
  serverStreams,
  shutdownDeadline,
} from '@rxsse/core';
import { guardClientErrors } from './client-error.js';
import {
  closeUnusedConnections,
  closeUnusedConnectionsAfter,
  cutEventStreamsAfter,
  trackConnections,
} from './connections.js';
import { isMarkedClosing, markServerClosing } from './open-event-stream.js';

/**
 * Makes `server.close()` end the event streams first. Node's `close()` waits for open
 * connections, and an event stream never ends on its own, so without this it would hang.
 * Every stream the server serves ends, a route's own `group` included, and so do those of `group`
 * (by default the process's) and those of the process's fetch handlers (`@rxsse/web`), which
 * cannot tell their server.
 * Streams get reason `'shutdown'`, write what they queued (and the retry hint), then end; requests
 * that arrive meanwhile on kept-alive connections get the hint and `Connection: close` instead of
 * a stream. Node closes the connections idle at `close()` at once, but not one still flushing an
 * answer that ended (a fetch handler's runtime ends it so); once the streams have flushed (or
 * `deadline` passed), those a stream's end left idle are closed, and those on which no request
 * ever came; at `deadline`, those still flushing an answer that ended or carrying an event stream
 * too (a fetch handler's runtime may hold a stream's last bytes past its end), and those whose TLS
 * handshake or request head is still under way (Node checks its `headersTimeout` no more once
 * closing, and times a handshake out only after 120 s), so `close()` completes within about
 * `deadline`. On an HTTP/2 server, client sessions are closed gracefully too (see
 * {@link trackHttp2Sessions}); the connection of one whose client reads not even the GOAWAY is cut
 * at the same `deadline`. A `group` whose `close()` fails (a subclass's) leaves the rest to happen;
 * its failure is logged. Called again meanwhile (SIGTERM, then SIGINT), `close()` waits for the close
 * under way, whose deadline stands. A server that closed before its groups had (another server's
 * clients held them) and listens again keeps its new connections and sessions.
 *
 * @throws {RangeError} at once, for a `retry`, `spread` or `deadline` out of range.
 * @throws {TypeError} at once, for a `server` that is not a Node server, options that are not an
 *   object, or a `group` that is not a `StreamGroup`.
 *
 * @example
 * ```ts
 * const server = app.listen(3000);
 * closeStreamsOnServerClose(server, { retry: 2000, spread: 8000 });
 * ```
 */
export function closeStreamsOnServerClose(
  server: Server,
  options: ShutdownOptions & { group?: StreamGroup | undefined } = {},
): void {
  // Not the app itself (an Express or Koa app): its close() is never what stops the server. Not
  // `instanceof net.Server` either: Bun's `http.Server` is none.
  if (!isServer(server)) {
    throw new TypeError(
      `closeStreamsOnServerClose() takes a Node server (what app.listen() returns), got ${typeof server === 'function' ? 'a function' : typeof server}`,
    );
  }
  // Checked before it is taken apart: a number or a string would leave no option, silently.
  checkShutdownOptions(options, ['group']);
  const { group = openStreams, ...shutdown } = options;
  checkStreamGroup(group);
  trackConnections(server);
  guardClientErrors(server as HttpServer);
  const closeSessions = trackHttp2Sessions(server);
  const close = server.close;
  let underway = false;
  server.close = function closeWithStreams(this: Server, callback?: (error?: Error) => void) {
    // Called again meanwhile (SIGTERM, then SIGINT), it only waits for that close, which ends all
    // it would: setting it up again would add listeners to the server at each call.
    if (underway) return close.call(this, callback);
    underway = true;
    // Sessions are cut `deadline` after this, not after the streams ended: it bounds the whole close.
    const startedAt = performance.now();
    markServerClosing(this);
    cutEventStreamsAfter(this, shutdownDeadline(shutdown));
    // From now on every HTTP/1 response closes its connection, whoever answers it: a fetch
    // handler's turn-away cannot say `Connection: close`, and a kept-alive client would hold
    // close() open by reconnecting on the same connection.
    this.prependListener('request', closeAfterResponse);
    const reap = reapWhenIdle(this);
    let closed!: () => void;
    const until = new Promise<void>((resolve) => (closed = resolve));
    group.closeUntil(until);
    // Fetch handlers' streams (`@rxsse/web`) cannot tell their server: they are the process's.
    const unseen = serverStreams();
    unseen.closeUntil(until);
    let closing = true;
    close.call(this, (error?: Error) => {
      // A server that listens again keeps its connections alive again.
      this.off('request', closeAfterResponse);
      closing = false;
      underway = false;
      unsubscribe(RESPONSE_FINISH, reap);
      closed();
      callback?.(error);
    });
    const ended = closeServerStreams(this, group, shutdown).catch((error: unknown) => {
      // Nothing awaits a close() callback's streams: told here, not as an unhandled rejection.
      console.error("rxsse: a stream group's close() failed:", error);
    });
    void Promise.all([ended, unseen.close(shutdown)]).then(() => {
      // The server may have closed first (no connection held it, while a group waited for another
      // server's clients), and may listen again already: its new sessions and connections stay.
      if (!closing) return;
      closeSessions(shutdownDeadline(shutdown), startedAt);
      // The connections of the streams just ended are idle now; Node reaped idle ones only when
      // close() began, and would wait out their keep-alive timeout.
      (this as Partial<HttpServer>).closeIdleConnections?.();
      // So will be one whose request came before the close and is answered only later (a fetch
      // handler that resolves late is turned away without `Connection: close`).
      subscribe(RESPONSE_FINISH, reap);
    });
    return this;
  };
}

/**
 * Ends every event stream `server` serves, those of a route's own group included, and the streams
 * of `group` (the app's): each after its queue and the retry hint, destroyed if not flushed by the
 * deadline. Marks the server closing first, so that requests arriving meanwhile are turned away;
 * drops the connections on which no request ever came last (those {@link trackConnections} keeps),
 * and once more `deadline` after this call, unless the server has closed by then (over TLS, a
 * connection accepted before the close may end its handshake only after that first drop), with
 * those whose TLS handshake or request head is still under way then.
 * For an adapter's own shutdown hook, run before the server stops listening; resolves once the
 * streams' connections have closed, or after `deadline`.
 */
export async function closeServerStreams(
  server: object,
  group: StreamGroup,
  shutdown: ShutdownOptions,
): Promise<void> {
  // Before the wait: the server may close during it, and its close must cancel the drop.
  closeUnusedConnectionsAfter(server, shutdownDeadline(shutdown));
  markServerClosing(server);
  // A stream sits in both: the first close ends it, the second only waits for its flush as well.
  try {
    await closeEach([group, serverStreams(server)], shutdown);
  } finally {
    // Node's close() would wait for them as long as their clients keep them. Unless the server
    // closed meanwhile (a group waited for another server's clients): one listening again keeps its
    // new connections.
    if (isMarkedClosing(server)) closeUnusedConnections(server);
  }
}

/** Node's channel for every HTTP/1 response that finished, whatever the server. */
const RESPONSE_FINISH = 'http.server.response.finish';

/** Closes `server`'s idle connections after each of its responses finishes (and leaves its socket). */
function reapWhenIdle(server: Server): (message: unknown) => void {
  return (message) => {
    if ((message as { server?: unknown }).server !== server) return;
    setImmediate(() => (server as Partial<HttpServer>).closeIdleConnections?.());
  };
}

function isServer(value: unknown): value is Server {
  const server = value as Partial<Server> | null;
  return (
    typeof server === 'object' &&
    server !== null &&
    typeof server.close === 'function' &&
    typeof server.address === 'function'
  );
}

function closeAfterResponse(req: IncomingMessage, res: ServerResponse): void {
  if (req.httpVersionMajor < 2) res.shouldKeepAlive = false;
}

/** Set on each connection's socket, to itself: a session's `socket` proxy reads it through. */
const SOCKET = Symbol('rxsse.socket');

/**
 * Tracks the client sessions of an HTTP/2 server (a no-op on HTTP/1) and returns a function that
 * closes them gracefully (GOAWAY). Node's `server.close()` waits for every session, and browsers
 * and HTTP/2 agents keep idle sessions open for minutes; a session that begins later, before the
 * server has closed (its handshake was under way), is closed at once. Given a `deadline`, it
 * destroys the connection of every session still open `deadline` ms after `startedAt` (a time on
 * `performance.now()`'s clock, by default the call's), a late session's too, at once if that time
 * has passed: a client that reads nothing never receives the GOAWAY, and its session would hold the
 * server open for good. A shutdown that ended its streams first passes the time its close began,
 * so the whole close ends within its `deadline`. Called again while the server closes, it keeps the
 * sooner of the two cuts.
 */
export function trackHttp2Sessions(server: Server): (deadline?: number, startedAt?: number) => void {
  // An HTTP/1 server has no sessions: its sockets are left as Node shapes them.
  if (server instanceof HttpServer || server instanceof HttpsServer) return () => {};
  const sessions = new Map<Http2Session, Socket | undefined>();
  // A session hands out only a proxy of its socket, whose destroy() throws, and neither close()
  // nor destroy() of a session ends a connection that cannot flush: only the socket's own
  // destroy() does. Each socket is marked before Node makes its session, so the proxy, which
  // passes other reads through, tells which socket a session rides on.
  const mark = (socket: Socket) => {
    (socket as Socket & { [SOCKET]?: Socket })[SOCKET] = socket;
  };
  server.prependListener('connection', mark);
  server.prependListener('secureConnection', mark);
  let timer: ReturnType<typeof setTimeout> | undefined;
  /**
   * Set once the sessions were closed: `undefined` before; `cutAt`, on `performance.now()`'s clock,
   * is when the connections still open are destroyed (unset for a close without a deadline).
   */
  let closing: { cutAt?: number | undefined } | undefined;
  // A server closed may listen again: its new sessions are kept then.
  server.on('close', () => {
    closing = undefined;
  });
  server.on('session', (session: Http2Session) => {
    const socket = (session.socket as Socket & { [SOCKET]?: Socket })[SOCKET];
    sessions.set(session, socket);
    session.once('close', () => {
      sessions.delete(session);
      if (sessions.size === 0) clearTimeout(timer);
    });
    // A connection accepted before the close may finish its handshake after it: its session would
    // stay open, idle, and hold the server open as long as the client keeps it.
    if (!closing) return;
    session.close();
    if (closing.cutAt === undefined) return;
    const late = unref(setTimeout(() => cut(socket), untilTime(closing.cutAt)));
    session.once('close', () => clearTimeout(late));
  });
  return (deadline, startedAt = performance.now()) => {
    // A close called again meanwhile (SIGTERM, then SIGINT) keeps the sooner cut.
    const cutAt = soonest(closing?.cutAt, deadline === undefined ? undefined : startedAt + deadline);
    closing = { cutAt };
    for (const session of sessions.keys()) session.close();
    if (cutAt === undefined || sessions.size === 0) return;
    clearTimeout(timer);
    timer = unref(
      setTimeout(() => {
        for (const socket of sessions.values()) cut(socket);
      }, untilTime(cutAt)),
    );
  };
}

function soonest(a: number | undefined, b: number | undefined): number | undefined {
  return a === undefined ? b : b === undefined ? a : Math.min(a, b);
}

/**
 * Destroys `socket` once its session sent what it was given: the answers that turn away the clients
 * of handlers still setting up go out at the deadline too, and a session sends its frames only in
 * the event loop's next check phase, which a cut due by then would come before.
 */
function cut(socket: Socket | undefined): void {
  setImmediate(() => socket?.destroy());
}

/** The ms left until `time` on `performance.now()`'s clock (monotonic, unlike `Date.now()`). */
function untilTime(time: number): number {
  return Math.max(0, time - performance.now());
}

/** Only a session still open may keep the process alive for its cut. */
function unref(timer: ReturnType<typeof setTimeout>): ReturnType<typeof setTimeout> {
  timer.unref();
  return timer;
}
