import { DisconnectsClientError, TimeoutError } from 'redis';
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
  /** The connection was dropped for a call that got no reply, and no new one is ready yet. */
  #dropped = false;
  /** Whether the dropped connection had been ready (else its handshake went unanswered). */
  #droppedReady = false;
  /** When the socket of the connection being set up connected, while its handshake waits. */
  #handshakeSince: number | undefined;

  constructor(
    readonly client: RedisClient,
    /** The longest a call may take, in ms. */
    readonly timeoutMs: number,
    /**
     * While commands may not be sent yet (a Cluster client refuses them until it has connected), a
     * promise of when they may.
     */
    private readonly connecting: () => Promise<void> | undefined = () => undefined,
    /**
     * A call got no reply in time while the client was connected, or while its handshake had gone
     * unanswered for as long: the connection may be dead without knowing it (a route gone, a peer
     * gone without a reset).
     */
    private readonly stalled: () => void = () => {},
  ) {
    const failed = (error: unknown) => {
      this.#lastError = error;
      this.#handshakeSince = undefined;
    };
    // A Cluster client reports its nodes' connection errors as `node-error`.
    client.on('error', failed);
    client.on('node-error', failed);
    client.on('connect', () => {
      this.#handshakeSince = Date.now();
    });
    client.on('ready', () => {
      this.#lastError = undefined;
      this.#dropped = false;
      this.#handshakeSince = undefined;
    });
  }

  /**
   * Whether the connection's socket connected at least {@link timeoutMs} ago and its handshake got
   * no answer since: node-redis bounds connecting, never the handshake, and waits for it for good.
   */
  get handshakeUnanswered(): boolean {
    return this.#handshakeWaited(this.timeoutMs);
  }

  #handshakeWaited(ms: number): boolean {
    return this.#handshakeSince !== undefined && Date.now() - this.#handshakeSince >= ms;
  }

  /**
   * `call`, or a {@link RedisTimeoutError} after `ms`. The command may still run later; nobody waits
   * for its outcome then. A function is called once the client is connected, within the same `ms`,
   * with `expired`, true once the call gave up: a function that sends more than one command stops.
   */
  run<T>(
    command: Promise<T> | ((client: RedisClient, expired: () => boolean) => Promise<T>),
    ms = this.timeoutMs,
  ): Promise<T> {
    let gaveUp = false;
    const call = typeof command === 'function' ? this.#start(command, () => gaveUp) : command;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const expired = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        gaveUp = true;
        reject(this.#timeout(ms));
      }, ms);
    });
    const settled = call.catch((error: unknown) => {
      if (error instanceof TimeoutError) throw this.#timeout(ms);
      // Dropped with the connection it waited on, which another call found silent for `timeoutMs`.
      if (error instanceof DisconnectsClientError && this.#dropped)
        throw new RedisTimeoutError(this.timeoutMs, this.#droppedReady);
      throw error;
    });
    return Promise.race([settled, expired]).finally(() => clearTimeout(timer));
  }

  /**
   * Sends at once when the client is connected: node-redis then starts its own timeout before this
   * one, and drops a command it could not write before this rejects, so a rejected publish cannot be
   * written later. Nor is one sent once connected if the caller gave up waiting meanwhile.
   */
  #start<T>(
    command: (client: RedisClient, expired: () => boolean) => Promise<T>,
    gaveUp: () => boolean,
  ): Promise<T> {
    const waiting = this.connecting();
    if (waiting === undefined) return command(this.client, gaveUp);
    return waiting.then(() => {
      if (gaveUp()) throw new Error('Not sent: the call timed out while the client connected');
      return command(this.client, gaveUp);
    });
  }

  #timeout(ms: number): RedisTimeoutError {
    const { isReady } = this.client;
    // node-redis bounds connecting, not the handshake after it (HELLO and the like): a connection
    // that opened and never got its answer (a proxy whose Redis is gone) would wait for good.
    if (isReady || this.#handshakeWaited(ms)) {
      this.#handshakeSince = undefined;
      this.#dropped = true;
      this.#droppedReady = isReady;
      this.stalled();
    }
    return new RedisTimeoutError(ms, isReady, isReady ? undefined : this.#lastError);
  }
}
