import 'reflect-metadata';
import { EventEmitter, on } from 'node:events';
import type { ServerResponse } from 'node:http';
import {
  type ArgumentsHost,
  applyDecorators,
  type CallHandler,
  type CanActivate,
  Catch,
  Controller,
  type ExceptionFilter,
  type ExecutionContext,
  ForbiddenException,
  Get,
  Header,
  HttpCode,
  HttpException,
  Injectable,
  Module,
  type NestInterceptor,
  type MessageEvent as NestMessageEvent,
  NotFoundException,
  ParseIntPipe,
  type PipeTransform,
  Query,
  Redirect,
  Render,
  Res,
  Sse,
  UseFilters,
  UseGuards,
  UseInterceptors,
} from '@nestjs/common';
import { FastifyAdapter } from '@nestjs/platform-fastify';
import { Test } from '@nestjs/testing';
import type { MessageEvent, StreamMetrics, StreamOptions } from '@rxsse/core';
import { createChannel, memoryEngine } from '@rxsse/core/channel';
import {
  catchError,
  concat,
  EMPTY,
  finalize,
  firstValueFrom,
  from,
  NEVER,
  Observable,
  Subject,
  tap,
  throwError,
} from 'rxjs';
import { afterEach, describe, expect, it } from 'vitest';
import {
  collectEvents,
  eventSourceClients,
  fetchAndParse,
  fetchBytes,
  rawClient,
  waitFor,
} from '../../../test/support/clients.js';
import type { RunningServer } from '../../../test/support/harness.js';
import { counted, recording } from '../../../test/support/recording.js';
import {
  LastEventId,
  RxSse,
  RxSseSignal,
  RxsseModule,
  RxsseModuleMissingError,
  RxsseResponseSentError,
} from '../src/index.js';
import { markReplySends, watchReplySend } from '../src/reply-sends.js';
import { nestMajor, type Platform, startNest } from './harness.js';
import { FallsBack, Greets, MergesFeed, Shouts } from './interceptors.js';

class DeniedGuard implements CanActivate {
  canActivate(): boolean {
    return false;
  }
}

/** A guard that checks something slow (a session store, say): it lets the request on when released. */
const slowGuard = { release: () => {}, entered: 0, gone: (): boolean => false };
class SlowGuard implements CanActivate {
  async canActivate(context: ExecutionContext): Promise<boolean> {
    slowGuard.entered++;
    // Express hands over its response, Fastify its reply: the Node response is under `raw`.
    const res = context.switchToHttp().getResponse<{ raw?: { destroyed: boolean }; destroyed: boolean }>();
    slowGuard.gone = () => (res.raw ?? res).destroyed;
    await new Promise<void>((resolve) => {
      slowGuard.release = resolve;
    });
    return true;
  }
}

/** A pipe that checks a parameter against something slow (a lookup), released by the test. */
const slowPipe = { release: () => {}, entered: 0, method: 0 };
@Injectable()
class SlowPipe implements PipeTransform {
  async transform(value: unknown): Promise<unknown> {
    slowPipe.entered++;
    await new Promise<void>((resolve) => {
      slowPipe.release = resolve;
    });
    return value;
  }
}

/** A guard that answers the request itself (a redirect to a login page, say), then lets it on. */
/** What @Res() gives on either platform: Express's `status()` or Fastify's `code()`. */
type AnyReply = {
  status?(code: number): { send(body: unknown): void };
  code?(code: number): { send(body: unknown): void };
};

const answeringGuard = { method: 0 };
class AnsweringGuard implements CanActivate {
  canActivate(context: ExecutionContext): boolean {
    const res = context.switchToHttp().getResponse();
    (typeof res.code === 'function' ? res.code(401) : res.status(401)).send({ answered: 'by the guard' });
    return true;
  }
}

/** A guard that begins an answer of its own (a report it writes out, say) and lets the request on. */
const startingGuard = { method: 0 };
class StartingGuard implements CanActivate {
  canActivate(context: ExecutionContext): boolean {
    const raw = context.switchToHttp().getResponse<ServerResponse>();
    raw.writeHead(401, { 'content-type': 'text/plain' });
    raw.write('answered by the guard');
    return true;
  }
}

/** Answers the request itself (a quota's 402, say) and lets nothing on. */
@Injectable()
class AnswersItself implements NestInterceptor {
  intercept(context: ExecutionContext): Observable<unknown> {
    const res = context.switchToHttp().getResponse();
    (typeof res.code === 'function' ? res.code(402) : res.status(402)).send({
      answered: 'by the interceptor',
    });
    return EMPTY;
  }
}

class Teapot extends Error {}

@Catch(Teapot)
class TeapotFilter implements ExceptionFilter {
  catch(error: Teapot, host: ArgumentsHost) {
    const res = host.switchToHttp().getResponse();
    // Express and Fastify both answer with status().send(); Fastify's send takes the object as JSON.
    const reply = typeof res.code === 'function' ? res.code(418) : res.status(418);
    reply.send({ teapot: error.message });
  }
}

/** Maps what the source fails with to an HttpException of the app's. */
@Injectable()
class Forbid implements NestInterceptor {
  intercept(_context: ExecutionContext, next: CallHandler): Observable<unknown> {
    return next.handle().pipe(catchError(() => throwError(() => new ForbiddenException('not yours'))));
  }
}

/** A source whose subscribe function throws, as a synchronous lookup that fails. */
const throwsAtOnce = (error: Error) =>
  new Observable<MessageEvent>(() => {
    throw error;
  });

const chains = { subscribed: 0, finalized: 0 };

/** A route decorator of the app's own, composed with Nest's `applyDecorators` as its docs show. */
const LoudFeed = (path: string) => applyDecorators(RxSse(path), UseInterceptors(Shouts));

@Injectable()
class TrackChain implements NestInterceptor {
  intercept(_context: ExecutionContext, next: CallHandler): Observable<unknown> {
    return next.handle().pipe(
      tap({ subscribe: () => chains.subscribed++ }),
      finalize(() => chains.finalized++),
    );
  }
}

@Injectable()
class FeedService {
  readonly events = new Subject<MessageEvent>();
}

/** Emissions `@Sse()` streams on NestJS 11 and 12 alike: a bare value is the data of an event. */
const nestAccepts = ['hello', 'two\nlines', { data: { n: 1 } }];
/** More bare values, which `@Sse()` of NestJS 12 sends as JSON. */
const bareValues = [...nestAccepts, 42, true];

const setup = { release: () => {}, started: 0 };
/** A method that waits, then returns an iterator that listens to `ticks` from its creation on. */
const ticks = new EventEmitter();
const lateIterator = { release: () => {}, started: 0, returned: 0 };
/** What a method that answered through `@Res()` returns an iterator of, listening from its creation on. */
const answeredTicks = new EventEmitter();
const { options: lateRecorded, closes: lateCloses } = recording();
const subscriptions = counted(NEVER as Observable<MessageEvent>);
const chat = createChannel(memoryEngine(), 'chat');
const { options: recorded, closes } = recording();
const guardedSubscriptions = counted(NEVER as Observable<MessageEvent>);
const { options: guardedRecorded, closes: guardedCloses } = recording();
const { options: pipedRecorded, closes: pipedCloses } = recording();
const { options: openRecorded, closes: openCloses } = recording();

@Controller()
@UseFilters(TeapotFilter)
class EventsController {
  constructor(private readonly feed: FeedService) {}

  @RxSse('feed')
  fromService(): Observable<MessageEvent> {
    return this.feed.events;
  }

  // Options of its own: resolved once for the route, not per request.
  @RxSse('feed-own', { heartbeat: false })
  fromServiceWithOptions(): Observable<MessageEvent> {
    return this.feed.events;
  }

  // A method that takes Nest's response to pass through, as one setting a cookie may.
  @RxSse('feed-passthrough')
  fromServiceWithResponse(@Res({ passthrough: true }) _res: unknown): Observable<MessageEvent> {
    return this.feed.events;
  }

  @RxSse('guarded')
  @UseGuards(DeniedGuard)
  guarded(): Observable<MessageEvent> {
    return from([{ data: 'secret' }]);
  }

  @RxSse('slow-pipe', pipedRecorded)
  slowPiped(@Query('topic', SlowPipe) topic: string): Observable<MessageEvent> {
    slowPipe.method++;
    return from([{ data: topic }]);
  }

  @RxSse('slow-guard', guardedRecorded)
  @UseGuards(SlowGuard)
  @UseInterceptors(TrackChain)
  slowGuard(): Observable<MessageEvent> {
    return guardedSubscriptions.observable;
  }

  @RxSse('late-failure')
  async lateFailure(): Promise<Observable<MessageEvent>> {
    await new Promise((resolve) => setTimeout(resolve, 5));
    throw new NotFoundException('no such feed');
  }

  @RxSse('missing')
  missing(): Observable<MessageEvent> {
    return throwError(() => new NotFoundException('no such feed'));
  }

  @RxSse('missing-intercepted')
  @UseInterceptors(Shouts)
  missingIntercepted(): Observable<MessageEvent> {
    return throwError(() => new NotFoundException('no such feed'));
  }

  @RxSse('merged')
  @UseInterceptors(MergesFeed)
  merged(): Observable<MessageEvent> {
    return from([{ data: 'own' }]);
  }

  @RxSse('missing-fallback')
  @UseInterceptors(FallsBack)
  missingFallback(): Observable<MessageEvent> {
    return throwsAtOnce(new Error('lookup failed'));
  }

  @RxSse('missing-forbidden')
  @UseInterceptors(Forbid)
  missingForbidden(): Observable<MessageEvent> {
    return throwsAtOnce(new Error('lookup failed'));
  }

  @RxSse('missing-teapot')
  missingTeapot(): Observable<MessageEvent> {
    return throwError(() => new Teapot('brewing'));
  }

  @RxSse('missing-teapot-intercepted')
  @UseInterceptors(Shouts)
  missingTeapotIntercepted(): Observable<MessageEvent> {
    return throwsAtOnce(new Teapot('brewing'));
  }

  @RxSse('late-missing-forbidden')
  @UseInterceptors(Forbid)
  async lateMissingForbidden(): Promise<Observable<MessageEvent>> {
    await new Promise((resolve) => setTimeout(resolve, 5));
    return throwsAtOnce(new Error('lookup failed'));
  }

  @RxSse('late-missing-teapot')
  async lateMissingTeapot(): Promise<Observable<MessageEvent>> {
    await new Promise((resolve) => setTimeout(resolve, 5));
    return throwError(() => new Teapot('brewing'));
  }

  @RxSse('late-missing-teapot-intercepted')
  @UseInterceptors(Shouts)
  async lateMissingTeapotIntercepted(): Promise<Observable<MessageEvent>> {
    await new Promise((resolve) => setTimeout(resolve, 5));
    return throwError(() => new Teapot('brewing'));
  }

  @RxSse('late-crash')
  async lateCrash(): Promise<Observable<MessageEvent>> {
    await new Promise((resolve) => setTimeout(resolve, 5));
    throw new Error('database went away');
  }

  @RxSse('teapot')
  async teapot(): Promise<Observable<MessageEvent>> {
    await Promise.resolve();
    throw new Teapot('short and stout');
  }

  @RxSse('shout')
  @UseInterceptors(Shouts)
  shout(): Observable<MessageEvent> {
    return from([{ data: 'hello' }, { data: 'world' }]);
  }

  @RxSse('hello')
  hello(): Observable<MessageEvent> {
    return from([{ data: 'hello' }]);
  }

  @RxSse('count')
  count(@Query('n', ParseIntPipe) n: number): Observable<MessageEvent> {
    return from(Array.from({ length: n }, (_, i) => ({ data: String(i) })));
  }

  @RxSse('late-iterator', lateRecorded)
  async lateIterator(): Promise<AsyncIterable<MessageEvent>> {
    lateIterator.started++;
    await new Promise<void>((resolve) => {
      lateIterator.release = resolve;
    });
    const iterator = on(ticks, 'tick') as AsyncIterable<never>;
    lateIterator.returned++;
    return iterator;
  }

  @RxSse('slow-setup', recorded)
  @UseInterceptors(TrackChain)
  async slowSetup(@RxSseSignal() signal: AbortSignal): Promise<Observable<MessageEvent>> {
    setup.started++;
    await new Promise<void>((resolve) => {
      setup.release = resolve;
    });
    expect(signal.aborted).toBe(true);
    return subscriptions.observable;
  }

  @RxSse('chat')
  chat(@LastEventId() lastEventId: string | undefined, @RxSseSignal() signal: AbortSignal) {
    return chat.subscribe({ lastEventId, signal });
  }

  @RxSse('iterable')
  async *iterable(): AsyncIterable<MessageEvent> {
    yield { data: 'pulled' };
  }

  // Nest's own MessageEvent type fits as is: a migration from @Sse changes the decorator only.
  @RxSse('nest-typed')
  nestTyped(): Observable<NestMessageEvent> {
    return from([{ data: { hello: 'world' }, id: '7', type: 'greeting' }]);
  }

  @LoudFeed('composed')
  composed(): Observable<MessageEvent> {
    return from([{ data: 'composed' }]);
  }

  @RxSse('labelled')
  @Header('X-Feed', 'v1')
  labelled(): Observable<MessageEvent> {
    return from([{ data: 'labelled' }]);
  }

  @Get('set-by')
  setByPage(): string {
    return 'page';
  }

  @RxSse('set-by-feed')
  setByFeed(): Observable<MessageEvent> {
    return from([{ data: 'feed' }]);
  }

  @RxSse('uncached')
  @Header('Cache-Control', 'no-store')
  @Header('Content-Type', 'text/event-stream; charset=utf-8')
  uncached(): Observable<MessageEvent> {
    return from([{ data: 'fresh' }]);
  }

  // The way to tell one EventSource to stop reconnecting: a 204 through Nest's exception handler.
  @RxSse('gone')
  gone(): Observable<MessageEvent> {
    throw new HttpException('', 204);
  }

  @Sse('nest-bare')
  nestBare() {
    return from(nestAccepts);
  }

  @RxSse('bare')
  bare() {
    return from(bareValues);
  }

  @RxSse('bare-intercepted')
  @UseInterceptors(TrackChain)
  bareIntercepted() {
    return from(bareValues);
  }

  // Takes the response over with @Res() and answers it, so no stream can be sent on it.
  @RxSse('answered')
  answered(@Res() res: AnyReply) {
    (res.code ?? res.status)!.call(res, 409).send({ answered: 'by the method' });
    return from([{ data: 'never sent' }]);
  }

  // Returns what is no event source, and answers nothing itself.
  @RxSse('no-source')
  noSource(): Observable<MessageEvent> {
    return 42 as unknown as Observable<MessageEvent>;
  }

  // Answers through @Res() and returns nothing, as a method that takes the response over does.
  @RxSse('answered-void')
  answeredVoid(@Res() res: AnyReply): void {
    (res.code ?? res.status)!.call(res, 204).send(undefined);
  }

  // Answers through @Res(), then fails: its own error, which Nest logs on a response already sent.
  @RxSse('answered-then-failed')
  answeredThenFailed(@Res() res: AnyReply): Observable<MessageEvent> {
    (res.code ?? res.status)!.call(res, 409).send({ answered: 'by the method' });
    throw new Error('the audit log went away');
  }

  // Answers through @Res() and still returns an iterator, which holds a listener until it is ended.
  @RxSse('answered-iterator')
  answeredIterator(@Res() res: AnyReply): AsyncIterable<MessageEvent> {
    (res.code ?? res.status)!.call(res, 409).send({ answered: 'by the method' });
    return on(answeredTicks, 'tick') as AsyncIterable<never>;
  }

  // The same, behind an interceptor whose first event comes before the method's.
  @RxSse('answered-iterator-greeted')
  @UseInterceptors(Greets)
  answeredIteratorGreeted(@Res() res: AnyReply): AsyncIterable<MessageEvent> {
    (res.code ?? res.status)!.call(res, 409).send({ answered: 'by the method' });
    return on(answeredTicks, 'tick') as AsyncIterable<never>;
  }

  @RxSse('answered-by-guard')
  @UseGuards(AnsweringGuard)
  answeredByGuard(): Observable<MessageEvent> {
    answeringGuard.method++;
    return from([{ data: 'never sent' }]);
  }

  @RxSse('started-by-guard')
  @UseGuards(StartingGuard)
  startedByGuard(): Observable<MessageEvent> {
    startingGuard.method++;
    return from([{ data: 'never sent' }]);
  }

  @RxSse('answered-by-interceptor')
  @UseInterceptors(AnswersItself)
  answeredByInterceptor(): Observable<MessageEvent> {
    return from([{ data: 'never sent' }]);
  }

  @RxSse('open', openRecorded)
  open(): Observable<MessageEvent> {
    return concat(from([{ data: 'hi' }]), NEVER);
  }
}

@Controller('loud')
@UseInterceptors(Shouts)
class LoudController {
  @RxSse('hello')
  hello(): Observable<MessageEvent> {
    return from([{ data: 'hello' }]);
  }
}

@Module({ providers: [FeedService], controllers: [EventsController, LoudController] })
class EventsModule {}

@Module({ imports: [RxsseModule.forRoot({ shutdown: { deadline: 1000 } }), EventsModule] })
class AppModule {}

describe.each<Platform>(['express', 'fastify'])(
  `nestjs ${nestMajor} on %s: Nest's own machinery`,
  (platform) => {
    let server: (RunningServer & { app: { get<T>(token: unknown): T } }) | undefined;
    const start = async () => {
      server = await startNest(AppModule, platform, []);
      return server.url;
    };
    afterEach(async () => {
      const running = server;
      server = undefined;
      await running?.close();
      expect(running?.logged ?? []).toEqual([]);
    });

    it(`runs on @nestjs/core ${nestMajor}`, async () => {
      const { version } = (await import('@nestjs/core/package.json', { with: { type: 'json' } })).default;
      expect(version.split('.')[0]).toBe(nestMajor);
    });

    it('answers a guard that rejects with 403 and opens no stream', async () => {
      const url = await start();
      const { response, body } = await fetchBytes(`${url}/guarded`);
      expect(response.status).toBe(403);
      expect(response.headers.get('content-type')).not.toBe('text/event-stream');
      expect(body.toString()).not.toContain('secret');
    });

    it("answers a source that fails at once, before the first event, with Nest's response", async () => {
      const url = await start();
      for (const path of ['missing', 'missing-intercepted']) {
        const { response, body } = await fetchBytes(`${url}/${path}`);
        expect(response.status, path).toBe(404);
        expect(JSON.parse(body.toString()), path).toMatchObject({ statusCode: 404, message: 'no such feed' });
      }
    });

    it("streams what an interceptor's catchError makes of a source that fails at once", async () => {
      const url = await start();
      const { response, body } = await fetchBytes(`${url}/missing-fallback`);
      expect(response.status).toBe(200);
      expect(response.headers.get('content-type')).toBe('text/event-stream');
      expect(body.toString()).toMatch(/^(:\n)?data: fallback\n\n$/);
    });

    it('answers a source that fails at once with the status an interceptor or a filter gives it', async () => {
      const url = await start();
      const forbidden = await fetchBytes(`${url}/missing-forbidden`);
      expect(forbidden.response.status).toBe(403);
      expect(JSON.parse(forbidden.body.toString())).toMatchObject({ statusCode: 403, message: 'not yours' });
      const late = await fetchBytes(`${url}/late-missing-forbidden`);
      expect([late.response.status, late.body.toString()]).toEqual([403, forbidden.body.toString()]);
      for (const path of [
        'missing-teapot',
        'missing-teapot-intercepted',
        'late-missing-teapot',
        'late-missing-teapot-intercepted',
      ]) {
        const { response, body } = await fetchBytes(`${url}/${path}`);
        expect(response.status, path).toBe(418);
        expect(JSON.parse(body.toString()), path).toEqual({ teapot: 'brewing' });
      }
    });

    it("answers an exception thrown after an await, before the first event, with Nest's response", async () => {
      const url = await start();
      const notFound = await fetchBytes(`${url}/late-failure`);
      expect(notFound.response.status).toBe(404);
      expect(JSON.parse(notFound.body.toString())).toMatchObject({
        statusCode: 404,
        message: 'no such feed',
      });
      const crash = await fetchBytes(`${url}/late-crash`);
      expect(crash.response.status).toBe(500);
      expect(JSON.parse(crash.body.toString())).toEqual({
        statusCode: 500,
        message: 'Internal server error',
      });
      expect(server!.logged.splice(0)).toEqual([expect.stringContaining('database went away')]);
    });

    it("keeps the method's own answer through @Res(), and logs once that no stream was sent on it", async () => {
      const url = await start();
      const { response, body } = await fetchBytes(`${url}/answered`, { signal: AbortSignal.timeout(5000) });
      expect(response.status).toBe(409);
      expect(JSON.parse(body.toString())).toEqual({ answered: 'by the method' });
      await waitFor(() => server!.logged.length > 0, 5000, 'the report');
      expect(server!.logged.splice(0)).toEqual([
        expect.stringMatching(/^RxsseResponseSentError: @RxSse\(\) route GET \/answered .*@Res\(\)/),
      ]);
    });

    // What the method did, what the client gets, and the one line Nest's log gets (`METHOD` stands
    // for the request's): the HEAD runs the method as its GET does, and is answered alike.
    const outcomes: [string, number, string][] = [
      // Answered through @Res() and returned nothing: that answer stands, and no stream was sent on it.
      [
        'answered-void',
        204,
        String.raw`^RxsseResponseSentError: @RxSse\(\) route METHOD /answered-void .*@Res\(\)`,
      ],
      // Answered through @Res(), then threw: the answer stands, and its own error is logged.
      ['answered-then-failed', 409, String.raw`^Error: the audit log went away\n`],
      // Returned no event source: Nest's 500, and what it returned.
      [
        'no-source',
        500,
        "^TypeError: An event stream's handler returned number 42, not an Observable or an AsyncIterable",
      ],
    ];
    it.each(['GET', 'HEAD'].flatMap((method) => outcomes.map((outcome) => [method, ...outcome] as const)))(
      'answers a %s of /%s with %i and logs once what went wrong',
      async (method, path, status, logged) => {
        const url = await start();
        const { response } = await fetchBytes(`${url}/${path}`, {
          method,
          signal: AbortSignal.timeout(5000),
        });
        expect(response.status).toBe(status);
        await waitFor(() => server!.logged.length > 0, 5000, 'the report');
        expect(server!.logged.splice(0)).toEqual([
          expect.stringMatching(new RegExp(logged.replace('METHOD', method))),
        ]);
      },
    );

    it.each(['answered-iterator', 'answered-iterator-greeted'])(
      'ends the iterator a method returned after it answered through @Res(), so the listener it holds goes (%s)',
      async (path) => {
        const url = await start();
        const { response } = await fetchBytes(`${url}/${path}`, { signal: AbortSignal.timeout(5000) });
        expect(response.status).toBe(409);
        await waitFor(() => answeredTicks.listenerCount('tick') === 0, 5000, 'the listener to go');
        await waitFor(() => server!.logged.length > 0, 5000, 'the report');
        expect(server!.logged.splice(0)).toEqual([
          expect.stringMatching(
            new RegExp(`^RxsseResponseSentError: @RxSse\\(\\) route GET /${path} .*@Res\\(\\)`),
          ),
        ]);
      },
    );

    it.each(['GET', 'HEAD'])(
      "keeps a guard's own answer to a %s, and logs once that no stream was sent on it, without running the method",
      async (method) => {
        const url = await start();
        const before = answeringGuard.method;
        const { response, body } = await fetchBytes(`${url}/answered-by-guard`, {
          method,
          signal: AbortSignal.timeout(5000),
        });
        expect(response.status).toBe(401);
        if (method === 'GET') expect(JSON.parse(body.toString())).toEqual({ answered: 'by the guard' });
        await waitFor(() => server!.logged.length > 0, 5000, 'the report');
        expect(server!.logged.splice(0)).toEqual([
          expect.stringMatching(/^RxsseResponseSentError: @RxSse\(\) route (GET|HEAD) \/answered-by-guard /),
        ]);
        expect(answeringGuard.method).toBe(before);
      },
    );

    it('lets an exception filter shape the answer', async () => {
      const url = await start();
      const { response, body } = await fetchBytes(`${url}/teapot`);
      expect(response.status).toBe(418);
      expect(JSON.parse(body.toString())).toEqual({ teapot: 'short and stout' });
    });

    it('answers a pipe that rejects a parameter with 400, a HEAD too, and streams what it parsed', async () => {
      const url = await start();
      expect((await fetchBytes(`${url}/count?n=many`)).response.status).toBe(400);
      expect((await fetchBytes(`${url}/count?n=many`, { method: 'HEAD' })).response.status).toBe(400);
      expect((await fetchAndParse(`${url}/count?n=2`)).map((e) => e.data)).toEqual(['0', '1']);
    });

    it('streams what an interceptor makes of the events', async () => {
      const url = await start();
      const { body } = await fetchBytes(`${url}/shout`);
      expect(body.toString()).toBe('data: HELLO\n\ndata: WORLD\n\n');
    });

    it("answers a HEAD once the method is reached, as its GET opens, though an interceptor's own feed never emits", async () => {
      const url = await start();
      const { response } = await fetchBytes(`${url}/merged`, { method: 'HEAD' });
      expect(response.status).toBe(200);
      expect(response.headers.get('content-type')).toBe('text/event-stream');
    });

    it('streams the events of a route that no other interceptor is bound to as they come', async () => {
      const url = await start();
      const { body } = await fetchBytes(`${url}/hello`);
      expect(body.toString()).toBe('data: hello\n\n');
    });

    it('streams a route whose @RxSse() is composed with applyDecorators', async () => {
      const url = await start();
      const { response, body } = await fetchBytes(`${url}/composed`);
      expect(response.status).toBe(200);
      expect(body.toString()).toBe('data: COMPOSED\n\n');
    });

    it("streams what a controller's interceptor makes of the events", async () => {
      const url = await start();
      const { body } = await fetchBytes(`${url}/loud/hello`);
      expect(body.toString()).toBe('data: HELLO\n\n');
    });

    it('streams what a global interceptor makes of the events, one added after the module too', async () => {
      server = await startNest(AppModule, platform, [], (app) => app.useGlobalInterceptors(new Shouts()));
      const { body } = await fetchBytes(`${server.url}/hello`);
      expect(body.toString()).toBe('data: HELLO\n\n');
    });

    it('streams the events of a service the controller was given', async () => {
      const url = await start();
      const client = await rawClient(`${url}/feed`, { read: true });
      const feed = server!.app.get<FeedService>(FeedService);
      await waitFor(() => feed.events.observed, 5000, 'the subscription');
      feed.events.next({ data: 'from the service', id: '1' });
      await waitFor(() => client.text.includes('data: from the service'), 5000, 'the event');
      client.destroy();
      await waitFor(() => !feed.events.observed, 5000, 'the unsubscription');
    });

    it('formats an event once for every client of a route with options of its own, as for the defaults', async () => {
      const url = await start();
      const clients = [await rawClient(`${url}/feed-own`, { read: true })];
      clients.push(await rawClient(`${url}/feed-own`, { read: true }));
      const feed = server!.app.get<FeedService>(FeedService);
      await waitFor(() => feed.events.observers.length === 2, 5000, 'both subscriptions');
      let formatted = 0;
      feed.events.next({ data: { toJSON: () => `formatted ${++formatted}` } });
      for (const client of clients) {
        await waitFor(() => client.text.includes('data: "formatted 1"\n\n'), 5000, 'the event');
        client.destroy();
      }
      expect(formatted).toBe(1);
      await waitFor(() => !feed.events.observed, 5000, 'the unsubscriptions');
    });

    it("streams every event to a method that takes Nest's response to pass through, which Nest then leaves to the stream", async () => {
      const url = await start();
      const client = await rawClient(`${url}/feed-passthrough`, { read: true });
      const feed = server!.app.get<FeedService>(FeedService);
      await waitFor(() => feed.events.observed, 5000, 'the subscription');
      // Nest would answer a passthrough route with what it resolves to once the stream took over,
      // and end the response the stream writes.
      for (const data of ['one', 'two']) {
        feed.events.next({ data });
        await waitFor(() => client.text.includes(`data: ${data}\n\n`), 5000, `event ${data}`);
      }
      expect(client.text).not.toMatch(/\r\n0\r\n\r\n/);
      client.destroy();
      await waitFor(() => !feed.events.observed, 5000, 'the unsubscription');
    });

    it('leaves no subscription when the client leaves during an async setup', async () => {
      const url = await start();
      const before = { closes: closes.length, started: setup.started, finalized: chains.finalized };
      const abort = new AbortController();
      const response = fetch(`${url}/slow-setup`, { signal: abort.signal }).catch(() => undefined);
      await waitFor(() => setup.started === before.started + 1, 5000, 'the setup');
      abort.abort();
      await response;
      // The signal aborts once the server sees the client go; then the setup finishes.
      await new Promise((resolve) => setTimeout(resolve, 100));
      setup.release();
      await waitFor(() => closes.length === before.closes + 1, 5000, 'the close');
      expect(closes.at(-1)!.reason).toBe('client');
      expect(subscriptions.counts.subscribed).toBe(0);
      // Nest's chain (its interceptors) is released too.
      await waitFor(() => chains.finalized === before.finalized + 1, 5000, 'the chain to end');
    });

    it('ends the iterator a method returns once its client left, so the listener it holds goes', async () => {
      const url = await start();
      const before = {
        closes: lateCloses.length,
        started: lateIterator.started,
        returned: lateIterator.returned,
      };
      const client = await rawClient(`${url}/late-iterator`, { read: true });
      await waitFor(() => lateIterator.started === before.started + 1, 5000, 'the setup');
      client.destroy();
      await waitFor(() => lateCloses.length === before.closes + 1, 5000, 'the close');
      expect(lateCloses.at(-1)!.reason).toBe('client');
      lateIterator.release();
      await waitFor(() => lateIterator.returned === before.returned + 1, 5000, 'the iterator');
      await waitFor(() => ticks.listenerCount('tick') === 0, 5000, 'the listener to go');
    });

    it.each(['GET', 'HEAD'])(
      'never runs the method when the client left while a pipe of its parameters ran (%s)',
      async (method) => {
        const url = await start();
        const before = { closes: pipedCloses.length, entered: slowPipe.entered, method: slowPipe.method };
        const abort = new AbortController();
        const response = fetch(`${url}/slow-pipe?topic=news`, { method, signal: abort.signal }).catch(
          () => undefined,
        );
        await waitFor(() => slowPipe.entered === before.entered + 1, 5000, 'the pipe');
        abort.abort();
        await response;
        await waitFor(() => pipedCloses.length === before.closes + 1, 5000, 'the close');
        expect(pipedCloses.at(-1)!.reason).toBe('client');
        slowPipe.release();
        // The method would run in the microtasks that follow the pipe's.
        await new Promise((resolve) => setImmediate(resolve));
        expect(slowPipe.method).toBe(before.method);
      },
    );

    it.each(['GET', 'HEAD'])(
      'opens no stream when the client left while a guard ran (%s)',
      async (method) => {
        const url = await start();
        const before = {
          closes: guardedCloses.length,
          entered: slowGuard.entered,
          chains: chains.subscribed,
          finalized: chains.finalized,
        };
        const abort = new AbortController();
        const response = fetch(`${url}/slow-guard`, { method, signal: abort.signal }).catch(() => undefined);
        await waitFor(() => slowGuard.entered === before.entered + 1, 5000, 'the guard');
        abort.abort();
        await response;
        // The response closes once the server sees the client go; then the guard lets the request on.
        await waitFor(() => slowGuard.gone(), 5000, 'the server to see the client go');
        slowGuard.release();
        await waitFor(() => guardedCloses.length === before.closes + 1, 5000, 'the close');
        expect(guardedCloses.at(-1)!.reason).toBe('client');
        expect(guardedSubscriptions.counts.subscribed).toBe(0);
        // Nest's chain never runs for a client already gone, or ends if it ran.
        await waitFor(
          () => chains.finalized - before.finalized === chains.subscribed - before.chains,
          5000,
          'the chain to end',
        );
      },
    );

    it('replays a channel through @RxSse with its own ids', async () => {
      const url = await start();
      const ids = [];
      for (const data of ['one', 'two', 'three']) ids.push(await chat.publish({ data }));
      const replayed = await collectEvents(
        eventSourceClients[0]![1],
        `${url}/chat?lastEventId=${encodeURIComponent(ids[0]!)}`,
        ['message'],
        2,
      );
      expect(replayed.map((e) => [e.data, e.lastEventId])).toEqual([
        ['two', ids[1]],
        ['three', ids[2]],
      ]);
    });

    it("streams an AsyncIterable, and Nest's own MessageEvent type", async () => {
      const url = await start();
      expect((await fetchBytes(`${url}/iterable`)).body.toString()).toBe('data: pulled\n\n');
      expect((await fetchBytes(`${url}/nest-typed`)).body.toString()).toBe(
        'event: greeting\nid: 7\ndata: {"hello":"world"}\n\n',
      );
    });

    it('streams a bare value as the data of an event, as @Sse() does, with or without interceptors', async () => {
      const url = await start();
      const nest = (await fetchAndParse(`${url}/nest-bare`)).map((e) => e.data);
      expect(nest).toEqual(['hello', 'two\nlines', '{"n":1}']);
      for (const path of ['bare', 'bare-intercepted']) {
        const events = await fetchAndParse(`${url}/${path}`);
        expect(events.map((e) => [e.type, e.data])).toEqual(
          [...nest, '42', 'true'].map((data) => ['message', data]),
        );
      }
    });

    it('ends open streams as a shutdown on app.close(), which then resolves', async () => {
      const url = await start();
      const before = openCloses.length;
      const clients = await Promise.all([1, 2, 3].map(() => rawClient(`${url}/open`, { read: true })));
      await waitFor(() => clients.every((c) => c.text.includes('data: hi')), 5000, 'first events');
      const running = server!;
      server = undefined;
      // Nest's close waits on the server, which waits on every open connection: streams that the
      // close did not end would hold it for good.
      let closed = false;
      void running.close().then(() => {
        closed = true;
      });
      await waitFor(() => closed, 5000, 'app.close() to resolve');
      expect(openCloses.slice(before).map((each) => each.reason)).toEqual([
        'shutdown',
        'shutdown',
        'shutdown',
      ]);
      for (const client of clients) await client.done;
    });

    it('ends open streams on SIGTERM with enableShutdownHooks(), and the app closes', async () => {
      // Nest raises the signal again once the app closed; this listener keeps the test process alive.
      let raisedAgain!: () => void;
      const reraised = new Promise<void>((resolve) => {
        raisedAgain = resolve;
      });
      const keepAlive = () => raisedAgain();
      process.on('SIGTERM', keepAlive);
      try {
        const running = await startNest(AppModule, platform, [], (app) =>
          app.enableShutdownHooks(['SIGTERM']),
        );
        const clients = await Promise.all([1, 2].map(() => rawClient(`${running.url}/open`, { read: true })));
        await waitFor(() => clients.every((c) => c.text.includes('data: hi')), 5000, 'first events');
        process.emit('SIGTERM', 'SIGTERM');
        for (const client of clients) await client.done;
        await reraised;
        expect(running.app.getHttpServer().listening).toBe(false);
        expect(running.logged).toEqual([]);
      } finally {
        process.off('SIGTERM', keepAlive);
      }
    });

    it("sends the route's @Header() headers with the stream's", async () => {
      const url = await start();
      const { response, body } = await fetchBytes(`${url}/labelled`);
      expect(response.headers.get('x-feed')).toBe('v1');
      expect(response.headers.get('content-type')).toBe('text/event-stream');
      expect(body.toString()).toBe('data: labelled\n\n');
    });

    it("sends a route's @Header() for a header the stream sets too, as its headers option would", async () => {
      const url = await start();
      const { response, body } = await fetchBytes(`${url}/uncached`);
      expect(response.headers.get('cache-control')).toBe('no-store');
      expect(response.headers.get('content-type')).toBe('text/event-stream; charset=utf-8');
      expect(body.toString()).toBe('data: fresh\n\n');
      const head = await fetchBytes(`${url}/uncached`, { method: 'HEAD' });
      expect(head.response.headers.get('cache-control')).toBe('no-store');
    });

    it('refuses to start an app with a route whose @HttpCode(), @Header(), @Redirect(), @Render() or @Sse() its stream cannot honour, naming both', async () => {
      const refused: [string, MethodDecorator[], RegExp][] = [
        [
          'above',
          [HttpCode(204), RxSse('a')],
          /^@RxSse\(\) route Refused\.above: @HttpCode\(204\) cannot go with an event stream, which answers 200: .*throw new HttpException\('', 204\)/,
        ],
        [
          'below',
          [RxSse('b', { method: 'POST' }), HttpCode(201)],
          /^@RxSse\(\) route Refused\.below: @HttpCode\(201\) cannot/,
        ],
        [
          'typed',
          [RxSse('c'), Header('Content-Type', 'text/plain')],
          /^@RxSse\(\) route Refused\.typed: @Header\('Content-Type', "text\/plain"\): must be text\/event-stream/,
        ],
        [
          'sized',
          [Header('Content-Length', '0'), RxSse('d')],
          /^@RxSse\(\) route Refused\.sized: @Header\('Content-Length', "0"\): the transport frames/,
        ],
        [
          'lazy',
          [RxSse('e'), Header('Cache-Control', () => 'no-store')],
          /^@RxSse\(\) route Refused\.lazy: @Header\('Cache-Control', a function\): the stream sets Cache-Control itself/,
        ],
        [
          'framed',
          [RxSse('j'), Header('Content-Length', () => '0')],
          /^@RxSse\(\) route Refused\.framed: @Header\('Content-Length', a function\): the stream sets Content-Length itself/,
        ],
        [
          'moved',
          [Redirect('/elsewhere'), RxSse('f')],
          /^@RxSse\(\) route Refused\.moved: @Redirect\(\) cannot go with an event stream, which answers 200/,
        ],
        [
          'rendered',
          [RxSse('g'), Render('page')],
          /^@RxSse\(\) route Refused\.rendered: @Render\(\) cannot go with an event stream, which answers 200/,
        ],
        [
          'migrated',
          [Sse('h'), RxSse('h')],
          /^@RxSse\(\) route Refused\.migrated: @Sse\(\) is Nest's own event stream/,
        ],
        ['halfway', [RxSse('i'), Sse('i')], /^@RxSse\(\) route Refused\.halfway: @Sse\(\) is Nest's own/],
      ];
      for (const [key, decorators, message] of refused) {
        class Refused {}
        const proto = Refused.prototype as unknown as Record<string, unknown>;
        proto[key] = () => from([{ data: 'x' }]);
        const descriptor = Object.getOwnPropertyDescriptor(proto, key) as PropertyDescriptor;
        for (const decorator of [...decorators].reverse()) decorator(proto, key, descriptor);
        Object.defineProperty(proto, key, descriptor);
        Controller()(Refused);
        class RefusedModule {}
        Module({ imports: [RxsseModule.forRoot()], controllers: [Refused] })(RefusedModule);
        await expect(startNest(RefusedModule, platform, []), key).rejects.toThrow(message);
      }
      // What the refusal points to: a 204, which tells EventSource to stop, through Nest's chain.
      const url = await start();
      const { response, body } = await fetchBytes(`${url}/gone`);
      expect(response.status).toBe(204);
      expect(body.length).toBe(0);
    });

    it.each([
      ['options of its own', { heartbeat: 5_000 }],
      ['the same options', undefined],
    ])(
      'refuses to start an app that imports RxsseModule a second time, with %s, naming the fix',
      async (_, options) => {
        class FeatureModule {}
        Module({ imports: [RxsseModule.forRoot(options)] })(FeatureModule);
        class TwiceModule {}
        Module({ imports: [RxsseModule.forRoot(), FeatureModule] })(TwiceModule);
        await expect(startNest(TwiceModule, platform, [])).rejects.toThrow(
          /^RxsseModule is imported more than once in this app \(each forRoot\(\) is a module of its own, whatever its options\): import RxsseModule\.forRoot\(\) once, in the root module/,
        );
      },
    );

    it("sends an interceptor's header over a middleware's of that name, as Nest sends its own routes", async () => {
      class SetByModule {}
      Module({ imports: [AppModule] })(SetByModule);
      // The middleware writes the Node response; the interceptor, the platform's (a Fastify reply).
      const label: NestInterceptor = {
        intercept(context, next) {
          context
            .switchToHttp()
            .getResponse<{ header(name: string, value: string): void }>()
            .header('X-Set-By', 'route');
          return next.handle();
        },
      };
      server = await startNest(SetByModule, platform, [], (app) => {
        app.use((_req: unknown, res: { setHeader(name: string, value: string): void }, next: () => void) => {
          res.setHeader('X-Set-By', 'middleware');
          next();
        });
        app.useGlobalInterceptors(label);
      });
      const url = server.url;
      const [page, feed] = await Promise.all(
        ['set-by', 'set-by-feed'].map((path) => fetchBytes(`${url}/${path}`)),
      );
      expect(page!.response.headers.get('x-set-by')).toBe('route');
      expect([feed!.response.headers.get('x-set-by'), feed!.body.toString()]).toEqual([
        'route',
        'data: feed\n\n',
      ]);
    });

    it('sends CORS headers of app.enableCors()', async () => {
      class CorsModule {}
      Module({ imports: [AppModule] })(CorsModule);
      server = await startNest(CorsModule, platform, [], (app) =>
        app.enableCors({ origin: 'https://example.test' }),
      );
      const { response, body } = await fetchBytes(`${server.url}/shout`, {
        headers: { Origin: 'https://example.test' },
      });
      expect(response.headers.get('access-control-allow-origin')).toBe('https://example.test');
      expect(response.headers.get('content-type')).toBe('text/event-stream');
      expect(body.toString()).toBe('data: HELLO\n\ndata: WORLD\n\n');
    });
  },
);

// On Fastify a guard that writes the Node response itself must hijack the reply first, or Fastify
// answers too; Express leaves such an answer to its writer.
describe(`nestjs ${nestMajor} on express: a guard that began an answer of its own`, () => {
  it('keeps that answer, and logs once that no stream was sent on it, without running the method', async () => {
    const running = await startNest(AppModule, 'express', []);
    try {
      const before = startingGuard.method;
      const { response, body } = await fetchBytes(`${running.url}/started-by-guard`, {
        signal: AbortSignal.timeout(5000),
      });
      expect(response.status).toBe(401);
      // Nest's exception handler ends a response another began without writing to it.
      expect(body.toString()).toBe('answered by the guard');
      await waitFor(() => running.logged.length > 0, 5000, 'the report');
      expect(running.logged.splice(0)).toEqual([
        expect.stringMatching(/^RxsseResponseSentError: @RxSse\(\) route GET \/started-by-guard /),
      ]);
      expect(startingGuard.method).toBe(before);
    } finally {
      await running.close();
    }
  });
});

describe(`nestjs ${nestMajor} on fastify with an onSend hook that awaits, as @fastify/compress's`, () => {
  it('keeps the answer of the method through @Res(), of an interceptor, or of a guard that lets the request on, sent once the hook ran, and logs once that no stream was sent on it', async () => {
    const adapter = new FastifyAdapter();
    adapter.getInstance().addHook('onSend', async (_request, _reply, payload) => {
      await new Promise((resolve) => setImmediate(resolve));
      return payload;
    });
    const server = await startNest(AppModule, adapter, []);
    try {
      const answers: [string, string, number, string][] = [
        ['GET', 'answered', 409, '{"answered":"by the method"}'],
        ['GET', 'answered-void', 204, ''],
        ['HEAD', 'answered-void', 204, ''],
        ['GET', 'answered-iterator', 409, '{"answered":"by the method"}'],
        ['GET', 'answered-by-interceptor', 402, '{"answered":"by the interceptor"}'],
        ['HEAD', 'answered-by-interceptor', 402, ''],
        // A guard that answers and lets the request on: its answer waits on the hook when the route's
        // turn comes. Its status is Nest's then, which sets the route's own after the guards ran.
        ['GET', 'answered-by-guard', 200, '{"answered":"by the guard"}'],
        ['HEAD', 'answered-by-guard', 200, ''],
      ];
      const guarded = answeringGuard.method;
      for (const [method, path, status, body] of answers) {
        const got = await fetchBytes(`${server.url}/${path}`, { method, signal: AbortSignal.timeout(5000) });
        expect([got.response.status, got.body.toString()], `${method} ${path}`).toEqual([status, body]);
        expect(got.response.headers.get('content-type'), `${method} ${path}`).not.toBe('text/event-stream');
        await waitFor(() => server.logged.length > 0, 5000, 'the report');
        expect(server.logged.splice(0), `${method} ${path}`).toEqual([
          expect.stringMatching(
            new RegExp(`^RxsseResponseSentError: @RxSse\\(\\) route ${method} /${path} `),
          ),
        ]);
      }
      await waitFor(() => answeredTicks.listenerCount('tick') === 0, 5000, 'the listener to go');
      expect(answeringGuard.method).toBe(guarded);
    } finally {
      await server.close();
    }
    expect(server.logged).toEqual([]);
  });
});

describe(`nestjs ${nestMajor}: the sends of a Fastify reply`, () => {
  it("hooks only a Fastify app, and watches no send of another platform's response", () => {
    const hooked: string[] = [];
    const instance = { addHook: (name: string) => hooked.push(name) };
    markReplySends({ getType: () => 'express', getInstance: () => instance });
    expect(hooked).toEqual([]);
    markReplySends({ getType: () => 'fastify', getInstance: () => instance });
    expect(hooked).toEqual(['onRequest']);
    // Express's response has a send() too, which writes the Node response itself.
    const express = { send: () => undefined };
    const sent = watchReplySend(express);
    express.send();
    expect(sent()).toBe(false);
  });

  it('sees the sends of a reply no hook marked from the watch on', () => {
    const calls: unknown[][] = [];
    const reply = {
      raw: {},
      send(...args: unknown[]) {
        calls.push(args);
        return this;
      },
    };
    const sent = watchReplySend(reply);
    expect(sent()).toBe(false);
    expect(reply.send({ answered: true })).toBe(reply);
    expect(sent()).toBe(true);
    expect(calls).toEqual([[{ answered: true }]]);
  });
});

describe.each<Platform>(['express', 'fastify'])(
  `nestjs ${nestMajor} on %s: an interceptor that starts the response itself and holds the request`,
  (platform) => {
    it('logs once that no stream was sent on it, when the client leaves', async () => {
      @Injectable()
      class StartsTheResponse implements NestInterceptor {
        intercept(context: ExecutionContext): Observable<unknown> {
          const res = context.switchToHttp().getResponse();
          const raw = res.raw ?? res;
          raw.writeHead(200, { 'content-type': 'text/plain' });
          raw.write('started by the interceptor\n');
          return NEVER;
        }
      }
      @Controller()
      class Started {
        @RxSse('started')
        @UseInterceptors(StartsTheResponse)
        started(): Observable<MessageEvent> {
          return from([{ data: 'never sent' }]);
        }
      }
      @Module({ imports: [RxsseModule.forRoot()], controllers: [Started] })
      class StartedModule {}
      const server = await startNest(StartedModule, platform, []);
      try {
        const client = await rawClient(`${server.url}/started`, { read: true });
        await waitFor(() => client.text.includes('started by the interceptor'), 5000, 'the answer');
        // The chain, still held, ends with the response's close: with the abort of the stream's signal.
        client.destroy();
        await waitFor(() => server.logged.length > 0, 5000, 'the report');
      } finally {
        await server.close();
      }
      expect(server.logged).toEqual([
        expect.stringMatching(
          /^event stream GET \/started failed: RxsseResponseSentError: @RxSse\(\) route GET \/started /,
        ),
      ]);
    });
  },
);

describe(`nestjs ${nestMajor}: RxsseModule`, () => {
  it('checks forRoot options and route options when they are given', () => {
    expect(() => RxsseModule.forRoot({ heartbeat: 2 ** 31 })).toThrow(/heartbeat/);
    expect(() => RxsseModule.forRoot({ shutdown: { spread: -1 } })).toThrow(/spread/);
    expect(() => RxSse('x', { stallTimeout: 0 })).toThrow(/stallTimeout/);
    // What is no object is refused by name, as the stream's own options are.
    expect(() => RxSse('x', 5 as never)).toThrow(TypeError);
  });

  it('refuses module options that are no object, naming what it got', () => {
    for (const [options, got] of [
      [5, 'number 5'],
      [true, 'boolean true'],
      [[], 'an array of 0'],
      [() => ({}), 'a function'],
    ] as const) {
      expect(() => RxsseModule.forRoot(options as never)).toThrow(
        new TypeError(`RxsseModule options must be an object, got ${got}`),
      );
    }
  });

  it.each([
    [null, 'null'],
    [0, 'number 0'],
    [false, 'boolean false'],
    [[], 'an array of 0'],
    [new Map([['heartbeat', 1000]]), 'an object (Map)'],
  ])(
    'refuses route options that are no object (%o) where the controller is defined, naming what it got',
    (options, got) => {
      expect(() => RxSse('x', options as never)).toThrow(
        new TypeError(`@RxSse options must be an object, got ${got}`),
      );
    },
  );

  it('refuses an option name it does not know where it is given, naming the one meant', () => {
    expect(() => RxsseModule.forRoot({ hartbeat: 1000 } as never)).toThrow(TypeError);
    expect(() => RxsseModule.forRoot({ hartbeat: 1000 } as never)).toThrow(
      /^Unknown RxsseModule option "hartbeat" \(did you mean "heartbeat"\?\)$/,
    );
    // The module's own two beside the stream's.
    expect(() => RxsseModule.forRoot({ shutdwon: {} } as never)).toThrow(/\(did you mean "shutdown"\?\)$/);
    expect(() => RxsseModule.forRoot({ shutdown: { deadLine: 1 } } as never)).toThrow(
      /^Unknown shutdown option "deadLine" \(did you mean "deadline"\?\)$/,
    );
    expect(() =>
      RxsseModule.forRoot({ shutdown: { deadline: 1 }, logger: console, heartbeat: 1 }),
    ).not.toThrow();
    expect(() => RxSse('x', { metod: 'POST' } as never)).toThrow(
      /^Unknown @RxSse option "metod" \(did you mean "method"\?\)$/,
    );
    expect(() => RxSse('x', { method: 'POST', heartbeat: 1 })).not.toThrow();
  });

  it('refuses a path, method or member it cannot route where the controller is defined, naming it', () => {
    expect(() => RxSse({ heartbeat: 1000 } as never)).toThrow(
      /^@RxSse\(\) takes a path \(a string or an array of strings\) first, got an object \(Object\); options go second: @RxSse\('path', options\)$/,
    );
    expect(() => RxSse(['a', 1] as never)).toThrow(TypeError);
    expect(() => RxSse('x', { method: 'post' as never })).toThrow(
      /^method must be 'GET' or 'POST', got "post"$/,
    );
    class Feeds {
      get feed() {
        return from([{ data: 'x' }]);
      }
    }
    const accessor = Object.getOwnPropertyDescriptor(Feeds.prototype, 'feed') as PropertyDescriptor;
    expect(() => RxSse('feed')(Feeds.prototype, 'feed', accessor)).toThrow(
      /^@RxSse\(\) decorates a method, and Feeds\.feed is not one$/,
    );
    expect(() => RxSse()(Feeds.prototype, 'feed', undefined as never)).toThrow(TypeError);
    expect(() => RxSse(['a', 'b'], { method: 'POST' })).not.toThrow();
  });

  it('takes its options from forRootAsync, with metrics from DI', async () => {
    const opened: string[] = [];
    const METRICS = Symbol('metrics');
    const metrics: StreamMetrics = {
      opened: () => opened.push('opened'),
      wrote: () => {},
      heartbeat: () => {},
      dropped: () => {},
      closed: () => {},
    };
    @Module({ providers: [{ provide: METRICS, useValue: metrics }], exports: [METRICS] })
    class MetricsModule {}
    @Controller()
    class Ticks {
      @RxSse('ticks', { retry: 1234 })
      ticks() {
        return from([{ data: 'x' }]);
      }
    }
    @Module({
      imports: [
        RxsseModule.forRootAsync({
          imports: [MetricsModule],
          inject: [METRICS],
          useFactory: async (m: StreamMetrics): Promise<StreamOptions> => ({ metrics: m }),
        }),
      ],
      controllers: [Ticks],
    })
    class AsyncModule {}
    const server = await startNest(AsyncModule, 'express', []);
    try {
      expect((await fetchBytes(`${server.url}/ticks`)).body.toString()).toBe('retry: 1234\n\ndata: x\n\n');
      expect(opened).toEqual(['opened']);
    } finally {
      await server.close();
    }
  });

  it("sends a route's @Header() over the module's and the route's headers options of that name", async () => {
    @Controller()
    class Versioned {
      @RxSse('versioned')
      @Header('X-Feed', 'v2')
      versioned() {
        return from([{ data: 'x' }]);
      }

      @RxSse('versioned-own', { headers: { 'X-Feed': 'v1' } })
      @Header('X-Feed', 'v2')
      versionedOwn() {
        return from([{ data: 'x' }]);
      }
    }
    @Module({
      imports: [RxsseModule.forRoot({ headers: { 'X-Feed': 'v0' } })],
      controllers: [Versioned],
    })
    class VersionedModule {}
    const server = await startNest(VersionedModule, 'express', []);
    try {
      for (const path of ['versioned', 'versioned-own']) {
        const { response, body } = await fetchBytes(`${server.url}/${path}`);
        expect(response.headers.get('x-feed'), path).toBe('v2');
        expect(body.toString()).toBe('data: x\n\n');
      }
    } finally {
      await server.close();
    }
  });

  it("returns the method's own source when a unit test calls it directly, as @Sse does", async () => {
    @Controller()
    class Feed {
      @RxSse('feed')
      feed(@Query('n') n: string): Observable<MessageEvent> {
        return from([{ data: `feed ${n}` }]);
      }
    }
    const moduleRef = await Test.createTestingModule({ controllers: [Feed] }).compile();
    try {
      expect(await firstValueFrom(moduleRef.get(Feed).feed('7'))).toEqual({ data: 'feed 7' });
    } finally {
      await moduleRef.close();
    }
  });

  it("returns the method's own source when a unit test gives it a parameter Nest never fills: a value, an object or null", async () => {
    @Controller()
    class Feed {
      @RxSse('feed')
      feed(@Query('n') n: string, page: unknown = 10): Observable<MessageEvent> {
        return from([{ data: `feed ${n} ${JSON.stringify(page)}` }]);
      }
      @RxSse('tagged')
      tagged(...tags: unknown[]): Observable<MessageEvent> {
        return from([{ data: `tagged ${JSON.stringify(tags)}` }]);
      }
    }
    const moduleRef = await Test.createTestingModule({ controllers: [Feed] }).compile();
    try {
      const feed = moduleRef.get(Feed);
      expect(await firstValueFrom(feed.feed('7', 3))).toEqual({ data: 'feed 7 3' });
      expect(await firstValueFrom(feed.feed('7', { limit: 3 }))).toEqual({ data: 'feed 7 {"limit":3}' });
      expect(await firstValueFrom(feed.tagged('a', 'b'))).toEqual({ data: 'tagged ["a","b"]' });
      expect(await firstValueFrom(feed.tagged(null, 'b'))).toEqual({ data: 'tagged [null,"b"]' });
    } finally {
      await moduleRef.close();
    }
  });

  it('answers a route of an app without RxsseModule with a 500 that names the fix', async () => {
    @Controller()
    class Lonely {
      @RxSse('lonely')
      lonely() {
        return from([{ data: 'x' }]);
      }
    }
    @Module({ controllers: [Lonely] })
    class LonelyModule {}
    const logged: string[] = [];
    const server = await startNest(LonelyModule, 'express', logged);
    try {
      expect((await fetchBytes(`${server.url}/lonely`)).response.status).toBe(500);
      expect(logged).toEqual([
        expect.stringMatching(/^RxsseModuleMissingError: @RxSse\(\) route .*RxsseModule\.forRoot\(\)/s),
      ]);
    } finally {
      await server.close();
    }
  });

  it('names its errors by class, for a filter or a log that tells them apart', () => {
    expect(String(new RxsseModuleMissingError('Lonely.lonely'))).toMatch(/^RxsseModuleMissingError: /);
    expect(String(new RxsseResponseSentError('GET /lonely'))).toMatch(/^RxsseResponseSentError: /);
  });
});
