// The event contract: what the server encodes is what the client decodes, and nothing else passes.
// The type tests run under tsc (npx -y pnpm@10.34.8 run lint).
import { formatEvent, type TypedMessageEvent } from '@rxsse/core';
import { sse } from '@rxsse/express';
import { interval, map, type Observable } from 'rxjs';
import { describe, expect, expectTypeOf, it } from 'vitest';
import { interpret } from '../../../test/wire/oracle.js';
import {
  defineEvents,
  type EventOf,
  type EventSourceOptions,
  type EventsOf,
  fromEventSource,
  type HistoryTruncated,
  type HistoryTruncatedData,
  json,
  type SseEvent,
  SseEventError,
  text,
} from '../src/index.js';

const events = defineEvents({ tick: json<{ n: number }>(), message: text, quote: json<string>() });

describe('defineEvents', () => {
  it('encodes JSON types with JSON.stringify (strings too) and sends text as it is', () => {
    expect(events.encode({ type: 'tick', data: { n: 1 }, id: '7', retry: 10 })).toEqual({
      type: 'tick',
      data: '{"n":1}',
      id: '7',
      retry: 10,
    });
    expect(events.encode({ type: 'quote', data: 'say "hi"' })).toEqual({
      type: 'quote',
      data: '"say \\"hi\\""',
    });
    expect(events.encode({ data: '{"n":1}' })).toEqual({ data: '{"n":1}' });
    // An empty type is the default type, as on the wire.
    expect(events.encode({ type: '', data: 'plain' })).toEqual({ type: '', data: 'plain' });
  });

  it('round-trips every declared type through the encoder and the spec algorithm', () => {
    const messages = [
      { type: 'tick' as const, data: { n: -0.5 } },
      { type: 'quote' as const, data: 'line\nbreak \u2028 and "quotes"' },
      { type: 'message' as const, data: 'plain\ntext' },
    ];
    const wire = messages.map((message) => formatEvent(events.encode(message))).join('');
    const decoded = interpret(wire).events.map(({ type, data }) => ({
      type,
      data: events.decode(type, data),
    }));
    expect(decoded).toEqual(messages);
  });

  it('refuses what the contract does not declare, on both sides, with SseEventError', () => {
    const loose = events as unknown as { encode(message: unknown): unknown };
    expect(() => loose.encode({ type: 'tock', data: 1 })).toThrow(SseEventError);
    expect(() => loose.encode({ type: 'message', data: { not: 'text' } })).toThrow(/cannot send object/);
    expect(() => loose.encode({ type: 'tick', data: undefined })).toThrow(/cannot send undefined/);
    expect(() => events.decode('tock', '1')).toThrow(/"tock" is not declared by the contract/);
    expect(() => events.decode('constructor', '1')).toThrow(SseEventError);
    expect(() => events.decode('tick', '{"n":')).toThrow(/"tick" has data that is not JSON/);
  });

  it('refuses a spec whose type is not json() or text when it is defined, naming the type', () => {
    const define = (spec: unknown) => () => defineEvents(spec as Parameters<typeof defineEvents>[0]);
    // json without its call would declare nothing: every tick would be "not declared" later.
    expect(define({ tick: json })).toThrow(
      new TypeError('Event "tick" must be json() or text, got a function'),
    );
    expect(define({ tick: 'json' })).toThrow(
      new TypeError('Event "tick" must be json() or text, got "json"'),
    );
    expect(define({ message: text, tick: null })).toThrow(
      /^Event "tick" must be json\(\) or text, got null$/,
    );
    expect(define({ tick: { format: 'xml' } })).toThrow(TypeError);
    expect(define(null)).toThrow(new TypeError('defineEvents takes an object of event types, got null'));
    expect(define([json()])).toThrow(/^defineEvents takes an object of event types, got an array$/);
    expect(define({})).not.toThrow();
  });

  it('refuses a message that is not an object with SseEventError, as any other it cannot encode', () => {
    const loose = events as unknown as { encode(message: unknown): unknown };
    for (const message of [null, undefined]) {
      expect(() => loose.encode(message)).toThrow(SseEventError);
      expect(() => loose.encode(message)).toThrow(`An event is not a message, got ${message}`);
    }
    expect(() => loose.encode('hi')).toThrow('An event is not a message, got "hi"');
  });

  it('refuses data JSON.stringify throws on with SseEventError, its error as the cause', () => {
    const loose = events as unknown as { encode(message: unknown): unknown };
    const circular: Record<string, unknown> = {};
    circular.self = circular;
    for (const data of [{ n: 1n }, circular]) {
      let error: unknown;
      try {
        loose.encode({ type: 'tick', data });
      } catch (thrown) {
        error = thrown;
      }
      expect(error).toMatchObject({ name: 'SseEventError', eventType: 'tick' });
      expect((error as Error).cause).toBeInstanceOf(TypeError);
    }
  });

  it("keeps JSON.parse's error as the cause of a decoding error", () => {
    let error: unknown;
    try {
      events.decode('tick', '{"n":');
    } catch (thrown) {
      error = thrown;
    }
    expect(error).toMatchObject({
      name: 'SseEventError',
      eventType: 'tick',
      reason: 'has data that is not JSON',
    });
    expect((error as Error).cause).toBeInstanceOf(SyntaxError);
  });

  it('types routes and clients from one declaration', () => {
    type Events = EventsOf<typeof events>;
    expectTypeOf<Events>().toEqualTypeOf<{ tick: { n: number }; message: string; quote: string }>();

    // Server: core's TypedMessageEvent, encoded by the contract, is a route's source.
    const ticks$: Observable<TypedMessageEvent<Events>> = interval(1000).pipe(
      map((n) => ({ type: 'tick' as const, data: { n } })),
    );
    expectTypeOf(sse(() => ticks$.pipe(map(events.encode)))).toBeFunction();
    // @ts-expect-error: a tick carries { n: number }
    events.encode({ type: 'tick', data: 'x' });

    // Client: events narrow by type. (Type-checked only: never subscribed.)
    const client = (event: EventOf<Events>) => {
      if (event.type === 'tick') expectTypeOf(event.data).toEqualTypeOf<{ n: number }>();
      if (event.type === 'history-truncated') expectTypeOf(event.data).toEqualTypeOf<HistoryTruncatedData>();
      // @ts-expect-error: the contract has no such type
      if (event.type === 'tock') return;
      expectTypeOf(event.id).toBeString();
    };
    expectTypeOf(fromEventSource('/sse', { events })).toEqualTypeOf<Observable<EventOf<Events>>>();
    expectTypeOf(client).toBeFunction();
    // Without a contract, data is text (and rxsse's own truncation notice).
    expectTypeOf(fromEventSource('/sse')).toEqualTypeOf<Observable<SseEvent | HistoryTruncated>>();
    // Options typed on their own, their contract optional, are taken as they are.
    const typed: EventSourceOptions<Events> = { events, retryDelay: 1000 };
    expectTypeOf(fromEventSource('/sse', typed)).toEqualTypeOf<
      Observable<EventOf<Events> | SseEvent | HistoryTruncated>
    >();
  });

  it('takes an event map written as an interface, as one written as a type', () => {
    interface Events {
      tick: { n: number };
      message: string;
    }
    const tick: TypedMessageEvent<Events> = { type: 'tick', data: { n: 1 }, id: undefined };
    // @ts-expect-error: a tick carries { n: number }
    const wrong: TypedMessageEvent<Events> = { type: 'tick', data: 'x' };
    const client = (event: EventOf<Events>) => {
      if (event.type === 'tick') expectTypeOf(event.data).toEqualTypeOf<{ n: number }>();
    };
    expectTypeOf(client).toBeFunction();
    expect([tick, wrong].map((message) => message.type)).toEqual(['tick', 'tick']);
  });
});
