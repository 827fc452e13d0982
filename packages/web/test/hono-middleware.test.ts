// One Hono app with Hono's own middleware registered for every route, on @hono/node-server, as an
// app that adds an SSE route keeps it: what each middleware does to the stream, its headers, its
// refusals and its client's leaving.
import { once } from 'node:events';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { serve } from '@hono/node-server';
import { createParser } from 'eventsource-parser';
import { Hono } from 'hono';
import { bearerAuth } from 'hono/bearer-auth';
import { bodyLimit } from 'hono/body-limit';
import { compress } from 'hono/compress';
import { cors } from 'hono/cors';
import { csrf } from 'hono/csrf';
import { logger } from 'hono/logger';
import { prettyJSON } from 'hono/pretty-json';
import { requestId } from 'hono/request-id';
import { secureHeaders } from 'hono/secure-headers';
import { timing } from 'hono/timing';
import { type Observable, Subject } from 'rxjs';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { rawRequests, waitFor } from '../../../test/support/clients.js';
import { captureConsoleErrors } from '../../../test/support/logged.js';
import { counted, metered } from '../../../test/support/recording.js';
import { sse } from '../src/index.js';

const ORIGIN = 'http://app.example';
type Event = { data: string };

describe('sse() on Hono behind its built-in middleware', () => {
  let url: string;
  let server: Server;
  const logged: string[] = [];
  const lines: string[] = [];
  let restoreConsole: () => void;
  /** The routes' metrics and closes, emptied before each test. */
  const plain = metered({ heartbeat: false, maxQueueBytes: 256 * 1024 });
  /** A route without `no-transform`, behind a compress() told to take event streams. */
  const gzipped = metered({ heartbeat: false, headers: { 'Cache-Control': 'no-cache' } });
  let events: Subject<Event>;
  let source: ReturnType<typeof counted<Event>>;
  let handled = 0;

  const events$ = (): Observable<Event> => {
    handled++;
    return source.observable;
  };

  beforeAll(async () => {
    restoreConsole = captureConsoleErrors(logged);
    const app = new Hono();
    app.use(
      '*',
      logger((line) => lines.push(line)),
      requestId(),
      timing(),
      secureHeaders(),
      cors({ origin: ORIGIN, allowHeaders: ['Last-Event-ID', 'Authorization'] }),
      csrf({ origin: ORIGIN }),
      bodyLimit({ maxSize: 64 }),
      compress(),
      prettyJSON(),
    );
    app.use('/private/*', bearerAuth({ token: 'secret' }));
    app.use('/gzip', compress({ contentTypeFilter: /^text\/event-stream/ }));
    const live = sse(events$, plain.options);
    app.on(['GET', 'POST'], ['/sse', '/private/sse'], (c) => live(c.req.raw));
    const compressed = sse(events$, gzipped.options);
    app.get('/gzip', (c) => compressed(c.req.raw));
    server = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' }) as Server;
    if (!server.listening) await once(server, 'listening');
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    // undici may keep a connection it opened and never sent a request on: close waits for no one.
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
    restoreConsole();
  });
  beforeEach(() => {
    expect(logged.splice(0)).toEqual([]);
    for (const route of [plain, gzipped]) {
      route.seen.splice(0);
      route.closes.splice(0);
    }
    handled = 0;
    events = new Subject();
    source = counted(events.asObservable());
  });

  /** Reads `response`'s events as they arrive, parsed. */
  const parsed = (response: Response) => {
    const received: string[] = [];
    const parser = createParser({ onEvent: (event) => received.push(event.data) });
    const reader = response.body!.getReader();
    const decoder = new TextDecoder();
    const reading = (async () => {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) return;
        parser.feed(decoder.decode(value, { stream: true }));
      }
    })().catch(() => {});
    return { received, reading };
  };

  it('streams each event as it comes, with every middleware header, and counts the client leaving', async () => {
    const abort = new AbortController();
    const response = await fetch(`${url}/sse?pretty`, {
      headers: { origin: ORIGIN, 'accept-encoding': 'gzip, deflate' },
      signal: abort.signal,
    });
    expect(response.status).toBe(200);
    const headers: Record<string, string> = {};
    response.headers.forEach((value, name) => {
      headers[name] = value;
    });
    expect(headers).toMatchObject({
      'content-type': 'text/event-stream',
      'cache-control': 'no-cache, no-transform',
      'access-control-allow-origin': ORIGIN,
      vary: 'Origin',
      'x-content-type-options': 'nosniff',
      'x-request-id': expect.stringMatching(/^[\w-]+$/),
      'server-timing': expect.stringMatching(/^total;dur=/),
    });
    expect(headers['content-encoding']).toBeUndefined();
    const { received, reading } = parsed(response);
    for (const data of ['one', 'two', 'three']) {
      events.next({ data });
      await waitFor(() => received.at(-1) === data, 2000, `event ${data}`);
    }
    expect(received).toEqual(['one', 'two', 'three']);
    abort.abort();
    await reading;
    await waitFor(() => plain.closes.length > 0, 2000, 'the close');
    expect([plain.seen, source.counts.active]).toEqual([['opened', 'closed:client'], 0]);
    expect(lines).toContainEqual(expect.stringMatching(/^--> GET \/sse\?pretty \S*200/));
  });

  it('leaves a request the middleware refuses to it: the handler never runs, nothing is counted', async () => {
    const preflight = await fetch(`${url}/sse`, {
      method: 'OPTIONS',
      headers: {
        origin: ORIGIN,
        'access-control-request-method': 'GET',
        'access-control-request-headers': 'last-event-id',
      },
    });
    expect([preflight.status, preflight.headers.get('access-control-allow-headers')]).toEqual([
      204,
      'Last-Event-ID,Authorization',
    ]);
    const unauthorized = await fetch(`${url}/private/sse`);
    expect([unauthorized.status, unauthorized.headers.get('www-authenticate')]).toEqual([
      401,
      'Bearer realm=""',
    ]);
    const tooLarge = await fetch(`${url}/sse`, {
      method: 'POST',
      body: 'x'.repeat(65),
      headers: { origin: ORIGIN },
    });
    expect(tooLarge.status).toBe(413);
    const forged = await fetch(`${url}/sse`, {
      method: 'POST',
      body: 'x',
      headers: { origin: 'http://evil.example' },
    });
    expect(forged.status).toBe(403);
    for (const refused of [preflight, unauthorized, tooLarge, forged]) await refused.body?.cancel();
    expect([handled, plain.seen, plain.closes]).toEqual([0, [], []]);
  });

  it('streams a POST whose chunked body bodyLimit() read and replaced, and still sees its client leave', async () => {
    const abort = new AbortController();
    const body = new Blob(['{"topic":"a"}']).stream();
    const response = await fetch(`${url}/private/sse`, {
      method: 'POST',
      body,
      duplex: 'half',
      headers: { origin: ORIGIN, authorization: 'Bearer secret', 'content-type': 'application/json' },
      signal: abort.signal,
    } as RequestInit);
    expect(response.status).toBe(200);
    const { received, reading } = parsed(response);
    events.next({ data: 'one' });
    await waitFor(() => received.length === 1, 2000, 'the event');
    abort.abort();
    await reading;
    await waitFor(() => plain.closes.length > 0, 2000, 'the close');
    expect([plain.seen, source.counts.active]).toEqual([['opened', 'closed:client'], 0]);
  });

  // cors() appends Vary after the route ran: Hono makes a new Response around the stream's body.
  it('keeps backpressure through the Response a middleware remade, and drops a client that stopped reading', async () => {
    const client = await rawRequests(
      url,
      [`GET /sse HTTP/1.1\r\nHost: 127.0.0.1\r\nOrigin: ${ORIGIN}\r\n\r\n`],
      false,
    );
    await waitFor(() => plain.seen.length > 0, 2000, 'the stream to open');
    const data = 'x'.repeat(64 * 1024);
    // One event a turn, each written before the next: only the client's full socket can fill the queue.
    for (let sent = 0; plain.closes.length === 0 && sent < 1000; sent++) {
      events.next({ data });
      await new Promise((resolve) => setImmediate(resolve));
    }
    expect([plain.seen, source.counts.active]).toEqual([['opened', 'closed:overflow'], 0]);
    client.destroy();
    await waitFor(() => logged.length > 0, 2000, 'the drop to be logged');
    expect(logged.splice(0)).toEqual([expect.stringContaining('SseStreamDroppedError')]);
  });

  it('sees its client leave through a compress() that pipes the stream through gzip', async () => {
    const abort = new AbortController();
    const response = await fetch(`${url}/gzip`, {
      headers: { 'accept-encoding': 'gzip' },
      signal: abort.signal,
    });
    expect([response.status, response.headers.get('content-encoding')]).toEqual([200, 'gzip']);
    const { reading } = parsed(response);
    events.next({ data: 'one' });
    abort.abort();
    await reading;
    await waitFor(() => gzipped.closes.length > 0, 2000, 'the close');
    expect([gzipped.seen, source.counts.active]).toEqual([['opened', 'closed:client'], 0]);
  });
});
