/** An `@RxSse` route ran without `RxsseModule` in the app: nothing would stream its events. */
export class RxsseModuleMissingError extends Error {
  override name = 'RxsseModuleMissingError';
  constructor(route: string) {
    super(
      `@RxSse() route ${route} ran without RxsseModule: import RxsseModule.forRoot() in the app's module`,
    );
  }
}
