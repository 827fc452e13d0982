import type { EventSourceLike, MessageEvent, ShutdownOptions, StreamOptions } from '@rxsse/core';
import type { EventContext } from '@rxsse/node';

/** One route of a test server: an event stream, or a plain HTML page. */
export type TestRoute =
  | {
      path: string;
      method?: 'GET' | 'POST';
      events: (
        context: EventContext,
      ) => EventSourceLike<MessageEvent<unknown>> | Promise<EventSourceLike<MessageEvent<unknown>>>;
      options?: StreamOptions;
    }
  | { path: string; html: string };

export interface RunningServer {
  /** Base URL, `http://127.0.0.1:<port>`. */
  url: string;
  close(): Promise<void>;
  /**
   * What reached the framework's own error channel (Express: console.error and error middleware,
   * Fastify: its logger at level error, Koa: `app.on('error')`), one string each. Tests that expect
   * an entry take it out; any other fails the test.
   */
  logged: string[];
}

/**
 * Where a transport differs from a Node response by design, for the few tests that depend on it.
 * Every flag is off for the Node adapters.
 */
export interface TransportTraits {
  /**
   * A stream with nothing to send when the runtime first reads starts with the comment `:\n`, so
   * runtimes that hold headers until the first chunk send them at once (`@rxsse/web`).
   */
  openingComment?: boolean;
  /**
   * Bytes leave only between ticks (a fetch body is read asynchronously), so a synchronous burst
   * must fit the queue: it meets the overflow policy instead of reaching the socket as it goes.
   */
  holdsBytesWithinTick?: boolean;
  /**
   * A stream dropped on purpose (overflow, stall) errors its body, and the runtime logs that
   * `SseStreamDroppedError` through the channel the harness records.
   */
  logsDroppedStreams?: boolean;
  /**
   * The server never tells the handler when a connection drops while its response waits behind
   * pipelined ones (`@hono/node-server` on Node 20, where Node never closes such a response; Node 24
   * does): such a stream ends only at the server's shutdown.
   */
  missesQueuedDisconnects?: boolean;
  /**
   * A client that half-closes is heard of only once its connection closes, which one that stopped
   * reading with the transport full never lets happen: its stream ends by its own overflow or stall
   * (`@hono/node-server`, the tests' own bridge). The Node adapters hear of it as Node ends the
   * connection.
   */
  missesHalfCloses?: boolean;
  /**
   * The server tells of a client gone only by cancelling a `Response`'s body, never through
   * `request.signal` (a bridge of the tests' own): one gone while its handler sets up is heard of
   * once the handler settled.
   */
  hearsDisconnectsOnlyThroughBody?: boolean;
  /**
   * A client turned away while the server closes gets no `Connection: close`: a `Response` carries
   * no hop-by-hop header, and the server closes the connection once the answer is out
   * (`@rxsse/web`).
   */
  noHopByHopHeaders?: boolean;
}

/** How the shared adapter suite starts a real server of one framework on 127.0.0.1. */
export interface AdapterHarness {
  name: string;
  traits?: TransportTraits;
  /**
   * Starts the server. Its `close()` is the framework's own graceful close, wired to end open
   * streams with `shutdown` (so a test hangs if that wiring breaks).
   */
  start(routes: TestRoute[], shutdown?: ShutdownOptions): Promise<RunningServer>;
}
