import {
  type MessageEvent,
  resolveStreamOptions,
  type StreamOptions,
  type TypedMessageEvent,
} from '@rxsse/core';
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
