// The client against servers that are not rxsse: a hand-written node:http server (every framing the
// spec allows, and contract violations) and a NestJS @Sse() route.
import 'reflect-metadata';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Controller, type INestApplication, Module, Req, Sse } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { pickLastEventId } from '@rxsse/core';
import { firstValueFrom, type Observable, range, map as rxMap, take, toArray } from 'rxjs';
import { afterEach, describe, expect, it } from 'vitest';
import { defineEvents, fromEventSource, json, SseEventError, text } from '../src/index.js';
import { chunkedResponse, type Listening, listen, record, until } from './support.js';

const events = defineEvents({ tick: json<{ n: number }>(), message: text });

const open: Listening[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((server) => server.close()));
});

/** A node:http server on 127.0.0.1; every request's headers are kept. */
async function handWritten(handler: (req: IncomingMessage, res: ServerResponse, n: number) => void) {
  const requests: IncomingMessage['headers'][] = [];
  const server = await listen(
    createServer((req, res) => {
      requests.push(req.headers);
      handler(req, res, requests.length);
    }),
  );
  open.push(server);
  return { url: server.url, requests };
}

const eventStream = { 'content-type': 'text/event-stream; charset=utf-8' };

describe('a hand-written node:http server', () => {
  // Every framing the spec allows, ending without the blank line the last event needs.
  const framings = Buffer.from(
    '\uFEFF: hello\r\nretry: 1\r\nevent: tick\r\nid: 1\r\ndata: {"n":1}\r\n\r\n' +
      'data: multi\rdata:  line é\r\r' +
      'id: 2\n\n' +
      'event: tick\ndata: {"n":"never dispatched"}\n',
  );

  it('parses every framing, honours an id-only block on resume, and completes on 204', async () => {
    const { url, requests } = await handWritten((_req, res, n) => {
      if (n > 1) {
        res.writeHead(204).end();
        return;
      }
      res.writeHead(200, eventStream);
      res.end(framings);
    });
    const client = record(fromEventSource(url, { events }));
    await until(() => client.completed || client.error !== undefined, 'completion');
    expect(client.error).toBeUndefined();
    expect(client.values).toEqual([
      { type: 'tick', data: { n: 1 }, id: '1' },
      { type: 'message', data: 'multi\n line é', id: '1' },
    ]);
    expect(requests.map((headers) => headers['last-event-id'])).toEqual([undefined, '2']);
    expect(requests[0]).toMatchObject({ accept: 'text/event-stream' });
  });

  it('parses every framing cut between a CR and its LF and inside the two bytes of é', async () => {
    // Exactly these chunks (fetch joins a real server's writes as it likes): a CR ends one, its LF
    // opens the next; another ends inside é.
    const crlf = framings.indexOf('event: tick\r\n') + 'event: tick\r'.length;
    const e = framings.indexOf(Buffer.from('é')) + 1;
    const chunks = [framings.subarray(0, crlf), framings.subarray(crlf, e), framings.subarray(e)];
    const ids: (string | null)[] = [];
    const fetch = async (_input: RequestInfo | URL, init?: RequestInit) => {
      ids.push(new Headers(init?.headers).get('last-event-id'));
      return ids.length > 1 ? new Response(null, { status: 204 }) : chunkedResponse(chunks, { end: true });
    };
    const client = record(fromEventSource('http://127.0.0.1:1/sse', { events, fetch }));
    await until(() => client.completed || client.error !== undefined, 'completion');
    expect(client.error).toBeUndefined();
    expect(client.values).toEqual([
      { type: 'tick', data: { n: 1 }, id: '1' },
      { type: 'message', data: 'multi\n line é', id: '1' },
    ]);
    expect(ids).toEqual([null, '2']);
  });

  it('reads a stream whose Content-Type a proxy sent twice, as browsers do', async () => {
    const { url } = await handWritten((_req, res) => {
      res.setHeader('content-type', ['text/event-stream', 'text/event-stream; charset=utf-8']);
      res.end('id: 1\ndata: one\n\n');
    });
    const first = await firstValueFrom(fromEventSource(url));
    expect(first).toEqual({ type: 'message', data: 'one', id: '1' });
  });

  it.each([
    ['a type the contract does not declare', 'event: tock\ndata: 1\n\n', /"tock" is not declared/],
    [
      'data that is not the JSON the contract promises',
      'event: tick\ndata: {"n":\n\n',
      /"tick" has data that is not JSON/,
    ],
    [
      'an event longer than maxEventLength',
      `data: ${'x'.repeat(5000)}`,
      /^An event is longer than maxEventLength \(1000\)$/,
    ],
    [
      'an event longer than maxEventLength that ends in the chunk it began in',
      `data: ${'x'.repeat(5000)}\n\n`,
      /^An event is longer than maxEventLength \(1000\)$/,
    ],
    [
      'an event of short data lines that together pass maxEventLength',
      `data: ${'x'.repeat(94)}\n`.repeat(20),
      /^An event is longer than maxEventLength \(1000\)$/,
    ],
    [
      'a history-truncated event whose data has no reason',
      'event: history-truncated\ndata: {"lastEventId":null}\n\n',
      /^Event "history-truncated" has data that is not a truncation notice$/,
    ],
    [
      'a history-truncated event whose reason is none a channel gives',
      'event: history-truncated\ndata: {"lastEventId":null,"reason":"nonsense"}\n\n',
      /^Event "history-truncated" has data that is not a truncation notice$/,
    ],
    [
      'a history-truncated event whose lastEventId is not a string or null',
      'event: history-truncated\ndata: {"lastEventId":5,"reason":"gap"}\n\n',
      /^Event "history-truncated" has data that is not a truncation notice$/,
    ],
    [
      'a history-truncated event without a lastEventId',
      'event: history-truncated\ndata: {"reason":"history"}\n\n',
      /^Event "history-truncated" has data that is not a truncation notice$/,
    ],
  ])('ends with SseEventError on %s, and closes the connection', async (_name, body, message) => {
    let closed = false;
    const { url, requests } = await handWritten((_req, res) => {
      res.on('close', () => {
        closed = true;
      });
      res.writeHead(200, eventStream);
      res.write(body);
    });
    const client = record(fromEventSource(url, { events, maxEventLength: 1000 }));
    await until(() => client.error !== undefined, 'the error');
    expect(client.error).toBeInstanceOf(SseEventError);
    expect(client.error).toMatchObject({ name: 'SseEventError', message: expect.stringMatching(message) });
    await until(() => closed, 'the server to see the connection close');
    expect(requests).toHaveLength(1);
  });
  it("ends with SseEventError, its cause the contract's own error, when a decode throws anything else", async () => {
    const checked: typeof events = {
      ...events,
      decode: (type, data) => {
        const value = events.decode(type, data);
        if (type === 'tick' && typeof (value as { n: unknown }).n !== 'number') throw new TypeError('n');
        return value;
      },
    };
    const { url, requests } = await handWritten((_req, res) => {
      res.writeHead(200, eventStream);
      res.write('retry: 1\nid: 1\nevent: tick\ndata: {"n":"one"}\n\nid: 2\nevent: tick\ndata: {"n":2}\n\n');
    });
    const reasons: unknown[] = [];
    const client = record(
      fromEventSource(url, { events: checked, onReconnect: (reason) => reasons.push(reason) }),
    );
    await until(() => client.error !== undefined || reasons.length > 0, 'the error');
    // Not a network error to reconnect after: the resume point is past the event, it would be lost.
    expect(reasons).toEqual([]);
    expect(client.error).toMatchObject({ name: 'SseEventError', eventType: 'tick' });
    expect((client.error as Error).cause).toBeInstanceOf(TypeError);
    expect(client.values).toEqual([]);
    expect(requests).toHaveLength(1);
  });
});

describe('limits and resume points', () => {
  it('delivers an event exactly maxEventLength long, and refuses one a character longer', async () => {
    let response: ServerResponse | undefined;
    // An unfinished event holds its whole line, "data: " included: 1000 characters here.
    const exact = `data: ${'x'.repeat(994)}`;
    const { url } = await handWritten((_req, res) => {
      res.writeHead(200, eventStream);
      res.write(`data: first\n\n${exact}`);
      response = res;
    });
    const client = record(fromEventSource(url, { maxEventLength: 1000 }));
    await until(() => client.values.length === 1 || client.error !== undefined, 'the first event');
    expect(client.error).toBeUndefined();
    response!.write(`\n\n${exact}x`);
    await until(() => client.error !== undefined, 'the error');
    expect(client.values.map((event) => (event.data as string).length)).toEqual([5, 994]);
    expect(client.error).toBeInstanceOf(SseEventError);
  });

  it('counts the type of an event toward maxEventLength, as its data', async () => {
    const { url } = await handWritten((_req, res) => {
      res.writeHead(200, eventStream);
      // The data line of each, "data: " included, is 506 characters: with a type of 494, 1000.
      const event = (typeLength: number) => `event: ${'t'.repeat(typeLength)}\ndata: ${'x'.repeat(500)}\n\n`;
      res.write(event(494) + event(495));
    });
    const client = record(fromEventSource(url, { maxEventLength: 1000 }));
    await until(() => client.error !== undefined || client.values.length === 2, 'the error');
    expect(client.values.map(({ type, data }) => [type.length, (data as string).length])).toEqual([
      [494, 500],
    ]);
    expect((client.error as Error).message).toBe('An event is longer than maxEventLength (1000)');
  });

  it('counts the id of an event toward maxEventLength, as its type and data', async () => {
    const { url } = await handWritten((_req, res) => {
      res.writeHead(200, eventStream);
      // The data line of each, "data: " included, is 506 characters: with an id of 494, 1000.
      const event = (idLength: number) => `id: ${'i'.repeat(idLength)}\ndata: ${'x'.repeat(500)}\n\n`;
      res.write(event(494) + event(495));
    });
    const client = record(fromEventSource(url, { maxEventLength: 1000 }));
    await until(() => client.error !== undefined || client.values.length === 2, 'the error');
    expect(client.values.map(({ id, data }) => [id.length, (data as string).length])).toEqual([[494, 500]]);
    expect((client.error as Error).message).toBe('An event is longer than maxEventLength (1000)');
  });

  it('counts an id line in place of the id it replaces', async () => {
    const { url } = await handWritten((_req, res) => {
      res.writeHead(200, eventStream);
      // Each event holds 600 + 10 characters: the id it drops is not its own.
      res.write([1, 2, 3].map((n) => `id: ${String(n).repeat(600)}\ndata: ${'x'.repeat(4)}\n\n`).join(''));
    });
    const client = record(fromEventSource(url, { maxEventLength: 1000 }));
    await until(() => client.error !== undefined || client.values.length === 3, 'the events');
    expect(client.error).toBeUndefined();
    expect(client.values.map(({ id }) => id)).toEqual(['1', '2', '3'].map((n) => n.repeat(600)));
  });

  it('counts an event line in place of the type it replaces, whole or arriving in pieces', async () => {
    // Neither event holds more than 507 characters (a line of 7 beside its type of 500): the type of
    // 600 its event line replaces is not its own. The second's event line is cut inside its name.
    const pieces = [
      `event: ${'t'.repeat(600)}\nevent: ${'u'.repeat(500)}\ndata: x\n\n`,
      `event: ${'t'.repeat(600)}\neve`,
      `nt: ${'v'.repeat(500)}`,
      '\ndata: x\n\n',
    ];
    const fetch = async () => chunkedResponse(pieces);
    const client = record(fromEventSource('http://127.0.0.1:1/sse', { fetch, maxEventLength: 1000 }));
    await until(() => client.error !== undefined || client.values.length === 2, 'the events');
    expect(client.error).toBeUndefined();
    expect(client.values.map(({ type }) => type)).toEqual(['u'.repeat(500), 'v'.repeat(500)]);
  });

  it('counts a resume id longer than maxEventLength toward no heartbeat, only toward an event that carries it', async () => {
    // Each its own chunk, as a quiet stream's heartbeats come: the end of each holds no event.
    let n = 0;
    const fetch = async () =>
      chunkedResponse([':\n', ':\n\n', ++n === 1 ? 'id: 1\ndata: own id\n\n' : 'data: resumed id\n\n']);
    const url = 'http://127.0.0.1:1/sse';
    const options = { fetch, lastEventId: 'i'.repeat(40), maxEventLength: 32 };
    const own = record(fromEventSource(url, options));
    await until(() => own.error !== undefined || own.values.length === 1, 'the event');
    own.subscription.unsubscribe();
    expect(own.error).toBeUndefined();
    expect(own.values).toEqual([{ type: 'message', data: 'own id', id: '1' }]);

    const resumed = record(fromEventSource(url, options));
    await until(() => resumed.error !== undefined || resumed.values.length === 1, 'the error');
    expect(resumed.values).toEqual([]);
    expect((resumed.error as Error).message).toBe('An event is longer than maxEventLength (32)');
  });

  it("counts a resume id longer than maxEventLength toward no retry: block, as an rxsse route's retry option opens its streams", async () => {
    // Each its own chunk: the end of each before the event's holds no event.
    const fetch = async () =>
      chunkedResponse(['retry: 1000\n\n', ':\n', 'retry: 2000\nid: 1\ndata: own id\n\n']);
    const client = record(
      fromEventSource('http://127.0.0.1:1/sse', { fetch, lastEventId: 'i'.repeat(40), maxEventLength: 32 }),
    );
    await until(() => client.error !== undefined || client.values.length === 1, 'the event');
    expect(client.error).toBeUndefined();
    expect(client.values).toEqual([{ type: 'message', data: 'own id', id: '1' }]);
  });

  it('counts an id set by an earlier block, and arriving in pieces, toward the events that carry it', async () => {
    // An id-only block cut in two, then an event whose unfinished data line and the id pass 1000.
    const pieces = [`id: ${'i'.repeat(300)}`, `${'i'.repeat(300)}\n\n`, `data: ${'x'.repeat(400)}`, '\n\n'];
    const fetch = async () => chunkedResponse(pieces);
    const client = record(fromEventSource('http://127.0.0.1:1/sse', { fetch, maxEventLength: 1000 }));
    await until(() => client.error !== undefined || client.values.length === 1, 'the error');
    expect(client.values).toEqual([]);
    expect((client.error as Error).message).toBe('An event is longer than maxEventLength (1000)');
  });

  it('counts no comment toward maxEventLength: a heartbeat between events, a padding longer than the limit', async () => {
    const id = 'i'.repeat(36);
    // 2 KiB of padding in two pieces, then events of 36 + 5 characters with a 40-character comment.
    const pieces = [`:${' '.repeat(1024)}`, `${' '.repeat(1024)}\n\n`];
    pieces.push(`id: ${id}\ndata: hello\n\n: ${'p'.repeat(38)}\nid: ${id}\ndata: world\n\n`);
    const fetch = async () => chunkedResponse(pieces);
    const client = record(fromEventSource('http://127.0.0.1:1/sse', { fetch, maxEventLength: 64 }));
    await until(() => client.error !== undefined || client.values.length === 2, 'the events');
    expect(client.error).toBeUndefined();
    expect(client.values.map(({ data }) => data)).toEqual(['hello', 'world']);
  });

  it('holds 16 Mi characters of one event by default, and no more', async () => {
    const limit = 16 * 2 ** 20;
    const line = `data: ${'x'.repeat(limit - 6)}`;
    const { url } = await handWritten((_req, res) => {
      res.writeHead(200, eventStream);
      res.write(`${line}\n\n${line}x`);
    });
    const client = record(fromEventSource(url));
    await until(() => client.error !== undefined, 'the error', 20_000);
    expect(client.values.map((event) => (event.data as string).length)).toEqual([limit - 6]);
    expect((client.error as Error).message).toBe(`An event is longer than maxEventLength (${limit})`);
  });

  it('keeps the resume point when a reconnected stream dispatches a block without an id', async () => {
    const { url, requests } = await handWritten((_req, res, n) => {
      if (n === 3) return void res.writeHead(204).end();
      res.writeHead(200, eventStream);
      res.end(n === 1 ? 'retry: 1\nid: 7\ndata: first\n\n' : ': hello\n\ndata: second\n\n');
    });
    const client = record(fromEventSource(url));
    await until(() => client.completed || client.error !== undefined, 'completion');
    expect(client.values).toEqual([
      { type: 'message', data: 'first', id: '7' },
      { type: 'message', data: 'second', id: '7' },
    ]);
    expect(requests.map((headers) => headers['last-event-id'])).toEqual([undefined, '7', '7']);
  });

  it('sends no Last-Event-ID after an empty id: resets it, not even the one it started from', async () => {
    const { url, requests } = await handWritten((_req, res, n) => {
      if (n === 3) return void res.writeHead(204).end();
      res.writeHead(200, eventStream);
      // The second stream ends inside a block whose id was never dispatched: it is not the resume point.
      res.end(n === 1 ? 'retry: 1\nid: 5\ndata: a\n\nid:\ndata: b\n\n' : 'data: c\n\nid: 9\ndata: d');
    });
    const client = record(fromEventSource(url, { lastEventId: '4' }));
    await until(() => client.completed || client.error !== undefined, 'completion');
    expect(client.values.map(({ data, id }) => [data, id])).toEqual([
      ['a', '5'],
      ['b', ''],
      ['c', ''],
    ]);
    expect(requests.map((headers) => headers['last-event-id'])).toEqual(['4', undefined, undefined]);
  });

  it('sends no Last-Event-ID of the headers option after an empty id, as EventSource sends none', async () => {
    const { url, requests } = await handWritten((_req, res, n) => {
      if (n === 3) return void res.writeHead(204).end();
      res.writeHead(200, eventStream);
      res.end(n === 1 ? 'retry: 1\nid:\ndata: a\n\n' : 'data: b\n\n');
    });
    const client = record(fromEventSource(url, { headers: { 'Last-Event-ID': 'given' } }));
    await until(() => client.completed || client.error !== undefined, 'completion');
    expect(client.values.map(({ data, id }) => [data, id])).toEqual([
      ['a', ''],
      ['b', ''],
    ]);
    expect(requests.map((headers) => headers['last-event-id'])).toEqual(['given', undefined, undefined]);
  });

  it('sends no Last-Event-ID of the headers option in either resume mode once the stream cleared the id', async () => {
    const urls: string[] = [];
    const { url, requests } = await handWritten((req, res, n) => {
      urls.push(req.url!);
      if (n === 4) return void res.writeHead(204).end();
      res.writeHead(200, eventStream);
      // Stream 2 sets an id the query parameter carries; stream 3 clears it.
      res.end(n === 1 ? 'retry: 1\ndata: a\n\n' : n === 2 ? 'id:  x \ndata: b\n\n' : 'id\ndata: c\n\n');
    });
    const client = record(fromEventSource(url, { headers: { 'Last-Event-ID': 'given' } }));
    await until(() => client.completed || client.error !== undefined, 'completion');
    expect(client.values.map(({ data, id }) => [data, id])).toEqual([
      ['a', ''],
      ['b', ' x '],
      ['c', ''],
    ]);
    // Until the stream sets an id, the one the headers option gives is where it resumes.
    expect(requests.map((headers) => headers['last-event-id'])).toEqual([
      'given',
      'given',
      undefined,
      undefined,
    ]);
    expect(urls.map((path) => new URL(path, url).searchParams.get('lastEventId'))).toEqual([
      null,
      null,
      ' x ',
      null,
    ]);
  });

  it('resumes after an id outside Latin-1, sending it as UTF-8 as browsers do', async () => {
    const { url, requests } = await handWritten((_req, res, n) => {
      if (n === 3) return void res.writeHead(204).end();
      res.writeHead(200, eventStream);
      res.end(n === 1 ? 'retry: 1\nid: 日本-é\ndata: first\n\n' : 'data: second\n\n');
    });
    const client = record(fromEventSource(url));
    await until(() => client.completed || client.error !== undefined, 'completion');
    expect(client.error).toBeUndefined();
    expect(client.values.map((event) => event.id)).toEqual(['日本-é', '日本-é']);
    // Node hands header bytes over as Latin-1: read them back as the UTF-8 they are.
    const sent = requests
      .slice(1)
      .map((headers) => Buffer.from(headers['last-event-id'] as string, 'latin1'));
    expect(sent.map((bytes) => bytes.toString('utf8'))).toEqual(['日本-é', '日本-é']);
  });

  it.each([
    ['a control character', 'a\x01b'],
    ['spaces at its ends', ' x '],
    // Headers would trim it, and the server would resume from "x".
    ['a space at its start only', ' x'],
  ])(
    'resumes after an id with %s in the lastEventId query parameter, which a header would not carry',
    async (_, id) => {
      const urls: string[] = [];
      const { url, requests } = await handWritten((req, res, n) => {
        urls.push(req.url!);
        if (n === 2) return void res.writeHead(204).end();
        res.writeHead(200, eventStream);
        res.end(`retry: 1\nid: ${id}\ndata: first\n\n`);
      });
      const client = record(fromEventSource(`${url}?room=1`));
      await until(() => client.completed || client.error !== undefined, 'completion');
      expect(client.error).toBeUndefined();
      expect(requests[1]!['last-event-id']).toBeUndefined();
      // What an rxsse route reads: the header, else this parameter.
      expect(pickLastEventId(undefined, urls[1])).toBe(id);
      expect(new URL(urls[1]!, url).searchParams.get('room')).toBe('1');
    },
  );

  it('adds the lastEventId query parameter to the query as given, which may be signed, byte for byte', async () => {
    const urls: string[] = [];
    const { url } = await handWritten((req, res, n) => {
      urls.push(req.url!);
      if (n === 3) return void res.writeHead(204).end();
      res.writeHead(200, eventStream);
      res.end(n === 1 ? 'retry: 1\nid:  x \ndata: a\n\n' : 'id: \x01y\ndata: b\n\n');
    });
    // A signature over the query (CloudFront's uses "~") fails on any re-encoding of it.
    const query = '?sig=a~b%2Fc&flag&q=a%20b&lastEventId=old';
    const client = record(fromEventSource(`${url}/sse${query}`));
    await until(() => client.completed || client.error !== undefined, 'completion');
    expect(client.error).toBeUndefined();
    const kept = '/sse?sig=a~b%2Fc&flag&q=a%20b';
    expect(urls).toEqual([`/sse${query}`, `${kept}&lastEventId=+x+`, `${kept}&lastEventId=%01y`]);
  });

  it("sends no lastEventId query parameter of the URL's own after an empty id, as no header of the option's", async () => {
    const urls: string[] = [];
    const { url, requests } = await handWritten((req, res, n) => {
      urls.push(req.url!);
      if (n === 2) return void res.writeHead(204).end();
      res.writeHead(200, eventStream);
      res.end('retry: 1\nid:\ndata: a\n\n');
    });
    const client = record(fromEventSource(`${url}/sse?room=1&lastEventId=old`));
    await until(() => client.completed || client.error !== undefined, 'completion');
    expect(client.error).toBeUndefined();
    // An rxsse route reads the parameter when there is no header: it would resume after "old".
    expect(pickLastEventId(requests[1]!['last-event-id'] as string | undefined, urls[1])).toBeUndefined();
    expect(urls[1]).toBe('/sse?room=1');
  });

  it.each([
    ["the URL's own lastEventId parameter", '/sse?room=1&lastEventId=5', undefined],
    ["the headers option's Last-Event-ID", '/sse?room=1', { 'Last-Event-ID': '5' }],
  ])(
    'ends with an empty lastEventId once the stream cleared the id, and a new subscription given it resumes from no id, not from %s',
    async (_, path, headers) => {
      const urls: string[] = [];
      const { url, requests } = await handWritten((req, res, n) => {
        urls.push(req.url!);
        if (n === 2) return void res.writeHead(204).end();
        res.writeHead(200, eventStream);
        // A type the contract does not declare ends the Observable after the id was cleared.
        res.end('id: 7\ndata: a\n\nid:\ndata: b\n\nevent: tock\ndata: c\n\n');
      });
      const client = record(fromEventSource(`${url}${path}`, { events, headers }));
      await until(() => client.error !== undefined, 'the error');
      expect(client.values.map(({ data, id }) => [data, id])).toEqual([
        ['a', '7'],
        ['b', ''],
      ]);
      expect(client.error).toMatchObject({ name: 'SseEventError', lastEventId: '' });

      // The README's recipe: as a reconnect within the subscription would, it sends no id at all.
      const { lastEventId } = client.error as SseEventError;
      const resumed = record(fromEventSource(`${url}${path}`, { events, headers, lastEventId }));
      await until(() => resumed.completed || resumed.error !== undefined, 'completion');
      expect(requests[1]!['last-event-id']).toBeUndefined();
      expect(urls[1]).toBe('/sse?room=1');
    },
  );

  it("takes an empty lastEventId for an id the stream cleared, null for none: only '' drops the URL's and the headers option's", async () => {
    const urls: string[] = [];
    const { url, requests } = await handWritten((req, res) => {
      urls.push(req.url!);
      res.writeHead(204).end();
    });
    for (const lastEventId of ['', null, undefined]) {
      const client = record(
        fromEventSource(`${url}/sse?room=1&lastEventId=old`, {
          headers: { 'Last-Event-ID': 'old' },
          lastEventId,
        }),
      );
      await until(() => client.completed || client.error !== undefined, 'completion');
    }
    expect(requests.map((headers) => headers['last-event-id'])).toEqual([undefined, 'old', 'old']);
    expect(urls).toEqual(['/sse?room=1', '/sse?room=1&lastEventId=old', '/sse?room=1&lastEventId=old']);
  });

  it('sends no Last-Event-ID of the headers option beside an id it sends in the query parameter', async () => {
    const urls: string[] = [];
    const { url, requests } = await handWritten((req, res, n) => {
      urls.push(req.url!);
      if (n === 2) return void res.writeHead(204).end();
      res.writeHead(200, eventStream);
      res.end('retry: 1\nid:  x \ndata: first\n\n');
    });
    const client = record(fromEventSource(url, { headers: { 'Last-Event-ID': 'stale' } }));
    await until(() => client.completed || client.error !== undefined, 'completion');
    expect(requests[0]!['last-event-id']).toBe('stale');
    // An rxsse route reads the header first: the stale id would win over the one the client has.
    expect(pickLastEventId(requests[1]!['last-event-id'] as string | undefined, urls[1])).toBe(' x ');
  });
});

describe('NestJS @Sse()', () => {
  let app: INestApplication | undefined;
  afterEach(async () => {
    app?.getHttpServer().closeAllConnections();
    await app?.close();
    app = undefined;
  });

  it('delivers typed events and resumes with Last-Event-ID across the end of a stream', async () => {
    // Nest's own MessageEvent: data objects are JSON, as the contract's json() expects.
    class EventsController {
      ticks(req: IncomingMessage): Observable<{ type: string; id: string; data: { n: number } }> {
        const after = Number(req.headers['last-event-id'] ?? 0);
        return range(after + 1, 3).pipe(rxMap((n) => ({ type: 'tick', id: String(n), data: { n } })));
      }
    }
    // Decorators applied as TypeScript's emitted code would (the test transform does not run them).
    Req()(EventsController.prototype, 'ticks', 0);
    const descriptor = Object.getOwnPropertyDescriptor(EventsController.prototype, 'ticks')!;
    Object.defineProperty(
      EventsController.prototype,
      'ticks',
      Sse('ticks')(EventsController.prototype, 'ticks', descriptor) ?? descriptor,
    );
    Controller()(EventsController);
    class AppModule {}
    Module({ controllers: [EventsController] })(AppModule);

    app = await NestFactory.create(AppModule, { logger: false });
    await app.listen(0, '127.0.0.1');
    const { port } = app.getHttpServer().address() as AddressInfo;

    const received = await firstValueFrom(
      fromEventSource(`http://127.0.0.1:${port}/ticks`, { events, retryDelay: 10 }).pipe(take(5), toArray()),
    );
    expect(received).toEqual([1, 2, 3, 4, 5].map((n) => ({ type: 'tick', data: { n }, id: String(n) })));
  });
});
