import { once } from 'node:events';
import type { IncomingMessage } from 'node:http';
import { constants, type Http2ServerRequest } from 'node:http2';
import {
  allStreams,
  type CloseReason,
  heartbeatCount,
  type MessageEvent,
  StreamGroup,
  type StreamOptions,
} from '@rxsse/core';
import { concat, from, interval, map, NEVER, of, throwError } from 'rxjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { collected, Ledger } from './leaks.js';
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
  withInsecureBrowser,
} from './support/http2-clients.js';
import { selfSignedCertificate } from './support/tls.js';
import { recordWarnings } from './support/warnings.js';

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

/** A route of the churn test: how its client treats each stream, and why the stream must close. */
type H2ChurnRoute = Extract<TestRoute, { events: unknown }> & {
  reason: CloseReason;
  client: 'cancel' | 'read' | 'stall';
};

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
    const ledger = new Ledger();
    const quiet = new Promise<never>(() => {});
    const flood = () => interval(2).pipe(map(() => ({ data: 'f'.repeat(16 * 1024) })));
    /** Streams a client opens by the dozen on one session, each ending for its reason. */
    const churn = (
      [
        { path: '/churn/never', reason: 'client', client: 'cancel', events: () => NEVER },
        {
          path: '/churn/generator',
          reason: 'client',
          client: 'cancel',
          events: () =>
            (async function* (): AsyncGenerator<MessageEvent> {
              yield { data: 'first' };
              await quiet;
            })(),
        },
        { path: '/churn/complete', reason: 'complete', client: 'read', events: () => from([{ data: 'a' }]) },
        {
          path: '/churn/lifetime',
          reason: 'lifetime',
          client: 'read',
          events: () => NEVER,
          options: { maxLifetime: 50 },
        },
        {
          path: '/churn/overflow',
          reason: 'overflow',
          client: 'stall',
          events: flood,
          options: { maxQueueBytes: 256 * 1024, stallTimeout: false },
        },
        {
          path: '/churn/stall',
          reason: 'stall',
          client: 'stall',
          events: flood,
          options: { maxQueueBytes: 64 * 1024 * 1024, onOverflow: 'drop-oldest', stallTimeout: 100 },
        },
      ] satisfies H2ChurnRoute[]
    ).map((route): H2ChurnRoute => ({ ...route, options: ledger.options(route.path, route.options) }));

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
        // A route's own group, which nobody but the server's close ends.
        {
          path: '/own-group',
          options: { ...options, group: new StreamGroup() },
          events: () => concat(of({ data: 'first' }), NEVER),
        },
        {
          path: '/fails-at-once',
          options: ledger.options('/fails-at-once', {}),
          events: () => throwError(() => new Error('fails-at-once failed')),
        },
        ...churn,
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

    it('frees every stream of a session that cancels, reads or stalls them, whatever their close', async () => {
      const session = await h2Session(url);
      try {
        for (const route of churn) {
          const streams = Array.from({ length: 10 }, () =>
            session.request({ ':path': route.path, accept: 'text/event-stream' }),
          );
          for (const stream of streams) {
            stream.on('error', () => {});
            if (route.client === 'stall') stream.pause();
            else stream.resume();
          }
          await Promise.all(streams.map((stream) => once(stream, 'response')));
          if (route.client === 'cancel') {
            await waitFor(() => ledger.opened.get(route.path) === 10, 10_000, `${route.path} streams`);
            for (const stream of streams) stream.close(constants.NGHTTP2_CANCEL);
          }
          await waitFor(() => ledger.closes(route.path) === 10, 10_000, `${route.path} closes`);
          for (const stream of streams) stream.close(constants.NGHTTP2_CANCEL);
          expect(new Set(ledger.closed.get(route.path)), route.path).toEqual(new Set([route.reason]));
          expect(ledger.metricsClosed.get(route.path), route.path).toEqual(ledger.closed.get(route.path));
        }
      } finally {
        session.close();
      }
      expect(heartbeatCount()).toBe(0);
      expect(allStreams.size).toBe(0);
      expect(await collected(ledger.stats)).toBe(0);
    });

    it('answers a source that fails before its first message with the error status on its h2 stream', async () => {
      const session = await h2Session(url);
      try {
        const { headers, body } = await readStream(session, '/fails-at-once');
        expect(headers[':status']).toBe(500);
        expect(headers['content-type']).not.toBe('text/event-stream');
        expect(body).not.toContain('retry:');
        // The framework reports it, as a handler's throw; no stream opened, none is left open.
        expect(appErrors.splice(0)).toEqual([expect.stringContaining('fails-at-once failed')]);
        expect([ledger.opened.get('/fails-at-once'), ledger.closes('/fails-at-once'), ledger.errors]).toEqual(
          [undefined, 0, []],
        );
        expect([allStreams.size, heartbeatCount()]).toEqual([0, 0]);
        // The session goes on serving streams.
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

    it("server.close() ends the open streams, a route's own group's too, and closes the client session that stays open", async () => {
      const session = await h2Session(url);
      const bodies = ['/forever', '/own-group'].map((path) => {
        const stream = session.request({ ':path': path, accept: 'text/event-stream' });
        stream.setEncoding('utf8');
        const read = { text: '', ended: once(stream, 'end') };
        stream.on('data', (chunk: string) => {
          read.text += chunk;
        });
        return read;
      });
      await waitFor(() => bodies.every((b) => b.text === 'data: first\n\n'), 10_000, 'the first events');
      const sessionClosed = once(session, 'close');
      const before = closes.length;
      const running = server!;
      const closed = running.close();
      await Promise.all(bodies.map((b) => b.ended));
      expect(closes.slice(before)).toEqual(['shutdown', 'shutdown']);
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
