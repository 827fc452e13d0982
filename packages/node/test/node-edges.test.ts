// The Node transport at its edges: clients gone before the stream began, pipelining, HTTP/1.0, HEAD,
// turn-aways while closing, Last-Event-ID bytes, and the listeners a stream must not leave behind.
import { EventEmitter, on, once } from 'node:events';
import { createServer, get, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { type AddressInfo, connect, createServer as createNetServer, type Socket } from 'node:net';
import { connect as connectTls } from 'node:tls';
import {
  type EventSourceLike,
  type MessageEvent,
  resolveStreamOptions,
  StreamGroup,
  type StreamOptions,
  serverStreams,
  streamEvents,
} from '@rxsse/core';
import { concat, from, interval, map, NEVER, type Observable, range, Subject, throwError } from 'rxjs';
import { describe, expect, it, onTestFinished, vi } from 'vitest';
import { collected } from '../../../test/leaks.js';
import {
  httpRequest,
  RawClient,
  rawClient,
  rawExchange,
  rawRequests,
  silentClient,
  sleep,
  waitFor,
  waitForReal,
} from '../../../test/support/clients.js';
import { captureConsoleErrors } from '../../../test/support/logged.js';
import { counted, metered, neverYielding, recording } from '../../../test/support/recording.js';
import { selfSignedCertificate } from '../../../test/support/tls.js';
import { recordUnhandledRejections, recordWarnings } from '../../../test/support/warnings.js';
import {
  answerHead,
  closeStreamsOnServerClose,
  guardClientErrors,
  markServerClosing,
  NodeSink,
  openEventStream,
  responseDone,
  trackConnections,
  watchResponseClose,
} from '../src/index.js';
import { listenAgain, serve } from './serve.js';

/** A route: `openEventStream` with `events` and `options`, its rejections kept. */
function route(
  events: (context: {
    lastEventId: string | undefined;
    signal: AbortSignal;
  }) => EventSourceLike<MessageEvent> | Promise<EventSourceLike<MessageEvent>>,
  options: StreamOptions = {},
) {
  const errors: unknown[] = [];
  const handle = (req: IncomingMessage, res: ServerResponse) => {
    openEventStream(req, res, events, resolveStreamOptions(options), (error) => errors.push(error)).catch(
      (error) => errors.push(error),
    );
  };
  return { handle, errors };
}

/** Raw bytes of a request whose Last-Event-ID header carries `id` as they are. */
function withLastEventId(id: Buffer): Buffer {
  return Buffer.concat([
    Buffer.from('GET /sse HTTP/1.1\r\nHost: 127.0.0.1\r\nLast-Event-ID: ', 'latin1'),
    id,
    Buffer.from('\r\n\r\n', 'latin1'),
  ]);
}

/** The response head of `method /sse` as a map of lower-case header names (Date left out). */
function headersOf(url: string, method: string): Promise<Record<string, string | string[] | undefined>> {
  return new Promise((resolve, reject) => {
    const request = get(
      `${url}/sse`,
      { method, agent: false, headers: { connection: 'keep-alive' } },
      (response) => {
        const { date: _date, 'transfer-encoding': _te, 'content-length': _cl, ...headers } = response.headers;
        response.destroy();
        resolve(headers);
      },
    );
    request.on('error', reject);
  });
}

describe('NodeSink: a client gone before the stream began', () => {
  it('aborts a signal first read after the client left', async () => {
    let aborted: boolean | undefined;
    let requested = false;
    const { url } = await serve((req, res) => {
      requested = true;
      const sink = new NodeSink(req, res);
      res.once('close', () => {
        aborted = sink.signal.aborted;
      });
    });
    const client = await rawClient(`${url}/`, { read: true });
    await waitFor(() => requested, 5000, 'the request');
    client.destroy();
    await waitFor(() => aborted !== undefined, 5000, 'the close');
    expect(aborted).toBe(true);
  });

  it('closes with reason client a stream whose async handler resolved after the client left', async () => {
    const source = counted(NEVER);
    const { options, closes } = recording({ heartbeat: false });
    let clientGone!: () => void;
    const gone = new Promise<void>((resolve) => (clientGone = resolve));
    let requested = false;
    const { handle, errors } = route(async () => {
      requested = true;
      await gone; // say, an auth lookup that outlasts the client
      return source.observable;
    }, options);
    const { url } = await serve((req, res) => {
      res.once('close', () => clientGone());
      handle(req, res);
    });
    const client = await rawClient(`${url}/sse`, { read: true });
    await waitFor(() => requested, 5000, 'the handler');
    client.destroy();
    await waitFor(() => closes.length === 1, 5000, 'the close');
    expect(closes[0]!.reason).toBe('client');
    expect(source.counts.active).toBe(0);
    expect(errors).toEqual([]);
  });

  it("never ends the response of a client that left while its handler ran, which a middleware's end() would hear", async () => {
    const { options, closes } = recording({ heartbeat: false });
    let requested = false;
    const { handle, errors } = route(() => {
      requested = true;
      return new Promise<never>(() => {});
    }, options);
    const { url, ends, closed } = await serveCountingEnds(handle);
    const client = await rawClient(`${url}/sse`, { read: true });
    await waitFor(() => requested, 5000, 'the handler');
    client.destroy();
    await waitFor(() => closes.length === 1 && closed(), 5000, 'the close');
    expect(closes.map((c) => c.reason)).toEqual(['client']);
    expect(ends()).toBe(0);
    expect(errors).toEqual([]);
  });

  it("ends, once, the response of a stream it drops (overflow), which a middleware's end() would hear", async () => {
    const { options, closes } = recording({
      heartbeat: false,
      maxQueueBytes: 256 * 1024,
      stallTimeout: false,
    });
    // One event a millisecond, to a client that reads none: the queue passes its cap.
    const { handle, errors } = route(
      () => interval(1).pipe(map(() => ({ data: 'x'.repeat(64 * 1024) }))),
      options,
    );
    const { url, ends, closed } = await serveCountingEnds(handle);
    const client = await rawClient(`${url}/sse`, { read: false });
    onTestFinished(() => client.destroy());
    await waitFor(() => closes.length === 1 && closed(), 5000, 'the drop');
    expect(closes.map((c) => c.reason)).toEqual(['overflow']);
    expect(ends()).toBe(1);
    expect(errors).toEqual([]);
  });

  it.each([
    ['the reason of its signal', (signal: AbortSignal) => signal.reason],
    [
      'an AbortError of an API it gave its signal',
      () => new DOMException('This operation was aborted', 'AbortError'),
    ],
  ])(
    'closes with reason client, and reports nothing, an async handler that fails with %s once its client left',
    async (_label, failure) => {
      const { options, closes } = recording({ heartbeat: false });
      let requested = false;
      const { handle, errors } = route(({ signal }) => {
        requested = true;
        // Say, a fetch upstream given the signal, as the README suggests.
        return new Promise((_resolve, reject) =>
          signal.addEventListener('abort', () => reject(failure(signal))),
        );
      }, options);
      const { url } = await serve(handle);
      const client = await rawClient(`${url}/sse`, { read: true });
      await waitFor(() => requested, 5000, 'the handler');
      client.destroy();
      await waitFor(() => closes.length === 1 || errors.length > 0, 5000, 'the close');
      expect(errors).toEqual([]);
      expect(closes.map((c) => c.reason)).toEqual(['client']);
    },
  );

  it('still rejects with what an async handler throws after its client left, when it is not the abort', async () => {
    let requested = false;
    const { handle, errors } = route(async ({ signal }) => {
      requested = true;
      await new Promise((resolve) => signal.addEventListener('abort', resolve));
      throw new Error('database went away');
    });
    const { url } = await serve(handle);
    const client = await rawClient(`${url}/sse`, { read: true });
    await waitFor(() => requested, 5000, 'the handler');
    client.destroy();
    await waitFor(() => errors.length > 0, 5000, 'the rejection');
    expect(errors.map(String)).toEqual(['Error: database went away']);
  });

  it('closes at once a pipelined stream whose connection dropped before the stream began', async () => {
    const { options, closes } = recording({ heartbeat: false });
    const { handle, errors } = route(() => NEVER, options);
    let seen = 0;
    const { url } = await serve((req, res) => {
      seen++;
      if (seen === 1) return handle(req, res); // the first holds the connection
      // The second waits behind it (a middleware's await) until the connection is gone.
      req.socket.once('close', () => setImmediate(() => handle(req, res)));
    });
    const client = await rawRequests(url, [httpRequest('GET', '/sse'), httpRequest('GET', '/sse')]);
    await waitFor(() => seen === 2 && client.text.includes('200 OK'), 5000, 'both requests');
    client.destroy();
    await waitFor(() => closes.length === 2, 5000, 'two closes');
    expect(closes.map((c) => c.reason)).toEqual(['client', 'client']);
    expect(errors).toEqual([]);
  });

  it('closes with reason client a stream waiting behind a pipelined one whose client half-closed while its middleware ran', async () => {
    const { options, closes } = recording({ heartbeat: false });
    const { handle, errors } = route(() => NEVER, options);
    // The stream begins only once its client half-closed (a middleware's await).
    await halfClosedBehindFull((req, res) =>
      req.socket.once('end', () => setImmediate(() => handle(req, res))),
    );
    await waitFor(() => closes.length === 1, 5000, 'the close');
    expect(closes.map((c) => c.reason)).toEqual(['client']);
    expect(errors).toEqual([]);
  });
});

describe('NodeSink: listeners', () => {
  it('registers no drain listener once the response has closed', async () => {
    let count: number | undefined;
    const { url } = await serve((req, res) => {
      const sink = new NodeSink(req, res);
      sink.open({ 'content-type': 'text/event-stream' });
      res.once('close', () => {
        sink.onDrain(() => {});
        count = res.listenerCount('drain');
      });
    });
    const client = await rawClient(`${url}/`, { read: true });
    await waitFor(() => client.text.includes('\r\n\r\n'), 5000, 'the head');
    client.destroy();
    await waitFor(() => count !== undefined, 5000, 'the close');
    expect(count).toBe(0);
  });

  it('leaves no close listener on a kept-alive connection after a pipelined stream ends', async () => {
    let base: number | undefined;
    let after: number | undefined;
    let seen = 0;
    const { url, server } = await serve((req, res) => {
      seen++;
      if (seen === 1) {
        // A slow plain response, so the stream behind it waits for the connection.
        setTimeout(() => res.end('ok'), 20);
        return;
      }
      const socket = req.socket;
      const sink = new NodeSink(req, res);
      res.once('close', () => setImmediate(() => (after = socket.listenerCount('close'))));
      // Opened and ended while it waits: Node sends it once the first response is done.
      sink.open({ 'content-type': 'text/event-stream' });
      sink.write(new TextEncoder().encode('data: x\n\n'));
      sink.end();
    });
    // What node:http itself keeps on a connection, before any request.
    server.on('connection', (socket) => {
      base = socket.listenerCount('close');
    });
    const client = await rawRequests(url, [httpRequest('GET', '/'), httpRequest('GET', '/sse')]);
    await waitFor(() => after !== undefined, 5000, 'the stream to end');
    client.destroy();
    expect(after).toBe(base);
  });

  it('leaves no end listener on a kept-alive connection after a stream that was full and ended with bytes still to flush', async () => {
    let base: number | undefined;
    let after: number | undefined;
    let pendingAtEnd = 0;
    const { url, server } = await serve((req, res) => {
      const socket = req.socket;
      const sink = new NodeSink(req, res);
      res.once('finish', () => setImmediate(() => (after = socket.listenerCount('end'))));
      sink.open({ 'content-type': 'text/event-stream' });
      // More than the kernel takes at once: the end waits for it to flush.
      sink.write(new TextEncoder().encode(`data: ${'x'.repeat(8 * 1024 * 1024)}\n\n`));
      // Full: a stream waits for room then, and the sink listens for its client's half-close.
      sink.onDrain(() => {});
      pendingAtEnd = sink.pending();
      sink.end();
    });
    // What node:http itself keeps on a connection, before any request.
    server.on('connection', (socket) => {
      base = socket.listenerCount('end');
    });
    const client = await rawRequests(url, [httpRequest('GET', '/sse')]);
    await waitFor(() => after !== undefined, 5000, 'the stream to flush');
    expect(pendingAtEnd).toBeGreaterThan(0);
    // The connection may carry request after request: each stream's listener must go.
    expect(after).toBe(base);
    expect(client.closed).toBe(false);
    client.destroy();
  });
});

describe('NodeSink: a stream that waits behind a pipelined response', () => {
  it('has room while what it holds stays under the high-water mark, is full past it, and sends it all once its turn comes', async () => {
    let rooms: boolean[] | undefined;
    let first: ServerResponse | undefined;
    let seen = 0;
    const { url } = await serve((req, res) => {
      seen++;
      if (seen === 1) {
        first = res; // holds the connection: the stream's writes wait in its response
        return;
      }
      const sink = new NodeSink(req, res);
      sink.open({ 'content-type': 'text/event-stream' });
      rooms = [sink.write(new TextEncoder().encode('data: 1\n\n')), sink.writeText('data: 2\n\n')];
      rooms.push(sink.writeText(`data: ${'x'.repeat(64 * 1024)}\n\n`));
      sink.end();
    });
    const client = await rawRequests(url, [httpRequest('GET', '/'), httpRequest('GET', '/sse')]);
    onTestFinished(() => client.destroy());
    await waitFor(() => rooms !== undefined, 5000, 'the stream');
    expect(rooms).toEqual([true, true, false]);
    first!.end('ok');
    await waitFor(() => client.text.endsWith('0\r\n\r\n'), 5000, 'the stream to end');
    expect(client.text).toMatch(/ok[\s\S]*data: 1\n\n[\s\S]*data: 2\n\n[\s\S]*data: x{65536}\n\n/);
  });
});

describe('openEventStream on a response already being sent', () => {
  /**
   * A route whose response another writer starts while its handler sets up and makes an iterator
   * with `onReturn` as its `return()`: what the client read, and what `openEventStream` failed with.
   */
  async function takenOverWhileSettingUp(onReturn: () => unknown, options: StreamOptions = {}) {
    const errors: unknown[] = [];
    const { url } = await serve((req, res) => {
      const iterator = {
        next: () => new Promise(() => {}),
        return: onReturn,
        [Symbol.asyncIterator]: () => iterator,
      } as AsyncIterableIterator<MessageEvent>;
      const produce = async () => {
        res.writeHead(200, { 'content-type': 'text/plain' }).write('theirs\n');
        return iterator;
      };
      openEventStream(req, res, produce, resolveStreamOptions({ heartbeat: false, ...options })).catch(
        (error) => {
          errors.push(error);
          res.end('still theirs\n');
        },
      );
    });
    const text = await (await fetch(`${url}/sse`)).text();
    await waitFor(() => errors.length === 1, 5000, 'the refusal');
    return { text, errors };
  }

  it('refuses it, leaves it to its writer, and returns the iterator a handler made meanwhile', async () => {
    let returned = 0;
    const { text, errors } = await takenOverWhileSettingUp(async () => {
      returned++;
      return { done: true, value: undefined };
    });
    expect(text).toBe('theirs\nstill theirs\n');
    expect(String(errors[0])).toMatch(/already being sent/);
    expect(returned).toBe(1);
  });

  it("hands the route's onError what that iterator's return() throws", async () => {
    const failure = new Error('return() failed');
    const heard: unknown[] = [];
    const onReturn = () => {
      throw failure;
    };
    await takenOverWhileSettingUp(onReturn, { onError: (error) => heard.push(error) });
    expect(heard).toEqual([failure]);
  });
});

describe('watchResponseClose', () => {
  it('tells each held response once its client is gone, pipelined or not, unless stopped', async () => {
    const told: string[] = [];
    const held: { res: ServerResponse; stop: () => void }[] = [];
    const { url } = await serve((req, res) => {
      held.push({ res, stop: watchResponseClose(req, res, () => told.push(req.url ?? '')) });
    });
    const client = await rawRequests(
      url,
      ['/a', '/b', '/c', '/d'].map((path) => httpRequest('GET', path)),
    );
    await waitFor(() => held.length === 4, 5000, 'four requests');
    held[3]?.stop();
    client.destroy();
    await waitFor(() => told.length === 3, 5000, 'three told');
    await new Promise((resolve) => setImmediate(resolve));
    expect(told.sort()).toEqual(['/a', '/b', '/c']);
    // A response that closed before the call is told at once.
    const late: string[] = [];
    watchResponseClose(held[0]!.res.req, held[0]!.res, () => late.push('told'));
    expect(late).toEqual(['told']);
  });

  it('tells at once a response that waits behind a pipelined one whose connection dropped before the call', async () => {
    const held: { req: IncomingMessage; res: ServerResponse }[] = [];
    const { url } = await serve((req, res) => void held.push({ req, res }));
    const client = await rawRequests(
      url,
      ['/a', '/b'].map((path) => httpRequest('GET', path)),
    );
    await waitFor(() => held.length === 2, 5000, 'two requests');
    client.destroy();
    await waitFor(() => held[1]!.req.socket.destroyed, 5000, 'the connection to drop');
    await new Promise((resolve) => setImmediate(resolve));
    // Node never closes a response still waiting for its turn: only its connection told of the drop.
    const told: string[] = [];
    watchResponseClose(held[1]!.req, held[1]!.res, () => told.push('told'));
    expect(told).toEqual(['told']);
  });
  it('tells a response waiting behind a pipelined one once its client half-closed, though the one before holds bytes no one reads', async () => {
    const told: string[] = [];
    await halfClosedBehindFull((req, res) => watchResponseClose(req, res, () => told.push(req.url ?? '')));
    await waitFor(() => told.length === 1, 5000, 'the waiting response told');
    expect(told).toEqual(['/b']);
  });

  it('leaves a response waiting behind a pipelined one to its turn when its client half-closed on a server that allows half-open connections', async () => {
    const told: string[] = [];
    const held: ServerResponse[] = [];
    const { url, server } = await serve((req, res) => {
      watchResponseClose(req, res, () => told.push(req.url ?? ''));
      held.push(res);
    });
    // Node then keeps its side open: the client may still read the answers to what it sent.
    (server as Server & { httpAllowHalfOpen: boolean }).httpAllowHalfOpen = true;
    const client = await rawRequests(
      url,
      ['/a', '/b'].map((path) => httpRequest('GET', path)),
    );
    onTestFinished(() => client.destroy());
    await waitFor(() => held.length === 2, 5000, 'two requests');
    client.socket.end();
    await waitFor(() => held[0]!.req.socket.readableEnded, 5000, 'the server to see the half-close');
    await new Promise((resolve) => setImmediate(resolve));
    expect(told).toEqual([]);
    held[0]!.end('first');
    held[1]!.end('second');
    await waitFor(() => client.text.endsWith('second') || client.closed, 5000, 'both answers');
    expect(client.text.endsWith('second')).toBe(true);
  });
});

describe('responseDone', () => {
  it('settles for an answer that ended, though its client has not taken it all', async () => {
    const settled: string[] = [];
    const { url } = await serve((_req, res) => {
      // More than loopback's buffers take, to a client that reads nothing: it ends, and never finishes.
      res.end('x'.repeat(16 * 1024 * 1024));
      void responseDone(res).then(() => settled.push('done'));
    });
    const client = await rawClient(`${url}/plain`, { read: false });
    await waitFor(() => settled.length === 1, 5000, 'responseDone to settle');
    client.destroy();
  });

  it('settles for an answer that closed without an end, its client gone', async () => {
    const settled: string[] = [];
    let held: ServerResponse | undefined;
    const { url } = await serve((_req, res) => {
      held = res;
      void responseDone(res).then(() => settled.push('done'));
    });
    const client = await rawClient(`${url}/plain`, { read: true });
    await waitFor(() => held !== undefined, 5000, 'the request');
    client.destroy();
    await waitFor(() => settled.length === 1, 5000, 'responseDone to settle');
    expect(held!.writableEnded).toBe(false);
  });

  it('settles for an answer that had closed without an end before the call', async () => {
    const settled: string[] = [];
    let held: ServerResponse | undefined;
    const { url } = await serve((_req, res) => {
      held = res;
      // Called only once the client is gone: no 'close' comes any more.
      res.once('close', () => void responseDone(res).then(() => settled.push('done')));
    });
    const client = await rawClient(`${url}/plain`, { read: true });
    await waitFor(() => held !== undefined, 5000, 'the request');
    client.destroy();
    await waitFor(() => settled.length === 1, 5000, 'responseDone to settle');
    expect(settled).toEqual(['done']);
    expect(held!.writableEnded).toBe(false);
  });
});

describe('NodeSink: many pipelined streams', () => {
  it('watches their connection without a listener-leak warning, and closes each when it drops', async () => {
    const { warnings, stop } = recordWarnings();
    try {
      const source = counted(NEVER as Observable<MessageEvent>);
      const { options, closes } = recording({ heartbeat: false });
      const { handle } = route(() => source.observable, options);
      const { url } = await serve(handle);
      const client = await rawRequests(
        url,
        Array.from({ length: 16 }, () => httpRequest('GET', '/sse')),
      );
      await waitFor(() => source.counts.subscribed === 16, 5000, 'sixteen streams');
      client.destroy();
      await waitFor(() => closes.length === 16, 5000, 'sixteen closes');
      expect(closes.every((c) => c.reason === 'client')).toBe(true);
      expect(source.counts.active).toBe(0);
      await new Promise((resolve) => setImmediate(resolve));
      expect(warnings.filter((w) => w.name === 'MaxListenersExceededWarning')).toEqual([]);
    } finally {
      stop();
    }
  });
  it('still closes those that wait behind the others when their connection drops, after some ended', async () => {
    const { options, closes } = recording({ heartbeat: false });
    let seen = 0;
    // The first two end at once, the third holds the connection, the fourth waits behind it.
    const { handle, errors } = route(() => (++seen <= 2 ? from([{ data: 'done' }]) : NEVER), options);
    const { url } = await serve(handle);
    const client = await rawRequests(
      url,
      Array.from({ length: 4 }, () => httpRequest('GET', '/sse')),
    );
    await waitFor(() => client.text.split('200 OK').length - 1 === 3, 5000, 'the third stream');
    client.destroy();
    await waitFor(() => closes.length === 4, 5000, 'four closes');
    expect(closes.map((c) => c.reason)).toEqual(['complete', 'complete', 'client', 'client']);
    expect(errors).toEqual([]);
  });
});

describe('guardClientErrors', () => {
  /** Adds the clientError listener Node's docs write: a raw 400 into any connection still writable. */
  function answerClientErrorsAsNodeDocs(server: Server) {
    server.on('clientError', (error: NodeJS.ErrnoException, socket: Socket) => {
      if (error.code === 'ECONNRESET' || !socket.writable) return;
      socket.end('HTTP/1.1 400 Bad Request\r\n\r\n');
    });
  }

  it("leaves a server with no clientError listener, though it has others, to Node's own answer: a 400, and the connection closed", async () => {
    const { url, server } = await serve((_req, res) => res.end('ok'));
    guardClientErrors(server);
    // A listener of another event, as apps add them: no clientError listener comes with it.
    server.on('close', () => {});
    const client = await rawRequests(url, ['NOT HTTP\r\n\r\n']);
    await waitFor(() => client.closed, 5000, 'the server to close the connection');
    expect(client.text).toMatch(/^HTTP\/1\.1 400 Bad Request\r\n/);
  });

  for (const [when, listenerFirst] of [
    ['adds later', false],
    ['added before', true],
  ] as const) {
    it(`drops a live stream's connection ahead of a clientError listener the app ${when}, as Node's docs write one`, async () => {
      const { handle } = route(() => concat(from([{ data: 'hi' }]), NEVER), { heartbeat: false });
      const { url, server } = await serve(handle);
      if (listenerFirst) answerClientErrorsAsNodeDocs(server);
      closeStreamsOnServerClose(server);
      if (!listenerFirst) answerClientErrorsAsNodeDocs(server);
      const { port } = new URL(url);
      const received = await rawExchange(Number(port), httpRequest('GET', '/sse'), 'data: hi\n\n\r\n');
      expect(received.slice(received.indexOf('\r\n\r\n') + 4)).toBe('a\r\ndata: hi\n\n\r\n');
      // A connection without a live stream still gets the listener's answer.
      expect(await rawExchange(Number(port), '', '')).toBe('HTTP/1.1 400 Bad Request\r\n\r\n');
    });
  }

  it("leaves the connection of an answer under way that is no event stream to the app's clientError listener", async () => {
    const { url, server } = await serve((_req, res) => {
      // A download under way: the app's own answer, which its listener decides about.
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.write('part one');
    });
    closeStreamsOnServerClose(server);
    answerClientErrorsAsNodeDocs(server);
    const { port } = new URL(url);
    const received = await rawExchange(Number(port), httpRequest('GET', '/download'), 'part one\r\n');
    expect(received).toMatch(/part one\r\nHTTP\/1\.1 400 Bad Request\r\n\r\n$/);
  });

  it("leaves the connection of a stream whose handler still sets up to the app's clientError listener: nothing of it went out", async () => {
    const { handle } = route(() => new Promise<never>(() => {}), { heartbeat: false });
    const { url, server } = await serve(handle);
    closeStreamsOnServerClose(server);
    answerClientErrorsAsNodeDocs(server);
    const { port } = new URL(url);
    expect(await rawExchange(Number(port), httpRequest('GET', '/sse'), '')).toBe(
      'HTTP/1.1 400 Bad Request\r\n\r\n',
    );
  });
});

describe('stallTimeout after the stream ended', () => {
  for (const [label, events, options] of [
    ['complete', () => from(burst()), {}],
    ['lifetime', () => concat(from(burst()), NEVER), { maxLifetime: 100 }],
  ] as const) {
    it(`drops a client that takes nothing of what an ended stream (${label}) left, after stallTimeout`, async () => {
      const { options: recorded, closes } = recording({
        stallTimeout: 300,
        maxQueueBytes: 64 * 1024 * 1024,
        heartbeat: false,
        ...options,
      });
      const { handle } = route(events, recorded);
      const { url, server } = await serve(handle);
      let dropped = false;
      server.on('connection', (socket) => socket.once('close', () => (dropped = true)));
      const client = await rawClient(`${url}/sse`, { read: false });
      await waitFor(() => closes.length === 1, 5000, 'the end of the stream');
      expect(closes[0]!.reason).toBe(label);
      // More than any socket buffers: the rest waits on the server for a client that never reads.
      await waitFor(() => dropped, 5000, 'the server to drop the connection');
      expect(closes).toHaveLength(1);
      client.destroy();
    });
  }
});

describe('stallTimeout after the stream ended, for a client that reads slowly', () => {
  it('keeps a client that takes some of what the end left in every stallTimeout, until it has it all', async () => {
    const stallTimeout = 2000;
    const { options, closes } = recording({
      stallTimeout,
      maxQueueBytes: 64 * 1024 * 1024,
      heartbeat: false,
    });
    let sink: NodeSink | undefined;
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    onTestFinished(() => {
      vi.useRealTimers();
    });
    const { url, server } = await serve((req, res) => {
      sink = new NodeSink(req, res);
      streamEvents(from(burst()), sink, options);
    });
    let dropped = false;
    server.on('connection', (socket) => socket.once('close', () => (dropped = true)));
    const { socket } = await rawClient(`${url}/sse`, { read: false });
    let text = '';
    socket.on('data', (chunk: Buffer) => {
      text += chunk.toString('latin1');
    });
    socket.pause();
    // 16 MiB: far more than the kernel's buffers hold, so the end leaves bytes in the response.
    await waitForReal(() => closes.length === 1 && sink!.pending() > 0, 5000, 'the end, with bytes left');
    expect(closes[0]!.reason).toBe('complete');
    // Each stallTimeout, the client takes some (until the server sees its response shrink), then
    // stops: the check at the end of each one finds it took some, and keeps it.
    let windows = 0;
    while (sink!.pending() > 0 && !dropped) {
      const left = sink!.pending();
      socket.resume();
      await waitForReal(() => sink!.pending() < left || dropped, 5000, 'the client to take some');
      socket.pause();
      vi.advanceTimersByTime(stallTimeout);
      windows++;
    }
    socket.resume();
    await waitForReal(() => text.endsWith('\r\n0\r\n\r\n') || dropped, 10_000, 'all of it, or the drop');
    expect(dropped).toBe(false);
    expect(windows).toBeGreaterThan(0);
    expect(text.split('data: ').length - 1).toBe(burst().length);
    socket.destroy();
  });
});

describe('stallTimeout after stream.close()', () => {
  it('drops a client that takes nothing of what the close left, when no group close bounds it', async () => {
    const { options, closes } = recording({
      stallTimeout: 300,
      maxQueueBytes: 64 * 1024 * 1024,
      heartbeat: false,
    });
    const { url, server } = await serve((req, res) => {
      void openEventStream(req, res, () => concat(from(burst()), NEVER), resolveStreamOptions(options)).then(
        // The app ends this client's stream itself (a logout, a revoked token) while it reads nothing.
        (stream) => setImmediate(() => stream?.close()),
      );
    });
    let dropped = false;
    server.on('connection', (socket) => socket.once('close', () => (dropped = true)));
    const client = await rawClient(`${url}/sse`, { read: false });
    await waitFor(() => closes.length === 1, 5000, 'the close');
    expect(closes[0]!.reason).toBe('shutdown');
    await waitFor(() => dropped, 5000, 'the server to drop the connection');
    client.destroy();
  });
});

/** 16 MiB of events, emitted at once. */
function burst(): MessageEvent[] {
  const big = { data: 'z'.repeat(64 * 1024) };
  return Array.from({ length: 256 }, () => big);
}

describe('NodeSink: body framing', () => {
  it('sends an HTTP/1.0 client the body as it is, not in chunked framing', async () => {
    const { url } = await serve((req, res) => {
      const sink = new NodeSink(req, res);
      sink.open({ 'content-type': 'text/event-stream' });
      sink.write(new TextEncoder().encode('data: x\n\n'));
      sink.end();
    });
    const client = await rawRequests(url, ['GET /sse HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n']);
    await client.done;
    expect(client.text).toMatch(/^HTTP\/1\.1 200/);
    expect(client.text.slice(client.text.indexOf('\r\n\r\n') + 4)).toBe('data: x\n\n');
  });

  it.each([
    [
      'an HTTP/1.1 client that says Connection: close',
      'GET /sse HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n',
    ],
    [
      'an HTTP/1.0 client that asks to keep alive',
      'GET /sse HTTP/1.0\r\nHost: 127.0.0.1\r\nConnection: keep-alive\r\n\r\n',
    ],
    ['an HTTP/1.0 client', 'GET /sse HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n'],
  ])('tells %s that the connection closes, and closes it after the stream', async (_label, request) => {
    const { handle } = route(() => from([{ data: 'x' }]), { heartbeat: false });
    const { url, server } = await serve(handle);
    server.keepAliveTimeout = 60_000;
    const client = await rawRequests(url, [request]);
    await waitFor(() => client.closed, 5000, 'the server to close the connection');
    const head = client.text.slice(0, client.text.indexOf('\r\n\r\n')).toLowerCase();
    expect(head).toContain('connection: close');
    expect(head).not.toContain('keep-alive');
    expect(client.text).toContain('data: x\n\n');
  });
});

describe('openEventStream: a response the route ends itself from a hook', () => {
  it.each([
    ['a small one', 'x'],
    ['one larger than the socket buffer', 'x'.repeat(256 * 1024)],
  ])(
    'writes nothing after its end: an errorEvent that ends the response and returns %s',
    async (_label, data) => {
      const errors: unknown[] = [];
      const closes: string[] = [];
      const failing = new Subject<MessageEvent>();
      const { url, server } = await serve((req, res) => {
        const options = resolveStreamOptions({
          heartbeat: false,
          errorEvent: () => {
            res.end();
            return { data };
          },
          onClose: (reason) => closes.push(reason),
        });
        openEventStream(
          req,
          res,
          () => failing,
          options,
          (error) => errors.push(error),
        ).catch((error) => errors.push(error));
      });
      server.keepAliveTimeout = 60_000;
      const client = await rawRequests(url, [httpRequest('GET', '/sse')]);
      await waitFor(() => client.text.includes('\r\n\r\n'), 5000, 'the headers');
      failing.error(new Error('source failed'));
      await waitFor(() => closes.length > 0, 5000, 'the stream to close');
      await sleep(50);
      // The body ends with the route's end: a byte after it would be read as the next response.
      expect(client.text.endsWith('\r\n\r\n0\r\n\r\n')).toBe(true);
      expect(closes).toEqual(['error']);
      expect(errors).toEqual([expect.objectContaining({ message: 'source failed' })]);
    },
  );
});

describe('openEventStream: the connection as Node frames it', () => {
  it('says Connection: close on the last request maxRequestsPerSocket lets a connection carry, as Node does', async () => {
    const { handle } = route(() => from([{ data: 'x' }]), { heartbeat: false });
    const { url, server } = await serve(handle);
    server.maxRequestsPerSocket = 2;
    const get = 'GET /sse HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n';
    const client = await rawRequests(url, [get, get]);
    await waitFor(() => client.text.match(/data: x\n\n\r\n0\r\n\r\n/g)?.length === 2, 5000, 'both streams');
    client.destroy();
    const heads = client.text.match(/^HTTP\/1\.1 [\s\S]*?\r\n\r\n/gm) ?? [];
    expect(heads).toHaveLength(2);
    expect(heads[0]).toMatch(/\r\nConnection: keep-alive\r\n/i);
    // Taken at its word, a keep-alive client would send a third request, which Node answers 503.
    expect(heads[1]).toMatch(/\r\nConnection: close\r\n/i);
  });

  it('keeps the Connection: close a middleware set on the response, and closes the connection after the stream', async () => {
    const { handle } = route(() => from([{ data: 'x' }]), { heartbeat: false });
    const { url, server } = await serve((req, res) => {
      res.setHeader('Connection', 'close');
      handle(req, res);
    });
    server.keepAliveTimeout = 60_000;
    const client = await rawRequests(url, ['GET /sse HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n']);
    await waitFor(() => client.closed, 5000, 'the server to close the connection');
    const head = client.text.slice(0, client.text.indexOf('\r\n\r\n')).toLowerCase();
    expect(head).toContain('connection: close');
    expect(head).not.toContain('keep-alive');
    expect(client.text).toContain('data: x\n\n');
  });

  it.each([
    ['an HTTP/1.0 client', 'GET /sse HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n', 0],
    ['the last request maxRequestsPerSocket allows', 'GET /sse HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n', 1],
  ])("says close instead of a route's own Connection: keep-alive to %s", async (_label, request, max) => {
    const { handle } = route(() => from([{ data: 'x' }]), {
      heartbeat: false,
      headers: { Connection: 'keep-alive' },
    });
    const { url, server } = await serve(handle);
    server.maxRequestsPerSocket = max;
    const client = await rawRequests(url, [request]);
    await waitFor(() => client.text.includes('data: x\n\n'), 5000, 'the stream');
    client.destroy();
    const head = client.text.slice(0, client.text.indexOf('\r\n\r\n')).toLowerCase();
    expect(head).toContain('\r\nconnection: close');
    expect(head).not.toContain('keep-alive');
  });

  it('sends the Keep-Alive hint Node sends with its own keep-alive answers', async () => {
    const { handle } = route(() => from([{ data: 'x' }]), { heartbeat: false });
    const { url, server } = await serve(handle);
    server.keepAliveTimeout = 7000;
    const client = await rawRequests(url, ['GET /sse HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n']);
    await waitFor(() => client.text.includes('data: x\n\n'), 5000, 'the stream');
    client.destroy();
    const head = client.text.slice(0, client.text.indexOf('\r\n\r\n')).toLowerCase();
    expect(head).toContain('\r\nconnection: keep-alive\r\n');
    expect(head).toContain('\r\nkeep-alive: timeout=7\r\n');
  });
});

describe('openEventStream: clients that speak HTTP/1 unusually', () => {
  it('streams to a client that expects 100-continue, its body still to come', async () => {
    const { options, closes } = recording({ heartbeat: false });
    const { handle, errors } = route(() => concat(from([{ data: 'hi' }]), NEVER), options);
    const { url } = await serve(handle);
    const client = await rawRequests(url, [
      'POST /sse HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n',
    ]);
    await waitFor(() => client.text.includes('data: hi'), 5000, 'the stream');
    expect(client.text).toMatch(/^HTTP\/1\.1 100 Continue\r\n\r\nHTTP\/1\.1 200 OK\r\n/);
    client.socket.write('hello');
    client.destroy();
    await waitFor(() => closes.length === 1, 5000, 'the close');
    expect(closes[0]!.reason).toBe('client');
    expect(errors).toEqual([]);
  });

  it('closes with reason client when the client half-closes its connection', async () => {
    const { options, closes } = recording({ heartbeat: false });
    const { handle, errors } = route(() => concat(from([{ data: 'hi' }]), NEVER), options);
    const { url } = await serve(handle);
    const client = await rawClient(`${url}/sse`, { read: true });
    await waitFor(() => client.text.includes('data: hi'), 5000, 'the stream');
    client.socket.end();
    await waitFor(() => closes.length === 1, 5000, 'the close');
    expect(closes[0]!.reason).toBe('client');
    expect(errors).toEqual([]);
    await client.done;
  });
});

describe('openEventStream: a client that half-closes while Node still holds bytes for it', () => {
  // Node ends its side of a connection whose client half-closed, after the bytes it holds: a
  // write to the socket then is an error, which the server would take for the client's.
  for (const ending of ['writes', 'ends'] as const) {
    it(`raises no client error and sends what Node held when the stream then ${ending}`, async () => {
      const events = new Subject<MessageEvent>();
      const { closes, errors, server, client, socket } = await unreadStream(() => events);
      const clientErrors: Error[] = [];
      server.on('clientError', (error: Error, each: Socket) => {
        clientErrors.push(error);
        each.destroy();
      });
      const event = await halfCloseWhileNodeHolds(events, client, socket);
      if (ending === 'writes') events.next(event);
      else events.complete();
      client.resume();
      await client.done;
      expect(clientErrors).toEqual([]);
      expect(client.text.endsWith(`${event.data}\n\n\r\n`)).toBe(true);
      expect(closes.map((close) => close.reason)).toEqual([ending === 'writes' ? 'client' : 'complete']);
      expect(errors).toEqual([]);
    });
  }

  it('closes with reason client a stream that writes on once its client half-closed and reads no more, instead of holding all it writes', async () => {
    const events = new Subject<MessageEvent>();
    const { closes, errors, client, socket } = await unreadStream(() => events);
    // The stream has room, and no listener for the half-close yet.
    const event = await halfCloseWhileNodeHolds(events, client, socket);
    // What is written now stays in the response: Node sends nothing more on a connection it ended.
    let written = 0;
    while (closes.length === 0 && written < 2000) {
      events.next(event);
      written++;
      await new Promise((resolve) => setImmediate(resolve));
    }
    expect(closes.map((close) => close.reason)).toEqual(['client']);
    expect(written * event.data.length).toBeLessThan(4 * socket.writableHighWaterMark);
    await waitFor(() => socket.destroyed, 5000, 'the connection to be dropped');
    expect(errors).toEqual([]);
    client.destroy();
  });

  it('keeps open at the half-close a stream that was full once but has room now, and sends what Node held', async () => {
    const events = new Subject<MessageEvent>();
    const { closes, errors, client, socket } = await unreadStream(() => events);
    await waitFor(() => events.observed, 5000, 'the stream');
    // Full once: the stream then waits for room, and its sink listens for the half-close.
    const big = { data: 'z'.repeat(64 * 1024) };
    let bigSent = 0;
    while (socket.writableLength < socket.writableHighWaterMark) {
      events.next(big);
      bigSent++;
      await new Promise((resolve) => setImmediate(resolve));
    }
    client.resume();
    await waitFor(
      () => client.text.split('data: z').length - 1 === bigSent && socket.writableLength === 0,
      5000,
      'the client to take it all',
    );
    client.socket.pause();
    // Then small events until the kernel holds no more and Node keeps some again, with room left.
    const event = { data: 'x'.repeat(1000) };
    while (socket.writableLength < socket.writableHighWaterMark / 2) {
      events.next(event);
      await new Promise((resolve) => setImmediate(resolve));
    }
    // Heard after Node ended its side and after the sink's own listener: the stream had room.
    let openAtHalfClose: boolean | undefined;
    socket.once('end', () => {
      openAtHalfClose = closes.length === 0;
    });
    client.socket.end();
    await waitFor(() => socket.writableEnded, 5000, 'Node to end its side');
    await new Promise((resolve) => setImmediate(resolve));
    expect(openAtHalfClose).toBe(true);
    events.complete();
    client.resume();
    await client.done;
    expect(client.text.endsWith(`${event.data}\n\n\r\n`)).toBe(true);
    // `complete`, or `client` if the kernel took the rest and the connection closed meanwhile.
    expect(closes).toHaveLength(1);
    expect(errors).toEqual([]);
  });

  it('ends the body of a stream that ended by itself before Node ends the connection', async () => {
    const { closes, errors, client, socket } = await unreadStream(() => from(burst().slice(0, 64)));
    // 4 MiB, more than the kernel holds: the stream ends while Node still flushes it.
    await waitFor(() => closes.length === 1 && socket.writableLength > 0, 5000, 'the end, with bytes left');
    client.socket.end();
    await waitFor(() => socket.readableEnded, 5000, 'the server to see the half-close');
    client.resume();
    await client.done;
    expect(client.text.split('data: ').length - 1).toBe(64);
    expect(client.text.endsWith('\n\n\r\n0\r\n\r\n')).toBe(true);
    expect(closes[0]!.reason).toBe('complete');
    expect(errors).toEqual([]);
  });
});

describe('openEventStream: a stream on a request whose body is not all read', () => {
  /** A POST that has sent 10 bytes of its 20-byte body: the rest, `0123456789`, is to come. */
  const HALF_UPLOADED = 'POST /sse HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 20\r\n\r\n0123456789';

  // Closed with body bytes unread, a connection is reset: the kernel drops what it still holds for a
  // slow client, the stream's tail.
  it.each([
    ['sent whole, and read by no one', false, 'HTTP/1.1'],
    ['still arriving', true, 'HTTP/1.1'],
    ['read by no one, on a connection it closes', false, 'HTTP/1.1\r\nConnection: close'],
    ['read by no one, over HTTP/1.0', false, 'HTTP/1.0'],
  ])('sends a slow client every byte of a stream that ended, its body %s', async (_, arriving, version) => {
    // About 1 MiB: the kernel takes it all, and the response ends while the client reads nothing.
    const count = 1000;
    const { options, closes } = recording({ maxQueueBytes: 64 << 20 });
    const { handle, errors } = route(
      () => range(0, count).pipe(map((i) => ({ id: String(i), data: 'x'.repeat(1024) }))),
      options,
    );
    const { url, server } = await serve(handle);
    let accepted: Socket | undefined;
    let request: IncomingMessage | undefined;
    server.once('connection', (socket: Socket) => (accepted = socket));
    server.once('request', (req: IncomingMessage) => (request = req));
    const body = Buffer.alloc(1024 * 1024, 'b');
    const client = await rawRequests(
      url,
      [
        `POST /sse ${version}\r\nHost: 127.0.0.1\r\nContent-Length: ${body.length + (arriving ? 1 : 0)}\r\n\r\n`,
      ],
      false,
    );
    client.socket.write(body);
    await waitFor(() => closes.length === 1, 5000, 'the end of the stream');
    const closing = version !== 'HTTP/1.1';
    // Node reads the body meanwhile, then closes the connection of a request that asked for it.
    if (!arriving) await waitFor(() => request!.complete, 5000, 'the body to be read');
    if (closing) await waitFor(() => accepted!.writableEnded, 5000, 'the server to end the connection');
    client.resume();
    // HTTP/1.0 has no chunked framing: the connection's close ends the body.
    if (closing) await client.done;
    const end = version === 'HTTP/1.0' ? '\n\n' : '\r\n0\r\n\r\n';
    await waitFor(() => client.text.endsWith(end), 5000, 'the whole stream');
    expect(client.text.split('\ndata: ').length - 1).toBe(count);
    expect(accepted!.destroyed).toBe(closing);
    expect(errors).toEqual([]);
  });

  it.each([
    ['came with it', (post: string) => [post], false],
    // A larger body, or one a client writes after its headers, comes in later packets.
    ['came after the stream ended', (post: string) => [post.slice(0, -5), post.slice(-5)], false],
    // Port sharing (httpolyglot), a proxy in the process: the server that parses never listens.
    [
      'came after the stream ended, on a server handed its connections',
      (post: string) => [post.slice(0, -5), post.slice(-5)],
      true,
    ],
  ])(
    'keeps serving the connection of a request whose body %s, its stream ended at once',
    async (_, parts, handed) => {
      const { handle, errors } = route(() => from([{ data: 'done' }]), { heartbeat: false });
      const served = await serve(handle);
      const { server } = served;
      let { url } = served;
      if (handed) {
        await new Promise((resolve) => server.close(resolve));
        const front = createNetServer((socket) => server.emit('connection', socket));
        onTestFinished(() => new Promise<void>((resolve) => front.close(() => resolve())));
        front.listen(0, '127.0.0.1');
        await once(front, 'listening');
        url = `http://127.0.0.1:${(front.address() as AddressInfo).port}`;
      }
      let connections = 0;
      server.on('connection', () => connections++);
      const post = 'POST /sse HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 5\r\n\r\nhello';
      const [first, rest] = parts(post);
      const client = await rawRequests(url, [first!]);
      for (let streams = 1; streams <= 3; streams++) {
        await waitFor(() => client.text.split('data: done').length === streams + 1, 5000, 'the stream');
        await waitFor(() => client.text.endsWith('\r\n0\r\n\r\n'), 5000, 'its end');
        if (rest) client.socket.write(rest);
        // The next request comes as soon as the client has its answer and its body went out.
        if (streams < 3) client.socket.write(first!);
      }
      client.destroy();
      expect(client.text.match(/^HTTP\/1\.1 200 OK\r\n/gm)).toHaveLength(3);
      expect(connections).toBe(1);
      expect(errors).toEqual([]);
    },
  );

  it("sends a slow client every byte of its stream while the upload pauses past the server's keepAliveTimeout", async () => {
    const count = 1000;
    const { options, closes } = recording({ maxQueueBytes: 64 << 20, heartbeat: false });
    const { handle, errors } = route(
      () => range(0, count).pipe(map((i) => ({ id: String(i), data: 'x'.repeat(1024) }))),
      options,
    );
    const { url, server } = await serve(handle);
    // Node gives a connection whose response finished this plus 1 s to send its next request.
    server.keepAliveTimeout = 1;
    const client = await rawRequests(url, [HALF_UPLOADED], false);
    await waitFor(() => closes.length === 1, 5000, 'the end of the stream');
    // Past Node's own timeout, which a waiting client is no reason to take.
    await sleep(1300);
    client.socket.write('0123456789');
    client.resume();
    await waitFor(() => client.text.endsWith('\r\n0\r\n\r\n'), 5000, 'the whole stream');
    expect(client.text.split('\ndata: ').length - 1).toBe(count);
    expect(client.closed).toBe(false);
    expect(errors).toEqual([]);
  });

  it('aborts the request of an upload cut short when its connection closes after the stream ended', async () => {
    const { options, closes } = recording({ heartbeat: false });
    const requests: IncomingMessage[] = [];
    const { handle, errors } = route(() => from([{ data: 'hi' }]), options);
    const { url } = await serve((req, res) => {
      requests.push(req);
      handle(req, res);
    });
    const client = await rawRequests(url, [
      'POST /sse HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 1000000\r\n\r\n0123456789',
    ]);
    await waitFor(() => client.text.endsWith('\r\n0\r\n\r\n'), 5000, 'the end of the stream');
    // Its client leaves once it read the end, the upload unfinished.
    client.destroy();
    await waitFor(() => requests[0]!.destroyed, 5000, 'the request to be aborted');
    expect(closes).toHaveLength(1);
    expect(errors).toEqual([]);
  });

  /**
   * On fake timers, a stream on a request whose upload is half sent, after `before` pipelined
   * (`/later` answered a tick later), its body paused by the app if `pause`: once the stream has ended.
   */
  const streamOnHalfUpload = async (before: string[] = [], pause = false) => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    onTestFinished(() => {
      vi.useRealTimers();
    });
    const { handle, errors } = route(() => from([{ data: 'hi' }]), {
      heartbeat: false,
      stallTimeout: false,
    });
    const { url, server } = await serve((req, res) => {
      if (req.url === '/later') setImmediate(() => res.end('later'));
      else {
        // The app reads the body's first bytes, then pauses it: Node no longer drops what follows.
        if (pause) req.once('data', () => req.pause());
        handle(req, res);
      }
    });
    let accepted: Socket | undefined;
    server.once('connection', (socket: Socket) => (accepted = socket));
    const socket = connect({ host: '127.0.0.1', port: Number(new URL(url).port), allowHalfOpen: true });
    await once(socket, 'connect');
    socket.write([...before, HALF_UPLOADED].join(''));
    const client = new RawClient(socket, true);
    onTestFinished(() => client.destroy());
    await waitForReal(() => client.text.endsWith('data: hi\n\n\r\n0\r\n\r\n'), 5000, 'the end of the stream');
    return { socket, client, accepted: accepted!, errors };
  };

  it.each([
    ['', []],
    // It has no connection yet when it ends: the pipelined answer holds that one.
    [', behind a pipelined answer', ['GET /later HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n']],
  ])(
    'half-closes the connection of an upload that goes on 5 s after its stream%s, and closes it 5 s later, its client given every byte',
    async (_, before) => {
      const { socket, client, accepted, errors } = await streamOnHalfUpload(before);
      await vi.advanceTimersByTimeAsync(4999);
      expect(accepted.writableEnded).toBe(false);
      await vi.advanceTimersByTimeAsync(1);
      expect(accepted.writableEnded).toBe(true);
      await waitForReal(() => client.closed || socket.readableEnded, 5000, 'the end of the connection');
      expect(accepted.destroyed).toBe(false);
      await vi.advanceTimersByTimeAsync(5000);
      expect(accepted.destroyed).toBe(true);
      expect(errors).toEqual([]);
    },
  );

  it('closes the half-closed connection of an upload as soon as the upload ends, not 5 s later', async () => {
    const { socket, accepted, errors } = await streamOnHalfUpload();
    await vi.advanceTimersByTimeAsync(5000);
    expect(accepted.writableEnded).toBe(true);
    // The rest of the upload: nothing more is to come on the connection.
    socket.write('0123456789');
    await waitForReal(() => accepted.destroyed, 5000, 'the connection to close at the end of the upload');
    expect(errors).toEqual([]);
  });

  it.each([
    ['left to Node', false],
    ['its app paused', true],
  ])(
    'keeps alive past 5 s the connection of an upload (%s) that ended within 5 s of its stream',
    async (_, pause) => {
      const { socket, client, accepted, errors } = await streamOnHalfUpload([], pause);
      // The rest of the upload, then the next request on the same connection.
      socket.write('0123456789GET /sse HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
      const ends = () => client.text.split('data: hi\n\n\r\n0\r\n\r\n').length - 1;
      await waitForReal(() => ends() === 2, 5000, 'the second stream');
      await vi.advanceTimersByTimeAsync(5000);
      expect(accepted.writableEnded).toBe(false);
      expect(client.closed).toBe(false);
      expect(errors).toEqual([]);
    },
  );

  it('keeps alive past 5 s the connection of an upload its app read, that ended while the end of its stream was flushed', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    onTestFinished(() => {
      vi.useRealTimers();
    });
    const closes: string[] = [];
    // Far more than the kernel buffers for one connection: the end waits for the client to read.
    const events = Array.from({ length: 256 }, () => ({ data: 'x'.repeat(64 * 1024) }));
    const { handle, errors } = route(() => (closes.length === 0 ? from(events) : from([{ data: 'hi' }])), {
      heartbeat: false,
      stallTimeout: false,
      maxQueueBytes: 64 * 1024 * 1024,
      onClose: (reason) => closes.push(reason),
    });
    let uploaded = false;
    const { url, server } = await serve((req, res) => {
      // Read by the app as it comes: the body's 'end' is long past when the response finishes.
      req.on('end', () => (uploaded = true)).resume();
      handle(req, res);
    });
    let accepted: Socket | undefined;
    server.once('connection', (socket: Socket) => (accepted = socket));
    const client = await rawRequests(url, [HALF_UPLOADED], false);
    onTestFinished(() => client.destroy());
    await waitForReal(() => closes.length === 1, 5000, 'the end of the stream, its bytes held');
    client.socket.write('0123456789');
    await waitForReal(() => uploaded, 5000, 'the rest of the upload');
    client.resume();
    await waitForReal(() => client.text.endsWith('\r\n0\r\n\r\n'), 10_000, 'every byte of the stream');
    client.socket.write('GET /sse HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
    await waitForReal(() => client.text.endsWith('data: hi\n\n\r\n0\r\n\r\n'), 5000, 'the second stream');
    await vi.advanceTimersByTimeAsync(5000);
    expect(accepted!.writableEnded).toBe(false);
    expect(client.closed).toBe(false);
    expect(closes).toEqual(['complete', 'complete']);
    expect(errors).toEqual([]);
  });
});

describe('openEventStream: HEAD', () => {
  it('answers HEAD with the headers a GET gets', async () => {
    const { handle } = route(() => NEVER, { heartbeat: false });
    const { url } = await serve(handle);
    const get = await headersOf(url, 'GET');
    expect(get.connection).toBe('keep-alive');
    expect(await headersOf(url, 'HEAD')).toEqual(get);
  });

  it("returns the iterator a HEAD's handler made, never read", async () => {
    const { iterator, returned } = neverYielding();
    const { handle, errors } = route(() => iterator);
    const { url } = await serve(handle);
    await headersOf(url, 'HEAD');
    await waitFor(returned, 5000, 'the iterator to be returned');
    expect(errors).toEqual([]);
  });

  it('drops a header the framework set when the route says null, on HEAD too', async () => {
    const { handle } = route(() => from([{ data: 'x' }]), { headers: { 'X-Powered-By': null } });
    const { url } = await serve((req, res) => {
      res.setHeader('X-Powered-By', 'Framework'); // as Express does
      handle(req, res);
    });
    expect((await headersOf(url, 'HEAD'))['x-powered-by']).toBeUndefined();
  });
});

describe('answerHead: a HEAD answered once the route lets it on', () => {
  /** A server whose requests `answerHead` answers once `ready` settles; its rejections kept. */
  async function serveHead(
    ready: (context: { signal: AbortSignal }) => PromiseLike<void>,
    group: StreamGroup,
  ) {
    const errors: unknown[] = [];
    const closes: string[] = [];
    const entered = { count: 0 };
    const { url } = await serve((req, res) => {
      answerHead(
        req,
        res,
        (context) => {
          entered.count++;
          return ready(context);
        },
        resolveStreamOptions({ group, heartbeat: false, onClose: (reason) => void closes.push(reason) }),
      ).catch((error) => errors.push(error));
    });
    return { url, errors, entered, closes };
  }

  it('answers with the headers openEventStream gives a HEAD, once `ready` resolves', async () => {
    const group = new StreamGroup();
    let letOn!: () => void;
    const { url, errors } = await serveHead(() => new Promise<void>((resolve) => (letOn = resolve)), group);
    const client = await rawRequests(url, [httpRequest('HEAD', '/sse')]);
    await waitFor(() => letOn !== undefined, 5000, 'the check');
    expect(client.text).toBe('');
    letOn();
    await waitFor(() => client.text.includes('\r\n\r\n'), 5000, 'the headers');
    expect(client.text).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
    expect(client.text.toLowerCase()).toContain('content-type: text/event-stream');
    client.destroy();
    expect(errors).toEqual([]);
  });

  it('counts a HEAD whose client left while `ready` held it as a GET is counted then, closed by the client', async () => {
    const { options, seen } = metered({ heartbeat: false });
    let signal: AbortSignal | undefined;
    const { url } = await serve((req, res) => {
      void answerHead(
        req,
        res,
        (context) => {
          signal = context.signal;
          return new Promise<void>((resolve) => context.signal.addEventListener('abort', () => resolve()));
        },
        resolveStreamOptions(options),
      );
    });
    const client = await rawRequests(url, [httpRequest('HEAD', '/sse')]);
    await waitFor(() => signal !== undefined, 5000, 'the check');
    client.destroy();
    await waitFor(() => seen.length === 2, 5000, 'the close to be counted');
    expect(seen).toEqual(['opened', 'closed:client']);
  });

  it("turns away a HEAD whose `ready` fails with the abort its route's group close gave its signal, resolving as no stream", async () => {
    const group = new StreamGroup();
    const { options, closes } = recording({ group, heartbeat: false });
    const results: unknown[] = [];
    let signal: AbortSignal | undefined;
    const { url } = await serve((req, res) => {
      answerHead(
        req,
        res,
        async (context) => {
          signal = context.signal;
          await once(context.signal, 'abort');
          context.signal.throwIfAborted();
        },
        resolveStreamOptions(options),
      ).then(
        (value) => results.push(value),
        (error) => results.push(error),
      );
    });
    const client = await rawRequests(url, [httpRequest('HEAD', '/sse')]);
    await waitFor(() => signal !== undefined, 5000, 'the check');
    await group.close({ deadline: 60_000 });
    await waitFor(() => results.length === 1, 5000, 'answerHead to settle');
    // Its own turn-away, not another writer's answer (which resolves to null).
    expect(results).toEqual([undefined]);
    await waitFor(() => client.text.includes('\r\n\r\n'), 5000, 'the headers');
    expect(client.text.toLowerCase()).toContain('connection: close');
    expect(closes.map((closed) => closed.reason)).toEqual(['shutdown']);
    client.destroy();
  });

  it.each(
    (['GET', 'HEAD'] as const).flatMap((method) =>
      (
        [
          ['resolves', (): EventSourceLike<MessageEvent> => from([{ data: 'x' }]), null],
          [
            'fails',
            (): EventSourceLike<MessageEvent> => {
              throw new Error('late failure');
            },
            'Error: late failure',
          ],
          [
            "fails with its signal's abort",
            // The other writer's answer closed the response, which aborts the handler's signal.
            async (signal: AbortSignal): Promise<EventSourceLike<MessageEvent>> => {
              if (!signal.aborted) await once(signal, 'abort');
              throw signal.reason;
            },
            null,
          ],
        ] as const
      ).map(([how, settle, result]) => [method, how, settle, result] as const),
    ),
  )(
    'counts nothing when another writer answered while the handler of a %s ran, whether it then %s',
    async (method, _, settle, result) => {
      const { options, seen } = metered({ heartbeat: false });
      const results: unknown[] = [];
      const { url } = await serve((req, res) => {
        openEventStream(
          req,
          res,
          async ({ signal }) => {
            // As a timeout in front of the route answers while the handler still runs.
            res.writeHead(503, { 'content-length': '0' }).end();
            return settle(signal);
          },
          resolveStreamOptions(options),
        ).then(
          (value) => results.push(value),
          (error) => results.push(String(error)),
        );
      });
      const client = await rawRequests(url, [httpRequest(method, '/sse')]);
      await waitFor(() => results.length === 1, 5000, 'openEventStream to settle');
      // A failure is still the framework's to hear.
      expect(results).toEqual([result]);
      await waitFor(() => client.text.includes('\r\n\r\n'), 5000, 'the answer');
      expect(client.text).toMatch(/^HTTP\/1\.1 503 /);
      expect(seen).toEqual([]);
      client.destroy();
    },
  );

  it('resolves to null, and counts nothing, when `ready` answered the response itself', async () => {
    const { options, seen } = metered({ heartbeat: false });
    const results: unknown[] = [];
    const { url } = await serve((req, res) => {
      answerHead(
        req,
        res,
        async () => {
          // As a guard that turns the request away with an answer of its own.
          res.writeHead(403, { 'content-length': '0' }).end();
        },
        resolveStreamOptions(options),
      ).then(
        (result) => results.push(result),
        (error) => results.push(error),
      );
    });
    const client = await rawRequests(url, [httpRequest('HEAD', '/sse')]);
    await waitFor(() => results.length === 1, 5000, 'answerHead to settle');
    expect(results).toEqual([null]);
    await waitFor(() => client.text.includes('\r\n\r\n'), 5000, 'the answer');
    expect(client.text).toMatch(/^HTTP\/1\.1 403 Forbidden\r\n/);
    expect(client.text.toLowerCase()).not.toContain('text/event-stream');
    expect(seen).toEqual([]);
    client.destroy();
  });

  it('rejects with what `ready` rejects with, answers nothing, and counts it failed, as its GET', async () => {
    const failure = new Error('not allowed');
    const { options, seen } = metered({ heartbeat: false });
    const errors: unknown[] = [];
    const { url } = await serve((req, res) => {
      answerHead(req, res, () => Promise.reject(failure), resolveStreamOptions(options)).catch((error) =>
        errors.push(error),
      );
    });
    const client = await rawRequests(url, [httpRequest('HEAD', '/sse')]);
    await waitFor(() => errors.length === 1, 5000, 'the rejection');
    expect(errors).toEqual([failure]);
    expect(seen).toEqual(['failed']);
    expect(client.text).toBe('');
    client.destroy();
  });

  it("turns away at the shutdown's deadline a HEAD that `ready` holds for good, its signal aborted at the close", async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    onTestFinished(() => {
      vi.useRealTimers();
    });
    const group = new StreamGroup();
    let signal: AbortSignal | undefined;
    const { url, errors, closes } = await serveHead((context) => {
      signal = context.signal;
      return new Promise<void>(() => {});
    }, group);
    const client = await rawRequests(url, [httpRequest('HEAD', '/sse')]);
    await waitForReal(() => signal !== undefined, 5000, 'the check');
    // A pending handler, which no gauge counts.
    expect(group.size).toBe(0);
    let closed = false;
    const closing = group.close({ deadline: 1000 }).then(() => (closed = true));
    expect(signal!.aborted).toBe(true);
    vi.advanceTimersByTime(999);
    await new Promise((resolve) => setImmediate(resolve));
    expect(closed).toBe(false);
    expect(client.closed).toBe(false);
    vi.advanceTimersByTime(1);
    await closing;
    await waitForReal(() => client.closed, 5000, 'the client to be turned away');
    expect(client.text).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
    expect(client.text.toLowerCase()).toContain('connection: close');
    expect(client.text).toMatch(/\r\n\r\n$/);
    expect(closes).toEqual(['shutdown']);
    expect(errors).toEqual([]);
  });

  it('answers a HEAD whose `ready` lets it on after the close aborted its signal, and ends the close then', async () => {
    const group = new StreamGroup();
    let letOn: (() => void) | undefined;
    const { url, errors } = await serveHead(() => new Promise<void>((resolve) => (letOn = resolve)), group);
    const client = await rawRequests(url, [httpRequest('HEAD', '/sse')]);
    await waitFor(() => letOn !== undefined, 5000, 'the check');
    // A deadline no test waits for: the close is done once the client has its answer.
    const closing = group.close({ deadline: 2 ** 31 - 1 });
    letOn!();
    await waitFor(() => client.text.includes('\r\n\r\n'), 5000, 'the headers');
    expect(client.text).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
    client.destroy();
    await closing;
    expect(errors).toEqual([]);
  });

  it("answers a HEAD that comes while its route's group closes at once, without running `ready`", async () => {
    const group = new StreamGroup();
    const { url, errors, entered } = await serveHead(() => new Promise<void>(() => {}), group);
    // A handler that ignores its signal and never settles keeps the group closing until its client
    // leaves. (A stream that its client never reads would not: the socket buffers may take it all.)
    let called = false;
    const { handle } = route(
      () => {
        called = true;
        return new Promise<never>(() => {});
      },
      { group },
    );
    const stuckServer = await serve(handle);
    const stuck = await rawClient(`${stuckServer.url}/sse`, { read: false });
    await waitFor(() => called, 5000, 'the handler');
    const closing = group.close({ deadline: 60_000 });
    const client = await rawRequests(url, [httpRequest('HEAD', '/sse')]);
    await waitFor(() => client.text.includes('\r\n\r\n'), 5000, 'the headers');
    expect(client.text).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
    expect(entered.count).toBe(0);
    client.destroy();
    stuck.destroy();
    await closing;
    expect(errors).toEqual([]);
  });
});

describe('openEventStream and answerHead on a response another writer began before the call', () => {
  it.each([
    ['openEventStream', 'GET'],
    ['openEventStream', 'HEAD'],
    ['answerHead', 'HEAD'],
  ] as const)(
    'run no handler (%s, %s) on an answer that ended, and resolve to null, counting nothing',
    async (transport, method) => {
      const { options, seen } = metered({ heartbeat: false });
      const results: unknown[] = [];
      let ran = 0;
      const { url } = await serve((req, res) => {
        // As a timeout in front of the route answers before the route is reached.
        res.writeHead(503, { 'content-length': '0' }).end();
        const settled =
          transport === 'answerHead'
            ? answerHead(req, res, async () => void ran++, resolveStreamOptions(options))
            : openEventStream(
                req,
                res,
                () => {
                  ran++;
                  return NEVER;
                },
                resolveStreamOptions(options),
              );
        settled.then(
          (value) => results.push(value),
          (error) => results.push(String(error)),
        );
      });
      const client = await rawRequests(url, [httpRequest(method, '/sse')]);
      await waitFor(() => results.length === 1, 5000, 'the call to settle');
      expect(results).toEqual([null]);
      // The handler's checks (a database read, a token's verification) are for a stream to come.
      expect(ran).toBe(0);
      expect(seen).toEqual([]);
      client.destroy();
    },
  );

  it.each([
    ['openEventStream', 'GET'],
    ['answerHead', 'HEAD'],
  ] as const)(
    'run no handler (%s, %s) on an answer still being written, and refuse it',
    async (transport, method) => {
      const results: unknown[] = [];
      let ran = 0;
      const { url } = await serve((req, res) => {
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.write('already under way');
        const settled =
          transport === 'answerHead'
            ? answerHead(req, res, async () => void ran++, resolveStreamOptions({ heartbeat: false }))
            : openEventStream(
                req,
                res,
                () => {
                  ran++;
                  return NEVER;
                },
                resolveStreamOptions({ heartbeat: false }),
              );
        settled.then(
          (value) => results.push(value),
          (error) => results.push((error as Error).name),
        );
      });
      const client = await rawRequests(url, [httpRequest(method, '/sse')]);
      await waitFor(() => results.length === 1, 5000, 'the call to settle');
      expect(results).toEqual(['ResponseBeingSentError']);
      expect(ran).toBe(0);
      client.destroy();
    },
  );
});

describe('openEventStream: headers a middleware set before the stream', () => {
  it.each([
    ['Content-Length', '8', null],
    ['Content-Encoding', 'gzip', null],
    // Node would send it as it is, with a body it then neither chunks nor ends on a kept-alive
    // connection: the client would wait for the close.
    ['Transfer-Encoding', 'gzip', 'chunked'],
  ])('leaves out %s, which would frame or encode the stream as another body', async (name, value, sent) => {
    const { handle, errors } = route(() => from([{ data: 'first' }, { data: 'second' }]));
    const { url } = await serve((req, res) => {
      res.setHeader(name, value);
      handle(req, res);
    });
    const response = await fetch(`${url}/sse`);
    expect(response.headers.get(name)).toBe(sent);
    expect(await response.text()).toBe('data: first\n\ndata: second\n\n');
    expect(errors).toEqual([]);
  });
});

describe('openEventStream: turning requests away', () => {
  it('turns a request away while its route group closes, without running the handler', async () => {
    const group = new StreamGroup();
    let handled = 0;
    const big = { data: 'z'.repeat(64 * 1024) };
    const { handle } = route(
      () => {
        handled++;
        return handled === 1 ? concat(from(Array.from({ length: 400 }, () => big)), NEVER) : NEVER;
      },
      { group, heartbeat: false, stallTimeout: false, maxQueueBytes: 64 * 1024 * 1024 },
    );
    const { url } = await serve(handle);
    // A client that never reads keeps the group closing until its deadline.
    const stuck = await rawClient(`${url}/sse`, { read: false });
    await waitFor(() => handled === 1, 5000, 'the first stream');
    const closing = group.close({ deadline: 60_000, retry: 1000 });
    expect(group.closing).toBe(true);
    const client = await rawClient(`${url}/sse`, { read: true });
    await waitFor(() => client.closed || handled > 1, 5000, 'an answer');
    expect(handled).toBe(1);
    expect(client.text.toLowerCase()).toContain('connection: close');
    expect(client.text).toContain('retry: 1000\n');
    stuck.destroy();
    await closing;
  });

  it("aborts a handler still setting up when its route's own group closes, and turns its client away", async () => {
    const group = new StreamGroup();
    const { options, closes } = recording({ group, heartbeat: false });
    let signal: AbortSignal | undefined;
    const { handle, errors } = route((context) => {
      signal = context.signal;
      return new Promise<never>((_, reject) => {
        context.signal.addEventListener('abort', () => reject(context.signal.reason));
      });
    }, options);
    const { url } = await serve(handle);
    const client = await rawClient(`${url}/sse`, { read: true });
    await waitFor(() => signal !== undefined, 5000, 'the handler');
    // No stream yet: the group's gauges do not count it.
    expect(group.size).toBe(0);
    // A deadline no test waits for: the close is done once the client has its answer.
    await group.close({ retry: 1000, deadline: 2 ** 31 - 1 });
    expect(signal!.aborted).toBe(true);
    await client.done;
    expect(client.text).toMatch(/^HTTP\/1\.1 200/);
    expect(client.text.toLowerCase()).toContain('connection: close');
    expect(client.text).toContain('retry: 1000\n\n');
    // The abort came from the close, not from a client that left.
    expect(closes.map((c) => c.reason)).toEqual(['shutdown']);
    expect(errors).toEqual([]);
  });

  it("turns away at the deadline a handler that goes on setting up when its route's own group closes", async () => {
    const group = new StreamGroup();
    let settle: (() => void) | undefined;
    // Ignores its signal, and settles only when the test lets it.
    const { handle, errors } = route(() => new Promise((resolve) => (settle = () => resolve(NEVER))), {
      group,
      heartbeat: false,
    });
    const { url } = await serve(handle);
    const client = await rawClient(`${url}/sse`, { read: true });
    try {
      await waitFor(() => settle !== undefined, 5000, 'the handler');
      await group.close({ retry: 1000, deadline: 200 });
      await waitFor(() => client.closed, 5000, 'the client to be turned away');
      expect(client.text).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
      expect(client.text).toMatch(/\r\n\r\n\w+\r\nretry: 1000\n\n\r\n0\r\n\r\n$/);
    } finally {
      settle?.();
      client.destroy();
    }
    expect(errors).toEqual([]);
  });

  /** A route of `group` whose handler, once entered, resolves to no source when `release` is called. */
  async function noSourceOnRelease(group: StreamGroup) {
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    let entered = false;
    const { handle, errors } = route(
      async () => {
        entered = true;
        await gate; // ignores its signal
        return 42 as never;
      },
      { group, heartbeat: false },
    );
    const { url } = await serve(handle);
    const client = await rawClient(`${url}/sse`, { read: true });
    await waitFor(() => entered, 5000, 'the handler');
    return { client, errors, release };
  }

  it("turns away a handler that resolves to no source while its route's own group closes, and reports it", async () => {
    const group = new StreamGroup();
    const { client, errors, release } = await noSourceOnRelease(group);
    const closing = group.close({ retry: 1000, deadline: 2 ** 31 - 1 });
    release();
    await closing;
    await client.done;
    expect(client.text).toMatch(/^HTTP\/1\.1 200/);
    expect(client.text).toContain('retry: 1000\n\n');
    // The close decides the answer; the handler's bug is still heard of, as when nothing closes.
    expect(errors).toHaveLength(1);
    expect(String(errors[0])).toMatch(/TypeError.*returned number 42/);
  });

  it("reports a handler that resolves to no source after its route's own group turned it away at the deadline", async () => {
    const group = new StreamGroup();
    const { client, errors, release } = await noSourceOnRelease(group);
    await group.close({ retry: 1000, deadline: 200 });
    await waitFor(() => client.closed, 5000, 'the connection to be dropped');
    release();
    await waitFor(() => errors.length > 0, 5000, 'the report');
    expect(errors).toHaveLength(1);
    expect(String(errors[0])).toMatch(/TypeError.*returned number 42/);
  });

  it('turns a request away once its server is marked closing, without running the handler', async () => {
    let handled = 0;
    const { handle } = route(
      () => {
        handled++;
        return NEVER;
      },
      { retry: 3000 },
    );
    const { url, server } = await serve(handle);
    markServerClosing(server);
    const client = await rawClient(`${url}/sse`, { read: true });
    await waitFor(() => client.closed || handled > 0, 5000, 'an answer');
    expect(handled).toBe(0);
    expect(client.text).toMatch(/^HTTP\/1\.1 200/);
    expect(client.text.toLowerCase()).toContain('connection: close');
    expect(client.text).toContain('retry: 3000\n');
  });

  it('turns a HEAD away as its GET once its server is marked closing, without running the handler', async () => {
    const { options, closes } = recording({ heartbeat: false });
    let handled = 0;
    const { handle, errors } = route(() => {
      handled++;
      return NEVER;
    }, options);
    const { url, server } = await serve(handle);
    markServerClosing(server);
    const client = await rawRequests(url, [httpRequest('HEAD', '/sse')]);
    await waitFor(() => closes.length === 1, 5000, 'the answer to be counted');
    await waitFor(() => client.text.includes('\r\n\r\n'), 5000, 'the headers');
    expect(handled).toBe(0);
    expect(client.text).toMatch(/^HTTP\/1\.1 200/);
    // Its client is told to go, and is counted turned away, not as a stream that completed.
    expect(client.text.toLowerCase()).toContain('connection: close');
    expect(closes.map((closed) => closed.reason)).toEqual(['shutdown']);
    expect(errors).toEqual([]);
    client.destroy();
  });

  it.each(['GET', 'HEAD'])(
    'turns away a %s whose handler resolves after its server was marked closing, its source never subscribed',
    async (method) => {
      const { options, closes } = recording({ heartbeat: false, retry: 3000 });
      const source = new Subject<MessageEvent>();
      let release: (() => void) | undefined;
      const { handle, errors } = route(
        () => new Promise<Observable<MessageEvent>>((resolve) => (release = () => resolve(source))),
        options,
      );
      const { url, server } = await serve(handle);
      const client = await rawRequests(url, [httpRequest(method, '/sse')]);
      await waitFor(() => release !== undefined, 5000, 'the handler');
      // As an adapter's own shutdown hook marks it, its streams' group not closing.
      markServerClosing(server);
      release!();
      await waitFor(() => closes.length === 1, 5000, 'the answer to be counted');
      await waitFor(() => client.text.includes('\r\n\r\n'), 5000, 'the headers');
      expect(client.text).toMatch(/^HTTP\/1\.1 200/);
      expect(client.text.toLowerCase()).toContain('connection: close');
      if (method === 'GET') {
        await client.done;
        expect(client.text).toContain('retry: 3000\n');
      }
      // A stream started now would keep the closing server open.
      expect(source.observed).toBe(false);
      expect(closes.map((closed) => closed.reason)).toEqual(['shutdown']);
      expect(errors).toEqual([]);
      client.destroy();
    },
  );
});

describe('readLastEventId', () => {
  async function lastEventIdFor(id: Buffer): Promise<string | undefined> {
    const seen: (string | undefined)[] = [];
    const { handle } = route(({ lastEventId }) => {
      seen.push(lastEventId);
      return from([]);
    });
    const { url } = await serve(handle);
    const client = await rawRequests(url, []);
    client.socket.write(withLastEventId(id));
    await waitFor(() => seen.length === 1, 5000, 'the handler');
    client.destroy();
    return seen[0];
  }

  it('reads a Last-Event-ID sent as UTF-8 bytes', async () => {
    expect(await lastEventIdFor(Buffer.from('é-1', 'utf8'))).toBe('é-1');
  });

  it('keeps a leading U+FEFF: part of the id, not a byte order mark', async () => {
    expect(await lastEventIdFor(Buffer.from('\ufeff7', 'utf8'))).toBe('\ufeff7');
  });

  it('keeps bytes that are not UTF-8 as Latin-1', async () => {
    expect(await lastEventIdFor(Buffer.from([0x69, 0x64, 0xe9]))).toBe('id\u00e9');
  });
});

describe('consoleReporter', () => {
  it('names the request by its method and path, leaving out the query, where a token travels', async () => {
    const logged: string[] = [];
    const restore = captureConsoleErrors(logged);
    onTestFinished(restore);
    const { url } = await serve((req, res) => {
      // No reporter given: the default, consoleReporter(req), hears what no onError takes.
      void openEventStream(
        req,
        res,
        () =>
          concat(
            from([{ data: 'first' }]),
            throwError(() => new Error('the feed failed')),
          ),
        resolveStreamOptions({ heartbeat: false }),
      );
    });
    const client = await rawClient(`${url}/sse?token=secret-token`, { read: true });
    await waitFor(() => logged.length === 1, 5000, 'the report');
    client.destroy();
    expect(logged[0]).toMatch(/^rxsse: event stream GET \/sse failed: Error: the feed failed/);
    expect(logged[0]).not.toContain('secret-token');
  });
});

describe('closeStreamsOnServerClose', () => {
  it('throws a RangeError at once for an option out of range', () => {
    const plain = createServer();
    expect(() => closeStreamsOnServerClose(plain, { deadline: 0 })).toThrow(RangeError);
    expect(() => closeStreamsOnServerClose(plain, { retry: -1 })).toThrow(RangeError);
  });

  it('throws a TypeError at once for what is not a Node server, or a group that is not a StreamGroup', () => {
    // Say, the app instead of what app.listen() returned: its close() would never end a stream.
    const app = Object.assign(() => {}, EventEmitter.prototype);
    expect(() => closeStreamsOnServerClose(app as never)).toThrow(
      /^closeStreamsOnServerClose\(\) takes a Node server \(what app\.listen\(\) returns\), got a function$/,
    );
    const plain = createServer();
    const close = plain.close;
    expect(() => closeStreamsOnServerClose(plain, { group: {} as never })).toThrow(
      /^group must be a StreamGroup, got an object \(Object\)$/,
    );
    expect(plain.close).toBe(close);
  });

  it('throws a TypeError at once for an option name it does not take, naming the one meant', () => {
    const plain = createServer();
    const close = plain.close;
    expect(() => closeStreamsOnServerClose(plain, { deadLine: 100 } as never)).toThrow(
      /^Unknown shutdown option "deadLine" \(did you mean "deadline"\?\)$/,
    );
    expect(() => closeStreamsOnServerClose(plain, { groop: new StreamGroup() } as never)).toThrow(
      /\(did you mean "group"\?\)$/,
    );
    expect(plain.close).toBe(close);
    // The group beside the shutdown options.
    expect(() => closeStreamsOnServerClose(plain, { group: new StreamGroup(), deadline: 100 })).not.toThrow();
  });

  it('takes options built from a config, whose group and durations left undefined keep their defaults', async () => {
    // What is not configured is undefined (the repo checks under exactOptionalPropertyTypes).
    const config: { group?: StreamGroup; retry?: number; spread?: number; deadline?: number } = {
      retry: 1500,
    };
    const closes: string[] = [];
    const { handle, errors } = route(() => concat(from([{ data: 'hi' }]), NEVER), {
      heartbeat: false,
      onClose: (reason) => closes.push(reason),
    });
    const { server, url } = await serve(handle);
    closeStreamsOnServerClose(server, {
      group: config.group,
      retry: config.retry,
      spread: config.spread,
      deadline: config.deadline,
    });
    const client = await rawClient(`${url}/sse`, { read: true });
    await waitFor(() => client.text.includes('data: hi\n\n'), 5000, 'the stream');
    await new Promise((resolve) => server.close(resolve));
    await client.done;
    expect(client.text).toContain('data: hi\n\n');
    expect(client.text).toContain('retry: 1500\n\n');
    expect(closes).toEqual(['shutdown']);
    expect(errors).toEqual([]);
  });

  it('throws a TypeError at once for options that are not an object, instead of ignoring them', () => {
    const plain = createServer();
    const close = plain.close;
    // A retry given bare would leave every option unset, the hint with it.
    expect(() => closeStreamsOnServerClose(plain, 2000 as never)).toThrow(
      /^shutdown options must be an object, got number 2000$/,
    );
    expect(() => closeStreamsOnServerClose(plain, null as never)).toThrow(
      /^shutdown options must be an object, got null$/,
    );
    expect(plain.close).toBe(close);
  });

  it("ends the server's streams and closes, logging what a group's close() threw, instead of an unhandled rejection", async () => {
    const failure = new Error('flush failed');
    // Say, a subclass that flushes something of its own as it closes.
    class Failing extends StreamGroup {
      override async close(): Promise<void> {
        throw failure;
      }
    }
    const { handle } = route(() => concat(from([{ data: 'hi' }]), NEVER), { heartbeat: false });
    const { server, url } = await serve(handle);
    closeStreamsOnServerClose(server, { group: new Failing() });
    const client = await rawClient(`${url}/sse`, { read: true });
    await waitFor(() => client.text.includes('data: hi\n\n'), 5000, 'the stream');
    const logged: string[] = [];
    const restore = captureConsoleErrors(logged);
    const { rejections: unhandled, stop } = recordUnhandledRejections();
    try {
      await new Promise((resolve) => server.close(resolve));
      await client.done;
      await new Promise((resolve) => setImmediate(resolve));
      expect(unhandled).toEqual([]);
      expect(logged).toEqual([
        expect.stringMatching(/^rxsse: a stream group's close\(\) failed: Error: flush failed/),
      ]);
    } finally {
      stop();
      restore();
    }
  });

  it("leaves another server's streams running and its requests served when each has a group of its own", async () => {
    const { handle, errors } = route(() => concat(from([{ data: 'hi' }]), NEVER), { heartbeat: false });
    const { server: closing, url: closingUrl } = await serve(handle);
    const { server: other, url: otherUrl } = await serve(handle);
    closeStreamsOnServerClose(closing, { group: new StreamGroup() });
    closeStreamsOnServerClose(other, { group: new StreamGroup() });
    const ending = await rawClient(`${closingUrl}/sse`, { read: true });
    const running = await rawClient(`${otherUrl}/sse`, { read: true });
    onTestFinished(() => running.destroy());
    await waitFor(
      () => ending.text.includes('data: hi') && running.text.includes('data: hi'),
      5000,
      'the streams',
    );
    await new Promise((resolve) => closing.close(resolve));
    await ending.done;
    // Its stream goes on: no end of its chunked body.
    expect(running.text).not.toContain('\r\n0\r\n\r\n');
    const later = await rawClient(`${otherUrl}/sse`, { read: true });
    onTestFinished(() => later.destroy());
    await waitFor(() => later.text.includes('data: hi') || later.closed, 5000, 'a new stream');
    expect(later.text).toContain('data: hi\n\n');
    expect(later.text.toLowerCase()).not.toContain('connection: close');
    expect(running.text).not.toContain('\r\n0\r\n\r\n');
    expect(errors).toEqual([]);
  });

  it("keeps a plain answer's connection alive, once the closed server listens again", async () => {
    const server = createServer((_req, res) => res.end('ok'));
    closeStreamsOnServerClose(server);
    const client = await rawRequests(`http://127.0.0.1:${await listenAgain(server)}`, [
      httpRequest('GET', '/plain'),
    ]);
    await waitFor(() => client.text.endsWith('ok'), 5000, 'the first answer');
    // The close reaped idle connections after every answer (in the turn after it, before the
    // client reads it); the server open again does not.
    client.socket.write(httpRequest('GET', '/plain'));
    await waitFor(() => client.text.split('ok').length === 3, 5000, 'the second answer');
    client.destroy();
  });

  it('streams again, and keeps connections alive, once the closed server listens again', async () => {
    const { handle, errors } = route(() => concat(from([{ data: 'hi' }]), NEVER), { heartbeat: false });
    const { server } = await serve(handle);
    closeStreamsOnServerClose(server);
    await new Promise((resolve) => server.close(resolve));
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const client = await rawClient(`http://127.0.0.1:${(server.address() as AddressInfo).port}/sse`, {
      read: true,
    });
    await waitFor(() => client.text.includes('\r\n\r\n'), 5000, 'the response head');
    await waitFor(() => client.text.includes('data: hi') || client.closed, 5000, 'the stream');
    expect(client.text).toContain('data: hi\n\n');
    expect(client.text.toLowerCase()).not.toContain('connection: close');
    expect(errors).toEqual([]);
    // And its next close() ends the stream again.
    await new Promise((resolve) => server.close(resolve));
    await client.done;
  });

  it("keeps the connections of a server that listens again before its close's group has ended", async () => {
    let release!: () => void;
    const ended = new Promise<void>((resolve) => (release = resolve));
    // Say, the process's group, whose close waits for a slow client of another server.
    class Slow extends StreamGroup {
      override async close(): Promise<void> {
        await ended;
      }
    }
    const server = createServer((_req, res) => res.end('ok'));
    closeStreamsOnServerClose(server, { group: new Slow() });
    // No connection holds the close: it completes while the group still closes.
    const url = `http://127.0.0.1:${await listenAgain(server)}`;
    const kept = await rawRequests(url, [httpRequest('GET', '/plain')]);
    await waitFor(() => kept.text.endsWith('ok'), 5000, 'the first answer');
    const spare = await silentClient(url);
    onTestFinished(() => {
      kept.destroy();
      spare.destroy();
    });
    release();
    // The group's close ends in promise jobs, and what followed it with them: give them this turn.
    await new Promise((resolve) => setImmediate(resolve));
    kept.socket.write(httpRequest('GET', '/plain'));
    await waitFor(() => kept.text.split('ok').length === 3 || kept.closed, 5000, 'the second answer');
    expect(kept.text.split('ok').length).toBe(3);
    expect(spare.closed).toBe(false);
  });

  it('raises no listener-leak warning when close() is called again and again while its streams end', async () => {
    const { handle } = route(() => concat(from([{ data: 'hi' }]), NEVER), { heartbeat: false });
    const { url, server } = await serve(handle);
    closeStreamsOnServerClose(server);
    const client = await rawClient(`${url}/sse`, { read: true });
    await waitFor(() => client.text.includes('data: hi'), 5000, 'the stream');
    const { warnings, stop } = recordWarnings();
    try {
      const closed = new Promise((resolve) => server.close(resolve));
      // SIGTERM, then SIGINT, and an impatient operator's Ctrl-C twice more.
      for (let again = 0; again < 3; again++) server.close();
      await closed;
      await client.done;
      await new Promise((resolve) => setImmediate(resolve));
      expect(warnings).toEqual([]);
    } finally {
      stop();
    }
  });
});

describe('closeStreamsOnServerClose: connections without a request', () => {
  it('drops a TLS connection that never sent a request, and lets an answer under way finish', async () => {
    let answer!: () => void;
    const server = createHttpsServer(await selfSignedCertificate(), (_req, res) => {
      // Answered only once the close has begun.
      answer = () => res.end('late answer');
    });
    closeStreamsOnServerClose(server);
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const { port } = server.address() as AddressInfo;
    const open = async (request?: string) => {
      const socket = connectTls({ port, host: '127.0.0.1', rejectUnauthorized: false });
      await once(socket, 'secureConnect');
      if (request) socket.write(request);
      return new RawClient(socket, true);
    };
    const unused = await open();
    const asking = await open(httpRequest('GET', '/plain'));
    await waitFor(() => answer !== undefined, 5000, 'the request');
    const closed = new Promise((resolve) => server.close(resolve));
    try {
      await waitFor(() => unused.closed, 5000, 'the unused connection to be dropped');
      expect(asking.closed).toBe(false);
      answer();
      await asking.done;
      expect(asking.text).toMatch(/^HTTP\/1\.1 200[\s\S]*late answer$/);
    } finally {
      unused.destroy();
      asking.destroy();
      await closed;
    }
  });

  it('drops at the deadline a connection whose TLS handshake never ends, so close() completes', async () => {
    const deadline = 300;
    const server = createHttpsServer(await selfSignedCertificate(), (_req, res) => res.end('ok'));
    closeStreamsOnServerClose(server, { deadline });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const { port } = server.address() as AddressInfo;
    // Node times out a handshake only after its handshakeTimeout (120 s): one that sent nothing, and
    // one that sent part of its hello.
    const accepted: Socket[] = [];
    server.on('connection', (socket: Socket) => accepted.push(socket));
    const silent = await rawRequests(`https://127.0.0.1:${port}`, []);
    const partial = await rawRequests(`https://127.0.0.1:${port}`, ['\x16\x03\x01\x00\x50\x01']);
    await waitFor(() => accepted.length === 2 && accepted[1]!.bytesRead > 0, 5000, 'the hello');
    let closed = false;
    server.close(() => {
      closed = true;
    });
    try {
      // A handshake under way is left to finish until the deadline.
      await new Promise((resolve) => setTimeout(resolve, deadline / 2));
      expect(partial.closed).toBe(false);
      await waitFor(() => closed, deadline + 1000, 'server.close()');
      await waitFor(() => silent.closed && partial.closed, 5000, 'the connections to be dropped');
    } finally {
      silent.destroy();
      partial.destroy();
    }
  });
});

describe('closeStreamsOnServerClose: connections at the deadline', () => {
  /** Closes `server`, whose deadline is 1,000 ms: `client` is cut then, not before, and close() completes. */
  async function expectCutAtDeadline(server: Server, client: RawClient) {
    let closed = false;
    server.close(() => {
      closed = true;
    });
    vi.advanceTimersByTime(999);
    await new Promise((resolve) => setImmediate(resolve));
    expect(client.closed).toBe(false);
    vi.advanceTimersByTime(1);
    await waitForReal(
      () => client.closed && closed,
      5000,
      'the connection to be cut and close() to complete',
    );
  }

  it('drops a TLS connection that never sent a request once the streams ended, not only at the deadline', async () => {
    const server = createHttpsServer(await selfSignedCertificate(), (_req, res) => res.end('ok'));
    // A deadline no test waits for: only the drop that follows the streams' end can close it.
    closeStreamsOnServerClose(server, { deadline: 60_000 });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const { port } = server.address() as AddressInfo;
    // Its handshake over on the server's side too: one still under way is left to the deadline.
    const handshaken = once(server, 'secureConnection');
    const socket = connectTls({ port, host: '127.0.0.1', rejectUnauthorized: false });
    await once(socket, 'secureConnect');
    await handshaken;
    const unused = new RawClient(socket, true);
    const closed = new Promise((resolve) => server.close(resolve));
    try {
      await waitFor(() => unused.closed, 5000, 'the unused connection to be dropped');
      await closed;
    } finally {
      unused.destroy();
    }
  });

  it('drops a connection whose request head never ends at the deadline, so close() completes', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    onTestFinished(() => {
      vi.useRealTimers();
    });
    const { url, server } = await serve((_req, res) => res.end('ok'));
    closeStreamsOnServerClose(server, { deadline: 1000 });
    let accepted: Socket | undefined;
    server.once('connection', (socket) => (accepted = socket));
    // Part of a head, then nothing: Node checks its headersTimeout no more once the server closes.
    const client = await rawRequests(url, ['GET /plain HTTP/1.1\r\nHost: 127.0.0.1\r\n'], true);
    await waitForReal(() => (accepted?.bytesRead ?? 0) > 0, 5000, 'the first bytes');
    await expectCutAtDeadline(server, client);
  });

  it('leaves a plain answer still under way at the deadline to finish, cutting only event streams', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    onTestFinished(() => {
      vi.useRealTimers();
    });
    let finish: (() => void) | undefined;
    const { url, server } = await serve((_req, res) => {
      // A download under way: its head and part of its body are out, the rest to come.
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.write('part one, ');
      finish = () => res.end('part two');
    });
    closeStreamsOnServerClose(server, { deadline: 1000 });
    const client = await rawClient(`${url}/download`, { read: true });
    await waitForReal(() => client.text.includes('part one, '), 5000, 'the first part');
    let closed = false;
    server.close(() => {
      closed = true;
    });
    vi.advanceTimersByTime(1000);
    await new Promise((resolve) => setImmediate(resolve));
    await new Promise((resolve) => setImmediate(resolve));
    // Node's close() waits for it, as for any answer it is writing: only an event stream never ends.
    expect(client.closed).toBe(false);
    finish!();
    await client.done;
    expect(client.text).toMatch(/part one, [\s\S]*part two/);
    await waitForReal(() => closed, 5000, 'server.close()');
  });

  it("cuts at the deadline an event stream no group holds, as a fetch handler's runtime writes one, so close() completes", async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    onTestFinished(() => {
      vi.useRealTimers();
    });
    // As a runtime serving a fetch handler writes its stream: no group of this server sees it.
    const { url, server } = await serve((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write('data: hi\n\n');
    });
    closeStreamsOnServerClose(server, { deadline: 1000 });
    const client = await rawClient(`${url}/sse`, { read: true });
    await waitForReal(() => client.text.includes('data: hi'), 5000, 'the stream');
    await expectCutAtDeadline(server, client);
  });

  it("keeps connections alive once the server listens again, though its close's group ended after it", async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    onTestFinished(() => {
      vi.useRealTimers();
    });
    // The group's stream is another server's, to a client that reads nothing: the group's close
    // lasts to its deadline, long after this server, with no connection, has closed.
    const group = new StreamGroup();
    const big = { data: 'z'.repeat(64 * 1024) };
    const { handle } = route(() => concat(from(Array.from({ length: 400 }, () => big)), NEVER), {
      group,
      heartbeat: false,
      stallTimeout: false,
      maxQueueBytes: 64 * 1024 * 1024,
    });
    const other = await serve(handle);
    const stuck = await rawClient(`${other.url}/sse`, { read: false });
    onTestFinished(() => stuck.destroy());
    await waitForReal(() => group.size === 1, 5000, 'the stuck stream');
    const server = createServer((_req, res) => res.end('ok'));
    closeStreamsOnServerClose(server, { group, deadline: 1000 });
    const port = await listenAgain(server);
    // The group's close ends at its deadline, the server listening again by then.
    vi.advanceTimersByTime(1000);
    await waitForReal(() => group.size === 0, 5000, "the group's close");
    await new Promise((resolve) => setImmediate(resolve));
    const client = await rawRequests(`http://127.0.0.1:${port}`, [httpRequest('GET', '/plain')]);
    await waitForReal(() => client.text.endsWith('ok'), 5000, 'the first answer');
    // The close's reaping after each answer ended with it: the kept-alive connection takes the next.
    await new Promise((resolve) => setImmediate(resolve));
    await new Promise((resolve) => setImmediate(resolve));
    client.socket.write(httpRequest('GET', '/plain'));
    await waitForReal(() => client.text.split('ok').length === 3 || client.closed, 5000, 'the second answer');
    expect(client.text.split('ok')).toHaveLength(3);
    client.destroy();
  });

  it('drops nothing at the deadline of a close that completed, once the server listens again', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    onTestFinished(() => {
      vi.useRealTimers();
    });
    const { handle, errors } = route(() => concat(from([{ data: 'hi' }]), NEVER), { heartbeat: false });
    const { server } = await serve(handle);
    closeStreamsOnServerClose(server, { deadline: 1000 });
    // Nothing open: the close completes at once, long before its deadline.
    await new Promise((resolve) => server.close(resolve));
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const stream = await rawClient(`${url}/sse`, { read: true });
    await waitForReal(() => stream.text.includes('data: hi'), 5000, 'the stream');
    let accepted: Socket | undefined;
    server.once('connection', (socket) => (accepted = socket));
    const heading = await rawRequests(url, ['GET /sse HTTP/1.1\r\nHost: 127.0.0.1\r\n'], true);
    await waitForReal(() => (accepted?.bytesRead ?? 0) > 0, 5000, 'the first bytes');
    vi.advanceTimersByTime(1000);
    await new Promise((resolve) => setImmediate(resolve));
    await new Promise((resolve) => setImmediate(resolve));
    // The server that listens again is not closing: the earlier close's cuts are cancelled.
    expect(stream.closed).toBe(false);
    expect(heading.closed).toBe(false);
    expect(errors).toEqual([]);
    stream.destroy();
    heading.destroy();
  });
});

describe('closing a server: an answer that ended while its bytes still flush', () => {
  /**
   * A server whose answer ends at once with 16 MiB, more than loopback's buffers take, to a client
   * that reads nothing yet; `prepare` readies it for its close, which has begun on return.
   */
  async function endedAnswer(prepare: (server: Server) => void) {
    const body = 'x'.repeat(16 * 1024 * 1024);
    let ended = false;
    const { url, server } = await serve((_req, res) => {
      res.end(body);
      ended = true;
    });
    // Node alone would keep the connection this long once the answer has flushed.
    server.keepAliveTimeout = 60_000;
    prepare(server);
    const client = await rawClient(`${url}/plain`, { read: false });
    await waitFor(() => ended, 5000, 'the answer');
    let closed = false;
    server.close(() => {
      closed = true;
    });
    return { body, client, isClosed: () => closed };
  }

  // As a runtime ends a fetch handler's response: once it has written the body's last chunk.
  it.each([
    ['closeStreamsOnServerClose', (server: Server) => closeStreamsOnServerClose(server)],
    ["trackConnections (a framework's own shutdown)", (server: Server) => trackConnections(server)],
  ])(
    'lets it finish flushing, though Node takes its connection for idle, then closes it (%s)',
    async (_, prepare) => {
      const { body, client, isClosed } = await endedAnswer(prepare);
      client.resume();
      await waitFor(isClosed, 5000, 'server.close()');
      await client.done;
      expect(client.text.endsWith(body)).toBe(true);
    },
  );

  it('keeps its connection alive once flushed, when the app closed idle connections of a server still listening', async () => {
    const body = 'x'.repeat(16 * 1024 * 1024);
    let answered = 0;
    const { url, server } = await serve((_req, res) => {
      answered++;
      res.end(answered === 1 ? body : 'again');
    });
    server.keepAliveTimeout = 60_000;
    trackConnections(server);
    const client = await rawClient(`${url}/plain`, { read: false });
    await waitFor(() => answered === 1, 5000, 'the answer');
    // An app's own reaping (no close): the answer still flushing is spared.
    server.closeIdleConnections();
    client.resume();
    await waitFor(() => client.text.endsWith(body), 5000, 'the whole answer');
    await new Promise((resolve) => setImmediate(resolve));
    await new Promise((resolve) => setImmediate(resolve));
    // The server is not closing: the connection, flushed, is kept alive as Node keeps any.
    client.socket.write(httpRequest('GET', '/plain'));
    await waitFor(() => client.text.endsWith('again') || client.closed, 5000, 'the second answer');
    expect(client.text.endsWith('again')).toBe(true);
    client.destroy();
  });

  it('sends all of an event stream that ended while its bytes still flush, though the app closes idle connections meanwhile', async () => {
    // Neither closeStreamsOnServerClose nor trackConnections: the stream's own end keeps it.
    const { closes, errors, server, client, socket } = await unreadStream(() => from(burst()));
    await waitFor(() => closes.length === 1 && socket.writableLength > 0, 5000, 'the end, with bytes left');
    server.closeIdleConnections();
    client.resume();
    await waitFor(() => client.text.endsWith('\n\n\r\n0\r\n\r\n') || client.closed, 5000, 'the whole stream');
    expect(client.text.split('data: ').length - 1).toBe(burst().length);
    expect(client.text.endsWith('\n\n\r\n0\r\n\r\n')).toBe(true);
    expect(closes[0]!.reason).toBe('complete');
    expect(errors).toEqual([]);
    client.destroy();
  });

  it('drops it at the deadline if the client has not taken it all, so close() completes', async () => {
    const deadline = 300;
    const { body, client, isClosed } = await endedAnswer((server) =>
      closeStreamsOnServerClose(server, { deadline }),
    );
    await waitFor(isClosed, deadline + 5000, 'server.close()');
    client.resume();
    await client.done;
    expect(client.text.length).toBeLessThan(body.length);
  });
});

describe('closeStreamsOnServerClose: requests during the close', () => {
  /**
   * A server with closeStreamsOnServerClose: `/big` (a client that never reads it keeps the
   * shutdown waiting), `/sse` (a stream), `/other` (a route of its own group, not the one the
   * shutdown closes) and `/plain` (no event stream at all).
   */
  async function closingServer() {
    const counts = { other: 0 };
    const big = { data: 'z'.repeat(64 * 1024) };
    const bigRoute = route(() => concat(from(Array.from({ length: 400 }, () => big)), NEVER), {
      stallTimeout: false,
      maxQueueBytes: 64 * 1024 * 1024,
      heartbeat: false,
    });
    const sseRoute = route(() => concat(from([{ data: 'hi' }]), NEVER), { heartbeat: false });
    const otherRoute = route(
      () => {
        counts.other++;
        return NEVER;
      },
      { group: new StreamGroup(), heartbeat: false },
    );
    const { url, server } = await serve((req, res) => {
      if (req.url === '/big') bigRoute.handle(req, res);
      else if (req.url === '/sse') sseRoute.handle(req, res);
      else if (req.url === '/other') otherRoute.handle(req, res);
      else res.end('ok');
    });
    // Node alone would hold close() this long for a kept-alive connection, idle meanwhile.
    server.keepAliveTimeout = 60_000;
    closeStreamsOnServerClose(server, { deadline: 60_000 });
    const stuck = await rawClient(`${url}/big`, { read: false });
    const client = await rawClient(`${url}/sse`, { read: true });
    await waitFor(() => client.text.includes('data: hi'), 5000, 'the stream');
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    // The shutdown ends the stream; its connection stays open, kept alive.
    await waitFor(() => client.text.endsWith('\r\n0\r\n\r\n'), 5000, 'the end of the stream');
    return { counts, stuck, client, closed };
  }

  it('turns away a request for a route of another group while the server closes', async () => {
    const { counts, stuck, client, closed } = await closingServer();
    const before = client.text.length;
    client.socket.write(httpRequest('GET', '/other'));
    await waitFor(() => client.closed || counts.other > 0, 5000, 'an answer');
    expect(counts.other).toBe(0);
    expect(client.text.slice(before).toLowerCase()).toContain('connection: close');
    stuck.destroy();
    await closed;
  });

  it('closes the kept-alive connection of a stream that ended first, once the last one has flushed', async () => {
    const { stuck, client, closed } = await closingServer();
    let done = false;
    void closed.then(() => {
      done = true;
    });
    // Idle since its stream ended, before Node's close() could take it for idle: only the end of
    // the shutdown, once the stuck client is gone, closes it.
    stuck.destroy();
    await waitFor(() => client.closed, 5000, 'the idle connection to close');
    await waitFor(() => done, 5000, 'server.close()');
  });

  it('closes the connection after any HTTP/1 response while the server closes', async () => {
    const { stuck, client, closed } = await closingServer();
    const before = client.text.length;
    client.socket.write(httpRequest('GET', '/plain'));
    await waitFor(() => client.text.slice(before).endsWith('ok'), 5000, 'the plain answer');
    expect(client.text.slice(before).toLowerCase()).toContain('connection: close');
    await client.done;
    stuck.destroy();
    await closed;
  });

  it('turns away a stream whose async handler resolves after the close began, so close() completes', async () => {
    let resolveHandler!: (source: Observable<MessageEvent>) => void;
    const { observable, counts } = counted(NEVER as Observable<MessageEvent>);
    const { handle } = route(() => new Promise((resolve) => (resolveHandler = resolve)), {
      heartbeat: false,
      retry: 1000,
    });
    const { url, server } = await serve(handle);
    closeStreamsOnServerClose(server, { deadline: 60_000 });
    const client = await rawClient(`${url}/sse`, { read: true });
    await waitFor(() => resolveHandler !== undefined, 5000, 'the handler');
    let closed = false;
    server.close(() => {
      closed = true;
    });
    resolveHandler(observable);
    await waitFor(() => closed, 5000, 'server.close()');
    expect(counts.subscribed).toBe(0);
    expect(client.text.toLowerCase()).toContain('connection: close');
    expect(client.text).toContain('retry: 1000\n');
    await client.done;
  });

  it('closes with reason client a handler whose client left before the close, resolving during it', async () => {
    let resolveHandler!: (source: Observable<MessageEvent>) => void;
    let left = false;
    const { observable, counts } = counted(NEVER as Observable<MessageEvent>);
    const { options, closes } = recording({ heartbeat: false });
    const { handle, errors } = route(({ signal }) => {
      signal.addEventListener('abort', () => {
        left = true;
      });
      return new Promise((resolve) => (resolveHandler = resolve));
    }, options);
    const { url, server } = await serve(handle);
    closeStreamsOnServerClose(server, { deadline: 60_000 });
    const client = await rawClient(`${url}/sse`, { read: true });
    await waitFor(() => resolveHandler !== undefined, 5000, 'the handler');
    client.destroy();
    await waitFor(() => left, 5000, 'the disconnect');
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    resolveHandler(observable);
    await closed;
    expect(closes.map((close) => close.reason)).toEqual(['client']);
    expect(counts.subscribed).toBe(0);
    expect(errors).toEqual([]);
  });

  it('closes with reason client a request whose client left before the close, reaching the route during it', async () => {
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    let arrived = false;
    const { options, closes } = recording({ heartbeat: false });
    const { handle, errors } = route(() => NEVER, options);
    // An async step in front of the route (an auth check) that the client does not wait for.
    const { url, server } = await serve(async (req, res) => {
      arrived = true;
      await gate;
      handle(req, res);
    });
    closeStreamsOnServerClose(server, { deadline: 60_000 });
    const client = await rawClient(`${url}/sse`, { read: true });
    await waitFor(() => arrived, 5000, 'the request');
    client.destroy();
    await client.done;
    await new Promise((resolve) => setTimeout(resolve, 50));
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    release();
    await closed;
    await waitFor(() => closes.length === 1, 5000, 'the close');
    expect(closes.map((close) => close.reason)).toEqual(['client']);
    expect(errors).toEqual([]);
  });

  it('returns the iterator an async handler resolves to after the close began', async () => {
    const emitter = new EventEmitter();
    let resolveHandler!: (source: AsyncIterable<MessageEvent>) => void;
    const { handle } = route(() => new Promise((resolve) => (resolveHandler = resolve)), {
      heartbeat: false,
    });
    const { url, server } = await serve(handle);
    closeStreamsOnServerClose(server, { deadline: 60_000 });
    const client = await rawClient(`${url}/sse`, { read: true });
    await waitFor(() => resolveHandler !== undefined, 5000, 'the handler');
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    const ticks = on(emitter, 'tick') as AsyncIterable<MessageEvent>;
    expect(emitter.listenerCount('tick')).toBe(1);
    resolveHandler(ticks);
    await closed;
    expect(emitter.listenerCount('tick')).toBe(0);
    await client.done;
  });

  it("counts an async handler among its server's streams only until its stream begins", async () => {
    const { options, closes } = recording({ heartbeat: false });
    const { handle } = route(async () => NEVER, options);
    const { url, server } = await serve(handle);
    const client = await rawClient(`${url}/sse`, { read: true });
    await waitFor(() => client.text.includes('200 OK'), 5000, 'the stream');
    expect(serverStreams(server).size).toBe(1);
    client.destroy();
    await waitFor(() => closes.length === 1, 5000, 'the close');
    expect(serverStreams(server).size).toBe(0);
  });

  it('closes the connection of an ended stream whose request body is still arriving, so close() completes', async () => {
    const { handle, errors } = route(() => concat(from([{ data: 'hi' }]), NEVER), { heartbeat: false });
    const { url, server } = await serve(handle);
    closeStreamsOnServerClose(server, { deadline: 200 });
    // A POST whose body has only begun to arrive, and never ends.
    const client = await rawRequests(url, [
      'POST /sse HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 1000000\r\n\r\n0123456789',
    ]);
    await waitFor(() => client.text.includes('data: hi'), 5000, 'the stream');
    let closed = false;
    server.close(() => {
      closed = true;
    });
    await waitFor(() => closed, 5000, 'server.close()');
    expect(client.text.endsWith('\r\n0\r\n\r\n')).toBe(true);
    await client.done;
    expect(errors).toEqual([]);
  });

  it('leaves a request whose head is still arriving when the server closes to finish, and turns it away', async () => {
    const { handle } = route(() => NEVER, { heartbeat: false, retry: 1000 });
    const { url, server } = await serve(handle);
    closeStreamsOnServerClose(server, { deadline: 60_000 });
    let accepted: Socket | undefined;
    server.once('connection', (socket) => (accepted = socket));
    const client = await rawRequests(url, ['GET /sse HTTP/1.1\r\nHost: 127.0.0.1\r\n'], true);
    await waitFor(() => (accepted?.bytesRead ?? 0) > 0, 5000, 'the first bytes');
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    // The close has ended its streams (there are none) and dropped the unused connections.
    await new Promise((resolve) => setImmediate(resolve));
    client.socket.write('Accept: text/event-stream\r\n\r\n');
    await waitFor(() => client.text.includes('retry: 1000\n') || client.closed, 5000, 'an answer');
    expect(client.text.toLowerCase()).toContain('connection: close');
    expect(client.text).toContain('retry: 1000\n');
    await client.done;
    await closed;
  });

  it('leaves a connection handed to an upgrade listener (a WebSocket) to that listener at the deadline', async () => {
    const { url, server } = await serve((_req, res) => res.end('ok'));
    const upgraded: Socket[] = [];
    server.on('upgrade', (_req, socket: Socket) => upgraded.push(socket));
    closeStreamsOnServerClose(server, { deadline: 100 });
    const client = await rawRequests(url, [
      'GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n',
    ]);
    await waitFor(() => upgraded.length === 1, 5000, 'the upgrade');
    let closed = false;
    server.close(() => {
      closed = true;
    });
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(client.closed).toBe(false);
    upgraded[0]!.destroy();
    await waitFor(() => closed, 5000, 'server.close()');
  });

  it('keeps nothing of a connection once it closed', async () => {
    const { url, server } = await serve((_req, res) => res.end('ok'));
    closeStreamsOnServerClose(server);
    let accepted: WeakRef<Socket> | undefined;
    server.once('connection', (socket) => (accepted = new WeakRef(socket)));
    const client = await rawRequests(url, ['GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n']);
    await client.done;
    await waitFor(() => accepted?.deref()?.destroyed !== false, 5000, 'the server to close it');
    expect(await collected([accepted!])).toBe(0);
  });

  it('closes the idle connections of the ended streams, so close() need not wait for keep-alive', async () => {
    const { handle } = route(() => concat(from([{ data: 'hi' }]), NEVER), { heartbeat: false });
    const { url, server } = await serve(handle);
    server.keepAliveTimeout = 60_000;
    closeStreamsOnServerClose(server);
    const client = await rawClient(`${url}/sse`, { read: true });
    await waitFor(() => client.text.includes('data: hi'), 5000, 'the stream');
    let closed = false;
    server.close(() => {
      closed = true;
    });
    await waitFor(() => closed, 5000, 'server.close()');
    expect(client.text.endsWith('\r\n0\r\n\r\n')).toBe(true);
    await client.done;
  });

  it('closes the kept-alive connection of a request answered after the close began, not at its keep-alive timeout', async () => {
    let answer!: () => void;
    const server = createServer((_req, res) => {
      answer = () => res.end('late answer');
    });
    // Node alone would hold close() until this timeout, the connection idle meanwhile.
    server.keepAliveTimeout = 60_000;
    // Past the wait below: the deadline's drop is not what closes it.
    closeStreamsOnServerClose(server, { deadline: 30_000 });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const client = await rawClient(`http://127.0.0.1:${(server.address() as AddressInfo).port}/plain`, {
      read: true,
    });
    await waitFor(() => answer !== undefined, 5000, 'the request');
    let closed = false;
    server.close(() => {
      closed = true;
    });
    try {
      // The close has no stream to end: it is over before the answer.
      await new Promise((resolve) => setImmediate(resolve));
      answer();
      await waitFor(() => client.closed, 5000, 'the connection to close');
      expect(client.text).toMatch(/^HTTP\/1\.1 200 OK\r\n[\s\S]*Connection: keep-alive[\s\S]*late answer$/);
      await waitFor(() => closed, 5000, 'server.close()');
    } finally {
      client.destroy();
    }
  });
});

/** Serves `handle`, counting the calls of each response's `end()` (as express-session hears them). */
async function serveCountingEnds(handle: (req: IncomingMessage, res: ServerResponse) => void) {
  let ends = 0;
  let closed = false;
  const served = await serve((req, res) => {
    const end = res.end.bind(res) as () => ServerResponse;
    res.end = (() => {
      ends++;
      return end();
    }) as typeof res.end;
    res.once('close', () => {
      closed = true;
    });
    handle(req, res);
  });
  return { url: served.url, ends: () => ends, closed: () => closed };
}

/**
 * Small events, one a tick, until the kernel holds no more and Node keeps some, below the socket's
 * high-water mark (the stream goes on writing); then the client half-closes and Node ends its side.
 * Returns the event sent.
 */
async function halfCloseWhileNodeHolds(
  events: Subject<MessageEvent>,
  client: { socket: Socket },
  socket: Socket,
): Promise<{ data: string }> {
  const event = { data: 'x'.repeat(1000) };
  while (socket.writableLength === 0) {
    events.next(event);
    await new Promise((resolve) => setImmediate(resolve));
  }
  client.socket.end();
  await waitFor(() => socket.writableEnded, 5000, 'Node to end its side');
  return event;
}

/**
 * A stream of `source` (no heartbeat, a queue of 64 MiB) to a client that reads nothing yet, and the
 * server's side of its connection.
 */
async function unreadStream(source: () => Observable<MessageEvent>) {
  const { options, closes } = recording({ heartbeat: false, maxQueueBytes: 64 * 1024 * 1024 });
  const { handle, errors } = route(source, options);
  const { url, server } = await serve(handle);
  let socket: Socket | undefined;
  server.on('connection', (each) => (socket = each));
  const client = await rawClient(`${url}/sse`, { read: false });
  await waitFor(() => socket !== undefined, 5000, 'the connection');
  return { closes, errors, server, client, socket: socket as Socket };
}

/**
 * Two pipelined GETs on one connection, `/a` then `/b`, whose client then half-closes: `/a`'s answer
 * holds 16 MiB, more than loopback's buffers take, which the client never reads, so `/b` (handed to
 * `second`) waits behind it for good, and Node, ending the connection after those bytes, leaves it
 * open.
 */
async function halfClosedBehindFull(
  second: (req: IncomingMessage, res: ServerResponse) => void,
): Promise<void> {
  let requests = 0;
  let first: ServerResponse | undefined;
  const { url } = await serve((req, res) => {
    requests++;
    if (req.url === '/a') first = res;
    else {
      second(req, res);
      // Only now: Node stops reading a connection whose answer is full as a request comes.
      first!.write('x'.repeat(16 * 1024 * 1024));
    }
  });
  const client = await rawRequests(
    url,
    ['/a', '/b'].map((path) => httpRequest('GET', path)),
    false,
  );
  onTestFinished(() => client.destroy());
  await waitFor(() => requests === 2, 5000, 'two requests');
  client.socket.end();
}
