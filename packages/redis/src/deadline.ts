import { TimeoutError } from 'redis';
import type { RedisClient } from './client.js';
import { RedisTimeoutError } from './errors.js';

/**
 * A node-redis client whose calls all settle in time. node-redis times a command out only while it
 * waits to be written (and not MULTI at all): once written, a frozen Redis or a silently dead
 * connection would hold it forever.
 */
export class TimedClient {
  /** Why the client is not connected, while it is not. */
  #lastError: unknown;

  constructor(
    readonly client: RedisClient,
    /** The longest a call may take, in ms. */
    readonly timeoutMs: number,
    /** Resolves once commands may be sent (a Cluster client refuses them until it has connected). */
    private readonly connected: () => Promise<void> = () => Promise.resolve(),
  ) {
    const failed = (error: unknown) => {
      this.#lastError = error;
    };
    // A Cluster client reports its nodes' connection errors as `node-error`.
    client.on('error', failed);
    client.on('node-error', failed);
    client.on('ready', () => {
      this.#lastError = undefined;
    });
  }

  /**
   * `call`, or a {@link RedisTimeoutError} after `ms`. The command may still run later; nobody waits
   * for its outcome then. A function is called once the client is connected, within the same `ms`.
   */
  run<T>(command: Promise<T> | ((client: RedisClient) => Promise<T>), ms = this.timeoutMs): Promise<T> {
    const call = typeof command === 'function' ? this.connected().then(() => command(this.client)) : command;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const expired = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(this.#timeout(ms)), ms);
    });
    const settled = call.catch((error: unknown) => {
      throw error instanceof TimeoutError ? this.#timeout(ms) : error;
    });
    return Promise.race([settled, expired]).finally(() => clearTimeout(timer));
  }

  #timeout(ms: number): RedisTimeoutError {
    const { isReady } = this.client;
    return new RedisTimeoutError(ms, isReady, isReady ? undefined : this.#lastError);
  }
}
