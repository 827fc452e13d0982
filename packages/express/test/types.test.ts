import type { TypedMessageEvent } from '@rxsse/core';
import { interval, map, type Observable } from 'rxjs';
import { describe, expectTypeOf, it } from 'vitest';
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
