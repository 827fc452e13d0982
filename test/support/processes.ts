import { type ChildProcess, spawn } from 'node:child_process';

export { freePort } from './ports.js';

/** Every child a test started: killed when the test process exits, whatever happened. */
const children = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of children) child.kill('SIGKILL');
});

/** Spawns a child whose stdout lines the test can wait for. */
export function startChild(
  command: string,
  args: string[],
  env: Record<string, string> = {},
  cwd?: string,
): Child {
  const child = spawn(command, args, {
    cwd,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.add(child);
  child.once('exit', () => children.delete(child));
  return new Child(child);
}

export class Child {
  /** Everything it wrote, stdout and stderr as they came. */
  output = '';
  /** What it wrote to stderr alone. */
  errors = '';
  readonly exited: Promise<void>;

  constructor(readonly process: ChildProcess) {
    this.exited = new Promise((resolve) => process.once('exit', () => resolve()));
    process.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
      this.output += chunk;
    });
    process.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
      this.output += chunk;
      this.errors += chunk;
    });
  }

  get running(): boolean {
    return this.process.exitCode === null && this.process.signalCode === null;
  }

  /** Resolves with the first match of `pattern` in the output; rejects if the child exits first. */
  async waitFor(pattern: RegExp, timeout = 15_000): Promise<RegExpMatchArray> {
    const deadline = Date.now() + timeout;
    for (;;) {
      const match = this.output.match(pattern);
      if (match) return match;
      if (!this.running) throw new Error(`child exited before printing ${pattern}:\n${this.output}`);
      if (Date.now() > deadline) throw new Error(`child did not print ${pattern} in time:\n${this.output}`);
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  }

  /** SIGKILL, and wait until it is gone. */
  async kill9(): Promise<void> {
    if (this.running) this.process.kill('SIGKILL');
    await this.exited;
  }

  /** SIGTERM, then SIGKILL if it is still there after `grace` ms. */
  async stop(grace = 3000): Promise<void> {
    if (!this.running) return;
    this.process.kill('SIGTERM');
    const timer = setTimeout(() => this.process.kill('SIGKILL'), grace);
    await this.exited;
    clearTimeout(timer);
  }
}
