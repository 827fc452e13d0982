import type { LoggerService } from '@nestjs/common';
import {
  checkOptionNames,
  checkOptionsObject,
  checkShutdownOptions,
  type ShutdownOptions,
  STREAM_OPTION_NAMES,
  type StreamOptions,
} from '@rxsse/core';
import { checkLogger } from './logger.js';

/** Options of `RxsseModule.forRoot()`: defaults for every `@RxSse` route, and how `app.close()` ends streams. */
export interface RxsseModuleOptions extends StreamOptions {
  /** Retry hint, reconnect window and flush deadline used when the app closes. */
  shutdown?: ShutdownOptions | undefined;
  /**
   * Where this app's streams report what fails once they run (context `RxSse`). Nest keeps one
   * logger per process, which the app created or `useLogger()` last replaces, so two apps in one
   * process need this to keep their reports apart.
   * @defaultValue Nest's `Logger`, so `useLogger()` and `bufferLogs` apply
   */
  logger?: LoggerService | undefined;
}

/** Options of one `@RxSse` route: the module's, overridden, and the HTTP method. */
export interface RxSseRouteOptions extends StreamOptions {
  /**
   * The route's method. `POST` streams are for `fetch`-based clients (EventSource only sends GET).
   * @defaultValue `'GET'`
   */
  method?: 'GET' | 'POST' | undefined;
}

/** The DI token of the module's options, as `forRoot` or `forRootAsync` gave them. */
export const RXSSE_MODULE_OPTIONS = Symbol.for('rxsse.nestjs.moduleOptions');

/** Every name {@link RxsseModuleOptions} takes: the stream's, and the module's own two. */
export const MODULE_OPTION_NAMES = [...STREAM_OPTION_NAMES, 'shutdown', 'logger'];

/** Every name {@link RxSseRouteOptions} takes: the stream's, and the route's method. */
export const ROUTE_OPTION_NAMES = [...STREAM_OPTION_NAMES, 'method'];

/**
 * Checks the module's own options: at once from `forRoot`, from `forRootAsync`'s factory when the
 * app starts. What is no object is refused before it is taken apart: `true` would leave no option.
 * @throws {TypeError} for options that are no object, a name no option has, or a logger that is none.
 * @throws {RangeError} for a shutdown duration out of range.
 */
export function checkModuleOptions(options: unknown): asserts options is RxsseModuleOptions {
  checkOptionsObject(options, 'RxsseModule options');
  const { shutdown = {}, logger } = options as RxsseModuleOptions;
  // All names at once: the stream's check alone would miss "shutdown" in a misspelt "shutdwon".
  checkOptionNames('RxsseModule', options, MODULE_OPTION_NAMES);
  checkShutdownOptions(shutdown);
  checkLogger(logger);
}
