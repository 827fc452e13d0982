import {
  type MessageEvent,
  resolveStreamOptions,
  type StreamOptions,
  type TypedMessageEvent,
} from '@rxsse/core';
import { createChannel, memoryEngine } from '@rxsse/core/channel';
import { interval, map, type Observable, of } from 'rxjs';
import { describe, expect, expectTypeOf, it } from 'vitest';
import { sse } from '../src/index.js';

describe('typed routes', () => {
  it('accepts a source typed by its event map, and rejects wrong events', () => {
    type Events = { tick: { n: number }; message: string };
    const events$: Observable<TypedMessageEvent<Events>> = interval(1000).pipe(
      map((n) => ({ type: 'tick' as const, data: { n } })),
    );
    expectTypeOf(sse(() => events$)).toBeFunction();
    // @ts-expect-error: a tick carries { n: number }, not a string
    const wrong: Observable<TypedMessageEvent<Events>> = interval(1000).pipe(
      map(() => ({ type: 'tick', data: 'x' })),
    );
    expectTypeOf(wrong).not.toBeAny();
  });

  it('takes a handler that returns one of two sources of other message shapes, and still checks each', () => {
    const chat = createChannel(memoryEngine(), 'chat');
    const route = sse(async (req, context) =>
      req.query.guest ? of({ data: 'sign in to chat' }) : chat.subscribe(context),
    );
    expectTypeOf(route).toBeFunction();
    expectTypeOf(
      sse(() => (Math.random() > 0.5 ? of({ data: 'x' }) : of({ data: { n: 1 }, id: '1' }))),
    ).toBeFunction();
    // @ts-expect-error: an event without data
    sse(() => (Math.random() > 0.5 ? of({ data: 'x' }) : of({ id: '1' })));
    // @ts-expect-error: retry is a number of ms
    sse(() => of({ data: 'x', retry: '1000' }));
    // @ts-expect-error: a typed route's events are checked against its map
    sse<TypedMessageEvent<{ tick: { n: number } }>>(() => of({ type: 'tick', data: 'x' }));
  });
});

describe('options and messages with fields left undefined (the repo checks under exactOptionalPropertyTypes)', () => {
  it('takes each, and an option left undefined keeps its default', () => {
    const config: { heartbeat?: number; id?: string } = {};
    const options: StreamOptions = {
      heartbeat: config.heartbeat,
      maxQueueBytes: undefined,
      onClose: undefined,
    };
    const message: MessageEvent = { data: 'x', id: config.id, type: undefined, retry: undefined };
    expect(resolveStreamOptions(options)).toMatchObject({ heartbeat: 15_000, maxQueueBytes: 1024 * 1024 });
    expectTypeOf(sse(() => of(message), options)).toBeFunction();
  });
});
