import { once } from 'node:events';
import { constants, createSecureServer, type Http2SecureServer } from 'node:http2';
import type { AddressInfo } from 'node:net';
import Router from '@koa/router';
import Koa, { type Context } from 'koa';
import { concat, from, map, NEVER, of } from 'rxjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../../../test/support/clients.js';
import {
  collectOver,
  h2Agent,
  h2Session,
  NAMED_EVENTS,
  NAMED_RECEIVED,
  NAMED_WIRE,
  namedEventsPage,
  readHttp1,
  readNamedEventsPage,
  readStream,
  recordWarnings,
  withInsecureBrowser,
} from '../../../test/support/http2-clients.js';
import { selfSignedCertificate } from '../../../test/support/tls.js';
import { type CloseReason, closeStreamsOnServerClose, sse } from '../src/index.js';

/** How the server saw one request. */
interface Seen {
  url: string;
  httpVersion: string;
  remotePort: number | undefined;
}

describe('koa adapter over HTTP/2 with TLS (http2.createSecureServer)', () => {
  const seen: Seen[] = [];
  const closes: CloseReason[] = [];
  const appErrors: unknown[] = [];
  const recorder = recordWarnings();
  let release: () => void = () => {};
  const released = new Promise<void>((resolve) => {
    release = resolve;
  });
  let server: Http2SecureServer | undefined;
  let url = '';

  function see(ctx: Context): void {
    seen.push({
      url: ctx.req.url ?? '',
      httpVersion: ctx.req.httpVersion,
      remotePort: ctx.req.socket?.remotePort,
    });
  }

  beforeAll(async () => {
    const { key, cert } = await selfSignedCertificate();
    const app = new Koa();
    app.on('error', (error) => appErrors.push(error));
    const router = new Router();
    router.get('/', (ctx) => {
      see(ctx);
      ctx.type = 'html';
      ctx.body = namedEventsPage('/sse?client=chromium');
    });
    router.get(
      '/sse',
      sse((ctx) => {
        see(ctx);
        return from(NAMED_EVENTS);
      }),
    );
    // One event right away, a second once the test releases every open stream at once.
    router.get(
      '/held',
      sse(
        (ctx) => {
          see(ctx);
          const done = from(released).pipe(map(() => ({ type: 'done', id: 'b', data: 'done' })));
          return concat(of({ type: 'ready', id: 'a', data: 'ready' }), done);
        },
        { heartbeat: false, onClose: (reason) => closes.push(reason) },
      ),
    );
    router.get(
      '/forever',
      sse(
        (ctx) => {
          see(ctx);
          return concat(of({ data: 'first' }), NEVER);
        },
        { heartbeat: false, onClose: (reason) => closes.push(reason) },
      ),
    );
    app.use(router.routes());
    server = createSecureServer({ key, cert, allowHTTP1: true }, app.callback());
    closeStreamsOnServerClose(server);
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    url = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  afterAll(async () => {
    release();
    const running = server;
    if (running) {
      await new Promise<void>((resolve) => running.close(() => resolve()));
    }
    recorder.stop();
  });

  const seenAt = (path: string) => seen.filter((s) => s.url === path);

  it("delivers named events with ids to undici's EventSource over h2", async () => {
    const agent = h2Agent();
    try {
      const received = await collectOver(agent, `${url}/sse`, ['greeting', 'tick', 'message'], 4);
      expect(received).toEqual(NAMED_RECEIVED);
    } finally {
      await agent.close();
    }
    expect(seenAt('/sse').map((s) => s.httpVersion)).toEqual(['2.0']);
  });

  it('sends no Connection header over h2, and the exact event stream', async () => {
    const session = await h2Session(url);
    try {
      expect(session.alpnProtocol).toBe('h2');
      const { headers, body } = await readStream(session, '/sse');
      expect(headers[':status']).toBe(200);
      expect(headers['content-type']).toBe('text/event-stream');
      expect(headers['cache-control']).toBe('no-cache, no-transform');
      expect(headers.connection).toBeUndefined();
      expect(headers['keep-alive']).toBeUndefined();
      expect(headers['transfer-encoding']).toBeUndefined();
      expect(body).toBe(NAMED_WIRE);
    } finally {
      session.close();
    }
  });

  it('holds 50 concurrent streams open on one connection', async () => {
    const before = seenAt('/held').length;
    const session = await h2Session(url);
    const clientPort = session.socket.localPort;
    try {
      const reads = Array.from({ length: 50 }, () => readStream(session, '/held'));
      // Every stream is open on the server before any of them may finish.
      await waitFor(() => seenAt('/held').length - before === 50, 10_000, '50 open streams');
      release();
      const results = await Promise.all(reads);
      for (const { headers, body } of results) {
        expect(headers[':status']).toBe(200);
        expect(headers.connection).toBeUndefined();
        expect(body).toBe('event: ready\nid: a\ndata: ready\n\nevent: done\nid: b\ndata: done\n\n');
      }
    } finally {
      session.close();
    }
    const held = seenAt('/held').slice(before);
    expect(new Set(held.map((s) => s.httpVersion))).toEqual(new Set(['2.0']));
    expect(new Set(held.map((s) => s.remotePort))).toEqual(new Set([clientPort]));
    await waitFor(() => closes.filter((r) => r === 'complete').length >= 50, 10_000, '50 completes');
  });

  it('ends only the stream a client cancels, and the connection stays usable', async () => {
    const session = await h2Session(url);
    try {
      const stream = session.request({ ':path': '/forever', accept: 'text/event-stream' });
      stream.setEncoding('utf8');
      const first = await new Promise<string>((resolve, reject) => {
        stream.once('data', resolve).once('error', reject);
      });
      expect(first).toBe('data: first\n\n');
      const before = closes.length;
      stream.close(constants.NGHTTP2_CANCEL);
      await waitFor(() => closes.length > before, 10_000, 'the server to see the cancel');
      expect(closes.slice(before)).toEqual(['client']);
      expect((await readStream(session, '/sse')).body).toBe(NAMED_WIRE);
    } finally {
      session.close();
    }
  });

  it('still serves HTTP/1.1 clients over TLS, with Connection: keep-alive', async () => {
    const { httpVersion, headers, body } = await readHttp1(`${url}/sse`);
    expect(httpVersion).toBe('1.1');
    expect(headers['content-type']).toBe('text/event-stream');
    expect(headers.connection).toBe('keep-alive');
    expect(body).toBe(NAMED_WIRE);
  });

  it("delivers named events with ids to Chromium's EventSource, page and stream over h2", async () => {
    const report = await withInsecureBrowser((page) => readNamedEventsPage(page, `${url}/`));
    expect(report.received).toEqual(NAMED_RECEIVED);
    expect(report.navigationProtocol).toBe('h2');
    expect(seenAt('/').map((s) => s.httpVersion)).toEqual(['2.0']);
    expect(new Set(seenAt('/sse?client=chromium').map((s) => s.httpVersion))).toEqual(new Set(['2.0']));
  });

  it('server.close() ends an open stream and closes the client session that stays open', async () => {
    const session = await h2Session(url);
    const stream = session.request({ ':path': '/forever', accept: 'text/event-stream' });
    stream.setEncoding('utf8');
    let body = '';
    stream.on('data', (chunk: string) => {
      body += chunk;
    });
    const ended = once(stream, 'end');
    await waitFor(() => body === 'data: first\n\n', 10_000, 'the first event');
    const sessionClosed = once(session, 'close');
    const before = closes.length;
    const running = server!;
    const closed = new Promise<void>((resolve) => running.close(() => resolve()));
    await ended;
    expect(closes.slice(before)).toEqual(['shutdown']);
    await sessionClosed;
    await closed;
    server = undefined;
  });

  it('reports no app errors and emits no process warnings (such as a dropped Connection header)', () => {
    expect(appErrors).toEqual([]);
    expect(recorder.warnings.map((w) => `${w.name}: ${w.message}`)).toEqual([]);
  });
});
