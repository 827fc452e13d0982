import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Child, freePort, startChild } from './processes.js';

/** A real redis-server on 127.0.0.1, owned by one test file. */
export class RedisServer {
  #child: Child | undefined;

  private constructor(
    readonly port: number,
    /** Its working directory: where the append-only file lives when persistence is on. */
    readonly dir: string,
    /** More of redis-server's options, as `--name value` arguments (`--rename-command EVAL ''`). */
    readonly args: readonly string[],
  ) {}

  /** Starts redis-server on a free port, in a fresh temporary directory. */
  static async start({ persistent = false, args = [] as readonly string[] } = {}): Promise<RedisServer> {
    const server = new RedisServer(await freePort(), mkdtempSync(join(tmpdir(), 'rxsse-redis-')), args);
    await server.restart({ persistent });
    return server;
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  /** The same server through its Unix socket, as a `unix:` URL. */
  get socketUrl(): string {
    return `unix://${join(this.dir, 'redis.sock')}`;
  }

  /**
   * (Re)starts the server on the same port and directory. `persistent` turns the append-only file on
   * with `appendfsync always`, so every acknowledged write survives a `kill -9`; without it the
   * server starts empty.
   */
  async restart({ persistent }: { persistent: boolean }): Promise<void> {
    if (this.#child?.running) throw new Error('redis-server is already running');
    const args = ['--port', String(this.port), '--bind', '127.0.0.1', '--dir', this.dir, '--save', ''];
    // DEBUG RELOAD makes Redis answer LOADING for as long as a test wants, as a restart would.
    args.push('--enable-debug-command', 'local', '--unixsocket', join(this.dir, 'redis.sock'));
    args.push(...(persistent ? ['--appendonly', 'yes', '--appendfsync', 'always'] : ['--appendonly', 'no']));
    args.push(...this.args);
    this.#child = startChild('redis-server', args);
    await this.#child.waitFor(/Ready to accept connections/);
  }

  /** `kill -STOP`: the server keeps its connections open and answers nothing until {@link resume}. */
  pause(): void {
    this.#child?.process.kill('SIGSTOP');
  }

  /** `kill -CONT` after {@link pause}. */
  resume(): void {
    this.#child?.process.kill('SIGCONT');
  }

  /** `kill -9`: no shutdown, no final save. */
  async kill9(): Promise<void> {
    await this.#child?.kill9();
  }

  /** Stops the server and removes its directory. */
  async stop(): Promise<void> {
    await this.#child?.kill9();
    rmSync(this.dir, { recursive: true, force: true });
  }
}
