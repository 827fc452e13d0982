// Every example, run as a user runs it (`node server.mjs`, `bun server.mjs`, `deno run ...`, built
// packages), must serve its stream: a real EventSource receives one event, then the server stops
// on SIGTERM and exits cleanly.
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { EventSource } from 'eventsource';
import { describe, expect, it } from 'vitest';
import { freePorts } from '../support/ports.js';
import { bunExecutable, denoExecutable } from '../support/runtimes.js';

const examplesDir = new URL('../../examples/', import.meta.url);
const node = () => [process.execPath, 'server.mjs'];
/** Each example and its command, as its README or package.json gives it (run in its folder). */
const EXAMPLES: Record<string, (dir: URL) => string[]> = {
  express: node,
  fastify: node,
  koa: node,
  nestjs: node,
  hono: node,
  bun: (dir) => [bunExecutable(dir), 'server.mjs'],
  deno: (dir) => [
    denoExecutable(dir),
    'run',
    '--unstable-no-legacy-abort',
    '--allow-net=127.0.0.1',
    '--allow-read',
    '--allow-env',
    'server.mjs',
  ],
};

/** A failed test must not leave its server behind. */
function killedAfterTest(child: ChildProcess, onTestFinished: (fn: () => void) => void): void {
  onTestFinished(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
}

/** Starts the example on a free port (PORT=0) and resolves to the URL it prints once listening. */
async function start(
  name: string,
  onTestFinished: (fn: () => void) => void,
): Promise<{ process: ChildProcess; url: string }> {
  const dir = new URL(`${name}/`, examplesDir);
  const [command, ...args] = EXAMPLES[name]!(new URL('package.json', dir));
  const server = spawn(command!, args, {
    cwd: dir,
    env: { ...process.env, PORT: '0' },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  killedAfterTest(server, onTestFinished);
  const exited = once(server, 'exit').then(([code]) => {
    throw new Error(`${name} exited with ${code} before it listened`);
  });
  const lines = createInterface({ input: server.stdout! });
  const listening = once(lines, 'line').then(([line]) => String(line));
  const url = await Promise.race([listening, exited]);
  exited.catch(() => {});
  return { process: server, url };
}

/** Resolves to the first event of the example's `/sse` stream. */
function firstEvent(url: string): Promise<{ type: string; data: string; lastEventId: string }> {
  const source = new EventSource(new URL('sse', url));
  return new Promise((resolve, reject) => {
    const received = (event: MessageEvent) => {
      source.close();
      resolve({ type: event.type, data: event.data, lastEventId: event.lastEventId });
    };
    source.addEventListener('message', received);
    source.addEventListener('tick', received);
    source.onerror = () => {
      source.close();
      reject(new Error(`${url}sse: the stream failed before its first event`));
    };
  });
}

// Side by side: each example spends most of its test waiting for its first event, a second after
// it connects, and each has a port and a process of its own.
describe.concurrent('examples', () => {
  for (const name of Object.keys(EXAMPLES)) {
    it(`${name}: serves /sse, then stops on SIGTERM`, async ({ expect, onTestFinished }) => {
      const { process: server, url } = await start(name, onTestFinished);
      expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/);

      const event = await firstEvent(url);
      expect(event).toMatchObject({ type: 'message', lastEventId: '1' });
      expect(JSON.parse(event.data)).toMatchObject({ hello: 'world' });

      const exit = once(server, 'exit');
      server.kill('SIGTERM');
      expect(await exit).toEqual([0, null]);
    });
  }
});

describe('the demo', () => {
  it('starts every Node example side by side, each serving /sse, and stops them all on SIGTERM', async ({
    onTestFinished,
  }) => {
    // The demo takes base + 1 to base + 5: ports from this worker's own slice, as every server's.
    const base = (await freePorts(5)) - 1;
    const demo = spawn(process.execPath, ['demo.mjs'], {
      cwd: examplesDir,
      env: { ...process.env, PORT_BASE: String(base) },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    killedAfterTest(demo, onTestFinished);
    const exited = once(demo, 'exit').then(([code]) => {
      throw new Error(`the demo exited with ${code} before it listened`);
    });
    exited.catch(() => {});
    const urls: Record<string, string> = {};
    const listed = (async () => {
      for await (const line of createInterface({ input: demo.stdout! })) {
        if (line.startsWith('Each page')) return;
        const [name, url] = line.trim().split(/\s+/);
        if (name && url) urls[name] = url;
      }
    })();
    await Promise.race([listed, exited]);

    const ports = Array.from({ length: 5 }, (_, i) => `http://127.0.0.1:${base + i + 1}/`);
    expect(urls).toEqual({
      Express: ports[0],
      Fastify: ports[1],
      Koa: ports[2],
      NestJS: ports[3],
      Hono: ports[4],
    });
    const events = await Promise.all(Object.values(urls).map(firstEvent));
    for (const event of events) expect(JSON.parse(event.data)).toMatchObject({ hello: 'world' });

    const exit = once(demo, 'exit');
    demo.kill('SIGTERM');
    expect(await exit).toEqual([0, null]);
  });
});
