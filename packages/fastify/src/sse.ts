import { inspect } from 'node:util';
import {
  checkOptionNames,
  checkOptionsObject,
  checkShutdownOptions,
  type EventSourceLike,
  isThenable,
  type MessageEvent,
  overStreamOptions,
  type ResolvedStreamOptions,
  resolveStreamOptions,
  type ShutdownOptions,
  STREAM_OPTION_NAMES,
  StreamGroup,
  type StreamOptions,
} from '@rxsse/core';
import { type EventContext, openEventStream, responseDone } from '@rxsse/node';
import type { FastifyPluginAsync, FastifyReply } from 'fastify';
import fp from 'fastify-plugin';
import { appShutdown } from './app-shutdown.js';
import { afterTimeoutAnswer, handlerTimedOut } from './timeout-answer.js';

/** What `reply.sse()` takes: a source, or a function of the connection's context returning one. */
export type FastifyEventSource<M extends MessageEvent<unknown> = MessageEvent> =
  | EventSourceLike<M>
  | ((context: EventContext) => EventSourceLike<M> | Promise<EventSourceLike<M>>);

/** Options of the plugin: defaults for every route, and how `app.close()` ends open streams. */
export interface RxsseFastifyOptions extends StreamOptions {
  /** Retry hint, reconnect window and flush deadline used when the app closes. */
  shutdown?: ShutdownOptions | undefined;
}

declare module 'fastify' {
  interface FastifyReply {
    /**
     * Streams events to this request's client and takes the response over from Fastify.
     * `options` override the plugin's for this call (one left `undefined` keeps the plugin's); hoist
     * them into a constant, since a message shared by many clients is encoded once per options
     * object. An async route returns or awaits it, as it would `reply.send()`; it resolves to
     * nothing once the stream took the response over, or once Fastify answered a producer's failure.
     * @example
     * ```ts
     * app.get('/sse', (req, reply) => reply.sse(interval(1000).pipe(map(() => ({ data: 'tick' })))));
     * ```
     */
    sse<M extends MessageEvent<unknown> = MessageEvent<unknown>>(
      source: FastifyEventSource<NoInfer<M>>,
      options?: StreamOptions,
    ): Promise<void>;
  }
}

/**
 * Every name the plugin's options take: the stream's, `shutdown`, and Fastify's own register
 * options, which Fastify hands the plugin in the same object (`app.register(rxsse, { prefix })`).
 */
const PLUGIN_OPTION_NAMES = [...STREAM_OPTION_NAMES, 'shutdown', 'prefix', 'logLevel', 'logSerializers'];

const plugin: FastifyPluginAsync<RxsseFastifyOptions> = async (app, pluginOptions) => {
  // Checked here, so a bad option fails registration rather than the first request or app.close().
  checkOptionsObject(pluginOptions, '@rxsse/fastify options');
  checkOptionNames('@rxsse/fastify', pluginOptions, PLUGIN_OPTION_NAMES);
  const { shutdown = {}, ...options } = pluginOptions;
  // Fastify's, not the stream's.
  for (const name of ['prefix', 'logLevel', 'logSerializers'])
    delete (options as Record<string, unknown>)[name];
  checkShutdownOptions(shutdown);
  // Each app gets its own group, so closing one app never ends another app's streams; a `group`
  // left undefined (options built from a config) keeps it, as a spread would reset it to the process's.
  const base = overStreamOptions({ group: new StreamGroup() }, options);
  const defaults = resolveStreamOptions(base);
  // preClose runs before the server stops and waits for connections.
  const { servers, preClose, whileOpen } = appShutdown(app, defaults.group, shutdown);
  app.addHook('preClose', preClose);
  // Per-call options are resolved once per options object, so the encode cache stays shared.
  const perCall = new WeakMap<StreamOptions, ResolvedStreamOptions>();

  // The first call's, per reply: a second call is refused even while the first's producer is pending.
  const calls = new WeakMap<FastifyReply, Promise<void>>();
  app.decorateReply('sse', function sse(this: FastifyReply, source, callOptions) {
    const first = calls.get(this);
    if (first === undefined) {
      const call = stream.call(this, source, callOptions);
      calls.set(this, call);
      return call;
    }
    reportTo(this)(new ReplyAnsweredError());
    // A route that returns it still waits for the first: resolved now, Fastify would answer it.
    return first;
  });

  async function stream(
    this: FastifyReply,
    source: FastifyEventSource<MessageEvent<unknown>>,
    callOptions?: StreamOptions,
  ) {
    const report = reportTo(this);
    servers.note((this.request.raw.socket as { server?: object } | null)?.server);
    // A route still running when its handlerTimeout answered it: that answer stands.
    if (handlerTimedOut(this) !== undefined) return responseDone(this.raw);
    // The route answered already (reply.send(), or a stream of its own): that answer stands. Fastify
    // would only say "return reply", and writing the headers onto it would fail with Node's words.
    if (this.raw.headersSent) return report(new ReplyAnsweredError());
    const produce = thenCopyReplyHeaders(
      this,
      afterTimeoutAnswer(this, typeof source === 'function' ? source : () => source),
    );
    try {
      // Inside the try: per-call options out of range are an error reply too, not a rejection.
      let resolved = defaults;
      if (callOptions !== undefined) {
        // Refused by name, as what is no object of options (null, a Map) would run on the defaults unheard.
        checkOptionsObject(callOptions);
        resolved = perCall.get(callOptions) ?? resolveStreamOptions(overStreamOptions(base, callOptions));
        perCall.set(callOptions, resolved);
      }
      // Copied now for the answers that run no producer (a shutdown's), and again once it settled.
      copyReplyHeaders(this);
      const stream = await openEventStream(this.request.raw, this.raw, produce, whileOpen(resolved), report);
      // Fastify answered while the producer ran: a reply.send() of the route's that an async onSend
      // hook held, or, for an async route that neither returns nor awaits reply.sse(), the empty
      // reply to its promise. Which one cannot be told: the error names both, and the fix.
      if (stream === null && handlerTimedOut(this) === undefined)
        return report(new ReplyAnsweredError(WHILE_PRODUCING));
    } catch (error) {
      const timedOut = handlerTimedOut(this);
      // A producer that throws before the first byte (or options out of range) is Fastify's to
      // answer, like any other route, and never a rejection: a route may call reply.sse() without
      // awaiting it.
      if (timedOut === undefined && !this.sent && !this.raw.headersSent) {
        // Fastify's error handler answers it, and may answer with a stream of its own: that call is
        // the request's one answer, not a second, which would wait for this one while this one
        // waits for the handler's answer, and leave the request unanswered for good.
        calls.delete(this);
        return this.send(asError(error));
      }
      // Fastify answered and logged its handlerTimeout already.
      if (error === timedOut) return responseDone(this.raw);
      // Fastify answers nothing once the route hijacked the reply (it only warns), and destroys a
      // response whose headers went out, another stream's: the error is logged here, and a client
      // not answered yet gets its 500 rather than an open connection.
      report(error);
      if (timedOut !== undefined) return responseDone(this.raw);
      if (!this.raw.headersSent) this.raw.writeHead(500, { 'content-length': '0' }).end();
      return;
    }
    // Hijack only once the producer succeeded, so a failure above still gets Fastify's error reply.
    this.hijack();
  }
};

/** Logs in the request's log, as Fastify logs a route's failure. */
function reportTo(reply: FastifyReply): (error: unknown) => void {
  return (error) => {
    const log = reply.request.log;
    try {
      log.error({ err: error }, 'rxsse: event stream failed');
    } catch {
      // Its fields throw as the log's serializer reads them (a getter, a Proxy's trap): what Node's
      // inspection shows of it, which reads none of them, instead of nothing.
      log.error({ err: new Error(inspect(error)) }, 'rxsse: event stream failed');
    }
  };
}

/** How a reply answered while its `reply.sse()`'s producer ran came to be. */
const WHILE_PRODUCING =
  "reply.sse()'s reply was answered while its producer ran, by a reply.send() that an async onSend hook held, or, in an async route that neither returns nor awaits reply.sse() (return reply), by Fastify's empty reply: no stream began";

/** A `reply.sse()` on a reply that was answered before it: one answer per request. */
class ReplyAnsweredError extends Error {
  override readonly name = 'ReplyAnsweredError';
  constructor(
    message = 'reply.sse() on a reply already answered: an event stream cannot follow that answer (one per request)',
  ) {
    super(message);
  }
}

/**
 * Fastify takes only an `Error` given to `reply.send()` for one: any other object goes out as a 200
 * JSON body, the refused client's "success". One a producer threw (a plain `{ statusCode, message }`,
 * an error of another realm) becomes an Error carrying its fields (status, headers, message), with
 * the object as its `cause`.
 */
function asError(error: unknown): unknown {
  try {
    if (error instanceof Error) return error;
    return Object.assign(new Error('the event handler failed', { cause: error }), error);
  } catch {
    // Its fields throw as they are read (a getter, a Proxy's trap), as they would in Fastify's log:
    // a 500 still answers, with what Node's inspection shows of it, which reads none of them.
    return new Error(`the event handler failed: ${inspect(error)}`);
  }
}

/**
 * Headers hooks and the route set on the reply (`@fastify/cors`, `@fastify/helmet`,
 * `reply.header()`) wait there for Fastify to send them, which a stream that writes the Node
 * response itself never lets it do: they go onto the response under the stream's own, and over any
 * a Node-level middleware set there, as Fastify's own `writeHead` puts them.
 */
function copyReplyHeaders(reply: FastifyReply): void {
  const raw = reply.raw;
  for (const [name, value] of Object.entries(reply.getHeaders())) {
    if (value !== undefined) raw.setHeader(name, value);
  }
}

/** `produce`, after which the headers it set on the reply too are copied, unless the response went out. */
function thenCopyReplyHeaders<S>(
  reply: FastifyReply,
  produce: (context: EventContext) => S | Promise<S>,
): (context: EventContext) => S | Promise<S> {
  const copied = (source: S): S => {
    if (!reply.raw.headersSent) copyReplyHeaders(reply);
    return source;
  };
  return (context) => {
    const source = produce(context);
    return isThenable(source) ? Promise.resolve(source).then(copied) : copied(source);
  };
}

/** The rxsse Fastify plugin: adds `reply.sse(source, options?)`. Options are defaults for every route. */
export const rxsse = fp(plugin, { fastify: '5.x', name: '@rxsse/fastify' });
export default rxsse;
