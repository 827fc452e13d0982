import type { Server as HttpServer } from 'node:http';
import type { Server } from 'node:net';
import type { BeforeApplicationShutdown, OnApplicationBootstrap, OnModuleInit } from '@nestjs/common';
import { type DiscoveryService, type HttpAdapterHost, MetadataScanner } from '@nestjs/core';
import {
  overStreamOptions,
  type ResolvedStreamOptions,
  resolveStreamOptions,
  type ShutdownOptions,
  StreamGroup,
  type StreamOptions,
  shutdownDeadline,
} from '@rxsse/core';
import { AppServers, guardClientErrors, trackConnections, trackHttp2Sessions } from '@rxsse/node';
import { runBeforeClose } from './before-close.js';
import { RXSSE_ROUTE, type RxSseRoute } from './decorators.js';
import { type StreamErrorLog, streamErrorLog } from './logger.js';
import { checkModuleOptions, type RxSseRouteOptions, type RxsseModuleOptions } from './options.js';
import { markReplySends } from './reply-sends.js';
import { nestRouteHeaders } from './route-headers.js';

/**
 * One app's rxsse state: the defaults every route starts from, and the group of its open streams,
 * which `app.close()` ends before Nest closes the server: on NestJS 12 as it starts to close, before
 * any `onModuleDestroy` can release what the streams read.
 */
export class RxsseRuntime implements OnModuleInit, OnApplicationBootstrap, BeforeApplicationShutdown {
  readonly #base: StreamOptions;
  readonly #shutdown: ShutdownOptions;
  readonly #perRoute = new WeakMap<object, ResolvedStreamOptions>();
  readonly defaults: ResolvedStreamOptions;
  /** Where the app's streams report what fails once they run: the module's `logger`, else Nest's. */
  readonly logError: StreamErrorLog;
  #closeSessions: (deadline?: number, startedAt?: number) => void = () => {};
  #ending: Promise<void> | undefined;
  #hooked = false;
  /** The adapter's server and those besides it that requests came through. */
  readonly #servers = new AppServers(() => this.#server());

  constructor(
    moduleOptions: RxsseModuleOptions,
    private readonly adapterHost: HttpAdapterHost,
    private readonly discovery?: DiscoveryService,
  ) {
    // forRootAsync's options are first seen here, when the app starts.
    checkModuleOptions(moduleOptions);
    const { shutdown = {}, logger, ...options } = moduleOptions;
    this.logError = streamErrorLog(logger);
    this.#shutdown = shutdown;
    // Each app gets its own group, so closing one app never ends another app's streams; a bare
    // value a route's Observable emits is the data of an event, as with `@Sse()`. Options a config
    // leaves undefined keep these, where a spread would reset them to core's defaults.
    this.#base = overStreamOptions({ group: new StreamGroup(), bareValues: 'data' }, options);
    this.defaults = resolveStreamOptions(this.#base);
  }

  /**
   * A route's options over the module's, with what its `@Header()`s set, resolved once per route,
   * so the encode cache stays shared.
   * @throws {TypeError} naming the route, for Nest decorators its stream cannot honour.
   */
  optionsFor(
    route: object,
    routeOptions: RxSseRouteOptions | undefined,
    name?: string,
  ): ResolvedStreamOptions {
    let resolved = this.#perRoute.get(route);
    if (resolved) return resolved;
    const headers = nestRouteHeaders(route, name ?? (route as { name?: string }).name ?? 'anonymous');
    // The method is Nest's routing, checked with the route; the rest is the stream's.
    const { method: _method, ...options } = routeOptions ?? {};
    if (!routeOptions && !headers) resolved = this.defaults;
    else {
      const own = overStreamOptions(this.#base, options);
      resolved = resolveStreamOptions(headers ? { ...own, headers: { ...own.headers, ...headers } } : own);
    }
    this.#perRoute.set(route, resolved);
    return resolved;
  }

  /**
   * Resolves every `@RxSse` route of the app before the server listens, so a Nest decorator its
   * stream cannot honour (`@HttpCode(201)`, `@Header('Content-Type', 'text/plain')`) fails the
   * app's start, not each request.
   */
  onModuleInit(): void {
    const scanner = new MetadataScanner();
    for (const wrapper of this.discovery?.getControllers() ?? []) {
      const controller: unknown = wrapper.metatype;
      if (typeof controller !== 'function') continue;
      const methods = controller.prototype as Record<string, unknown>;
      for (const key of scanner.getAllMethodNames(methods)) {
        const handler = methods[key] as object;
        const route = Reflect.getMetadata(RXSSE_ROUTE, handler) as RxSseRoute | undefined;
        if (route) this.optionsFor(handler, route.options, `${controller.name}.${key}`);
      }
    }
  }

  onApplicationBootstrap(): void {
    const adapter = this.adapterHost.httpAdapter;
    if (adapter && !this.#hooked) {
      this.#hooked = true;
      runBeforeClose(adapter, () => this.#endStreams());
      markReplySends(adapter);
    }
    const server = this.#server();
    if (!server) return;
    server.on('listening', () => this.#servers.reopen());
    // Its close would wait on a connection that never sends a request.
    trackConnections(server);
    this.#closeSessions = trackHttp2Sessions(server);
    // Fastify's clientError handler would write a raw 400 into a live stream.
    guardClientErrors(server as HttpServer);
  }

  /**
   * Runs before Nest closes the server: streams end first, so its close does not wait on them. On
   * NestJS 12 they ended already, from the adapter's `beforeClose`; NestJS 11 has no such step.
   */
  async beforeApplicationShutdown(): Promise<void> {
    try {
      await this.#endStreams();
    } finally {
      // The next close (of an app started again) ends its streams anew.
      this.#ending = undefined;
    }
  }

  /**
   * Notes the server a stream request came through. On `localhost`, Fastify serves `::1` from a
   * server of its own, whose close `app.close()` does not wait for: its streams end with the app's,
   * and once the app closes, its requests are turned away instead of streams outliving the app.
   */
  noteServer(server: object | undefined): void {
    this.#servers.note(server);
  }

  /** Ends the server's streams once per close, whichever hook comes first. */
  #endStreams(): Promise<void> {
    this.#ending ??= this.#closeStreams();
    return this.#ending;
  }

  async #closeStreams(): Promise<void> {
    const startedAt = performance.now();
    await this.#servers.closeStreams(this.defaults.group, this.#shutdown);
    // A session that takes not even the GOAWAY is cut once the deadline, counted from the close's
    // start, has passed: the whole close completes within about the deadline.
    this.#closeSessions(shutdownDeadline(this.#shutdown), startedAt);
  }

  #server(): Server | undefined {
    const server: unknown = this.adapterHost.httpAdapter?.getHttpServer();
    return typeof (server as Partial<Server> | undefined)?.on === 'function' ? (server as Server) : undefined;
  }
}
