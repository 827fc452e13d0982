export type { CloseReason, MessageEvent, StreamOptions, TypedMessageEvent } from '@rxsse/core';
export type { EventContext } from '@rxsse/node';
export { LastEventId, RXSSE_ROUTE, RxSse, type RxSseRoute, RxSseSignal } from './decorators.js';
export { RxsseModuleMissingError, RxsseResponseSentError } from './errors.js';
export { RxsseInterceptor } from './interceptor.js';
export { RxsseModule, type RxsseModuleAsyncOptions } from './module.js';
export { RXSSE_MODULE_OPTIONS, type RxSseRouteOptions, type RxsseModuleOptions } from './options.js';
export { RxsseRuntime } from './runtime.js';
