import type { Server } from 'node:http';
import {
  allClosed,
  type ResolvedStreamOptions,
  type ShutdownOptions,
  StreamGroup,
  shutdownDeadline,
} from '@rxsse/core';
import { AppServers, guardClientErrors, trackConnections, trackHttp2Sessions } from '@rxsse/node';
import type { FastifyInstance } from 'fastify';
import { withinHookTimeout } from './hook-timeout.js';

/**
 * What every context that registered the plugin on one server shares: an app split by feature
 * registers it in many sibling contexts, and a listener or a close of the server's own for each
 * would pass Node's listener limit (a leak warning) and end the same streams again in every hook.
 */
export interface AppShutdown {
  /** The servers the app's event-stream requests came through. */
  readonly servers: AppServers;
  /** The preClose hook of a context: the first to run ends every context's streams, the others wait. */
  preClose(): Promise<void>;
  /**
   * `options` while the app is open; once it closes, the same with a group that stays closing, so
   * that a request its hooks held past the close is turned away instead of streaming on an app
   * closed for good. A listening server is marked closing for that, but an injected request
   * (`app.inject()`) comes through none, and its route's group closes only while the hook runs.
   */
  whileOpen(options: ResolvedStreamOptions): ResolvedStreamOptions;
}

interface ServerShutdown {
  readonly servers: AppServers;
  /** The group and shutdown options of each context that registered the plugin. */
  readonly contexts: Map<StreamGroup, ShutdownOptions>;
  readonly closeSessions: (deadline?: number, startedAt?: number) => void;
  /** The first hook's work, bounded by its pluginTimeout; set once the app closes. */
  closing?: Promise<void>;
}

const byServer = new WeakMap<object, ServerShutdown>();

/** The shutdown of `app`'s server, with the context of `group` and its options joined to it. */
export function appShutdown(
  app: FastifyInstance,
  group: StreamGroup,
  shutdown: ShutdownOptions,
): AppShutdown {
  const server = app.server;
  let state = byServer.get(server);
  if (!state) {
    // Streams end first, then connections that never sent a request, then HTTP/2 client sessions
    // (those that take not even the GOAWAY are cut once the deadline has passed), so that
    // app.close() does not hang on them and completes within about the deadline.
    trackConnections(server);
    guardClientErrors(server as Server);
    // listen() on localhost serves its other addresses (::1) from servers of Fastify's own, which
    // app.server never sees: their streams are found by their requests.
    state = {
      servers: new AppServers(() => app.server),
      contexts: new Map(),
      closeSessions: trackHttp2Sessions(server),
    };
    byServer.set(server, state);
  }
  const shared = state;
  shared.contexts.set(group, shutdown);
  let closed: StreamGroup | undefined;
  return {
    servers: shared.servers,
    preClose: () => {
      shared.closing ??= closeAll(app, shared, group, shutdown);
      return shared.closing;
    },
    whileOpen: (options) => {
      if (!shared.closing) return options;
      closed ??= closedGroup(shutdown);
      return { ...options, group: closed };
    },
  };
}

/** A group closed by `shutdown` (its reconnect hint) that stays closing: a Fastify app never reopens. */
function closedGroup(shutdown: ShutdownOptions): StreamGroup {
  const group = new StreamGroup();
  // It holds no stream: the close ends at once, and keeps the options the hint is drawn from.
  void group.close(shutdown);
  group.closeUntil(new Promise(() => {}));
  return group;
}

/**
 * Ends the streams of every context, each group by its own options (the first to end the server's
 * streams would otherwise end them all by its own), then the server's sessions once the longest
 * deadline has passed, counted from the start.
 */
function closeAll(
  app: FastifyInstance,
  state: ServerShutdown,
  group: StreamGroup,
  shutdown: ShutdownOptions,
) {
  const startedAt = performance.now();
  const others = [...state.contexts].filter(([other]) => other !== group);
  const deadline = Math.max(...[...state.contexts.values()].map(shutdownDeadline));
  // Every group closes, and the sessions after them, though one's close() fails (a subclass's):
  // the hook then rejects with that failure, for Fastify to report.
  const closing = allClosed([
    ...others.map(async ([other, options]) => other.close(options)),
    state.servers.closeStreams(group, shutdown),
  ]).finally(() => state.closeSessions(deadline, startedAt));
  return withinHookTimeout(closing, app.initialConfig.pluginTimeout ?? 0, startedAt, app.log, app.server);
}
