/**
 * The route's encoding cache is invisible: connections of routes with different encoder options
 * share one Subject, which emits hostile messages and a pooled message changed in place between
 * emissions of one tick, and every connection receives exactly what the encoder wrote for each
 * message as it was when emitted, as the oracle and eventsource-parser read it.
 */
import fc from 'fast-check';
import { Subject } from 'rxjs';
import { describe, expect, it } from 'vitest';
import { formatOptions, type Message, message } from '../../../test/wire/arbitraries.js';
import { interpret } from '../../../test/wire/oracle.js';
import { decodeChunks, parseWithLibrary } from '../../../test/wire/parsers.js';
import { formatEvent } from '../src/encode/format.js';
import type { FormatOptions } from '../src/encode/types.js';
import { resolveStreamOptions, streamEvents } from '../src/index.js';
import { MemorySink } from '../src/testing/index.js';
import { TextSink } from './text-sink.js';

/** A message of the test's own, changed in place and emitted again. */
type Change = 'data inside' | 'data' | 'id' | 'nothing';

const action = fc.oneof(
  { weight: 3, arbitrary: message.map((value) => ({ message: value })) },
  {
    weight: 2,
    arbitrary: fc.constantFrom<Change>('data inside', 'data', 'id', 'nothing').map((change) => ({ change })),
  },
);

/** What the encoder writes for `candidate` now, or '' when it refuses it. */
function frameOf(candidate: Message, options: FormatOptions): string {
  try {
    return formatEvent(candidate, options);
  } catch {
    return '';
  }
}

describe('the encoding cache', () => {
  it('sends every connection each message as it was when emitted, whatever the options', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.array(action, { maxLength: 8 }), { minLength: 1, maxLength: 4 }),
        formatOptions,
        formatOptions,
        async (ticks, first, second) => {
          const subject = new Subject<Message>();
          const shared = resolveStreamOptions({ ...first, heartbeat: false, onError: () => {} });
          const other = resolveStreamOptions({ ...second, heartbeat: false, onError: () => {} });
          const routes = [shared, shared, other];
          // Text where the transport takes it, bytes where they are shared: every way a chunk goes.
          const sinks = routes.map((options, i) => {
            const sink = i === 1 ? new MemorySink() : new TextSink();
            streamEvents(subject, sink, options);
            return sink;
          });
          const wanted = routes.map(() => '');
          const pooled = { data: { n: 0 } as unknown, id: '0' };
          let n = 0;
          for (const tick of ticks) {
            for (const step of tick) {
              let emitted: Message = pooled;
              if ('message' in step) emitted = step.message;
              else if (step.change === 'data inside') (pooled.data as { n: number }).n = ++n;
              else if (step.change === 'data') pooled.data = { n: ++n };
              else if (step.change === 'id') pooled.id = String(++n);
              routes.forEach((options, i) => {
                wanted[i] += frameOf(emitted, options);
              });
              subject.next(emitted);
            }
            await new Promise((resolve) => setImmediate(resolve));
          }
          subject.complete();
          sinks.forEach((sink, i) => {
            expect(sink.text).toBe(wanted[i]);
            const want = interpret(wanted[i]!).events;
            expect(interpret(Buffer.concat(sink.chunks)).events).toEqual(want);
            expect(parseWithLibrary(decodeChunks(sink.chunks)).events).toEqual(want);
          });
        },
      ),
      { numRuns: 500 },
    );
  });
});
