/** An `@RxSse` route ran without `RxsseModule` in the app: nothing would stream its events. */
export class RxsseModuleMissingError extends Error {
  override name = 'RxsseModuleMissingError';
  constructor(route: string) {
    super(
      `@RxSse() route ${route} ran without RxsseModule: import RxsseModule.forRoot() in the app's module`,
    );
  }
}

/**
 * Something answered an `@RxSse` route's request before its stream could start: the method through
 * `@Res()`, a guard or interceptor that wrote the response, or the platform (Fastify's
 * `handlerTimeout`). No stream is sent; that answer stands.
 */
export class RxsseResponseSentError extends Error {
  override name = 'RxsseResponseSentError';
  constructor(request: string) {
    super(
      `@RxSse() route ${request} was answered before its stream started (by the method through @Res(), a guard or interceptor, or a timeout of the platform): the stream writes the response itself, so none was sent`,
    );
  }
}
