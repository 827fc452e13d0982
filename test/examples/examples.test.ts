// Every Node example, run as a user runs it (`node server.mjs`, built packages), must serve its
// stream: a real EventSource receives one event, then the server stops on SIGTERM and exits cleanly.
// (The Bun and Deno examples run in the runtime tests of @rxsse/web.)
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { EventSource } from 'eventsource';
import { afterEach, describe, expect, it } from 'vitest';

const EXAMPLES = ['express', 'fastify', 'koa', 'nestjs', 'hono'];
const examplesDir = new URL('../../examples/', import.meta.url);

let child: ChildProcess | undefined;
afterEach(() => {
  // A failed test must not leave its server behind.
  if (child?.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  child = undefined;
});

/** Starts the example on a free port (PORT=0) and resolves to the URL it prints once listening. */
async function start(name: string): Promise<{ process: ChildProcess; url: string }> {
  const server = spawn(process.execPath, [new URL(`${name}/server.mjs`, examplesDir).pathname], {
    env: { ...process.env, PORT: '0' },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  child = server;
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

describe('examples', () => {
  for (const name of EXAMPLES) {
    it(`${name}: serves /sse, then stops on SIGTERM`, async () => {
      const { process: server, url } = await start(name);
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
