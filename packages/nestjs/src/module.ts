import {
  type DynamicModule,
  type FactoryProvider,
  Inject,
  Module,
  type ModuleMetadata,
  type NestModule,
} from '@nestjs/common';
import {
  APP_INTERCEPTOR,
  ApplicationConfig,
  DiscoveryModule,
  DiscoveryService,
  HttpAdapterHost,
} from '@nestjs/core';
import { resolveStreamOptions } from '@rxsse/core';
import { RxsseInterceptor } from './interceptor.js';
import { checkModuleOptions, RXSSE_MODULE_OPTIONS, type RxsseModuleOptions } from './options.js';
import { RxsseRuntime } from './runtime.js';

/** Options of `RxsseModule.forRootAsync()`: the module's options from a factory with injected dependencies. */
export interface RxsseModuleAsyncOptions {
  /** The modules whose providers `useFactory` is given. */
  imports?: ModuleMetadata['imports'] | undefined;
  useFactory: (...args: never[]) => RxsseModuleOptions | Promise<RxsseModuleOptions>;
  /** What `useFactory` is given, as a factory provider's `inject`: `{ token, optional: true }` included. */
  inject?: FactoryProvider['inject'] | undefined;
}

const providers = [
  {
    provide: RxsseRuntime,
    useFactory: (options: RxsseModuleOptions, adapterHost: HttpAdapterHost, discovery: DiscoveryService) =>
      new RxsseRuntime(options, adapterHost, discovery),
    inject: [RXSSE_MODULE_OPTIONS, HttpAdapterHost, DiscoveryService],
  },
  {
    provide: RxsseInterceptor,
    useFactory: (runtime: RxsseRuntime, config: ApplicationConfig) => new RxsseInterceptor(runtime, config),
    inject: [RxsseRuntime, ApplicationConfig],
  },
  { provide: APP_INTERCEPTOR, useExisting: RxsseInterceptor },
];

/**
 * Streams the app's `@RxSse` routes. Import it once, in the root module; its options are defaults
 * for every route, and `app.close()` ends open streams (reason `shutdown`) before the server closes.
 *
 * @example
 * ```ts
 * @Module({ imports: [RxsseModule.forRoot({ heartbeat: 15_000 })], controllers: [EventsController] })
 * export class AppModule {}
 * ```
 */
export class RxsseModule implements NestModule {
  constructor(private readonly interceptor: RxsseInterceptor) {}

  /**
   * Puts the module's interceptor outside every other app interceptor. Nest orders them as it
   * reads their modules, the root module first, so one the root module provides would otherwise
   * run inside and never see the events. Nest calls `configure` before it binds the routes.
   */
  configure(): void {
    this.interceptor.runFirst();
  }

  /**
   * @throws {RangeError} at once, naming the option, for a duration out of range.
   * @throws {TypeError} at once, naming the option, for one of the wrong type.
   */
  static forRoot(options: RxsseModuleOptions = {}): DynamicModule {
    checkModuleOptions(options);
    const { shutdown: _shutdown, logger: _logger, ...streamOptions } = options;
    resolveStreamOptions(streamOptions);
    return {
      module: RxsseModule,
      global: true,
      imports: [DiscoveryModule],
      providers: [{ provide: RXSSE_MODULE_OPTIONS, useValue: options }, ...providers],
      exports: [RxsseRuntime],
    };
  }

  /**
   * The module's options from a factory, e.g. metrics on a registry another module provides.
   * @example
   * ```ts
   * RxsseModule.forRootAsync({ useFactory: (config: ConfigService) => ({ heartbeat: config.get('HEARTBEAT') }), inject: [ConfigService] })
   * ```
   */
  static forRootAsync({ useFactory, inject = [], imports = [] }: RxsseModuleAsyncOptions): DynamicModule {
    return {
      module: RxsseModule,
      global: true,
      imports: [DiscoveryModule, ...imports],
      providers: [{ provide: RXSSE_MODULE_OPTIONS, useFactory, inject }, ...providers],
      exports: [RxsseRuntime],
    };
  }
}
Inject(RxsseInterceptor)(RxsseModule, undefined, 0);
Module({})(RxsseModule);
