// The Node transport over HTTP/2 with TLS, where a shutdown must close client sessions too.
import { once } from 'node:events';
import {
  type ClientHttp2Session,
  connect,
  constants,
  createSecureServer,
  type Http2SecureServer,
  type Http2ServerRequest,
  type Http2ServerResponse,
  type Http2Session,
  type ServerHttp2Session,
  type ServerHttp2Stream,
} from 'node:http2';
import { type AddressInfo, type Socket, connect as tcpConnect } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { connect as tlsConnect } from 'node:tls';
import { allStreams, heartbeatCount, resolveStreamOptions, StreamGroup, streamEvents } from '@rxsse/core';
import { concat, from, interval, map, NEVER, range, Subject, throwError } from 'rxjs';
import { describe, expect, it, onTestFinished, vi } from 'vitest';
import { waitFor, waitForReal } from '../../../test/support/clients.js';
import {
  expectCloseWithinDeadline,
  h2Session,
  readStream,
  stalledStream,
} from '../../../test/support/http2-clients.js';
import { type Closed, metered, neverYielding, recording } from '../../../test/support/recording.js';
import { selfSignedCertificate } from '../../../test/support/tls.js';
import { recordWarnings } from '../../../test/support/warnings.js';
import {
  closeStreamsOnServerClose,
  NodeSink,
  openEventStream,
  trackHttp2Sessions,
  watchResponseClose,
} from '../src/index.js';
import { listenAgain } from './serve.js';

describe('closeStreamsOnServerClose on HTTP/2', () => {
  it('completes server.close() when a client reads nothing at all, not even the GOAWAY', async () => {
    const group = new StreamGroup();
    const { options, closes } = recording({
      group,
      heartbeat: false,
      stallTimeout: false,
      maxQueueBytes: 64 * 1024 * 1024,
    });
    const resolved = resolveStreamOptions(options);
    // Far more than the socket and the stream's window take: the rest waits in the queue.
    const flood = () => concat(range(0, 64).pipe(map(() => ({ data: 'x'.repeat(64 * 1024) }))), NEVER);
    const server = createSecureServer(
      { ...(await selfSignedCertificate()), allowHTTP1: true },
      (req, res) => {
        void openEventStream(req, res, flood, resolved);
      },
    );
    closeStreamsOnServerClose(server, { group, deadline: 200 });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    await stalledStream((server.address() as AddressInfo).port);
    await waitFor(() => group.queuedBytes > 0, 10_000, 'bytes queued for the client');

    let closed = false;
    server.close(() => {
      closed = true;
    });
    // The stream is destroyed at the deadline; the session may take as long again to say GOAWAY.
    await waitFor(() => closed, 10_000, 'server.close() to complete');
    expect(closes.map((c) => c.reason)).toEqual(['shutdown']);
  });
});

/**
 * A TLS HTTP/2 server closed with `deadline`, whose one client reads nothing, not even the GOAWAY:
 * its stream holds far more than the socket and the stream's window take, the rest queued.
 */
async function serveStalledClient(deadline: number) {
  const group = new StreamGroup();
  const resolved = resolveStreamOptions({
    group,
    heartbeat: false,
    stallTimeout: false,
    maxQueueBytes: 64 * 1024 * 1024,
  });
  const flood = () => concat(range(0, 64).pipe(map(() => ({ data: 'x'.repeat(64 * 1024) }))), NEVER);
  const server = createSecureServer({ ...(await selfSignedCertificate()), allowHTTP1: true }, (req, res) => {
    void openEventStream(req, res, flood, resolved);
  });
  closeStreamsOnServerClose(server, { group, deadline });
  const sessions: Http2Session[] = [];
  server.on('session', (session) => sessions.push(session));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  await stalledStream((server.address() as AddressInfo).port);
  await waitFor(() => group.queuedBytes > 0, 10_000, 'bytes queued for the client');
  return { server, group, sessions };
}

describe('closeStreamsOnServerClose on HTTP/2: the deadline', () => {
  it('bounds the whole close, the cut of a session that reads nothing included', async () => {
    const deadline = 60_000;
    const { server, group, sessions } = await serveStalledClient(deadline);
    const close = () => new Promise<void>((resolve) => server.close(() => resolve()));
    await expectCloseWithinDeadline(close, () => group.closing, sessions, deadline);
  });

  it("keeps the first close()'s deadline when close() is called again meanwhile (SIGTERM, then SIGINT)", async () => {
    const deadline = 1000;
    const { server, group } = await serveStalledClient(deadline);
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance'] });
    onTestFinished(() => {
      vi.useRealTimers();
    });
    let closed = false;
    server.close(() => {
      closed = true;
    });
    await waitForReal(() => group.closing, 10_000, 'the close to begin');
    vi.advanceTimersByTime(800);
    server.close();
    vi.advanceTimersByTime(deadline - 800);
    // The cut is due now, not `deadline` after the second close(): the fake clock goes on a little,
    // the sockets' real events given time in between.
    for (let step = 0; step < 20 && !closed; step++) {
      await sleep(20);
      vi.advanceTimersByTime(10);
    }
    expect(closed).toBe(true);
  });
});

describe('closeStreamsOnServerClose on HTTP/2: a handler still setting up at the deadline', () => {
  it('turns its client away with the retry hint before the cut of its session, due by then', async () => {
    const resolved = resolveStreamOptions({ group: new StreamGroup(), heartbeat: false });
    let began = false;
    const server = createSecureServer(
      { ...(await selfSignedCertificate()), allowHTTP1: true },
      (req, res) => {
        began = true;
        void openEventStream(req, res, () => new Promise<never>(() => {}), resolved);
      },
    );
    const deadline = 1000;
    closeStreamsOnServerClose(server, { group: resolved.group, deadline, retry: 700 });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const session = await h2Session(`https://127.0.0.1:${(server.address() as AddressInfo).port}`);
    onTestFinished(() => session.destroy());
    const answer = readStream(session, '/sse');
    await waitForReal(() => began, 10_000, 'the handler to begin');
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance'] });
    onTestFinished(() => {
      vi.useRealTimers();
    });
    server.close();
    vi.advanceTimersByTime(deadline);
    // The turn-away and the cut are set a few promise turns after the deadline, with no turn of
    // the event loop between them for the session to send what it was given.
    for (let turn = 0; turn < 100; turn++) await Promise.resolve();
    vi.advanceTimersByTime(10);
    const { headers, body } = await answer;
    expect([headers[':status'], body]).toEqual([200, 'retry: 700\n\n']);
  });
});

describe('closeStreamsOnServerClose on HTTP/2: a session that begins during the close', () => {
  it('is closed too, so server.close() completes', async () => {
    const server = createSecureServer({ ...(await selfSignedCertificate()), allowHTTP1: true }, (_req, res) =>
      res.end(),
    );
    // The GOAWAY alone closes it: the deadline, long after the test, is not what ends it.
    closeStreamsOnServerClose(server, { group: new StreamGroup(), deadline: 60_000 });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const port = (server.address() as AddressInfo).port;
    // Accepted before the close, its TLS handshake (and so its session) done only after it began.
    const accepted = once(server, 'connection');
    const socket = tcpConnect(port, '127.0.0.1');
    await accepted;
    let closed = false;
    server.close(() => {
      closed = true;
    });
    const session = connect(`https://127.0.0.1:${port}`, {
      createConnection: () => tlsConnect({ socket, ALPNProtocols: ['h2'], rejectUnauthorized: false }),
    });
    session.on('error', () => {});
    onTestFinished(() => session.destroy());
    await once(session, 'connect');
    await waitFor(() => closed, 10_000, 'server.close() to complete');
  });

  it('drops its connection at the deadline when its client reads nothing, so server.close() completes', async () => {
    const deadline = 60_000;
    const closing = await closeWithSilentClient(deadline);
    await closing.beginSession();
    // Room for everything a graceful close does: the session closes, its connection stays.
    await sleep(300);
    expect(closing.closed()).toBe(false);
    vi.advanceTimersByTime(deadline);
    await Promise.race([closing.done, sleep(5_000)]);
    expect(closing.closed()).toBe(true);
  });
});

describe('closeStreamsOnServerClose on HTTP/2: a session that begins late in the close', () => {
  const deadline = 60_000;
  it("is cut at the close's deadline, not its own, when it begins halfway through the deadline", async () => {
    const closing = await closeWithSilentClient(deadline);
    vi.advanceTimersByTime(deadline / 2);
    await closing.beginSession();
    await sleep(300);
    expect(closing.closed()).toBe(false);
    vi.advanceTimersByTime(deadline / 2 + 10);
    await Promise.race([closing.done, sleep(5_000)]);
    expect(closing.closed()).toBe(true);
  });

  it('is never let begin once the deadline passed: its connection, its handshake still to come, is dropped then', async () => {
    const closing = await closeWithSilentClient(deadline);
    vi.advanceTimersByTime(deadline + 10);
    await Promise.race([closing.done, sleep(5_000)]);
    expect(closing.closed()).toBe(true);
    await expect(closing.beginSession()).rejects.toThrow(/disconnected|ECONNRESET|EPIPE/);
  });
});

/**
 * Closes an HTTP/2 server with `deadline`, on a fake clock, while a connection accepted before the
 * close has yet to shake hands. `beginSession()` makes its client's handshake, its last read: the
 * preface and SETTINGS go out, then it takes nothing more, neither the GOAWAY nor the connection's end.
 */
async function closeWithSilentClient(deadline: number) {
  const server = createSecureServer({ ...(await selfSignedCertificate()), allowHTTP1: true }, (_req, res) =>
    res.end(),
  );
  closeStreamsOnServerClose(server, { group: new StreamGroup(), deadline });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const accepted = once(server, 'connection');
  const socket = tcpConnect((server.address() as AddressInfo).port, '127.0.0.1');
  onTestFinished(() => {
    socket.destroy();
  });
  await accepted;
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance'] });
  onTestFinished(() => {
    vi.useRealTimers();
  });
  let closed = false;
  const done = new Promise<void>((resolve) => server.close(() => resolve()));
  void done.then(() => {
    closed = true;
  });
  return { done, closed: () => closed, beginSession: () => beginSilentSession(server, socket) };
}

/**
 * Makes the handshake of `socket`'s client to `server`, its last read: the preface and SETTINGS go
 * out, then it takes nothing more. Resolves to the server's session once it began.
 */
async function beginSilentSession(server: Http2SecureServer, socket: Socket): Promise<ServerHttp2Session> {
  const session = once(server, 'session');
  const tls = tlsConnect({ socket, ALPNProtocols: ['h2'], rejectUnauthorized: false });
  tls.on('error', () => {});
  await once(tls, 'secureConnect');
  tls.pause();
  tls.write(Buffer.concat([Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'), SETTINGS_FRAME]));
  return (await session)[0] as ServerHttp2Session;
}

/**
 * An HTTP/2 server whose sessions `trackHttp2Sessions` tracks, listening, with one TCP connection
 * accepted that has yet to shake hands; its TLS connections in `connections`.
 */
async function trackedWithConnection() {
  const server = createSecureServer({ ...(await selfSignedCertificate()), allowHTTP1: true }, (_req, res) =>
    res.end(),
  );
  const closeSessions = trackHttp2Sessions(server);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const connections: Socket[] = [];
  server.on('secureConnection', (tls: Socket) => connections.push(tls));
  const accepted = once(server, 'connection');
  const socket = tcpConnect((server.address() as AddressInfo).port, '127.0.0.1');
  onTestFinished(() => {
    socket.destroy();
    for (const tls of connections) tls.destroy();
    return new Promise<void>((resolve) => server.close(() => resolve()));
  });
  await accepted;
  return { server, socket, closeSessions, connections };
}

describe('trackHttp2Sessions: called again while the server closes', () => {
  it.each([
    ['a longer deadline second', 200, 5_000],
    ['a shorter deadline second', 5_000, 200],
  ])('keeps the sooner of the two cuts (%s)', async (_label, first, second) => {
    const { server, socket, closeSessions, connections } = await trackedWithConnection();
    // A session whose client reads nothing, not even the GOAWAY: only the cut ends it.
    await beginSilentSession(server, socket);
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance'] });
    onTestFinished(() => {
      vi.useRealTimers();
    });
    closeSessions(first);
    closeSessions(second);
    vi.advanceTimersByTime(200);
    // A cut runs in the check phase after its timer: give it that turn.
    await new Promise((resolve) => setImmediate(resolve));
    await new Promise((resolve) => setImmediate(resolve));
    expect(connections.map((tls) => tls.destroyed)).toEqual([true]);
  });
});

describe('trackHttp2Sessions: a session that begins after a close without a deadline', () => {
  it('is closed with a GOAWAY, its connection never cut, however long its client reads nothing', async () => {
    const { server, socket, closeSessions, connections } = await trackedWithConnection();
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance'] });
    onTestFinished(() => {
      vi.useRealTimers();
    });
    // Accepted before the close, its handshake (and so its session) done only after it.
    closeSessions();
    const session = await beginSilentSession(server, socket);
    expect(session.closed).toBe(true);
    vi.advanceTimersByTime(60_000);
    // A cut runs in the check phase after its timer: give it that turn.
    await new Promise((resolve) => setImmediate(resolve));
    await new Promise((resolve) => setImmediate(resolve));
    expect(connections.map((tls) => tls.destroyed)).toEqual([false]);
  });
});

/** An HTTP/2 server (HTTP/1 allowed) whose streams send `data: a`, its closes bounded by `deadline`. */
async function oneEventServer(deadline: number) {
  const resolved = resolveStreamOptions({ group: new StreamGroup(), heartbeat: false });
  const server = createSecureServer({ ...(await selfSignedCertificate()), allowHTTP1: true }, (req, res) => {
    void openEventStream(req, res, () => from([{ data: 'a' }]), resolved);
  });
  closeStreamsOnServerClose(server, { group: resolved.group, deadline });
  return server;
}

/** Has `server` listen (again), and opens a session to it: both closed once the test ends. */
async function sessionOnceListening(server: Awaited<ReturnType<typeof oneEventServer>>) {
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  onTestFinished(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const session = await h2Session(`https://127.0.0.1:${(server.address() as AddressInfo).port}`);
  onTestFinished(() => session.destroy());
  return session;
}

/** Checks, with fake timers, that `session` is left open `ms` on, and takes another stream. */
async function expectKeptPast(ms: number, session: ClientHttp2Session) {
  vi.advanceTimersByTime(ms);
  // A cut runs in the check phase after its timer: give it that turn.
  await new Promise((resolve) => setImmediate(resolve));
  await new Promise((resolve) => setImmediate(resolve));
  expect(session.destroyed || session.closed).toBe(false);
  expect((await readStream(session, '/sse')).body).toBe('data: a\n\n');
}

describe('closeStreamsOnServerClose on HTTP/2: a server that listens again', () => {
  it('keeps the sessions that begin once it listens again', async () => {
    const server = await oneEventServer(200);
    const session = await h2Session(`https://127.0.0.1:${await listenAgain(server)}`);
    try {
      const first = await readStream(session, '/sse');
      expect(first.body).toBe('data: a\n\n');
      // The session is still open for the next stream.
      expect((await readStream(session, '/sse')).body).toBe('data: a\n\n');
    } finally {
      session.destroy();
    }
  });
});

describe('closeStreamsOnServerClose on HTTP/2: a server that listens again soon after', () => {
  it('keeps its new sessions past the deadline of a close whose sessions all closed in time', async () => {
    const server = await oneEventServer(1000);
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const old = await h2Session(`https://127.0.0.1:${(server.address() as AddressInfo).port}`);
    onTestFinished(() => old.destroy());
    expect((await readStream(old, '/sse')).body).toBe('data: a\n\n');
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    onTestFinished(() => {
      vi.useRealTimers();
    });
    // The old session takes the GOAWAY and closes: the close is done long before its deadline.
    await new Promise((resolve) => server.close(resolve));
    const session = await sessionOnceListening(server);
    expect((await readStream(session, '/sse')).body).toBe('data: a\n\n');
    await expectKeptPast(1000, session);
  });
});

describe('closeStreamsOnServerClose on HTTP/2: a server that listens again after a close with no session', () => {
  it('keeps its new sessions past the deadline of that close', async () => {
    const server = await oneEventServer(1000);
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    onTestFinished(() => {
      vi.useRealTimers();
    });
    // No session to close: the close is done at once, and has no connection to cut at its deadline.
    const port = await listenAgain(server);
    const session = await h2Session(`https://127.0.0.1:${port}`);
    onTestFinished(() => session.destroy());
    expect((await readStream(session, '/sse')).body).toBe('data: a\n\n');
    await expectKeptPast(1000, session);
  });
});

describe('closeStreamsOnServerClose on HTTP/2: a server closed from a timer or a signal handler, then listening again', () => {
  it('keeps its new sessions, though its close ended its groups only after it completed', async () => {
    const server = await oneEventServer(1000);
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    // No session holds the close: it completes in the turn's next tick, before the groups' close,
    // which resolves in the promise jobs after it.
    await new Promise((resolve) => setImmediate(() => server.close(resolve)));
    const session = await sessionOnceListening(server);
    expect((await readStream(session, '/sse')).body).toBe('data: a\n\n');
    expect(session.closed).toBe(false);
    expect((await readStream(session, '/sse')).body).toBe('data: a\n\n');
  });
});

/** An empty SETTINGS frame: length 0, type 0x4, no flags, stream 0. */
const SETTINGS_FRAME = Buffer.from([0, 0, 0, 4, 0, 0, 0, 0, 0]);

describe('NodeSink on HTTP/2', () => {
  it('leaves out the HTTP/1-only headers an app set before the stream, which HTTP/2 forbids', async () => {
    const recorder = recordWarnings();
    onTestFinished(() => recorder.stop());
    const group = new StreamGroup();
    const { options, closes } = recording({ group, heartbeat: false });
    const resolved = resolveStreamOptions(options);
    const errors: unknown[] = [];
    const { session } = await serveH2((req, res) => {
      // What a middleware written for HTTP/1 may set on every response (a Connection header
      // Node drops itself at setHeader on HTTP/2, with a warning of its own).
      res.setHeader('Keep-Alive', 'timeout=5');
      res.setHeader('Proxy-Connection', 'keep-alive');
      res.setHeader('Upgrade', 'h2c');
      res.setHeader('Transfer-Encoding', 'chunked');
      res.setHeader('X-Kept', 'yes');
      openEventStream(req, res, () => from([{ data: 'a' }]), resolved).catch((error) => errors.push(error));
    });
    try {
      const read = readStream(session, '/sse');
      await waitFor(() => closes.length > 0 || errors.length > 0, 5_000, 'the stream to end or fail');
      expect(errors).toEqual([]);
      const { headers, body } = await read;
      expect(headers[':status']).toBe(200);
      expect(headers['x-kept']).toBe('yes');
      for (const name of ['connection', 'keep-alive', 'proxy-connection', 'upgrade', 'transfer-encoding']) {
        expect(headers[name]).toBeUndefined();
      }
      expect(body).toBe('data: a\n\n');
    } finally {
      session.destroy();
    }
    expect(closes.map((c) => c.reason)).toEqual(['complete']);
    expect(group.size).toBe(0);
    expect(recorder.warnings).toEqual([]);
  });
});

describe('NodeSink on HTTP/2: chunks written behind a write in flight', () => {
  it('counts them as pending, and hands them over one at a time as the client takes them', async () => {
    // Each larger than a stream's high-water mark (64 KiB on Node 24): a write of one says full.
    const sizes = [100, 100, 100].map((kib) => kib * 1024);
    let sink: NodeSink | undefined;
    /** The drains seen when each chunk reached Node's stream. */
    const handedAt: number[] = [];
    const { session } = await serveH2((req, res) => {
      sink = new NodeSink(req, res);
      let drains = 0;
      // Before the sink's own listener: counted as each drain begins.
      res.on('drain', () => drains++);
      const write = res.write.bind(res) as (chunk: Uint8Array) => boolean;
      res.write = ((chunk: Uint8Array) => {
        handedAt.push(drains);
        return write(chunk);
      }) as typeof res.write;
      sink.open({ 'content-type': 'text/event-stream' });
      for (const size of sizes) sink.write(new Uint8Array(size).fill(0x3a));
    });
    // A client that takes nothing: the first chunk stays in flight past the stream's window.
    const stream = session.request({ ':path': '/sse' });
    stream.pause();
    await waitFor(() => handedAt.length === 1 && sink !== undefined, 5_000, 'the first chunk in flight');
    // Node counts a write whole until the client took its last byte; the two held are the sink's.
    expect(sink!.pending()).toBeGreaterThan(sizes[0]! + sizes[2]!);
    let received = 0;
    stream.on('data', (chunk: Buffer) => {
      received += chunk.length;
    });
    stream.resume();
    await waitFor(() => received === sizes[0]! + sizes[1]! + sizes[2]!, 5_000, 'every byte');
    // Each chunk on a drain of its own, which a client that takes it shows as progress.
    expect(handedAt).toEqual([0, 1, 2]);
    expect(sink!.pending()).toBe(0);
  });
});

describe('NodeSink on HTTP/2: a chunk written from a drain listener while chunks are held', () => {
  it('goes out after the chunks held, in the order they were written', async () => {
    // Each larger than a stream's high-water mark (64 KiB on Node 24): a write of one says full.
    const chunks = [0x61, 0x62, 0x63].map((byte) => new Uint8Array(100 * 1024).fill(byte));
    const late = new Uint8Array(10).fill(0x64);
    let wrote = false;
    const { session } = await serveH2((req, res) => {
      const sink = new NodeSink(req, res);
      sink.open({ 'content-type': 'text/event-stream' });
      // Listening before anything was held: this listener hears each drain before the sink hands
      // over what it holds.
      sink.onDrain(() => {
        if (wrote) return;
        wrote = true;
        sink.write(late);
      });
      for (const chunk of chunks) sink.write(chunk);
    });
    const stream = session.request({ ':path': '/sse' });
    const received: Buffer[] = [];
    stream.on('data', (chunk: Buffer) => received.push(chunk));
    const total = 3 * 100 * 1024 + late.length;
    await waitFor(
      () => received.reduce((sum, chunk) => sum + chunk.length, 0) === total,
      5_000,
      'every byte',
    );
    expect(wrote).toBe(true);
    const body = Buffer.concat(received);
    // Each chunk's byte, in the order the client first saw it: the late one last.
    expect(String.fromCharCode(...new Set(body))).toBe('abcd');
    expect(body.equals(Buffer.concat([...chunks, late]))).toBe(true);
  });
});

describe('openEventStream on HTTP/2: a source that fails before its first message', () => {
  it('is answered with the error status on its stream, and leaves no stream, group member or session behind', async () => {
    const group = new StreamGroup();
    const { options, closes, seen } = metered({ group });
    const resolved = resolveStreamOptions(options);
    const failure = new Error('no such feed');
    const errors: unknown[] = [];
    const serverStreams: ServerHttp2Stream[] = [];
    const { server, session } = await serveH2((req, res) => {
      serverStreams.push(res.stream);
      const events = req.url === '/missing' ? throwError(() => failure) : from([{ data: 'a' }]);
      // As a framework answers a handler's throw.
      openEventStream(req, res, () => events, resolved).catch((error: unknown) => {
        errors.push(error);
        res.statusCode = 500;
        res.end('failed');
      });
    });
    const { headers, body } = await readStream(session, '/missing');
    expect([headers[':status'], headers['content-type'], body]).toEqual([500, undefined, 'failed']);
    expect([errors, seen, closes, group.size]).toEqual([[failure], ['failed'], [], 0]);
    await waitFor(() => serverStreams[0]!.closed, 5_000, 'the server stream to close');
    // The session goes on serving streams.
    expect((await readStream(session, '/sse')).body).toBe('data: a\n\n');
    expect(seen).toEqual(['failed', 'opened', 'closed:complete']);
    session.close();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    expect([allStreams.size, heartbeatCount(), group.size]).toEqual([0, 0, 0]);
  });
});

describe('openEventStream on HTTP/2: a response the route ends itself from a hook', () => {
  it('ends the stream cleanly, with no reset: an errorEvent that ends the response and returns an event', async () => {
    const { options, closes } = recording({ heartbeat: false });
    const failure = new Error('source failed');
    const errors: unknown[] = [];
    const { session } = await serveH2((req, res) => {
      const resolved = resolveStreamOptions({
        ...options,
        errorEvent: () => {
          res.end();
          return { data: 'failed' };
        },
      });
      const events = concat(
        from([{ data: 'a' }]),
        throwError(() => failure),
      );
      openEventStream(
        req,
        res,
        () => events,
        resolved,
        (error) => errors.push(error),
      ).catch((error: unknown) => errors.push(error));
    });
    // Node's write after the end would reset the stream with an error, which rejects the read.
    expect((await readStream(session, '/sse')).body).toBe('data: a\n\n');
    expect([closes.map((c) => c.reason), errors]).toEqual([['error'], [failure]]);
  });
});

describe('NodeSink on HTTP/2: the headers Node refuses there', () => {
  it('leaves out TE and HTTP2-Settings, whether the route or a middleware set them', async () => {
    const { options, closes } = recording({
      group: new StreamGroup(),
      heartbeat: false,
      // Harmless on HTTP/1, where a route for both may well carry them.
      headers: { TE: 'trailers, deflate', 'HTTP2-Settings': 'AAMAAABkAAQAoAAAAAIAAAAA' },
    });
    const resolved = resolveStreamOptions(options);
    const errors: unknown[] = [];
    const { session } = await serveH2((req, res) => {
      if (req.url === '/middleware') res.setHeader('TE', 'gzip');
      openEventStream(
        req,
        res,
        () => from([{ data: 'a' }]),
        resolved,
        (error) => errors.push(error),
      ).catch((error) => errors.push(error));
    });
    try {
      for (const path of ['/route', '/middleware']) {
        const { headers, body } = await readStream(session, path);
        expect(headers[':status'], path).toBe(200);
        expect(headers.te, path).toBeUndefined();
        expect(headers['http2-settings'], path).toBeUndefined();
        expect(body, path).toBe('data: a\n\n');
      }
    } finally {
      session.destroy();
    }
    expect(errors).toEqual([]);
    expect(closes.map((c) => c.reason)).toEqual(['complete', 'complete']);
  });
});

describe('stallTimeout on HTTP/2 after the stream ended, for a client that reads slowly', () => {
  it('keeps a client that takes some of what the end left in every stallTimeout, until it has it all', async () => {
    const stallTimeout = 500;
    const { options, closes } = recording({
      group: new StreamGroup(),
      heartbeat: false,
      stallTimeout,
      maxQueueBytes: 64 * 1024 * 1024,
    });
    // 8 MiB at once, then the end: far more than the stream's window and buffer take.
    const burst = Array.from({ length: 128 }, () => ({ data: 'z'.repeat(64 * 1024) }));
    let sink: NodeSink | undefined;
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    onTestFinished(() => {
      vi.useRealTimers();
    });
    const { session } = await serveH2((req, res) => {
      sink = new NodeSink(req, res);
      streamEvents(from(burst), sink, options);
    });
    const stream = session.request({ ':path': '/sse' });
    stream.on('error', () => {});
    let text = '';
    stream.setEncoding('latin1');
    stream.on('data', (chunk: string) => {
      text += chunk;
    });
    stream.pause();
    await waitForReal(() => closes.length === 1 && sink!.pending() > 0, 5_000, 'the end, with bytes left');
    expect(closes[0]!.reason).toBe('complete');
    // Each stallTimeout, the client takes some (until the server sees its response shrink), then
    // holds back its WINDOW_UPDATEs: the check at the end of each one finds it took some.
    let windows = 0;
    while (sink!.pending() > 0 && !stream.closed) {
      const left = sink!.pending();
      stream.resume();
      await waitForReal(() => sink!.pending() < left || stream.closed, 5_000, 'the client to take some');
      stream.pause();
      vi.advanceTimersByTime(stallTimeout);
      windows++;
    }
    stream.resume();
    await waitForReal(() => stream.closed, 10_000, 'the end of the response');
    expect(stream.rstCode).toBe(0);
    expect(windows).toBeGreaterThan(0);
    expect(text.split('data: ').length - 1).toBe(burst.length);
  });

  it('drops a client that takes none of it within a stallTimeout', async () => {
    const { options, closes } = recording({
      group: new StreamGroup(),
      heartbeat: false,
      stallTimeout: 300,
      maxQueueBytes: 64 * 1024 * 1024,
    });
    const resolved = resolveStreamOptions(options);
    const burst = Array.from({ length: 16 }, () => ({ data: 'z'.repeat(64 * 1024) }));
    const { server, session } = await serveH2((req, res) => {
      void openEventStream(req, res, () => from(burst), resolved);
    });
    let dropped = false;
    // Closed before its end went out: the client never had the rest.
    server.on('stream', (stream) => stream.once('close', () => (dropped = !stream.writableFinished)));
    await completedUnread(session, closes);
    await waitFor(() => dropped, 5_000, 'the server to drop the stream');
  });
});

describe('NodeSink on HTTP/2: the end of a stream whose client was full', () => {
  it('hands over the small rest written behind a large event, then ends the response', async () => {
    const { options, closes } = recording({
      group: new StreamGroup(),
      heartbeat: false,
      maxQueueBytes: 64 * 1024 * 1024,
    });
    // The large event fills the stream; the small ones wait in the queue and, at the end, are held
    // behind it as one chunk that fits the response's buffer.
    const events = [
      { data: 'z'.repeat(256 * 1024) },
      ...Array.from({ length: 3 }, (_, i) => ({ data: `small ${i}` })),
    ];
    const { session } = await serveH2((req, res) => {
      void openEventStream(req, res, () => from(events), resolveStreamOptions(options));
    });
    const stream = await completedUnread(session, closes);
    let text = '';
    stream.setEncoding('latin1');
    stream.on('data', (chunk: string) => {
      text += chunk;
    });
    stream.resume();
    await waitFor(() => stream.closed, 10_000, 'the end of the response');
    expect(stream.rstCode).toBe(0);
    expect(text.endsWith('data: small 0\n\ndata: small 1\n\ndata: small 2\n\n')).toBe(true);
  });
});

describe('NodeSink on HTTP/2: a stream dropped on purpose', () => {
  for (const [reason, extra] of [
    ['overflow', { maxQueueBytes: 256 * 1024, stallTimeout: false }],
    ['stall', { maxQueueBytes: 64 * 1024 * 1024, stallTimeout: 200 }],
  ] as const) {
    it(`is reset with INTERNAL_ERROR (${reason}), not NO_ERROR, which a client reads as the response's end`, async () => {
      const { options, closes } = recording({ group: new StreamGroup(), heartbeat: false, ...extra });
      const resolved = resolveStreamOptions(options);
      const flood = () => interval(1).pipe(map(() => ({ data: 'x'.repeat(16 * 1024) })));
      const { session } = await serveH2((req, res) => {
        void openEventStream(req, res, flood, resolved);
      });
      const stream = session.request({ ':path': '/sse' });
      // Not `once`, which rejects at the 'error' this test waits for.
      const closed = new Promise((resolve) => stream.once('close', resolve));
      const errors: unknown[] = [];
      stream.on('error', (error) => errors.push(error));
      let ended = false;
      stream.on('end', () => {
        ended = true;
      });
      stream.pause();
      await waitFor(() => closes.length === 1, 5_000, 'the drop');
      expect(closes[0]!.reason).toBe(reason);
      stream.resume();
      await closed;
      expect(stream.rstCode).toBe(constants.NGHTTP2_INTERNAL_ERROR);
      expect(errors.map((error) => (error as { code?: string }).code)).toEqual(['ERR_HTTP2_STREAM_ERROR']);
      expect(ended).toBe(false);
    });
  }
});

describe('NodeSink on HTTP/2: a POST stream that ends while its client still uploads', () => {
  // A body no one touches Node closes on its own; one read, or paused, it leaves half-open.
  for (const body of ['read by the app', 'paused by the app'] as const) {
    it(`closes the stream once the response went out, its body ${body}, the client seeing it complete`, async () => {
      const { options, closes } = recording({ group: new StreamGroup(), heartbeat: false });
      const resolved = resolveStreamOptions(options);
      // More than the stream's window: the end waits for the client to read.
      const burst = Array.from({ length: 64 }, (_, i) => ({ data: `${i}:${'x'.repeat(16 * 1024)}` }));
      let uploaded = 0;
      const { server, session } = await serveH2((req, res) => {
        if (body === 'read by the app') req.on('data', (chunk: Buffer) => (uploaded += chunk.length));
        else req.pause();
        void openEventStream(req, res, () => from(burst), resolved);
      });
      let serverClosed = false;
      server.on('stream', (stream) => stream.once('close', () => (serverClosed = true)));
      // The request body stays open: the client would go on uploading.
      const stream = session.request({ ':method': 'POST', ':path': '/sse' }, { endStream: false });
      stream.write('upload');
      const errors: unknown[] = [];
      stream.on('error', (error) => errors.push(error));
      let text = '';
      let ended = false;
      stream.setEncoding('utf8');
      stream.on('data', (chunk: string) => (text += chunk));
      stream.on('end', () => (ended = true));
      let closed = false;
      stream.once('close', () => (closed = true));
      await waitFor(() => closes.length === 1, 5_000, 'the end of the stream');
      expect(closes[0]!.reason).toBe('complete');
      await waitFor(() => closed, 5_000, 'the server to close the stream');
      expect(text).toBe(burst.map((event) => `data: ${event.data}\n\n`).join(''));
      expect(ended).toBe(true);
      expect(errors).toEqual([]);
      expect(stream.rstCode).toBe(constants.NGHTTP2_NO_ERROR);
      expect(serverClosed).toBe(true);
      if (body === 'read by the app') expect(uploaded).toBe('upload'.length);
    });
  }
});

describe('NodeSink on HTTP/2: a POST stream whose response ended, its client gone before it read the end', () => {
  it('stops waiting to close the stream once the client is gone', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    onTestFinished(() => {
      vi.useRealTimers();
    });
    const { options, closes } = recording({
      group: new StreamGroup(),
      heartbeat: false,
      stallTimeout: false,
    });
    // More than the stream's window: the end waits for the client to read.
    const burst = Array.from({ length: 64 }, (_, i) => ({ data: `${i}:${'x'.repeat(16 * 1024)}` }));
    const { server, session } = await serveH2((req, res) => {
      req.pause();
      void openEventStream(req, res, () => from(burst), resolveStreamOptions(options));
    });
    let serverClosed = false;
    server.on('stream', (stream) => stream.once('close', () => (serverClosed = true)));
    const stream = session.request({ ':method': 'POST', ':path': '/sse' }, { endStream: false });
    stream.write('upload');
    stream.on('error', () => {});
    stream.pause();
    await waitForReal(() => closes.length === 1, 5_000, 'the end of the stream');
    stream.resume();
    // The response went out, but not yet the frame that ends it: the close waits, then looks again.
    await waitForReal(() => vi.getTimerCount() === 1, 5_000, 'a wait for the end to leave');
    session.destroy();
    await waitForReal(() => serverClosed, 5_000, 'the server to see the stream gone');
    vi.advanceTimersByTime(10);
    expect(vi.getTimerCount()).toBe(0);
  });
});

/** Requests `/sse` and reads nothing of it until its stream has completed, its only close. */
async function completedUnread(session: ClientHttp2Session, closes: Closed[]) {
  const stream = session.request({ ':path': '/sse' });
  stream.on('error', () => {});
  stream.pause();
  await once(stream, 'response');
  await waitFor(() => closes.length === 1, 5_000, 'the end of the stream');
  expect(closes.map((c) => c.reason)).toEqual(['complete']);
  return stream;
}

/**
 * An HTTPS server on 127.0.0.1 that speaks HTTP/2 (and HTTP/1), serving `handler`, and a client
 * session to it: both closed when the test ends.
 */
async function serveH2(handler: (req: Http2ServerRequest, res: Http2ServerResponse) => void) {
  const server = createSecureServer({ ...(await selfSignedCertificate()), allowHTTP1: true }, handler);
  onTestFinished(() => new Promise<void>((resolve) => server.close(() => resolve())));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const session = await h2Session(`https://127.0.0.1:${(server.address() as AddressInfo).port}`);
  onTestFinished(() => session.destroy());
  return { server, session };
}

describe('openEventStream on HTTP/2: a client that left while the framework held its request', () => {
  it('closes the stream at once with reason client, its response closed before the stream began', async () => {
    const { options, closes } = recording({ heartbeat: false });
    const group = new StreamGroup();
    let held: Http2ServerResponse | undefined;
    const { session } = await serveH2((req, res) => {
      held = res;
      // As an auth middleware's async step: the client resets its stream meanwhile.
      void (async () => {
        await waitForReal(() => res.stream?.destroyed === true, 5_000, 'the reset');
        void openEventStream(req, res, () => NEVER, resolveStreamOptions({ ...options, group }));
      })();
    });
    const stream = session.request({ ':path': '/sse' });
    stream.on('error', () => {});
    await waitFor(() => held !== undefined, 5_000, 'the request');
    stream.close(constants.NGHTTP2_CANCEL);
    await waitFor(() => closes.length === 1, 5_000, 'the close to be counted');
    expect(closes.map((closed) => closed.reason)).toEqual(['client']);
    // Nothing holds a server's close for it.
    expect(group.size).toBe(0);
  });
});

describe('openEventStream on HTTP/2: a HEAD whose client resets its stream while the handler is pending', () => {
  it('counts it at once as opened and closed by the client, leaves no group member, and lets the late source go', async () => {
    const group = new StreamGroup();
    const { options, closes, seen } = metered({ group });
    const made = neverYielding();
    let settle!: () => void;
    const { session } = await serveH2((req, res) => {
      void openEventStream(
        req,
        res,
        // Heeds no signal: a hung upstream call.
        () => new Promise<AsyncIterable<never>>((resolve) => (settle = () => resolve(made.iterator))),
        resolveStreamOptions(options),
      );
    });
    const stream = session.request({ ':path': '/sse', ':method': 'HEAD' });
    stream.on('error', () => {});
    await waitFor(() => settle !== undefined, 5_000, 'the handler');
    stream.close(constants.NGHTTP2_CANCEL);
    // Node's compatibility layer emits no 'close' on the response of a HEAD reset before its headers.
    await waitFor(() => closes.length === 1, 5_000, 'the close to be counted');
    expect([seen, closes.map((closed) => closed.reason), group.size]).toEqual([
      ['opened', 'closed:client'],
      ['client'],
      0,
    ]);
    settle();
    await waitFor(made.returned, 5_000, "the late iterator's return()");
    expect(seen).toEqual(['opened', 'closed:client']);
  });
});

describe('watchResponseClose on HTTP/2: a HEAD whose client resets its stream before its headers', () => {
  it('tells the client gone, as for a GET', async () => {
    const gone: string[] = [];
    let held = 0;
    const { session } = await serveH2((req, res) => {
      held++;
      // As an interceptor holds the request: nothing answers it yet.
      watchResponseClose(req, res, () => gone.push(req.method));
    });
    for (const method of ['GET', 'HEAD']) {
      const before = held;
      const stream = session.request({ ':path': '/sse', ':method': method });
      stream.on('error', () => {});
      await waitFor(() => held > before, 5_000, `${method}: the request`);
      stream.close(constants.NGHTTP2_CANCEL);
      await waitFor(() => gone.length > 0, 5_000, `${method}: the close to be told`);
      expect(gone.splice(0)).toEqual([method]);
    }
  });

  it('leaves no listener on the stream once stopped, as for a GET', async () => {
    const left: Record<string, number> = {};
    const { session } = await serveH2((req, res) => {
      const before = res.stream.listenerCount('close');
      // As an interceptor done with the request before its client went.
      watchResponseClose(req, res, () => {})();
      left[req.method] = res.stream.listenerCount('close') - before;
      res.end();
    });
    for (const method of ['GET', 'HEAD']) {
      const stream = session.request({ ':path': '/sse', ':method': method });
      stream.on('error', () => {});
      stream.resume();
      await once(stream, 'close');
    }
    expect(left).toEqual({ GET: 0, HEAD: 0 });
  });
});

describe('NodeSink on HTTP/2: a client that withholds the window of one stream, its session healthy', () => {
  it('ends that stream with stall at stallTimeout, not before, while another on the session goes on', async () => {
    const stallTimeout = 1_000;
    const h2 = await withheldWindow({ maxQueueBytes: 64 * 1024 * 1024, stallTimeout });
    // Armed at the first write that found the stream full, which left the rest in the queue.
    await waitForReal(() => h2.floodQueued() > 0, 5_000, 'events to queue behind the full stream');
    const pending = h2.sink().pending();
    expect(pending).toBeGreaterThan(0);
    const queued = h2.floodQueued();
    // The source goes on: its events pile up in the queue, the client taking nothing more.
    await waitForReal(() => h2.floodQueued() > queued + 256 * 1024, 5_000, 'the queue to grow');
    expect(h2.sink().pending()).toBe(pending);
    await h2.expectCalmFlows('a');
    vi.advanceTimersByTime(stallTimeout - 1);
    expect(h2.floodCloses.map((c) => c.reason)).toEqual([]);
    vi.advanceTimersByTime(1);
    expect(h2.floodCloses.map((c) => c.reason)).toEqual(['stall']);
    await h2.expectFloodReset();
    expect(h2.floodCloses.map((c) => c.reason)).toEqual(['stall']);
    await h2.expectCalmFlows('b');
    await h2.expectSessionHealthy();
    await h2.expectServerCloses();
  });

  it('ends that stream with overflow once its queue passes maxQueueBytes, another on the session going on', async () => {
    const maxQueueBytes = 256 * 1024;
    // The stall timer, on a clock that never moves here, is not what ends it.
    const h2 = await withheldWindow({ maxQueueBytes, stallTimeout: 1_000 });
    await h2.expectCalmFlows('a');
    await waitForReal(() => h2.floodCloses.length > 0, 5_000, 'the stream to end');
    expect(h2.floodCloses.map((c) => c.reason)).toEqual(['overflow']);
    expect(h2.floodCloses[0]!.stats.peakQueuedBytes).toBeGreaterThan(maxQueueBytes / 2);
    expect(h2.floodCloses[0]!.stats.peakQueuedBytes).toBeLessThanOrEqual(maxQueueBytes);
    await h2.expectFloodReset();
    expect(h2.floodCloses.map((c) => c.reason)).toEqual(['overflow']);
    await h2.expectCalmFlows('b');
    await h2.expectSessionHealthy();
    await h2.expectServerCloses();
  });
});

/** The stream window a {@link withheldWindow} client grants each stream, and never adds to for one. */
const SMALL_WINDOW = 16 * 1024;

/**
 * An HTTP/2 server, its stall timer on a fake clock, and one client session on it with two streams:
 * `/flood`, from a source that emits 16 KiB every millisecond with `options`, which the client
 * never reads (a paused node:http2 stream whose data is not consumed grants no WINDOW_UPDATE, while
 * the session's own window is still given back), and `/calm`, which it reads, its events sent on
 * demand. Both ride one connection, so only the flooded stream's window holds its bytes back.
 */
async function withheldWindow(options: { maxQueueBytes: number; stallTimeout: number }) {
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
  onTestFinished(() => {
    vi.useRealTimers();
  });
  const group = new StreamGroup();
  const flood = recording({ group, heartbeat: false, ...options });
  const calm = recording({ group, heartbeat: false });
  const calmEvents = new Subject<{ data: string }>();
  let sink: NodeSink | undefined;
  const serverStreams = new Map<string, ServerHttp2Stream>();
  const server = createSecureServer({ ...(await selfSignedCertificate()), allowHTTP1: true }, (req, res) => {
    serverStreams.set(req.url, res.stream);
    if (req.url === '/flood') {
      sink = new NodeSink(req, res);
      const events = interval(1).pipe(map(() => ({ data: 'x'.repeat(16 * 1024) })));
      streamEvents(events, sink, flood.options);
    } else {
      streamEvents(calmEvents, new NodeSink(req, res), calm.options);
    }
  });
  // Far past the test: a close that completes did so because every stream and session ended.
  closeStreamsOnServerClose(server, { group, deadline: 60_000 });
  let serverSession: ServerHttp2Session | undefined;
  server.on('session', (session: ServerHttp2Session) => {
    serverSession = session;
  });
  let serverClosed = false;
  onTestFinished(() => {
    if (!serverClosed) server.close();
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const session = connect(`https://127.0.0.1:${(server.address() as AddressInfo).port}`, {
    rejectUnauthorized: false,
    settings: { initialWindowSize: SMALL_WINDOW },
  });
  const sessionErrors: unknown[] = [];
  session.on('error', (error) => sessionErrors.push(error));
  onTestFinished(() => {
    session.destroy();
  });
  await once(session, 'connect');

  const calmStream = session.request({ ':path': '/calm' });
  let calmText = '';
  let calmEnded = false;
  const calmErrors: unknown[] = [];
  calmStream.setEncoding('utf8');
  calmStream.on('data', (chunk: string) => {
    calmText += chunk;
  });
  calmStream.on('end', () => {
    calmEnded = true;
  });
  calmStream.on('error', (error) => calmErrors.push(error));
  await once(calmStream, 'response');

  const floodStream = session.request({ ':path': '/flood' });
  floodStream.pause();
  const floodErrors: unknown[] = [];
  floodStream.on('error', (error) => floodErrors.push(error));
  let floodEnded = false;
  floodStream.on('end', () => {
    floodEnded = true;
  });
  let floodClosed = false;
  floodStream.once('close', () => {
    floodClosed = true;
  });

  return {
    floodCloses: flood.closes,
    sink: () => sink!,
    floodQueued: () => group.queuedBytes,
    /** The calm stream takes an event sent now, and is still open. */
    async expectCalmFlows(data: string) {
      const before = calmText.length;
      calmEvents.next({ data });
      await waitForReal(() => calmText.length > before, 5_000, `the calm stream's event ${data}`);
      expect(calmText.slice(before)).toBe(`data: ${data}\n\n`);
      expect(calm.closes).toEqual([]);
      expect(calmErrors).toEqual([]);
    },
    /**
     * The flooded stream is reset with INTERNAL_ERROR: the client knows at once, its stream still
     * paused, and reads it as an error, not as the response's end. It had only the window it granted.
     */
    async expectFloodReset() {
      // Its rstCode reads NO_ERROR until the stream closed.
      await waitForReal(() => floodStream.closed, 5_000, 'the reset to reach the client');
      expect(floodStream.rstCode).toBe(constants.NGHTTP2_INTERNAL_ERROR);
      expect(floodStream.readableLength).toBeLessThanOrEqual(SMALL_WINDOW);
      expect(serverStreams.get('/flood')!.destroyed).toBe(true);
      expect(sink!.pending()).toBe(0);
      floodStream.resume();
      await waitForReal(() => floodClosed, 5_000, "the flooded stream's close");
      expect(floodErrors.map((error) => (error as { code?: string }).code)).toEqual([
        'ERR_HTTP2_STREAM_ERROR',
      ]);
      expect(floodEnded).toBe(false);
      expect(group.size).toBe(1);
      expect(group.queuedBytes).toBe(0);
    },
    /** The session answers a PING and serves a new stream; no GOAWAY, no error. */
    async expectSessionHealthy() {
      expect(session.closed || session.destroyed).toBe(false);
      expect(serverSession!.closed || serverSession!.destroyed).toBe(false);
      await new Promise<void>((resolve, reject) =>
        serverSession!.ping((error) => (error ? reject(error) : resolve())),
      );
      expect(calmStream.closed).toBe(false);
      expect(sessionErrors).toEqual([]);
    },
    /** `server.close()` ends the calm stream cleanly and completes, with no deadline needed. */
    async expectServerCloses() {
      server.close(() => {
        serverClosed = true;
      });
      await waitForReal(() => serverClosed, 5_000, 'server.close() to complete');
      expect(calm.closes.map((c) => c.reason)).toEqual(['shutdown']);
      expect(calmEnded).toBe(true);
      expect(calmStream.rstCode).toBe(constants.NGHTTP2_NO_ERROR);
      expect(flood.closes).toHaveLength(1);
      expect(group.size).toBe(0);
      expect(session.closed).toBe(true);
    },
  };
}

describe('NodeSink on HTTP/2: a client that resets a stream with NO_ERROR while it waits for the window', () => {
  // `uploading`: running, its request body still open and paused by the app, so that Node tells
  // of the reset by 'aborted' alone.
  for (const when of ['running', 'ended', 'uploading'] as const) {
    it(`lets go of the stream (${when}), which Node 20 kept open, its bytes held, for good`, async () => {
      const group = new StreamGroup();
      const { options, closes } = recording({
        group,
        heartbeat: false,
        // Neither the stall nor the queue's cap is what ends it.
        stallTimeout: false,
        maxQueueBytes: 64 * 1024 * 1024,
      });
      // More than the stream's window: the rest waits for the client, who reads nothing.
      const events =
        when === 'ended'
          ? () => from(Array.from({ length: 16 }, () => ({ data: 'x'.repeat(16 * 1024) })))
          : () => interval(1).pipe(map(() => ({ data: 'x'.repeat(16 * 1024) })));
      let sink: NodeSink | undefined;
      let serverStream: ServerHttp2Stream | undefined;
      const { session } = await serveH2((req, res) => {
        serverStream = res.stream;
        if (when === 'uploading') req.pause();
        sink = new NodeSink(req, res);
        streamEvents(events(), sink, options);
      });
      const stream =
        when === 'uploading'
          ? session.request({ ':method': 'POST', ':path': '/sse' }, { endStream: false })
          : session.request({ ':path': '/sse' });
      if (when === 'uploading') stream.write('upload');
      stream.on('error', () => {});
      stream.pause();
      await once(stream, 'response');
      // Full: events wait in the queue behind it, or its end left bytes in it.
      const full = () => (when === 'ended' ? closes.length === 1 : group.queuedBytes > 0);
      await waitFor(() => full() && sink!.pending() > 0, 5_000, 'a full stream');
      stream.close(constants.NGHTTP2_NO_ERROR);
      await waitFor(() => serverStream!.destroyed, 2_000, 'the server to let go of the stream');
      expect(sink!.pending()).toBe(0);
      expect(closes.map((c) => c.reason)).toEqual([when === 'ended' ? 'complete' : 'client']);
    });
  }
});
