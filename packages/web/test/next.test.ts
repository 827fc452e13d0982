import { EventSource as UndiciEventSource } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { collectEvents, rawClient, readUntil, sleep } from '../../../test/support/clients.js';
import { type Child, freePort, startChild } from '../../../test/support/processes.js';
import { buildNextApp, next } from './runtime/runtime.js';
import { describeRuntimeContract } from './runtime-contract.js';

// One `next build` for every `next start` of this file. The README and Edge routes' servers start
// as soon as it is done, beside the contract's tests; each describe below waits for its own.
let readmeServer: Promise<[Child, string]>;
let edgeServer: Promise<[Child, string]>;
beforeAll(async () => {
  await buildNextApp();
  readmeServer = startNext('/events');
  edgeServer = startNext('/edge');
  // Awaited by their describe's beforeAll, which fails with them.
  readmeServer.catch(() => {});
  edgeServer.catch(() => {});
}, 180_000);
// Stops a server whose describe did not run; stopping one that is gone does nothing.
afterAll(async () => {
  await Promise.all(
    [readmeServer, edgeServer].map((server) =>
      server?.then(
        ([child]) => child.stop(),
        () => {},
      ),
    ),
  );
});

describeRuntimeContract(next);

/** `next start` as its own child, for a test that signals it, and the URL of `path` there. */
async function startNext(path: string): Promise<[Child, string]> {
  const port = await freePort();
  const [command, args] = next.command(port);
  const child = startChild(command, args, next.env);
  await child.waitFor(next.ready!, 30_000);
  return [child, `http://127.0.0.1:${port}${path}`];
}

describe('the README route on Next.js: `export const GET = sse(...)`, no route config', () => {
  let child: Child;
  let url: string;
  beforeAll(async () => {
    [child, url] = await readmeServer;
  });
  afterAll(() => child.stop());

  it('is served on demand, each event as it comes, long before the source completes', async () => {
    const received = await collectEvents(UndiciEventSource, url, ['message'], 4);
    expect(received.map((event) => event.data)).toEqual(['first', '0', '1', '2']);
  });

  it('is not compressed by next start for a client that accepts gzip, so nothing waits in zlib', async () => {
    const abort = new AbortController();
    const response = await fetch(url, { headers: { 'accept-encoding': 'gzip' }, signal: abort.signal });
    expect(response.headers.get('content-encoding')).toBeNull();
    const reader = (response.body as ReadableStream<Uint8Array>).getReader();
    expect(new TextDecoder().decode((await reader.read()).value)).toMatch(/^data: first\n\n/);
    abort.abort();
  });

  it('answers HEAD with the headers alone', async () => {
    const response = await fetch(url, { method: 'HEAD' });
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('text/event-stream');
    expect(await response.text()).toBe('');
  });

  it('ends its streams with the retry hint on SIGTERM, so that next start exits by itself', async () => {
    const response = await fetch(url);
    child.process.kill('SIGTERM');
    expect(await response.text()).toMatch(/^data: first\n\n(data: \d+\n\n)*retry: 1000\n\n$/);
    await child.exited;
    // 128 + 15: Next.js's own exit after SIGTERM, not the SIGKILL of a server that kept waiting.
    expect(child.process.exitCode).toBe(143);
  });
});

describe('SIGTERM on next start, with a client that reads nothing', () => {
  it('exits though the stream it dropped at the deadline keeps its connection', async () => {
    const [child, url] = await startNext('/stuck');
    try {
      // 25 MB at once, which the client never reads: the stream ends only at the shutdown's deadline.
      const client = await rawClient(url, { read: false });
      const active = new URL('/active', url).href;
      while ((await (await fetch(active)).json()) !== 1) await sleep(20);
      child.process.kill('SIGTERM');
      // The deadline (5 s), then the 6 s its `stop` gives the connections that ended to close.
      const exited = await Promise.race([child.exited.then(() => true), sleep(15_000).then(() => false)]);
      client.destroy();
      expect([exited, child.process.exitCode]).toEqual([true, 143]);
    } finally {
      await child.stop();
    }
  }, 30_000);
});

describe("the same route on the Edge runtime: `export const runtime = 'edge'`", () => {
  let child: Child;
  let url: string;
  beforeAll(async () => {
    [child, url] = await edgeServer;
  });
  afterAll(() => child.stop());

  it('is served each event as it comes', async () => {
    const received = await collectEvents(UndiciEventSource, url, ['message'], 4);
    expect(received.map((event) => event.data)).toEqual(['first', '0', '1', '2']);
  });

  it('counts a client that leaves as a client close', async () => {
    const closes = async (): Promise<string[]> => (await fetch(`${url}?closes`)).json();
    const before = (await closes()).length;
    await readUntil(url, (text) => text.includes('data: 2\n\n'), 5000);
    const deadline = Date.now() + 5000;
    while ((await closes()).length === before && Date.now() < deadline) await sleep(20);
    expect((await closes()).slice(before)).toEqual(['client']);
  });
});
