import 'reflect-metadata';
import { EventEmitter, on } from 'node:events';
import {
  BadGatewayException,
  type CallHandler,
  type CanActivate,
  Controller,
  type ExecutionContext,
  ForbiddenException,
  Injectable,
  Module,
  type NestInterceptor,
  NotFoundException,
  Query,
  RequestTimeoutException,
  Res,
  Scope,
  UnauthorizedException,
  UseGuards,
  UseInterceptors,
} from '@nestjs/common';
import { APP_INTERCEPTOR } from '@nestjs/core';
import { type CloseReason, type MessageEvent, StreamGroup } from '@rxsse/core';
import { createChannel, memoryEngine } from '@rxsse/core/channel';
import {
  catchError,
  concat,
  EMPTY,
  finalize,
  from,
  map,
  mergeMap,
  NEVER,
  type Observable,
  of,
  range,
  retry,
  Subject,
  take,
  tap,
  throwError,
  timeout,
} from 'rxjs';
import { afterEach, describe, expect, it } from 'vitest';
import {
  fetchBytes,
  httpRequest,
  type RawClient,
  rawClient,
  rawRequests,
  sleep,
  waitFor,
} from '../../../test/support/clients.js';
import type { RunningServer } from '../../../test/support/harness.js';
import { counted, countingListeners, recording } from '../../../test/support/recording.js';
import { recordWarnings } from '../../../test/support/warnings.js';
import { RxSse, RxSseSignal, RxsseModule } from '../src/index.js';
import { nestMajor, type Platform, startNest } from './harness.js';
import { FallsBack, Greets, Shouts } from './interceptors.js';

/** Serves a stream of its own and never calls the method, as a cache in front of a route would. */
@Injectable()
class ServesItself implements NestInterceptor {
  intercept(): Observable<unknown> {
    return concat(of({ data: 'from the interceptor' }), NEVER);
  }
}

@Injectable()
class Refuses implements NestInterceptor {
  intercept(): Observable<unknown> {
    return throwError(() => new ForbiddenException('not today'));
  }
}

/** Lets a request on only with a token, as an auth interceptor does where the app has no guard. */
@Injectable()
class RequiresToken implements NestInterceptor {
  intercept(context: ExecutionContext, next: CallHandler): Observable<unknown> {
    const { query } = context.switchToHttp().getRequest<{ query: { token?: string } }>();
    if (query.token !== 'letmein') throw new UnauthorizedException('no token');
    return next.handle();
  }
}

@Injectable()
class AnswersNothing implements NestInterceptor {
  intercept(): Observable<unknown> {
    return EMPTY;
  }
}

/** Runs the method again when its source fails, as a retrying interceptor does. */
@Injectable()
class RetriesOnce implements NestInterceptor {
  intercept(_context: unknown, next: CallHandler): Observable<unknown> {
    return next.handle().pipe(retry(1));
  }
}

/** Maps every error of the route to a 502, as in Nest's docs on exception mapping. */
@Injectable()
class MapsErrors implements NestInterceptor {
  intercept(_context: unknown, next: CallHandler): Observable<unknown> {
    return next.handle().pipe(catchError(() => throwError(() => new BadGatewayException('upstream down'))));
  }
}

/** Sets a response header, as tracing and caching interceptors do, with the API both platforms share. */
@Injectable()
class Traces implements NestInterceptor {
  intercept(context: ExecutionContext, next: CallHandler): Observable<unknown> {
    context
      .switchToHttp()
      .getResponse<{ header(name: string, value: string): void }>()
      .header('x-trace', 'abc');
    return next.handle();
  }
}

const attempts = { count: 0 };
const thrownAttempts = { count: 0 };
const handlerNames: string[] = [];

/** Records the handler's name, as logging and tracing interceptors do. */
@Injectable()
class NamesHandler implements NestInterceptor {
  intercept(context: ExecutionContext, next: CallHandler): Observable<unknown> {
    handlerNames.push(`${context.getClass().name}.${context.getHandler().name}`);
    return next.handle();
  }
}

/** Holds the request until the gate opens, as an interceptor waiting on a lock or a quota does. */
const gate = new Subject<void>();
const gated = { holding: 0 };
@Injectable()
class WaitsForGate implements NestInterceptor {
  intercept(_context: unknown, next: CallHandler): Observable<unknown> {
    gated.holding++;
    return gate.pipe(
      take(1),
      mergeMap(() => next.handle()),
      finalize(() => gated.holding--),
    );
  }
}

/** Holds the request for good: its Observable never emits, as an interceptor stuck on a lock does. */
const heldForGood = { holding: 0 };
@Injectable()
class HoldsForGood implements NestInterceptor {
  intercept(): Observable<unknown> {
    heldForGood.holding++;
    return NEVER.pipe(finalize(() => heldForGood.holding--));
  }
}

/** Tags the response for the tenant before Nest's interceptors run, as an auth guard may. */
class TagsTenant implements CanActivate {
  canActivate(context: ExecutionContext): boolean {
    // Express's response and Fastify's reply both take `header()`; Fastify's holds it until it sends.
    context
      .switchToHttp()
      .getResponse<{ header(name: string, value: string): unknown }>()
      .header('x-tenant', 'a');
    return true;
  }
}

@Injectable()
class PassesOn implements NestInterceptor {
  intercept(_context: unknown, next: CallHandler): Observable<unknown> {
    return next.handle();
  }
}

const teardownFails = () => {
  throw new Error('the teardown failed');
};

/** Its teardown throws, as a `finalize` whose logging or metrics call fails. */
@Injectable()
class TeardownThrows implements NestInterceptor {
  intercept(_context: unknown, next: CallHandler): Observable<unknown> {
    return next.handle().pipe(finalize(teardownFails));
  }
}

/** As {@link TeardownThrows}, holding the request a while first, as an async check would. */
@Injectable()
class SlowTeardownThrows implements NestInterceptor {
  intercept(_context: unknown, next: CallHandler): Observable<unknown> {
    return from(sleep(300)).pipe(
      mergeMap(() => next.handle()),
      finalize(teardownFails),
    );
  }
}

/**
 * An Observable that is not rxjs's (as zen-observable or a hand-written one): it tears down only
 * through the subscription it returns.
 */
function foreignObservable(
  events: MessageEvent[],
  returns: 'subscription' | 'function' | 'nothing' = 'subscription',
) {
  const counts = { active: 0 };
  const observable = {
    subscribe(observer: { next(event: MessageEvent): void }) {
      counts.active++;
      for (const event of events) observer.next(event);
      const teardown = () => {
        counts.active--;
      };
      if (returns === 'function') return teardown;
      if (returns === 'nothing') return undefined;
      return { unsubscribe: teardown };
    },
  };
  return { counts, observable };
}
/** The reasons the streams of those Observables closed with. */
const streamCloses: CloseReason[] = [];
const recordClose = { onClose: (reason: CloseReason) => void streamCloses.push(reason) };
const foreign = {
  alone: foreignObservable([{ data: 'from elsewhere' }]),
  intercepted: foreignObservable([{ data: 'from elsewhere' }]),
  function: foreignObservable([{ data: 'from elsewhere' }], 'function'),
  functionIntercepted: foreignObservable([{ data: 'from elsewhere' }], 'function'),
  nothing: foreignObservable([{ data: 'from elsewhere' }], 'nothing'),
  nothingIntercepted: foreignObservable([{ data: 'from elsewhere' }], 'nothing'),
};

/** What the iterator of `/greeted-quiet` listens to: nothing is emitted, so it waits for good. */
const quiet = new EventEmitter();
const { options: quietOptions, closes: quietCloses } = recording();
/** `/greeted-flood`: 2,000 events of 10 kB behind an interceptor's, far more than its queue holds. */
const flood = { pulls: 0, events: 2000, data: 'x'.repeat(10_000) };
const { options: floodOptions, closes: floodCloses } = recording({ maxQueueBytes: 64 * 1024 });
/** Lets the method of `/greeted-slow` return. */
const slowQuiet = { release: (): void => {} };

/** Nest's docs' timeout interceptor, failing the request with a 408 when the route is slow to begin. */
@Injectable()
class TimesOut implements NestInterceptor {
  intercept(_context: unknown, next: CallHandler): Observable<unknown> {
    return next
      .handle()
      .pipe(timeout({ first: 20, with: () => throwError(() => new RequestTimeoutException()) }));
  }
}
/** Lets the method of `/timed-out-slow` return, once its request timed out. */
const slowTimed = { release: (): void => {}, started: 0, returned: 0 };
/** What lets the method of `/timed-out-channel` return, and the listeners on its channel's engine. */
const timedChannel = { release: (): void => {}, returned: 0 };
/** Fails the method of `/timed-out-throws` with `error`, once its request timed out. */
const timedThrow = { fail: (_error: unknown): void => {} };
/** Lets the method of `/slow-signal` go on, to find its request's signal aborted; its chain's ends. */
const slowSignal = { release: (): void => {}, started: 0, chainEnds: 0 };
/** Counts the ends of Nest's chain around it. */
@Injectable()
class CountsChainEnds implements NestInterceptor {
  intercept(_context: unknown, next: CallHandler): Observable<unknown> {
    return next.handle().pipe(finalize(() => slowSignal.chainEnds++));
  }
}
const timedOutEngine = countingListeners();
const timedOutChannel = createChannel(timedOutEngine.engine, 'chain-timed-out');
/** `/closing-channel`: its group, and what lets its method (bound to no other interceptor) return. */
const closingChannel = { group: new StreamGroup(), release: (): void => {}, started: 0, returned: 0 };

const calls = { method: 0 };
const live = new Subject<MessageEvent>();
const liveSource = counted(live.asObservable());
const burst = { produced: 0 };
const { options: burstOptions, closes: burstCloses } = recording({
  maxQueueBytes: 64 * 1024,
  stallTimeout: false,
});
const chat = createChannel(memoryEngine(), 'chain-chat', { maxReplay: { events: 1 } });
/**
 * Live events, more than the routes' queue below and what the socket takes from a client that reads
 * nothing yet, leave the stream's drop policy dropping. Counts the subscriptions that went live.
 */
let crowdedLive = 0;
const crowded = createChannel(memoryEngine({ maxEvents: 20_000, maxBytes: 2 ** 26 }), 'chain-crowded', {
  // A resume from the newest id replays nothing: told 'miss' as it goes live.
  onReplay: () => void crowdedLive++,
});
const dropping = { maxQueueBytes: 1000, onOverflow: 'drop-newest' } as const;
/** What the routes with an `onError` of their own were told: none of it may reach Nest's log. */
const routeErrors: unknown[] = [];
const routed = { onError: (error: unknown) => void routeErrors.push(error) };
/** The iterator a method made, listening for good, whose `return()` throws. */
const returnThrows = (): AsyncIterable<MessageEvent> & AsyncIterator<MessageEvent> => ({
  [Symbol.asyncIterator]: () => returnThrows(),
  next: () => new Promise(() => {}),
  return: () => {
    throw new Error('return() failed');
  },
});
const stringsOnly = (data: unknown): string => {
  if (typeof data !== 'string') throw new TypeError('this route sends strings');
  return data;
};

@Controller()
class ChainController {
  @RxSse('served-by-interceptor')
  @UseInterceptors(ServesItself)
  servedByInterceptor(): Observable<MessageEvent> {
    calls.method++;
    return from([{ data: 'from the method' }]);
  }

  @RxSse('refused-by-interceptor')
  @UseInterceptors(Refuses)
  refusedByInterceptor(): Observable<MessageEvent> {
    calls.method++;
    return from([{ data: 'secret' }]);
  }

  @RxSse('method-checks-token')
  methodChecksToken(@Query('token') token?: string): Observable<MessageEvent> {
    if (token !== 'letmein') throw new UnauthorizedException('no token');
    calls.method++;
    return from([{ data: 'secret' }]);
  }

  @RxSse('needs-token')
  @UseInterceptors(RequiresToken)
  needsToken(): Observable<MessageEvent> {
    calls.method++;
    return from([{ data: 'secret' }]);
  }

  @RxSse('emptied-by-interceptor')
  @UseInterceptors(AnswersNothing)
  emptiedByInterceptor(): Observable<MessageEvent> {
    calls.method++;
    return from([{ data: 'secret' }]);
  }

  @RxSse('greeted')
  @UseInterceptors(Greets)
  greeted(): Observable<MessageEvent> {
    return from([{ data: 'hello' }]);
  }

  @RxSse('greeted-iterable')
  @UseInterceptors(Greets)
  async *greetedIterable(): AsyncGenerator<MessageEvent> {
    yield { data: 'hello' };
    yield { data: 'again' };
  }

  @RxSse('greeted-flood', floodOptions)
  @UseInterceptors(Greets)
  async *greetedFlood(): AsyncGenerator<MessageEvent> {
    for (let n = 0; n < flood.events; n++) {
      flood.pulls++;
      yield { data: flood.data };
    }
  }

  @RxSse('greeted-broken')
  @UseInterceptors(Greets)
  greetedBroken(): AsyncIterable<MessageEvent> {
    // Hand-written, as no async generator can: its next() throws instead of rejecting.
    return {
      [Symbol.asyncIterator]: () => ({
        next: () => {
          throw new Error('next() broke');
        },
      }),
    };
  }

  @RxSse('greeted-garbage')
  @UseInterceptors(Greets)
  greetedGarbage(): AsyncIterable<MessageEvent> {
    // Its next() returns no promise, and no result object either.
    return { [Symbol.asyncIterator]: () => ({ next: () => undefined as never }) };
  }

  @RxSse('greeted-quiet', quietOptions)
  @UseInterceptors(Greets)
  greetedQuiet(): AsyncIterable<MessageEvent> {
    return on(quiet, 'tick') as AsyncIterable<never>;
  }

  @RxSse('greeted-slow', quietOptions)
  @UseInterceptors(Greets)
  async greetedSlow(): Promise<AsyncIterable<MessageEvent>> {
    await new Promise<void>((resolve) => {
      slowQuiet.release = resolve;
    });
    return on(quiet, 'tick') as AsyncIterable<never>;
  }

  @RxSse('timed-out-slow')
  @UseInterceptors(TimesOut)
  async timedOutSlow(): Promise<AsyncIterable<MessageEvent>> {
    slowTimed.started++;
    await new Promise<void>((resolve) => {
      slowTimed.release = resolve;
    });
    slowTimed.returned++;
    return on(quiet, 'tick') as AsyncIterable<never>;
  }

  @RxSse('timed-out-throws')
  @UseInterceptors(TimesOut)
  async timedOutThrows(): Promise<Observable<MessageEvent>> {
    return await new Promise<never>((_resolve, reject) => {
      timedThrow.fail = reject;
    });
  }

  @RxSse('slow-signal')
  @UseInterceptors(CountsChainEnds)
  async slowSignal(@RxSseSignal() signal: AbortSignal): Promise<Observable<MessageEvent>> {
    slowSignal.started++;
    await new Promise<void>((resolve) => {
      slowSignal.release = resolve;
    });
    signal.throwIfAborted();
    return of({ data: 'for no one' });
  }

  @RxSse('timed-out-channel')
  @UseInterceptors(TimesOut)
  async timedOutChannel() {
    await new Promise<void>((resolve) => {
      timedChannel.release = resolve;
    });
    // Without the request's signal: the channel's listener is the handoff's to let go of.
    const source = await timedOutChannel.subscribe();
    timedChannel.returned++;
    return source;
  }

  @RxSse('closing-channel', { group: closingChannel.group })
  async closingChannel() {
    closingChannel.started++;
    await new Promise<void>((resolve) => {
      closingChannel.release = resolve;
    });
    const source = await timedOutChannel.subscribe();
    closingChannel.returned++;
    return source;
  }

  @RxSse('gated')
  @UseInterceptors(WaitsForGate)
  gated(): Observable<MessageEvent> {
    calls.method++;
    return of({ data: 'through the gate' });
  }

  @RxSse('live')
  @UseInterceptors(PassesOn)
  live(): Observable<MessageEvent> {
    return liveSource.observable;
  }

  @RxSse('burst', burstOptions)
  @UseInterceptors(PassesOn)
  burst(): Observable<MessageEvent> {
    return range(0, 2_000_000).pipe(
      tap(() => burst.produced++),
      map((n) => ({ data: `event number ${n}` })),
    );
  }

  @RxSse('teardown-throws')
  @UseInterceptors(TeardownThrows)
  teardownThrows(): Observable<MessageEvent> {
    return concat(of({ data: 'first' }), NEVER);
  }

  @RxSse('teardown-throws-routed', routed)
  @UseInterceptors(TeardownThrows)
  teardownThrowsRouted(): Observable<MessageEvent> {
    return concat(of({ data: 'first' }), NEVER);
  }

  @RxSse('return-throws-routed', routed)
  returnThrowsRouted(): AsyncIterable<MessageEvent> {
    return returnThrows();
  }

  @RxSse('greeted-return-throws-routed', routed)
  @UseInterceptors(Greets)
  greetedReturnThrowsRouted(): AsyncIterable<MessageEvent> {
    return returnThrows();
  }

  // Answers through @Res(), so no stream takes the iterator: it is ended at once.
  @RxSse('answered-return-throws-routed', routed)
  answeredReturnThrowsRouted(
    @Res() res: Record<'code' | 'status', (code: number) => { send(body: string): void }>,
  ) {
    // Express's status() or Fastify's code().
    (res.code ?? res.status).call(res, 409).send('answered');
    return returnThrows();
  }

  @RxSse('slow-teardown-throws')
  @UseInterceptors(SlowTeardownThrows)
  slowTeardownThrows(): Observable<MessageEvent> {
    return concat(of({ data: 'first' }), NEVER);
  }

  @RxSse('burst-teardown-throws', burstOptions)
  @UseInterceptors(TeardownThrows)
  burstTeardownThrows(): Observable<MessageEvent> {
    return range(0, 2_000_000).pipe(map((n) => ({ data: `event number ${n}` })));
  }

  @RxSse('fails-later')
  @UseInterceptors(PassesOn)
  failsLater(): Observable<MessageEvent> {
    return concat(
      from([{ data: 'first' }]),
      throwError(() => new Error('feed broke')),
    );
  }

  @RxSse('foreign')
  foreign() {
    return foreign.alone.observable;
  }

  @RxSse('foreign-intercepted')
  @UseInterceptors(PassesOn)
  foreignIntercepted() {
    return foreign.intercepted.observable;
  }

  // Observables that return a teardown function, or nothing, from subscribe().
  @RxSse('foreign-function', recordClose)
  foreignFunction() {
    return foreign.function.observable;
  }

  @RxSse('foreign-function-intercepted', recordClose)
  @UseInterceptors(PassesOn)
  foreignFunctionIntercepted() {
    return foreign.functionIntercepted.observable;
  }

  @RxSse('foreign-nothing', recordClose)
  foreignNothing() {
    return foreign.nothing.observable;
  }

  @RxSse('foreign-nothing-intercepted', recordClose)
  @UseInterceptors(PassesOn)
  foreignNothingIntercepted() {
    return foreign.nothingIntercepted.observable;
  }

  @RxSse('named')
  @UseInterceptors(NamesHandler)
  namedRoute(): Observable<MessageEvent> {
    return from([{ data: 'named' }]);
  }

  @RxSse('retried')
  @UseInterceptors(RetriesOnce)
  retried(): Observable<MessageEvent> {
    attempts.count++;
    return attempts.count % 2 === 1
      ? throwError(() => new Error('first attempt failed'))
      : from([{ data: `attempt ${attempts.count}` }]);
  }

  @RxSse('mapped-at-once')
  @UseInterceptors(MapsErrors)
  mappedAtOnce(): Observable<MessageEvent> {
    throw new NotFoundException('no such feed');
  }

  @RxSse('mapped-after-await')
  @UseInterceptors(MapsErrors)
  async mappedAfterAwait(): Promise<Observable<MessageEvent>> {
    await new Promise((resolve) => setTimeout(resolve, 5));
    throw new NotFoundException('no such feed');
  }

  @RxSse('fallback')
  @UseInterceptors(FallsBack)
  fallback(): Observable<MessageEvent> {
    throw new Error('feed is down');
  }

  @RxSse('retried-throw')
  @UseInterceptors(RetriesOnce)
  retriedThrow(): Observable<MessageEvent> {
    thrownAttempts.count++;
    if (thrownAttempts.count % 2 === 1) throw new Error('first attempt threw');
    return from([{ data: `attempt ${thrownAttempts.count}` }]);
  }

  @RxSse('traced')
  @UseInterceptors(Traces)
  traced(): Observable<MessageEvent> {
    return from([{ data: 'traced' }]);
  }

  @RxSse('thrown-at-once')
  thrownAtOnce(): Observable<MessageEvent> {
    throw new NotFoundException('no such feed');
  }

  // A parameter with a default value does not count in the method's length.
  @RxSse('defaulted')
  defaulted(@Query('n') n = 'none'): Observable<MessageEvent> {
    return from([{ data: n }]);
  }

  // A parameter past the decorated ones is the method's own: Nest hands it nothing, so it keeps its default.
  @RxSse('own-arguments')
  ownArguments(@Query('n') n: string, tail = 'own'): Observable<MessageEvent> {
    return from([{ data: `${n} ${tail}` }]);
  }

  @RxSse('posted', { method: 'POST' })
  posted(): Observable<MessageEvent> {
    return from([{ data: 'posted' }]);
  }

  @RxSse('chat')
  chat(@Query('lastEventId') lastEventId: string) {
    return chat.subscribe({ lastEventId });
  }

  @RxSse('chat-intercepted')
  @UseInterceptors(PassesOn)
  chatIntercepted(@Query('lastEventId') lastEventId: string) {
    return chat.subscribe({ lastEventId });
  }

  // A route whose data are strings alone: the channel's truncation event must still go out, as JSON.
  @RxSse('chat-strings', { serialize: stringsOnly })
  chatStrings(@Query('lastEventId') lastEventId: string) {
    return chat.subscribe({ lastEventId });
  }

  @RxSse('chat-strings-intercepted', { serialize: stringsOnly })
  @UseInterceptors(PassesOn)
  chatStringsIntercepted(@Query('lastEventId') lastEventId: string) {
    return chat.subscribe({ lastEventId });
  }

  @RxSse('crowded', dropping)
  crowded(@Query('lastEventId') lastEventId: string) {
    return crowded.subscribe({ lastEventId });
  }

  @RxSse('crowded-intercepted', dropping)
  @UseInterceptors(PassesOn)
  crowdedIntercepted(@Query('lastEventId') lastEventId: string) {
    return crowded.subscribe({ lastEventId });
  }
}

@Module({ imports: [RxsseModule.forRoot()], controllers: [ChainController] })
class ChainModule {}

@Controller()
class GatedController {
  @RxSse('gated')
  @UseInterceptors(WaitsForGate)
  gated(): Observable<MessageEvent> {
    return of({ data: 'through the gate' });
  }

  @RxSse('held')
  @UseInterceptors(HoldsForGood)
  held(): Observable<MessageEvent> {
    calls.method++;
    return of({ data: 'never let on' });
  }

  @RxSse('held-tagged')
  @UseGuards(TagsTenant)
  @UseInterceptors(HoldsForGood)
  heldTagged(): Observable<MessageEvent> {
    calls.method++;
    return of({ data: 'never let on' });
  }
}

@Module({ imports: [RxsseModule.forRoot({ shutdown: { deadline: 100 } })], controllers: [GatedController] })
class GatedModule {}

describe.each<Platform>(['express', 'fastify'])(
  `nestjs ${nestMajor} on %s: Nest's chain around the stream`,
  (platform) => {
    let server: RunningServer | undefined;
    const start = async () => {
      server = await startNest(ChainModule, platform, []);
      return server.url;
    };
    afterEach(async () => {
      const running = server;
      server = undefined;
      await running?.close();
      expect(running?.logged ?? []).toEqual([]);
    });

    it('streams what an interceptor serves on its own, and never runs the method', async () => {
      const url = await start();
      const before = calls.method;
      const client = await rawClient(`${url}/served-by-interceptor`, { read: true });
      await waitFor(() => client.text.includes('data: from the interceptor\n\n'), 5000, 'the event');
      client.destroy();
      expect(client.text).toMatch(/^HTTP\/1\.1 200/);
      expect(calls.method).toBe(before);
    });

    it('answers a HEAD at the first event of an interceptor that serves the route on its own, and never runs the method', async () => {
      const url = await start();
      const before = calls.method;
      const { response, body } = await fetchBytes(`${url}/served-by-interceptor`, {
        method: 'HEAD',
        signal: AbortSignal.timeout(5000),
      });
      expect(response.status).toBe(200);
      expect(response.headers.get('content-type')).toBe('text/event-stream');
      expect(body.length).toBe(0);
      expect(calls.method).toBe(before);
    });

    it("answers an interceptor that fails before the method with Nest's response", async () => {
      const url = await start();
      const before = calls.method;
      const { response, body } = await fetchBytes(`${url}/refused-by-interceptor`, {
        signal: AbortSignal.timeout(5000),
      });
      expect(response.status).toBe(403);
      expect(JSON.parse(body.toString())).toMatchObject({ statusCode: 403, message: 'not today' });
      expect(calls.method).toBe(before);
    });

    it('answers a HEAD as its GET where an interceptor refuses the request, and runs the method only once it lets it on', async () => {
      const url = await start();
      const before = calls.method;
      for (const method of ['GET', 'HEAD']) {
        const { response } = await fetchBytes(`${url}/needs-token`, {
          method,
          signal: AbortSignal.timeout(5000),
        });
        expect(response.status, method).toBe(401);
        expect(response.headers.get('content-type'), method).not.toBe('text/event-stream');
      }
      const head = await fetchBytes(`${url}/needs-token?token=letmein`, {
        method: 'HEAD',
        signal: AbortSignal.timeout(5000),
      });
      expect(head.response.status).toBe(200);
      expect(head.response.headers.get('content-type')).toBe('text/event-stream');
      expect(calls.method).toBe(before + 1);
    });

    it('answers a HEAD with the refusal of a method that checks the request itself, as its GET', async () => {
      const url = await start();
      for (const method of ['GET', 'HEAD']) {
        const { response } = await fetchBytes(`${url}/method-checks-token`, {
          method,
          signal: AbortSignal.timeout(5000),
        });
        expect(response.status, method).toBe(401);
      }
      const before = calls.method;
      const head = await fetchBytes(`${url}/method-checks-token?token=letmein`, {
        method: 'HEAD',
        signal: AbortSignal.timeout(5000),
      });
      expect(head.response.status).toBe(200);
      expect(head.response.headers.get('content-type')).toBe('text/event-stream');
      expect(calls.method).toBe(before + 1);
    });

    it('ends the stream at once when an interceptor completes without the method', async () => {
      const url = await start();
      const before = calls.method;
      const { response, body } = await fetchBytes(`${url}/emptied-by-interceptor`, {
        signal: AbortSignal.timeout(5000),
      });
      expect(response.status).toBe(200);
      expect(response.headers.get('content-type')).toBe('text/event-stream');
      expect(body.toString()).toBe('');
      expect(calls.method).toBe(before);
    });

    it("streams an interceptor's events from before the method's, first, and ends with the method's", async () => {
      const url = await start();
      const client = await rawClient(`${url}/greeted`, { read: true });
      // The last chunk of a chunked body: the response ended, the connection may stay open.
      await waitFor(() => client.text.endsWith('\r\n0\r\n\r\n'), 5000, 'the end of the stream');
      client.destroy();
      expect(client.text).toMatch(/data: welcome\n\n[\s\S]*data: hello\n\n/);
    });

    it("streams the method's AsyncIterable after an interceptor's events from before it, and ends with it", async () => {
      const url = await start();
      const client = await rawClient(`${url}/greeted-iterable`, { read: true });
      await waitFor(() => client.text.endsWith('\r\n0\r\n\r\n'), 5000, 'the end of the stream');
      client.destroy();
      expect(client.text).toMatch(/data: welcome\n\n[\s\S]*data: hello\n\n[\s\S]*data: again\n\n/);
    });

    it("pulls the method's AsyncIterable behind an interceptor's events only while the client takes them", async () => {
      const url = await start();
      const before = { pulls: flood.pulls, closes: floodCloses.length };
      const client = await rawClient(`${url}/greeted-flood`, { read: false });
      // The client reads nothing: the pulls stop once the socket and the queue are full, where
      // pulling on would overflow the queue and close the stream.
      let last = -1;
      let still = 0;
      await waitFor(
        () => {
          still = flood.pulls === last ? still + 1 : 0;
          last = flood.pulls;
          return still === 20 || floodCloses.length > before.closes;
        },
        10_000,
        'the pulls to stop',
      );
      expect(floodCloses.slice(before.closes)).toEqual([]);
      expect(flood.pulls - before.pulls).toBeLessThan(flood.events);
      client.resume();
      // The last chunk of a chunked body: the client has every event.
      await waitFor(() => client.text.endsWith('\r\n0\r\n\r\n'), 20_000, 'the end of the stream');
      client.destroy();
      const [closed] = floodCloses.slice(before.closes);
      expect(closed).toMatchObject({ reason: 'complete', stats: { events: flood.events + 1, dropped: 0 } });
    });

    it("ends the stream behind an interceptor's events, and reports it, when the method's iterator throws from next()", async () => {
      const url = await start();
      const { body } = await fetchBytes(`${url}/greeted-broken`, { signal: AbortSignal.timeout(5000) });
      expect(body.toString()).toBe('data: welcome\n\n');
      await waitFor(() => server!.logged.length === 1, 5000, 'the report');
      expect(server!.logged.splice(0)[0]).toMatch(
        /^event stream GET \/greeted-broken failed: Error: next\(\) broke/,
      );
    });

    it("ends the stream behind an interceptor's events, and reports it, when the method's iterator gives no result", async () => {
      const url = await start();
      const { body } = await fetchBytes(`${url}/greeted-garbage`, { signal: AbortSignal.timeout(5000) });
      expect(body.toString()).toBe('data: welcome\n\n');
      await waitFor(() => server!.logged.length === 1, 5000, 'the report');
      expect(server!.logged.splice(0)[0]).toMatch(
        /^event stream GET \/greeted-garbage failed: TypeError: the iterator's next\(\) gave undefined, not an object/,
      );
    });

    it("ends the method's iterator behind an interceptor's events when the client leaves while it waits, so the listener it holds goes", async () => {
      const url = await start();
      const before = { closes: quietCloses.length, listeners: quiet.listenerCount('tick') };
      const client = await rawClient(`${url}/greeted-quiet`, { read: true });
      await waitFor(() => client.text.includes('data: welcome\n\n'), 5000, "the interceptor's event");
      expect(quiet.listenerCount('tick')).toBe(before.listeners + 1);
      client.destroy();
      await waitFor(() => quietCloses.length === before.closes + 1, 5000, 'the close');
      expect(quietCloses.at(-1)!.reason).toBe('client');
      await waitFor(() => quiet.listenerCount('tick') === before.listeners, 5000, 'the listener to go');
    });

    it("ends the iterator a method returns once the stream of an interceptor's events before it ended", async () => {
      const url = await start();
      const before = { closes: quietCloses.length, listeners: quiet.listenerCount('tick') };
      slowQuiet.release = () => {};
      const client = await rawClient(`${url}/greeted-slow`, { read: true });
      await waitFor(() => client.text.includes('data: welcome\n\n'), 5000, "the interceptor's event");
      client.destroy();
      await waitFor(() => quietCloses.length === before.closes + 1, 5000, 'the close');
      slowQuiet.release();
      await new Promise((resolve) => setImmediate(resolve));
      expect(quiet.listenerCount('tick')).toBe(before.listeners);
    });

    it("answers an interceptor's timeout before the method returned with Nest's 408, and ends the iterator the method returns later", async () => {
      const url = await start();
      const before = {
        started: slowTimed.started,
        returned: slowTimed.returned,
        listeners: quiet.listenerCount('tick'),
      };
      const { response, body } = await fetchBytes(`${url}/timed-out-slow`, {
        signal: AbortSignal.timeout(5000),
      });
      expect(response.status).toBe(408);
      expect(JSON.parse(body.toString())).toMatchObject({ statusCode: 408 });
      expect(slowTimed.started).toBe(before.started + 1);
      slowTimed.release();
      await waitFor(() => slowTimed.returned === before.returned + 1, 5000, 'the method to return');
      await new Promise((resolve) => setImmediate(resolve));
      expect(quiet.listenerCount('tick')).toBe(before.listeners);
    });

    it.each(['GET', 'HEAD'])(
      "logs what the method throws once an interceptor's timeout answered a %s, but not an HttpException, which Nest never logs",
      async (method) => {
        const url = await start();
        const timedOut = async () => {
          const { response } = await fetchBytes(`${url}/timed-out-throws`, {
            method,
            signal: AbortSignal.timeout(5000),
          });
          expect(response.status).toBe(408);
        };
        await timedOut();
        timedThrow.fail(new NotFoundException('no such feed after all'));
        await timedOut();
        timedThrow.fail(new Error('the feed broke after the timeout'));
        // The first failure came first: had it been logged, it would be logged before this one.
        await waitFor(() => server!.logged.length > 0, 5000, 'the report');
        expect(server!.logged.splice(0)).toEqual([
          expect.stringMatching(
            new RegExp(
              `^event stream ${method} /timed-out-throws failed: Error: the feed broke after the timeout`,
            ),
          ),
        ]);
      },
    );

    it('logs nothing when the method, going on once its client left, throws the abort of its signal', async () => {
      const url = await start();
      const before = { started: slowSignal.started, chainEnds: slowSignal.chainEnds };
      const client = await rawClient(`${url}/slow-signal`, { read: true });
      await waitFor(() => slowSignal.started === before.started + 1, 5000, 'the method');
      client.destroy();
      await waitFor(() => slowSignal.chainEnds === before.chainEnds + 1, 5000, "the end of Nest's chain");
      await new Promise((resolve) => setImmediate(resolve));
      slowSignal.release();
      await new Promise((resolve) => setImmediate(resolve));
      expect(server!.logged).toEqual([]);
    });

    it("lets go of the channel subscription the method returns after an interceptor's timeout answered, made without the signal", async () => {
      const url = await start();
      const before = { returned: timedChannel.returned, live: timedOutEngine.counts.live };
      const { response } = await fetchBytes(`${url}/timed-out-channel`, {
        signal: AbortSignal.timeout(5000),
      });
      expect(response.status).toBe(408);
      timedChannel.release();
      await waitFor(() => timedChannel.returned === before.returned + 1, 5000, 'the method to return');
      await waitFor(() => timedOutEngine.counts.live === before.live, 5000, 'the listener to be let go');
    });

    it('lets go of the channel subscription a method alone on its route returns as its group shuts down, made without the signal', async () => {
      const url = await start();
      const before = { started: closingChannel.started, returned: closingChannel.returned };
      const live = timedOutEngine.counts.live;
      const answer = fetchBytes(`${url}/closing-channel`, { signal: AbortSignal.timeout(5000) });
      await waitFor(() => closingChannel.started === before.started + 1, 5000, 'the method');
      const closing = closingChannel.group.close({ deadline: 5000 });
      closingChannel.release();
      expect((await answer).response.status).toBe(200);
      await closing;
      await waitFor(() => closingChannel.returned === before.returned + 1, 5000, 'the method to return');
      await waitFor(() => timedOutEngine.counts.live === live, 5000, 'the listener to be let go');
    });

    it("ends Nest's chain when the client leaves while an interceptor holds the request, and never runs the method", async () => {
      const url = await start();
      const before = calls.method;
      const client = await rawClient(`${url}/gated`, { read: true });
      await waitFor(() => gate.observed, 5000, 'the interceptor to wait');
      client.destroy();
      await waitFor(() => !gate.observed, 5000, 'the interceptor to be let go');
      gate.next();
      expect(calls.method).toBe(before);
    });

    it("answers a HEAD once an interceptor lets it on and the method ran, and ends Nest's chain when its client leaves first, the method not run", async () => {
      const url = await start();
      const before = calls.method;
      const head = fetchBytes(`${url}/gated`, { method: 'HEAD', signal: AbortSignal.timeout(5000) });
      await waitFor(() => gate.observed, 5000, 'the interceptor to wait');
      gate.next();
      const { response } = await head;
      expect(response.status).toBe(200);
      expect(response.headers.get('content-type')).toBe('text/event-stream');
      const abort = new AbortController();
      const left = fetch(`${url}/gated`, { method: 'HEAD', signal: abort.signal }).catch(() => undefined);
      await waitFor(() => gate.observed, 5000, 'the interceptor to wait');
      abort.abort();
      await left;
      await waitFor(() => !gate.observed, 5000, 'the interceptor to be let go');
      expect(calls.method).toBe(before + 1);
    });

    it("ends Nest's chain when the app closes while an interceptor holds the request", async () => {
      const running = await startNest(GatedModule, platform, []);
      const client = await rawClient(`${running.url}/gated`, { read: true });
      await waitFor(() => gate.observed, 5000, 'the interceptor to wait');
      // The connection is dropped at the deadline, as any handler's still setting up.
      await running.close();
      await waitFor(() => !gate.observed, 5000, 'the interceptor to be let go');
      expect(running.logged).toEqual([]);
      client.destroy();
    });

    it('turns away a HEAD an interceptor lets on while the app closes, with the headers a GET turned away gets', async () => {
      const running = await startNest(GatedModule, platform, []);
      const client = await rawRequests(running.url, [httpRequest('HEAD', '/gated')]);
      try {
        await waitFor(() => gate.observed, 5000, 'the interceptor to wait');
        const closed = running.close();
        // Once the shutdown began (NestJS 11 runs other hooks first), a HEAD is answered at once,
        // without the chain; then the held one is let on, before the deadline (100 ms) drops it.
        for (let probes = 0; ; probes++) {
          if (probes === 100) throw new Error('the shutdown never began');
          // A server that no longer takes connections (a busy machine's close got that far) has
          // begun its shutdown too.
          const probe = await rawRequests(running.url, [httpRequest('HEAD', '/gated')]).catch(
            () => undefined,
          );
          if (probe === undefined) break;
          await Promise.race([probe.done, sleep(20)]);
          probe.destroy();
          if (probe.text !== '') break;
        }
        gate.next();
        await closed;
        await waitFor(() => client.closed, 5000, 'the answer');
        expect(client.text).toMatch(/^HTTP\/1\.1 200/);
        expect(client.text.toLowerCase()).toContain('connection: close');
        expect(client.text).toMatch(/\r\n\r\n$/);
        expect(running.logged).toEqual([]);
      } finally {
        client.destroy();
      }
    });

    it.each(['GET', 'HEAD'])(
      "turns a %s away at the shutdown's deadline while an interceptor holds it for good, and ends Nest's chain",
      async (method) => {
        const running = await startNest(GatedModule, platform, []);
        const before = { calls: calls.method, holding: heldForGood.holding };
        const client = await rawRequests(running.url, [httpRequest(method, '/held')]);
        try {
          await waitFor(() => heldForGood.holding === before.holding + 1, 5000, 'the interceptor to hold it');
          // The deadline is 100 ms: the close is done once the client is turned away.
          let timer: ReturnType<typeof setTimeout> | undefined;
          const closed = await Promise.race([
            running.close().then(() => 'closed'),
            new Promise((resolve) => {
              timer = setTimeout(() => resolve('still closing'), 5000);
            }),
          ]);
          clearTimeout(timer);
          expect(closed).toBe('closed');
          await waitFor(() => client.closed, 5000, 'the client to be turned away');
          expect(client.text).toMatch(/^HTTP\/1\.1 200/);
          expect(client.text.toLowerCase()).toContain('connection: close');
          // A HEAD's answer has no body; a GET's ends at once.
          expect(client.text).toMatch(method === 'HEAD' ? /\r\n\r\n$/ : /\r\n\r\n0\r\n\r\n$/);
          expect(heldForGood.holding).toBe(before.holding);
          expect(calls.method).toBe(before.calls);
          expect(running.logged).toEqual([]);
        } finally {
          client.destroy();
        }
      },
    );

    it.each(['GET', 'HEAD'])(
      "turns a %s away at the shutdown's deadline while an interceptor holds it, with the headers a guard set",
      async (method) => {
        const running = await startNest(GatedModule, platform, []);
        const before = heldForGood.holding;
        const client = await rawRequests(running.url, [httpRequest(method, '/held-tagged')]);
        try {
          await waitFor(() => heldForGood.holding === before + 1, 5000, 'the interceptor to hold it');
          // The deadline is 100 ms: the answer runs no more of the chain, which set nothing on the reply.
          await running.close();
          await waitFor(() => client.closed, 5000, 'the client to be turned away');
          expect(client.text).toMatch(/^HTTP\/1\.1 200/);
          expect(client.text.toLowerCase()).toContain('x-tenant: a');
          expect(running.logged).toEqual([]);
        } finally {
          client.destroy();
        }
      },
    );

    it('streams events that come later through an interceptor, and unsubscribes when the client leaves', async () => {
      const url = await start();
      const client = await rawClient(`${url}/live`, { read: true });
      await waitFor(() => liveSource.counts.active === 1, 5000, 'the subscription');
      live.next({ data: 'later' });
      await waitFor(() => client.text.includes('data: later\n\n'), 5000, 'the later event');
      client.destroy();
      await waitFor(() => liveSource.counts.active === 0, 5000, 'the unsubscription');
    });

    it("ends the stream on an error through an interceptor, and logs it with Nest's logger, without the query", async () => {
      const url = await start();
      // EventSource cannot send headers: a token travels in the query, which the log leaves out.
      const { body } = await fetchBytes(`${url}/fails-later?access_token=secret`, {
        signal: AbortSignal.timeout(5000),
      });
      expect(body.toString()).toBe('data: first\n\n');
      await waitFor(() => server!.logged.length === 1, 5000, 'the report');
      // The message names the request; the stack says where the error came from.
      expect(server!.logged.splice(0)[0]).toMatch(
        /^event stream GET \/fails-later failed: Error: feed broke Error: feed broke\n\s+at .*chain\.test\.ts/,
      );
    });

    it("unsubscribes from an Observable that is not rxjs's when the client leaves, with or without an interceptor", async () => {
      const url = await start();
      for (const [path, { counts }] of [
        ['foreign', foreign.alone],
        ['foreign-intercepted', foreign.intercepted],
      ] as const) {
        const client = await rawClient(`${url}/${path}`, { read: true });
        await waitFor(() => client.text.includes('data: from elsewhere\n\n'), 5000, `the event of /${path}`);
        expect(counts.active, path).toBe(1);
        client.destroy();
        await waitFor(() => counts.active === 0, 5000, `the unsubscription of /${path}`);
      }
    });

    it('runs the teardown function an Observable returns from subscribe() when the client leaves, and takes one that returns nothing without an error, with or without an interceptor', async () => {
      const url = await start();
      for (const [path, { counts }] of [
        ['foreign-function', foreign.function],
        ['foreign-function-intercepted', foreign.functionIntercepted],
        ['foreign-nothing', foreign.nothing],
        ['foreign-nothing-intercepted', foreign.nothingIntercepted],
      ] as const) {
        const closes = streamCloses.length;
        const active = counts.active;
        const client = await rawClient(`${url}/${path}`, { read: true });
        await waitFor(() => client.text.includes('data: from elsewhere\n\n'), 5000, `the event of /${path}`);
        client.destroy();
        await waitFor(() => streamCloses.length > closes, 5000, `the close of /${path}`);
        // Nothing tears down an Observable that returned nothing: only the function's count falls.
        expect(counts.active - active, path).toBe(path.startsWith('foreign-function') ? 0 : 1);
      }
      // The afterEach hook checks that nothing was logged.
    });

    it.each([
      ['HEAD', 'teardown-throws-routed', 'the teardown failed'],
      ['HEAD', 'return-throws-routed', 'return() failed'],
      ['GET', 'answered-return-throws-routed', 'return() failed'],
    ])(
      "hands what ends a %s's chain or iterator and throws to the route's onError (%s)",
      async (method, path, message) => {
        const url = await start();
        routeErrors.length = 0;
        await fetchBytes(`${url}/${path}`, { method, signal: AbortSignal.timeout(5000) });
        await waitFor(() => routeErrors.length === 1, 5000, 'the report');
        expect(routeErrors).toEqual([new Error(message)]);
        // The afterEach hook checks that nothing was logged, but the answer through @Res() Nest tells of.
        if (path.startsWith('answered')) {
          await waitFor(() => server!.logged.length === 1, 5000, "Nest's report");
          server!.logged.length = 0;
        }
      },
    );

    it("hands what ends the method's iterator behind an interceptor's events and throws to the route's onError once, when the client leaves", async () => {
      const url = await start();
      routeErrors.length = 0;
      const client = await rawClient(`${url}/greeted-return-throws-routed`, { read: true });
      await waitFor(() => client.text.includes('data: welcome\n\n'), 5000, "the interceptor's event");
      client.destroy();
      await waitFor(() => routeErrors.length > 0, 5000, 'the report');
      await new Promise((resolve) => setImmediate(resolve));
      expect(routeErrors).toEqual([new Error('return() failed')]);
    });

    it('stops a synchronous source behind an interceptor at the overflow close', async () => {
      const url = await start();
      const before = { closes: burstCloses.length, produced: burst.produced };
      const client = await rawClient(`${url}/burst`, { read: false });
      await waitFor(() => burstCloses.length === before.closes + 1, 10_000, 'the overflow close');
      client.destroy();
      expect(burstCloses.at(-1)!.reason).toBe('overflow');
      expect(burst.produced - before.produced).toBeLessThan(1_000_000);
    });

    it('logs a teardown that throws in the chain, for a HEAD, a client gone during the chain, and a synchronous source at its overflow close', async () => {
      const url = await start();
      const logs = (count: number, what: string) =>
        waitFor(() => server!.logged.length >= count, 5000, what).then(() => server!.logged.splice(0));
      const head = await fetchBytes(`${url}/teardown-throws`, {
        method: 'HEAD',
        signal: AbortSignal.timeout(5000),
      });
      expect(head.response.status).toBe(200);
      expect(await logs(1, 'the HEAD teardown')).toEqual([expect.stringMatching(/the teardown failed/)]);

      const gone = await rawClient(`${url}/slow-teardown-throws`, { read: true });
      await sleep(50);
      gone.destroy();
      expect(await logs(1, 'the teardown of a client gone')).toEqual([
        expect.stringMatching(/the teardown failed/),
      ]);

      for (const path of ['burst-teardown-throws']) {
        const closes = burstCloses.length;
        const from = await crowded.publish({ data: 'before' });
        const client = await rawClient(`${url}/${path}?lastEventId=${encodeURIComponent(from)}`, {
          read: false,
        });
        await waitFor(() => burstCloses.length === closes + 1, 10_000, `the overflow close of /${path}`);
        client.destroy();
        expect(burstCloses.at(-1)!.reason, path).toBe('overflow');
        expect(await logs(1, `the teardown of /${path}`), path).toEqual([
          expect.stringMatching(/the teardown failed/),
        ]);
      }
      // Still serving.
      const after = await fetchBytes(`${url}/teardown-throws`, {
        method: 'HEAD',
        signal: AbortSignal.timeout(5000),
      });
      expect(after.response.status).toBe(200);
      await logs(1, 'the last HEAD teardown');
    });

    it("streams the source of the method's second run when an interceptor retries it", async () => {
      const url = await start();
      const before = attempts.count;
      const client = await rawClient(`${url}/retried`, { read: true });
      await waitFor(() => client.text.endsWith('\r\n0\r\n\r\n'), 5000, 'the end of the stream');
      client.destroy();
      expect(client.text).toContain(`data: attempt ${before + 2}\n\n`);
      expect(client.text).not.toContain('first attempt failed');
    });

    it("answers what an interceptor makes of the method's exception, at once or after an await", async () => {
      const url = await start();
      for (const path of ['mapped-at-once', 'mapped-after-await']) {
        const { response, body } = await fetchBytes(`${url}/${path}`, { signal: AbortSignal.timeout(5000) });
        expect(response.status, path).toBe(502);
        expect(JSON.parse(body.toString()), path).toMatchObject({
          statusCode: 502,
          message: 'upstream down',
        });
      }
    });

    it("streams an interceptor's answer to the method's exception, and the method's second run", async () => {
      const url = await start();
      const fallback = await fetchBytes(`${url}/fallback`, { signal: AbortSignal.timeout(5000) });
      expect(fallback.response.status).toBe(200);
      expect(fallback.body.toString()).toBe('data: fallback\n\n');
      const before = thrownAttempts.count;
      const retried = await fetchBytes(`${url}/retried-throw`, { signal: AbortSignal.timeout(5000) });
      expect(retried.response.status).toBe(200);
      expect(retried.body.toString()).toBe(`data: attempt ${before + 2}\n\n`);
    });

    it('sends the headers an interceptor set on the response, with the stream', async () => {
      const url = await start();
      const { response, body } = await fetchBytes(`${url}/traced`);
      expect(response.headers.get('x-trace')).toBe('abc');
      expect(response.headers.get('content-type')).toBe('text/event-stream');
      expect(body.toString()).toBe('data: traced\n\n');
    });

    it("shows guards and interceptors the method's own name", async () => {
      const url = await start();
      handlerNames.length = 0;
      expect((await fetchBytes(`${url}/named`)).body.toString()).toBe('data: named\n\n');
      expect(handlerNames).toEqual(['ChainController.namedRoute']);
    });

    it("answers an exception the method throws at once with Nest's response", async () => {
      const url = await start();
      const { response, body } = await fetchBytes(`${url}/thrown-at-once`);
      expect(response.status).toBe(404);
      expect(JSON.parse(body.toString())).toMatchObject({ statusCode: 404, message: 'no such feed' });
    });

    it('hands a parameter with a default value to the method', async () => {
      const url = await start();
      expect((await fetchBytes(`${url}/defaulted?n=3`)).body.toString()).toBe('data: 3\n\n');
      expect((await fetchBytes(`${url}/defaulted`)).body.toString()).toBe('data: none\n\n');
    });

    it('hands the method its own arguments alone: one past them keeps its default, as with @Sse()', async () => {
      const url = await start();
      expect((await fetchBytes(`${url}/own-arguments?n=3`)).body.toString()).toBe('data: 3 own\n\n');
    });

    it("answers a POST stream with 200, not Nest's 201 for POST routes", async () => {
      const url = await start();
      const { response, body } = await fetchBytes(`${url}/posted`, { method: 'POST' });
      expect(response.status).toBe(200);
      expect(body.toString()).toBe('data: posted\n\n');
    });

    it("sends a channel's truncation header, with and without an interceptor", async () => {
      const url = await start();
      const first = await chat.publish({ data: 'one' });
      await chat.publish({ data: 'two' });
      await chat.publish({ data: 'three' });
      for (const path of ['chat', 'chat-intercepted']) {
        const client = await rawClient(`${url}/${path}?lastEventId=${encodeURIComponent(first)}`, {
          read: true,
        });
        await waitFor(() => client.text.includes('\r\n\r\n'), 5000, 'the headers');
        client.destroy();
        expect(client.text.toLowerCase(), path).toContain('sse-history-truncated: true');
      }
    });

    it("sends a channel's truncation event as JSON, with and without an interceptor, on a route whose serialize refuses it", async () => {
      const url = await start();
      for (const path of ['chat-strings', 'chat-strings-intercepted']) {
        const client = await rawClient(`${url}/${path}?lastEventId=0-1`, { read: false });
        const text = await readUntilTruncation(client, path);
        expect(text, path).toContain(
          'event: history-truncated\ndata: {"lastEventId":"0-1","reason":"history"}\n\n',
        );
      }
    });

    it("tells of the events a drop policy dropped with the channel's truncation event, with and without an interceptor", async () => {
      const url = await start();
      for (const path of ['crowded', 'crowded-intercepted']) {
        const from = await crowded.publish({ data: 'before' });
        const client = await rawClient(`${url}/${path}?lastEventId=${encodeURIComponent(from)}`, {
          read: false,
        });
        const live = crowdedLive;
        await waitFor(() => crowdedLive > live, 5000, `${path}: the subscription`);
        // 9 MB: more than a loopback socket's buffers on either side.
        for (let i = 0; i < 10_000; i++) await crowded.publish({ data: 'x'.repeat(900) });
        const text = await readUntilTruncation(client, path);
        // The truncation event names the last event the client got before it.
        const [before, after] = text.split('event: history-truncated\n', 2) as [string, string];
        const lastSent = [...before.matchAll(/^id: (.+)$/gm)].at(-1)?.[1];
        expect(after.split('\n', 1)[0], path).toBe(`data: {"lastEventId":"${lastSent}","reason":"gap"}`);
      }
    });
  },
);

/** What `client` read up to and with a channel's truncation event, once it reads. */
async function readUntilTruncation(client: RawClient, path: string): Promise<string> {
  client.resume();
  try {
    await waitFor(
      () => client.text.includes('event: history-truncated'),
      5000,
      `${path}: the truncation event`,
    );
  } finally {
    client.destroy();
  }
  return client.text;
}

/** One event, `hello`, at `/hello`: what the global interceptors below are seen to change. */
@Controller()
class Hello {
  @RxSse('hello')
  hello(): Observable<MessageEvent> {
    return from([{ data: 'hello' }]);
  }
}

// Fastify answers pipelined requests one at a time; Express runs the second one's chain at once.
describe(`nestjs ${nestMajor} on express: a pipelined request`, () => {
  it("ends Nest's chain of the responses waiting behind another when the connection drops", async () => {
    // Sixteen: a listener each on the connection would make Node warn of a leak at the eleventh.
    const { warnings, stop } = recordWarnings();
    const running = await startNest(GatedModule, 'express', []);
    try {
      const client = await rawRequests(
        running.url,
        Array.from({ length: 16 }, () => httpRequest('GET', '/gated')),
      );
      await waitFor(() => gated.holding === 16, 5000, 'every request to wait');
      client.destroy();
      await waitFor(() => gated.holding === 0, 5000, 'the interceptor to let them go');
      await new Promise((resolve) => setImmediate(resolve));
    } finally {
      stop();
      await running.close();
    }
    expect(running.logged).toEqual([]);
    expect(warnings.map((w) => w.name)).not.toContain('MaxListenersExceededWarning');
  });
});

describe(`nestjs ${nestMajor}: an app interceptor of the root module`, () => {
  it('sees the events, although Nest registers it before RxsseModule', async () => {
    const ends = { finalized: 0 };
    @Injectable()
    class Ends implements NestInterceptor {
      intercept(_context: unknown, next: CallHandler): Observable<unknown> {
        return next.handle().pipe(finalize(() => ends.finalized++));
      }
    }
    // Nest's docs register app interceptors in the root module, which it reads before its imports.
    @Module({
      imports: [RxsseModule.forRoot()],
      controllers: [Hello],
      providers: [
        { provide: APP_INTERCEPTOR, useClass: Shouts },
        { provide: APP_INTERCEPTOR, useClass: Ends },
      ],
    })
    class RootModule {}
    const server = await startNest(RootModule, 'express', []);
    try {
      expect((await fetchBytes(`${server.url}/hello`)).body.toString()).toBe('data: HELLO\n\n');
      await waitFor(() => ends.finalized === 1, 5000, 'the chain to end');
    } finally {
      await server.close();
    }
    expect(server.logged).toEqual([]);
  });
});

describe(`nestjs ${nestMajor}: the one app interceptor of the root module`, () => {
  it('sees the events, although Nest registers it before RxsseModule', async () => {
    // One interceptor of its own puts RxsseModule's second among the app's.
    @Module({
      imports: [RxsseModule.forRoot()],
      controllers: [Hello],
      providers: [{ provide: APP_INTERCEPTOR, useClass: Shouts }],
    })
    class RootModule {}
    const server = await startNest(RootModule, 'express', []);
    try {
      expect((await fetchBytes(`${server.url}/hello`)).body.toString()).toBe('data: HELLO\n\n');
    } finally {
      await server.close();
    }
    expect(server.logged).toEqual([]);
  });
});

describe(`nestjs ${nestMajor}: a request-scoped global interceptor`, () => {
  it('sees the events of every route', async () => {
    @Module({
      imports: [RxsseModule.forRoot()],
      controllers: [Hello],
      providers: [{ provide: APP_INTERCEPTOR, useClass: Shouts, scope: Scope.REQUEST }],
    })
    class ScopedModule {}
    const server = await startNest(ScopedModule, 'express', []);
    try {
      expect((await fetchBytes(`${server.url}/hello`)).body.toString()).toBe('data: HELLO\n\n');
    } finally {
      await server.close();
    }
    expect(server.logged).toEqual([]);
  });
});
