import { once } from 'node:events';
import type { IncomingMessage } from 'node:http';
import { constants, type Http2ServerRequest } from 'node:http2';
import type { CloseReason, StreamOptions } from '@rxsse/core';
import { concat, from, map, NEVER, of } from 'rxjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from './support/clients.js';
import type { RunningServer, TestRoute } from './support/harness.js';
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
} from './support/http2-clients.js';
import { selfSignedCertificate } from './support/tls.js';

/** How the server saw one request. */
interface Seen {
  url: string;
  httpVersion: string;
  remotePort: number | undefined;
}

/** How the HTTP/2 suite starts a framework over TLS (with `allowHTTP1`) on 127.0.0.1. */
export interface Http2Harness {
  name: string;
  /**
   * Serves `routes` over HTTPS with HTTP/2, calling `onRequest` with the Node request of each.
   * `close()` is the framework's own graceful close, wired to end open streams.
   */
  start(
    tls: { key: Buffer; cert: Buffer },
    routes: TestRoute[],
    onRequest: (req: Http2ServerRequest | IncomingMessage) => void,
  ): Promise<RunningServer>;
}

/** The behaviour every adapter must have over HTTP/2 with TLS, with undici, node:http2 and Chromium. */
export function describeHttp2Contract(harness: Http2Harness): void {
  describe(`${harness.name} adapter over HTTP/2 with TLS`, () => {
    const seen: Seen[] = [];
    const closes: CloseReason[] = [];
    const recorder = recordWarnings();
    let release: () => void = () => {};
    const released = new Promise<void>((resolve) => {
      release = resolve;
    });
    let server: RunningServer | undefined;
    let appErrors: string[] = [];
    let url = '';
    const options: StreamOptions = { heartbeat: false, onClose: (reason) => closes.push(reason) };

    beforeAll(async () => {
      const routes: TestRoute[] = [
        { path: '/', html: namedEventsPage('/sse?client=chromium') },
        { path: '/sse', events: () => from(NAMED_EVENTS) },
        // One event right away, a second once the test releases every open stream at once.
        {
          path: '/held',
          options,
          events: () =>
            concat(
              of({ type: 'ready', id: 'a', data: 'ready' }),
              from(released).pipe(map(() => ({ type: 'done', id: 'b', data: 'done' }))),
            ),
        },
        { path: '/forever', options, events: () => concat(of({ data: 'first' }), NEVER) },
      ];
      server = await harness.start(await selfSignedCertificate(), routes, (req) =>
        seen.push({ url: req.url ?? '', httpVersion: req.httpVersion, remotePort: req.socket?.remotePort }),
      );
      url = server.url;
      appErrors = server.logged;
    });

    afterAll(async () => {
      release();
      await server?.close();
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
      const closed = running.close();
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
}
