import type { ShutdownOptions, StreamGroup } from '@rxsse/core';
import { markServerClosing } from './open-event-stream.js';
import { closeServerStreams } from './shutdown.js';

/**
 * The servers an app's event-stream requests come through, for an adapter's own shutdown hook.
 * An app may be served by servers it never hands out: on `localhost`, Fastify serves `::1` from a
 * second server, which `app.server` never sees and `app.close()` does not wait for. Noted from its
 * requests, such a server has its streams ended with the app's, and once the app closes, its
 * requests are turned away instead of starting streams that outlive the app.
 *
 * @example
 * ```ts
 * const servers = new AppServers(() => app.server);
 * // for each event-stream request:
 * servers.note((req.socket as { server?: object }).server);
 * // in the app's shutdown hook:
 * await servers.closeStreams(group, { retry: 2000 });
 * ```
 */
export class AppServers {
  readonly #main: () => object | undefined;
  readonly #others = new Set<object>();
  #closed = false;

  /** @param main the app's own server, read when needed: a framework may create it late. */
  constructor(main: () => object | undefined) {
    this.#main = main;
  }

  /**
   * Notes the server an event-stream request came through (`req.socket.server`). One first seen
   * after {@link closeStreams} is marked closing at once: its close is not the app's to wait for.
   */
  note(server: object | null | undefined): void {
    if (!server || this.#others.has(server) || server === this.#main()) return;
    this.#others.add(server);
    if (this.#closed) markServerClosing(server);
  }

  /**
   * Marks the app closed, and ends the streams of its server and of every server noted, and those
   * of `group`, as `closeServerStreams` does for each. Without a server of its own (a Nest
   * application context), it ends `group` alone.
   */
  async closeStreams(group: StreamGroup, shutdown: ShutdownOptions): Promise<void> {
    this.#closed = true;
    const main = this.#main();
    if (main === undefined) return group.close(shutdown);
    await Promise.all([main, ...this.#others].map((server) => closeServerStreams(server, group, shutdown)));
  }

  /** Marks the app open again, for one that listens again after a close: a server noted then streams. */
  reopen(): void {
    this.#closed = false;
  }
}
