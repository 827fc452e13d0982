import 'reflect-metadata';
import { once } from 'node:events';
import { connect, type IncomingHttpHeaders } from 'node:http2';
import { Controller, Module } from '@nestjs/common';
import { FastifyAdapter } from '@nestjs/platform-fastify';
import { Test } from '@nestjs/testing';
import { createParser } from 'eventsource-parser';
import { concat, from, interval, map, NEVER, take } from 'rxjs';
import { describe, expect, it } from 'vitest';
import { waitFor } from '../../../test/support/clients.js';
import { LastEventId, RxSse, RxsseModule } from '../src/index.js';
import { nestMajor } from './harness.js';

@Controller()
class EventsController {
  @RxSse('sse')
  sse(@LastEventId() _lastEventId: string | undefined) {
    return interval(10).pipe(map(() => ({ data: { hello: 'world' } })));
  }

  @RxSse('three')
  three() {
    return concat(
      from([1, 2, 3]).pipe(
        take(3),
        map((n) => ({ id: String(n), data: String(n) })),
      ),
      NEVER,
    );
  }
}

@Module({ imports: [RxsseModule.forRoot()], controllers: [EventsController] })
class AppModule {}

describe(`nestjs ${nestMajor}: the README's testing recipe`, () => {
  it('reads an @RxSse route of a Test.createTestingModule app with a real client', async () => {
    // As in the package README.
    const moduleRef = await Test.createTestingModule({ imports: [AppModule] }).compile();
    const app = moduleRef.createNestApplication({ logger: false });
    await app.listen(0, '127.0.0.1');
    const response = await fetch(`${await app.getUrl()}/sse`);
    const events: string[] = [];
    const parser = createParser({ onEvent: (event) => events.push(event.data) });
    const reader = (response.body as ReadableStream<Uint8Array>)
      .pipeThrough(new TextDecoderStream() as ReadableWritablePair<string, Uint8Array>)
      .getReader();
    while (events.length < 2) parser.feed((await reader.read()).value as string);
    await reader.cancel();
    await app.close();
    expect(events.slice(0, 2)).toEqual(['{"hello":"world"}', '{"hello":"world"}']);
  });
});

describe(`nestjs ${nestMajor} on fastify over HTTP/2 (h2c)`, () => {
  it('sends the event-stream headers without Connection, and the events, and closes', async () => {
    const moduleRef = await Test.createTestingModule({ imports: [AppModule] }).compile();
    const app = moduleRef.createNestApplication(new FastifyAdapter({ http2: true } as never), {
      logger: false,
    });
    await app.listen(0, '127.0.0.1');
    const session = connect((await app.getUrl()).replace('[::1]', '127.0.0.1'));
    try {
      const stream = session.request({ ':path': '/three' });
      stream.setEncoding('utf8');
      const [headers] = (await once(stream, 'response')) as [IncomingHttpHeaders];
      let body = '';
      stream.on('data', (chunk: string) => {
        body += chunk;
      });
      await waitFor(() => body.includes('data: 3\n\n'), 5000, 'the events');
      // The app closes with the stream open: it ends the stream and the session.
      await Promise.all([app.close(), once(stream, 'end')]);
      expect(headers[':status']).toBe(200);
      expect(headers['content-type']).toBe('text/event-stream');
      expect(headers.connection).toBeUndefined();
      expect(body).toBe('id: 1\ndata: 1\n\nid: 2\ndata: 2\n\nid: 3\ndata: 3\n\n');
    } finally {
      session.close();
    }
  });
});
