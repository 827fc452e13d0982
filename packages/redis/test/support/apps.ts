import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { type Child, startChild } from '../../../../test/support/processes.js';

const packages = fileURLToPath(new URL('../../../', import.meta.url));
const BUILT = ['core', 'node', 'express', 'fastify', 'redis'];

/** The child apps import the built packages: fail with a clear message if they are not built. */
export function assertBuilt(): void {
  const missing = BUILT.filter((name) => !existsSync(`${packages}${name}/dist/index.mjs`));
  if (missing.length > 0)
    throw new Error(
      `build the packages first (npx -y pnpm@10.34.8 -r --filter './packages/*' run build): ${missing.join(', ')}`,
    );
}

export type Framework = 'express' | 'fastify';

/** One app process (Express or Fastify) on the Redis channel, restartable on the same port. */
export class AppProcess {
  #child: Child | undefined;
  port = 0;

  constructor(
    readonly framework: Framework,
    /**
     * `REDIS_URL`, or `REDIS_CLUSTER` (root node URLs, comma-separated); `PARTITIONS` runs the
     * many-topics mode with that many partitions; `COMMAND_TIMEOUT_MS` (1000 by default).
     */
    private readonly env: {
      REDIS_URL?: string;
      REDIS_CLUSTER?: string;
      TOPIC: string;
      PARTITIONS?: string;
      COMMAND_TIMEOUT_MS?: string;
    },
  ) {}

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  get output(): string {
    return this.#child?.output ?? '';
  }

  /** Starts the app (again, on the port it had, once it had one). */
  async start(): Promise<this> {
    const script = fileURLToPath(new URL(`../fixtures/${this.framework}-app.mjs`, import.meta.url));
    this.#child = startChild(process.execPath, [script], { ...this.env, PORT: String(this.port) });
    this.port = Number((await this.#child.waitFor(/listening on (\d+)/))[1]);
    return this;
  }

  /** Publishes through this app's POST /publish. */
  async publish(text: string): Promise<{ status: number; id?: string; error?: string }> {
    const response = await fetch(`${this.url}/publish`, {
      method: 'POST',
      headers: { 'content-type': 'text/plain' },
      body: text,
    });
    return { status: response.status, ...((await response.json()) as { id?: string; error?: string }) };
  }

  async kill9(): Promise<void> {
    await this.#child?.kill9();
  }

  async stop(): Promise<void> {
    await this.#child?.stop();
  }
}
