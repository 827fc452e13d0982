import {
  createParamDecorator,
  type ExecutionContext,
  HttpCode,
  Req,
  RequestMapping,
  type RequestMappingMetadata,
  RequestMethod,
  Res,
  SetMetadata,
} from '@nestjs/common';
import {
  checkEventSource,
  checkOptionNames,
  checkOptionsObject,
  describeValue,
  resolveStreamOptions,
} from '@rxsse/core';
import { readLastEventId } from '@rxsse/node';
import { RxsseModuleMissingError } from './errors.js';
import { findHandoff } from './handoff.js';
import { ROUTE_OPTION_NAMES, type RxSseRouteOptions } from './options.js';

/** The metadata key under which `@RxSse` marks a route, with its options. */
export const RXSSE_ROUTE = 'rxsse:route';

/** What `@RxSse` records on a route's method. */
export interface RxSseRoute {
  options: RxSseRouteOptions | undefined;
}

// Nest's keys for the parameters its decorators declare on a method, and for its `@HttpCode()`.
const ROUTE_ARGS_METADATA = '__routeArguments__';
const HTTP_CODE_METADATA = '__httpCode__';
const RESPONSE_PASSTHROUGH_METADATA = '__responsePassthrough__';
// `@nestjs/cache-manager`'s key for `@CacheKey()`: a factory there that gives no key leaves the
// request to the route, uncached.
const CACHE_KEY_METADATA = 'cache_module:cache_key';

/**
 * Streams what the method returns as Server-Sent Events: `@Sse(path)` with rxsse's stream. The
 * method returns an Observable, an AsyncIterable, a channel subscription, or a promise of one; a
 * bare value the Observable emits (a string, a number) is sent as `{ data: value }`, as `@Sse` does.
 * Guards, pipes, interceptors and exception filters run as for any route, and anything thrown
 * before the stream starts gets Nest's error response. Needs `RxsseModule` in the app. Called
 * directly, as in a controller's unit test, the method returns its own result.
 *
 * @example
 * ```ts
 * @RxSse('sse')
 * sse(): Observable<MessageEvent> {
 *   return interval(1000).pipe(map(() => ({ data: { hello: 'world' } })));
 * }
 * ```
 */
export function RxSse(path?: string | string[], options?: RxSseRouteOptions): MethodDecorator {
  // Checked here, so a bad option fails when the controller is defined, not at the first request.
  checkPath(path);
  if (options !== undefined) checkRouteOptions(options);
  return (target, key, descriptor) => {
    const route = `${String(target.constructor.name)}.${String(key)}`;
    const original = descriptor?.value as unknown as (...args: unknown[]) => unknown;
    if (typeof original !== 'function')
      throw new TypeError(`@RxSse() decorates a method, and ${route} is not one`);
    // The method is wrapped to report its result to the stream; it receives the request and the
    // response as two more arguments, past its own (Nest's parameter decorators ran before this one).
    const requestIndex = Math.max(original.length, parameterCount(target, key));
    const wrapped = function (this: unknown, ...args: unknown[]) {
      const req = args[requestIndex];
      // Nest always passes the request and the response, last; a call without them is code calling
      // the method itself (a controller's unit test), which gets the method's own result, as with
      // `@Sse`. What it passes a default or rest parameter, which Nest never fills, is no request.
      if (args.length < requestIndex + 2 || typeof req !== 'object' || req === null)
        return original.apply(this, args);
      const handoff = findHandoff(req as object);
      if (!handoff) throw new RxsseModuleMissingError(route);
      // The response closed while Nest's pipes ran: the method would run for no one.
      if (handoff.abandoned) throw handoff.abandoned.reason;
      // What the method throws goes out through Nest's chain, as any route's exception.
      const result = original.apply(this, args.slice(0, requestIndex));
      // A HEAD went through guards, interceptors, pipes and the method as its GET; it gets no events.
      if (handoff.head) return handoff.reached(result, checkEventSource);
      return handoff.take(result, checkEventSource);
    };
    Object.defineProperty(wrapped, 'name', { value: original.name });
    for (const metadataKey of Reflect.getMetadataKeys(original)) {
      Reflect.defineMetadata(metadataKey, Reflect.getMetadata(metadataKey, original), wrapped);
    }
    // Replaced in place, not in a copy: Nest's `applyDecorators` ignores what a decorator returns,
    // and the class takes the descriptor it passed along.
    descriptor.value = wrapped as never;
    Req()(target, key, requestIndex);
    // Nest applies nothing of what the route resolves to once its method declares the response, not
    // to pass through: the stream answers, and the route can resolve as soon as it took over (left
    // pending, NestJS 12 holds its request on a keep-alive connection until that closes).
    Res()(target, key, requestIndex + 1);
    Reflect.defineMetadata(RESPONSE_PASSTHROUGH_METADATA, false, target.constructor, key);
    RequestMapping({
      path,
      method: options?.method === 'POST' ? RequestMethod.POST : RequestMethod.GET,
    } as RequestMappingMetadata)(target, key, descriptor);
    // Nest's default for a POST is 201; an `@HttpCode()` of the method's own is kept, for
    // `RxsseRuntime` to refuse when the app starts if it is not 200.
    if (Reflect.getMetadata(HTTP_CODE_METADATA, wrapped) === undefined)
      HttpCode(200)(target, key, descriptor);
    SetMetadata<string, RxSseRoute>(RXSSE_ROUTE, { options })(target, key, descriptor);
    // A `CacheInterceptor` would store each event under the URL and answer the next client with the
    // last one, then end: a reconnect loop of one stale event. A `@CacheKey()` of the method's own
    // stays.
    if (Reflect.getMetadata(CACHE_KEY_METADATA, wrapped) === undefined)
      SetMetadata(CACHE_KEY_METADATA, noCacheKey)(target, key, descriptor);
    return descriptor;
  };
}

function noCacheKey(): undefined {
  return undefined;
}

/** Options first, as in `@RxSse({ heartbeat })`, would be taken for the path and go unused. */
function checkPath(path: unknown): void {
  if (path === undefined || typeof path === 'string') return;
  if (Array.isArray(path) && path.every((each) => typeof each === 'string')) return;
  const got = Array.isArray(path) ? 'an array with a non-string' : describeValue(path);
  throw new TypeError(
    `@RxSse() takes a path (a string or an array of strings) first, got ${got}; options go second: @RxSse('path', options)`,
  );
}

function checkRouteOptions(options: RxSseRouteOptions): void {
  // What is no object of options (null, an array, a Map) would run on the module's unheard.
  checkOptionsObject(options, '@RxSse options');
  const { method, ...streamOptions } = options;
  checkOptionNames('@RxSse', options, ROUTE_OPTION_NAMES);
  // Any other method would be routed as GET, silently.
  if (method !== undefined && method !== 'GET' && method !== 'POST') {
    throw new TypeError(`method must be 'GET' or 'POST', got ${JSON.stringify(method)}`);
  }
  resolveStreamOptions(streamOptions);
}

function parameterCount(target: object, key: string | symbol): number {
  const args = (Reflect.getMetadata(ROUTE_ARGS_METADATA, target.constructor, key) ?? {}) as Record<
    string,
    { index: number }
  >;
  return Math.max(0, ...Object.values(args).map((arg) => arg.index + 1));
}

function streamContext(ctx: ExecutionContext) {
  const req = ctx.switchToHttp().getRequest<object>();
  return { req, handoff: findHandoff(req) };
}

/**
 * The id the client last saw: the `Last-Event-ID` header, else the `lastEventId` query parameter.
 *
 * @example
 * ```ts
 * @RxSse('feed')
 * feed(@LastEventId() lastEventId: string | undefined) {
 *   return this.chat.subscribe({ lastEventId });
 * }
 * ```
 */
export const LastEventId = createParamDecorator((_data: unknown, ctx: ExecutionContext) => {
  const { req, handoff } = streamContext(ctx);
  if (handoff) return handoff.context.lastEventId;
  const raw = (req as { raw?: object }).raw ?? req;
  return readLastEventId(raw as Parameters<typeof readLastEventId>[0]);
});

/**
 * The stream's `AbortSignal`: aborted when the response closes, whatever the reason (the client
 * left, the stream ended, the app shuts down). Named apart from Nest's own `@SseSignal()`, the one
 * an `@Sse()` route has: on any route but an `@RxSse()` one, the request fails with a `TypeError`.
 *
 * @example
 * ```ts
 * @RxSse('report')
 * async report(@RxSseSignal() signal: AbortSignal) {
 *   const rows = await this.db.query({ signal });
 *   return from(rows.map((row) => ({ data: row })));
 * }
 * ```
 */
export function RxSseSignal(...dataOrPipes: Parameters<typeof signalParam>): ParameterDecorator {
  const decorate = signalParam(...dataOrPipes);
  return (target, key, index) => {
    decorate(target, key, index);
    if (key !== undefined) typedAsObject(target, key, index);
  };
}

const signalParam = createParamDecorator((_data: unknown, ctx: ExecutionContext) => {
  const { handoff } = streamContext(ctx);
  if (handoff) return handoff.context.signal;
  if (Reflect.getMetadata(RXSSE_ROUTE, ctx.getHandler()) === undefined) {
    throw new TypeError(
      "@RxSseSignal() is for @RxSse() routes: an @Sse() route has Nest's own @SseSignal(), and any other route the request's own close",
    );
  }
  throw new RxsseModuleMissingError('with @RxSseSignal()');
});

/**
 * Declares parameter `index` of `target[key]` an `Object` to Nest's pipes, whatever its emitted
 * type: a pipe that validates custom parameters by their type (`ValidationPipe` with
 * `validateCustomDecorators`) would build an `AbortSignal` from the signal, which no one can
 * (`Illegal constructor`), and fail every request of the route.
 */
function typedAsObject(target: object, key: string | symbol, index: number): void {
  const types: unknown = Reflect.getMetadata?.(PARAM_TYPES, target, key);
  if (!Array.isArray(types) || types[index] === undefined || types[index] === Object) return;
  const declared = [...types];
  declared[index] = Object;
  Reflect.defineMetadata(PARAM_TYPES, declared, target, key);
}

/** The parameter types TypeScript emits for a decorated method (`emitDecoratorMetadata`). */
const PARAM_TYPES = 'design:paramtypes';
