import { once } from 'node:events';
import { type ClientHttp2Session, connect, type Http2Session, type IncomingHttpHeaders } from 'node:http2';
import { request as httpsRequest } from 'node:https';
import {
  type AddressInfo,
  createServer as createTcpServer,
  type Socket,
  connect as tcpConnect,
} from 'node:net';
import type { Page } from 'playwright-core';
import { Agent, EventSource } from 'undici';
import { expect, onTestFinished, vi } from 'vitest';
import { withBrowser } from './browser.js';
import { collectEvents, type Received, waitForReal } from './clients.js';

/** {@link withBrowser} for servers with a self-signed certificate. */
export function withInsecureBrowser<T>(body: (page: Page) => Promise<T>): Promise<T> {
  return withBrowser(body, { ignoreCertificateErrors: true });
}

/** An undici dispatcher that negotiates HTTP/2 and accepts a self-signed certificate. */
export function h2Agent(): Agent {
  return new Agent({ allowH2: true, connect: { rejectUnauthorized: false } });
}

/** Opens an undici EventSource over `dispatcher`, collects `count` events of `types`, then closes it. */
export function collectOver(
  dispatcher: Agent,
  url: string,
  types: string[],
  count: number,
): Promise<Received[]> {
  return collectEvents(EventSource, url, types, count, { node: { dispatcher } } as never);
}

/** Opens an HTTP/2 session to `url`, accepting a self-signed certificate, once it is connected. */
export function h2Session(url: string): Promise<ClientHttp2Session> {
  return new Promise((resolve, reject) => {
    const session = connect(url, { rejectUnauthorized: false });
    session.once('connect', () => {
      session.off('error', reject);
      resolve(session);
    });
    session.once('error', reject);
  });
}

/**
 * Opens `path` on a new HTTP/2 session to 127.0.0.1:`port` through a TCP proxy that stops passing
 * the server's bytes once the response began: the client takes no byte more, at the TCP level (a
 * node:http2 client always reads its socket, whatever its streams do), so not even a GOAWAY
 * reaches it. The session and the proxy go when the test finishes.
 */
export async function stalledStream(
  port: number,
  scheme: 'https' | 'http' = 'https',
  path = '/sse',
): Promise<void> {
  const sockets: Socket[] = [];
  const upstreams: Socket[] = [];
  const proxy = createTcpServer((client) => {
    const upstream = tcpConnect(port, '127.0.0.1');
    sockets.push(client, upstream);
    upstreams.push(upstream);
    client.pipe(upstream);
    upstream.pipe(client);
    for (const socket of [client, upstream]) socket.on('error', () => {});
  });
  proxy.listen(0, '127.0.0.1');
  await once(proxy, 'listening');
  const session = connect(`${scheme}://127.0.0.1:${(proxy.address() as AddressInfo).port}`, {
    rejectUnauthorized: false,
  });
  session.on('error', () => {});
  onTestFinished(() => {
    session.destroy();
    for (const socket of sockets) socket.destroy();
    proxy.close();
  });
  const stream = session.request({ ':path': path });
  stream.on('error', () => {});
  await once(stream, 'response');
  for (const upstream of upstreams) {
    upstream.unpipe();
    upstream.pause();
  }
}

/** One stream of a session read to its end: the response headers and the body as text. */
export interface H2Response {
  headers: IncomingHttpHeaders;
  body: string;
}

/** Opens one stream on `session` and reads it to its end. */
export function readStream(session: ClientHttp2Session, path: string): Promise<H2Response> {
  return new Promise((resolve, reject) => {
    const stream = session.request({ ':path': path, accept: 'text/event-stream' });
    let headers: IncomingHttpHeaders = {};
    let body = '';
    stream.setEncoding('utf8');
    stream.on('response', (h) => {
      headers = h;
    });
    stream.on('data', (chunk: string) => {
      body += chunk;
    });
    stream.on('end', () => resolve({ headers, body }));
    stream.on('error', reject);
  });
}

/** Reads `url` to its end over HTTPS with HTTP/1.1 (no ALPN h2), accepting a self-signed certificate. */
export function readHttp1(
  url: string,
): Promise<{ httpVersion: string; headers: IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(
      url,
      // As a browser asks: a client that says `Connection: close` is told so.
      {
        rejectUnauthorized: false,
        agent: false,
        headers: { accept: 'text/event-stream', connection: 'keep-alive' },
      },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          body += chunk;
        });
        res.on('end', () => resolve({ httpVersion: res.httpVersion, headers: res.headers, body }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end();
  });
}

/** A finite stream of named events with ids; the last one has no id, so it keeps the previous one. */
export const NAMED_EVENTS = [
  { type: 'greeting', id: 'g-1', data: 'hello' },
  { type: 'tick', id: '2', data: { n: 2 } },
  { id: '3', data: 'line one\nline two' },
  { type: 'tick', data: { n: 4 } },
];

/** What an EventSource dispatches for {@link NAMED_EVENTS}. */
export const NAMED_RECEIVED: Received[] = [
  { type: 'greeting', data: 'hello', lastEventId: 'g-1' },
  { type: 'tick', data: '{"n":2}', lastEventId: '2' },
  { type: 'message', data: 'line one\nline two', lastEventId: '3' },
  { type: 'tick', data: '{"n":4}', lastEventId: '3' },
];

/** The wire text of {@link NAMED_EVENTS}. */
export const NAMED_WIRE =
  'event: greeting\nid: g-1\ndata: hello\n\n' +
  'event: tick\nid: 2\ndata: {"n":2}\n\n' +
  'id: 3\ndata: line one\ndata: line two\n\n' +
  'event: tick\ndata: {"n":4}\n\n';

/**
 * A page whose EventSource reads `path` (expected to serve {@link NAMED_EVENTS}), closes it after
 * the fourth event, and keeps what it received in `window.received`.
 */
export function namedEventsPage(path: string): string {
  return `<!doctype html><meta charset="utf-8"><title>rxsse h2</title><script>
window.received = [];
const source = new EventSource(${JSON.stringify(path)});
for (const type of ['greeting', 'tick', 'message']) {
  source.addEventListener(type, (e) => {
    window.received.push({ type: e.type, data: e.data, lastEventId: e.lastEventId });
    if (window.received.length === 4) source.close();
  });
}
</script>`;
}

/** What the page of {@link namedEventsPage} saw: its events and how it and the stream were fetched. */
export interface PageReport {
  received: Received[];
  navigationProtocol: string | undefined;
}

/** Loads `url` (a {@link namedEventsPage}) and waits for its four events. */
export async function readNamedEventsPage(page: Page, url: string): Promise<PageReport> {
  await page.goto(url);
  await page.waitForFunction(() => (window as unknown as { received: unknown[] }).received.length >= 4);
  return page.evaluate(() => ({
    received: (window as unknown as { received: Received[] }).received,
    navigationProtocol: (
      performance.getEntriesByType('navigation')[0] as PerformanceNavigationTiming | undefined
    )?.nextHopProtocol,
  }));
}

/**
 * Runs `close()` (a server's, an app's) on a fake clock and checks that it completes at `deadline`
 * counted from when `started()` turns true: the stream of a client that reads nothing is destroyed
 * then, its session is sent the GOAWAY, and the session's connection is cut at once, not a deadline
 * later. `sessions`: the server's sessions, recorded as they begin.
 */
export async function expectCloseWithinDeadline(
  close: () => Promise<void>,
  started: () => boolean,
  sessions: Http2Session[],
  deadline: number,
): Promise<void> {
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance'] });
  onTestFinished(() => {
    vi.useRealTimers();
  });
  let closed = false;
  void close().then(() => {
    closed = true;
  });
  // Frameworks end the streams a few turns after their close began: the deadline's timer is set then.
  await waitForReal(started, 10_000, 'the close to begin');
  vi.advanceTimersByTime(deadline);
  // The sessions' cut is set once the streams' close has resolved. Their GOAWAY alone does not tell:
  // Node 24's own `close()` sends it as it begins.
  await waitForReal(
    () => sessions.every((session) => session.closed) && vi.getTimerCount() > 0,
    10_000,
    'the GOAWAY and the cut',
  );
  expect(closed).toBe(false);
  vi.advanceTimersByTime(10);
  await waitForReal(() => closed, 5_000, 'the close to complete');
}
