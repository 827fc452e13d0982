import type { CallHandler, ExecutionContext, NestInterceptor } from '@nestjs/common';
import type { ApplicationConfig } from '@nestjs/core';
import { releaseSource, reportTo } from '@rxsse/core';
import {
  answerHead,
  type NodeRequest,
  type NodeResponse,
  openEventStream,
  responseDone,
  watchResponseClose,
} from '@rxsse/node';
import { from, type Observable, throwError } from 'rxjs';
import { NestChain } from './chain.js';
import { RXSSE_ROUTE, type RxSseRoute } from './decorators.js';
import { RxsseResponseSentError } from './errors.js';
import { findHandoff, openHandoff } from './handoff.js';
import { headThroughChain } from './head.js';
import { errorText, stackOf } from './logger.js';
import { watchReplySend } from './reply-sends.js';
import type { RxsseRuntime } from './runtime.js';

/** Fastify's reply: the Node response is `raw`; headers set by Nest or by plugins wait on the reply. */
interface FastifyLikeReply {
  raw: NodeResponse;
  getHeaders(): Record<string, string | number | string[] | undefined>;
  hijack(): void;
  send(...args: unknown[]): unknown;
}

// Nest's key for the interceptors `@UseInterceptors()` binds to a controller or a method.
const INTERCEPTORS_METADATA = '__interceptors__';

/**
 * Streams the events of `@RxSse` routes and passes every other route through. `RxsseModule`
 * registers it as an app interceptor, so it runs outside the interceptors of the app, controllers
 * and routes, and what they make of the events is what is streamed.
 */
export class RxsseInterceptor implements NestInterceptor {
  constructor(
    private readonly runtime: RxsseRuntime,
    private readonly config: ApplicationConfig,
  ) {}

  intercept(context: ExecutionContext, next: CallHandler): Observable<unknown> {
    const handler = context.getHandler();
    const route = Reflect.getMetadata(RXSSE_ROUTE, handler) as RxSseRoute | undefined;
    if (!route || context.getType() !== 'http') return next.handle();
    const http = context.switchToHttp();
    const req = http.getRequest<{ raw?: NodeRequest }>();
    const res = http.getResponse<Partial<FastifyLikeReply>>();
    const rawReq = req.raw ?? (req as NodeRequest);
    const rawRes = res.raw ?? (res as NodeResponse);
    this.runtime.noteServer((rawReq.socket as { server?: object } | null)?.server ?? undefined);
    // Method and path: EventSource cannot send headers, so a token travels in the query.
    const request = `${rawReq.method} ${rawReq.url?.split('?', 1)[0]}`;
    // The app's log is its error channel for what fails once the stream runs.
    const report = (error: unknown) =>
      this.runtime.logError(`event stream ${request} failed: ${errorText(error)}`, stackOf(error));
    // A guard (or middleware) that answered the request itself and let it on: that answer stands,
    // and neither the method nor a HEAD's headers may run into it.
    if (rawRes.headersSent) return throwError(() => new RxsseResponseSentError(request));
    const replySent = watchReplySend(res);
    // One it gave through Fastify's reply goes out once the onSend hooks ran, which may await: the
    // error is thrown once it is out, for Nest's handler to find the response answered.
    if (replySent()) {
      const sent = responseDone(rawRes);
      return from(
        sent.then(() => {
          throw new RxsseResponseSentError(request);
        }),
      );
    }
    const options = this.runtime.optionsFor(handler, route.options);
    // What fails out of a stream's reach goes to the route's `onError` first, as on every adapter.
    const routeReport = (error: unknown) => reportTo(options.onError, report, error);
    // Set once the request was answered without the chain (a shutdown's deadline cut it short):
    // what the chain settles with later is then let go as any late handler's, not answered.
    let cutShort = false;
    const settled = () => {
      cutShort = true;
    };
    // Copied now for the answer that runs no chain (a shutdown's, to a HEAD as to a GET), and again
    // once the chain ran, for what its interceptors and the method set on the reply.
    copyReplyHeaders(res, rawRes);
    if (rawReq.method === 'HEAD') {
      // A pending handler of the app's streams until the chain lets it on, as a GET's setup: a
      // shutdown drops it at its deadline, or an interceptor holding it for good would hold the close.
      const answered = answerHead(
        rawReq,
        rawRes,
        async (context) => {
          // An answer through Fastify's reply goes out once its onSend hooks ran, which may await.
          const answeredAlready = async () => {
            if (replySent()) await responseDone(rawRes);
            if (rawRes.headersSent) throw new RxsseResponseSentError(request);
          };
          const source = await headThroughChain(next, req, rawReq, rawRes, context, routeReport).catch(
            async (error: unknown) => {
              // A method that answered through `@Res()` owes no source: that answer stands, as its GET's.
              if (!cutShort && error === findHandoff(req)?.refusal) await answeredAlready();
              throw error;
            },
          );
          if (cutShort) return;
          await answeredAlready();
          copyReplyHeaders(res, rawRes);
          return source;
        },
        options,
        report,
      ).finally(settled);
      return handedOver(answered, request, res);
    }
    let chain: NestChain | undefined;
    const produce = (streamContext: Parameters<typeof openHandoff>[1]) => {
      const handoff = openHandoff(req, streamContext, routeReport);
      const nest = new NestChain(next, handoff, this.#alone(context));
      chain = nest;
      // The client left, now or before the chain ran, or a shutdown dropped the connection at its
      // deadline. The abort rejects the setup as a handler that heeds its signal would. The signal
      // is read only then: a sink creates its AbortController only for those who read it.
      const stopWatching = watchResponseClose(rawReq, rawRes, () =>
        nest.abandon(streamContext.signal.reason),
      );
      nest.source.then(stopWatching, stopWatching);
      // Nest's exception handler ends such a response without writing to it again. One given
      // through Fastify's reply is written once its onSend hooks ran, which may await: it is left
      // to go out first, or the stream would start on it, and Nest's handler would answer again.
      const answered = (): Promise<never> | undefined => {
        if (rawRes.headersSent) throw new RxsseResponseSentError(request);
        if (!replySent()) return undefined;
        return responseDone(rawRes).then(() => {
          throw new RxsseResponseSentError(request);
        });
      };
      return nest.source.then(
        (source) => {
          if (cutShort) return source;
          // No stream takes the source: an iterator the method made (a listener it registered)
          // is ended, or it would hold what it listens to for good.
          const refuse = (error: unknown): never => {
            releaseSource(source, routeReport);
            throw error;
          };
          try {
            const sending = answered();
            if (sending) return sending.catch(refuse);
            copyReplyHeaders(res, rawRes);
          } catch (error) {
            refuse(error);
          }
          return source;
        },
        (error: unknown) => {
          // The answer that closed the response (Fastify's `handlerTimeout`) also ended the chain,
          // and a method that answered through `@Res()` owes no source; any other failure is
          // Nest's to answer, or to log.
          if (!cutShort && (error === streamContext.signal.reason || error === handoff.refusal)) {
            const sending = answered();
            if (sending) return sending;
          }
          throw error;
        },
      );
    };
    const opened = openEventStream(rawReq, rawRes, produce, options, report).finally(() => {
      settled();
      // Also when no stream started: the chain may have produced a source that nothing takes.
      chain?.releaseUnlessStreaming();
    });
    return handedOver(opened, request, res);
  }

  /**
   * Moves this interceptor before the app's other global ones, so it runs outside them all.
   * @throws {TypeError} when another `RxsseModule` of the app has its own: each would stream on the
   *   same response, and every request would fail with the other's `RxsseResponseSentError`.
   */
  runFirst(): void {
    const interceptors = this.config.getGlobalInterceptors();
    if (interceptors.some((each) => each instanceof RxsseInterceptor && each !== this)) {
      throw new TypeError(
        "RxsseModule is imported more than once in this app (each forRoot() is a module of its own, whatever its options): import RxsseModule.forRoot() once, in the root module (it is global), and give a route's own options to @RxSse('path', options)",
      );
    }
    const index = interceptors.indexOf(this);
    if (index > 0) interceptors.unshift(...interceptors.splice(index, 1));
  }

  /**
   * Whether this is the route's only interceptor: then nothing in Nest's chain looks at the events,
   * and they need not pass through it. Read per request, since global interceptors may be added
   * after this one exists.
   */
  #alone(context: ExecutionContext): boolean {
    const bound = (target: object) =>
      ((Reflect.getMetadata(INTERCEPTORS_METADATA, target) as unknown[] | undefined) ?? []).length > 0;
    return (
      this.config.getGlobalInterceptors().every((interceptor) => interceptor === this) &&
      this.config.getGlobalRequestInterceptors().length === 0 &&
      !bound(context.getClass()) &&
      !bound(context.getHandler())
    );
  }
}

/**
 * What Nest gets once `opened` has handed the Node response over, to a stream or to an answer of
 * rxsse's (a HEAD's, a shutdown's): one `undefined`, which Nest does not send (the route declares
 * the response, see `@RxSse`), and the end, so that Nest lets go of the request. An error before
 * that reaches Nest's exception filters, like any route's. An answer another writer gave meanwhile
 * (`null`) stands, and is reported as one that came before the source: on NestJS 11, a method that
 * answered through `@Res()` runs a few ticks after an interceptor's first event settled the source.
 */
function handedOver(
  opened: Promise<unknown>,
  request: string,
  res: Partial<FastifyLikeReply>,
): Observable<undefined> {
  return from(
    opened.then((answer) => {
      if (answer === null) throw new RxsseResponseSentError(request);
      res.hijack?.();
      return undefined;
    }),
  );
}

/**
 * Headers Fastify holds on the reply (CORS, `@Header()`, an interceptor's) go out with the stream's
 * own, over one a middleware set on the Node response, as Fastify's own `writeHead` puts them.
 */
function copyReplyHeaders(res: Partial<FastifyLikeReply>, raw: NodeResponse): void {
  if (typeof res.getHeaders !== 'function' || res.raw === undefined) return;
  for (const [name, value] of Object.entries(res.getHeaders())) {
    if (value !== undefined) raw.setHeader(name, value);
  }
}
