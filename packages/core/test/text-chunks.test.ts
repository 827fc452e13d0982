import { from, Subject } from 'rxjs';
import { describe, expect, it } from 'vitest';
import { type MessageEvent, resolveStreamOptions, streamEvents } from '../src/index.js';
import { TextSink } from './text-sink.js';

describe('a transport that takes text', () => {
  it("is handed its chunks as text, but a fan-out's chunk as the bytes it shares", async () => {
    const subject = new Subject<MessageEvent>();
    const options = resolveStreamOptions({ heartbeat: false });
    const sinks = [new TextSink(), new TextSink(), new TextSink()];
    for (const sink of sinks) streamEvents(subject, sink, options);
    subject.next({ data: '€ 😀' });
    await Promise.resolve();
    expect(sinks.map((sink) => sink.kinds)).toEqual([['text'], ['bytes'], ['bytes']]);
    expect(sinks[2]!.chunks[0]).toBe(sinks[1]!.chunks[0]);
    expect(sinks.map((sink) => sink.text)).toEqual(Array(3).fill('data: € 😀\n\n'));
  });

  it('has what it is handed counted in UTF-8 bytes, in the stats and metrics', async () => {
    const wrote: number[] = [];
    const sink = new TextSink();
    // 2,000 events of 1,000 UTF-16 units and 2,008 bytes: 66 of them fill a chunk.
    const events = Array.from({ length: 2000 }, (_, i) => ({
      data: '€'.repeat(500) + String(i).padStart(500, 'x'),
    }));
    const stream = streamEvents(from(events), sink, {
      heartbeat: false,
      maxQueueBytes: 8 * 1024 * 1024,
      metrics: {
        opened: () => {},
        wrote: (_events, bytes) => wrote.push(bytes),
        heartbeat: () => {},
        dropped: () => {},
        closed: () => {},
      },
    });
    await Promise.resolve();
    expect(sink.kinds.every((kind) => kind === 'text')).toBe(true);
    expect(sink.text).toBe(events.map(({ data }) => `data: ${data}\n\n`).join(''));
    expect(stream.stats.bytes).toBe(2000 * 2008);
    expect(wrote[0]).toBe(66 * 2008);
    expect(wrote.reduce((sum, bytes) => sum + bytes, 0)).toBe(2000 * 2008);
  });
});
