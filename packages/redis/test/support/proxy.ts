import { connect, createServer, type Server, type Socket } from 'node:net';

/** What runs before the next command it matches: see {@link RedisProxy.beforeNext}. */
interface Hook {
  matches: (command: string) => boolean;
  run: () => Promise<unknown>;
  resolve: (result: unknown) => void;
  reject: (error: unknown) => void;
}

/** One client connection through a {@link RedisProxy}. */
export class ProxiedConnection {
  /** `cut`: nothing passes either way, and nothing says so (a dead route). `hold`: Redis's replies wait. */
  #mode: 'pass' | 'cut' | 'hold' = 'pass';
  readonly #held: Buffer[] = [];
  /** Replies waiting for the bandwidth {@link limit} allows. */
  readonly #slow: Buffer[] = [];
  #pacer: ReturnType<typeof setInterval> | undefined;
  /** Bytes of Redis's replies passed on to the client so far. */
  passed = 0;
  /** The client's commands held while a hook runs, in order. */
  #queued: Buffer[] | undefined;

  constructor(
    readonly client: Socket,
    readonly upstream: Socket,
    hookFor: (command: string) => Hook | undefined = () => undefined,
  ) {
    client.on('data', (data) => {
      if (this.#mode === 'cut') return;
      if (this.#queued) {
        this.#queued.push(data);
        return;
      }
      const hook = hookFor(data.toString('latin1'));
      if (hook === undefined) {
        upstream.write(data);
        return;
      }
      const queued = [data];
      this.#queued = queued;
      const release = () => {
        this.#queued = undefined;
        for (const held of queued) if (this.#mode !== 'cut') upstream.write(held);
      };
      hook.run().then(
        (result) => {
          release();
          hook.resolve(result);
        },
        (error: unknown) => {
          release();
          hook.reject(error);
        },
      );
    });
    upstream.on('data', (data) => {
      if (this.#pacer !== undefined && this.#mode === 'pass') this.#slow.push(data);
      else if (this.#mode === 'pass') this.#pass(data);
      else if (this.#mode === 'hold') this.#held.push(data);
    });
    for (const [from, to] of [
      [client, upstream],
      [upstream, client],
    ] as const) {
      from.on('error', () => to.destroy());
      from.on('close', () => to.destroy());
    }
  }

  /** Cuts the connection off for good: it stays open, and carries nothing. */
  cut(): void {
    this.#mode = 'cut';
  }

  /** Passes Redis's replies on at about `bytesPerSecond`, as a slow link would. */
  limit(bytesPerSecond: number): void {
    const everyMs = 10;
    const share = Math.ceil((bytesPerSecond * everyMs) / 1000);
    this.#pacer = setInterval(() => {
      let budget = share;
      while (budget > 0 && this.#slow.length > 0) {
        const data = this.#slow[0]!;
        const part = data.subarray(0, budget);
        if (part.length === data.length) this.#slow.shift();
        else this.#slow[0] = data.subarray(budget);
        budget -= part.length;
        this.#pass(part);
      }
    }, everyMs);
    this.client.once('close', () => clearInterval(this.#pacer));
  }

  /** Holds Redis's replies back until {@link release}. */
  hold(): void {
    this.#mode = 'hold';
  }

  /** How many chunks of replies wait. */
  get holding(): number {
    return this.#held.length;
  }

  /** Passes the held replies on, and the next ones. */
  release(): void {
    this.#mode = 'pass';
    for (const data of this.#held.splice(0)) this.#pass(data);
  }

  #pass(data: Buffer): void {
    this.passed += data.length;
    this.client.write(data);
  }

  destroy(): void {
    clearInterval(this.#pacer);
    this.client.destroy();
    this.upstream.destroy();
  }
}

/**
 * A TCP proxy to a redis-server, for what a frozen server cannot show: one connection's replies held
 * back while the others flow, or a connection cut off silently while new ones get through.
 */
export class RedisProxy {
  /** Every connection accepted, in order: an engine opens its command connection first. */
  readonly connections: ProxiedConnection[] = [];
  /** New connections are cut off from the start. */
  cutNew = false;
  /** New connections hold Redis's replies back from the start, until released. */
  holdNew = false;
  /** New connections are closed as soon as they are accepted: Redis is unreachable. */
  dropNew = false;
  /** New connections pass Redis's replies on at about this many bytes a second (see `limit`). */
  limitNew: number | undefined;
  readonly #hooks: Hook[] = [];

  private constructor(readonly server: Server) {}

  /** A proxy to the redis-server on `port`, listening on `listenPort` (any free one by default). */
  static async start(port: number, listenPort = 0): Promise<RedisProxy> {
    const proxy: RedisProxy = new RedisProxy(
      createServer((client) => {
        const connection = new ProxiedConnection(client, connect(port, '127.0.0.1'), (command) => {
          const at = proxy.#hooks.findIndex((hook) => hook.matches(command));
          return at < 0 ? undefined : proxy.#hooks.splice(at, 1)[0];
        });
        if (proxy.dropNew) connection.destroy();
        else if (proxy.cutNew) connection.cut();
        else if (proxy.holdNew) connection.hold();
        if (proxy.limitNew !== undefined) connection.limit(proxy.limitNew);
        proxy.connections.push(connection);
      }),
    );
    await new Promise<void>((resolve) => proxy.server.listen(listenPort, '127.0.0.1', resolve));
    return proxy;
  }

  /**
   * Runs `run` before the next command any connection sends that `matches` (its bytes as text), and
   * holds that connection's commands meanwhile: another client's write lands between a command and
   * the one before it. Settles as `run` did, once the held commands went on.
   */
  beforeNext<T>(matches: (command: string) => boolean, run: () => Promise<T>): Promise<T> {
    return new Promise((resolve, reject) =>
      this.#hooks.push({ matches, run, resolve: resolve as (result: unknown) => void, reject }),
    );
  }

  /**
   * The connection of a live reader: the one whose last command Redis ran is an XREAD, as `admin`
   * (a client on that Redis, not through the proxy) lists them. Polled every 10 ms for at most 10 s.
   */
  async liveConnection(admin: {
    clientList(): Promise<{ cmd: string; addr: string }[]>;
  }): Promise<ProxiedConnection> {
    for (let waited = 0; ; waited += 10) {
      const reading = (await admin.clientList()).find((client) => client.cmd === 'xread');
      const live = this.connections.find(
        ({ upstream }) => `${upstream.localAddress}:${upstream.localPort}` === reading?.addr,
      );
      if (live) return live;
      if (waited > 10_000) throw new Error('timed out waiting for the live connection');
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  }

  /** Every connection, open and new, passes Redis's replies on at about `bytesPerSecond`. */
  limitAll(bytesPerSecond: number): void {
    this.limitNew = bytesPerSecond;
    for (const connection of this.connections) connection.limit(bytesPerSecond);
  }

  get url(): string {
    const address = this.server.address();
    if (address === null || typeof address === 'string') throw new Error('The proxy is not listening');
    return `redis://127.0.0.1:${address.port}`;
  }

  close(): void {
    for (const connection of this.connections) connection.destroy();
    this.server.close();
  }
}
