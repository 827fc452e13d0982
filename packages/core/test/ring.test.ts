import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { gc } from '../../../test/support/gc.js';
import { HistoryRing, messageSize } from '../src/channel/index.js';
import { utf8Length } from '../src/index.js';

const all = { count: 1_000_000, bytes: 1 << 30 };

describe('HistoryRing', () => {
  it('keeps the newest events within the count cap', () => {
    const ring = new HistoryRing({ maxEvents: 3, maxBytes: 1 << 20 }, () => 1000);
    const ids = Array.from({ length: 5 }, (_, i) => ring.append({ data: `e${i}` }).id);
    expect(ids).toEqual(['1000-0', '1000-1', '1000-2', '1000-3', '1000-4']);
    expect(ring.size).toBe(3);
    expect(ring.read(ids[0]!, all).truncated).toBe(true);
    // The newest evicted id is where a reader that missed nothing kept would stop.
    expect(ring.read(ids[1]!, all).events.map((e) => e.data)).toEqual(['e2', 'e3', 'e4']);
  });

  it('keeps events that fill the byte cap exactly', () => {
    const ring = new HistoryRing({ maxEvents: 100, maxBytes: 26 }, () => 7);
    ring.append({ data: 'x'.repeat(10) }); // 10 + '7-0' = 13 bytes
    ring.append({ data: 'y'.repeat(10) });
    expect(ring.bytes).toBe(26);
    expect(ring.size).toBe(2);
  });

  it('keeps the newest events within the byte cap, and always the newest one', () => {
    const ring = new HistoryRing({ maxEvents: 100, maxBytes: 30 }, () => 7);
    const a = ring.append({ data: 'x'.repeat(10) }); // 10 + '7-0' = 13 bytes
    ring.append({ data: 'y'.repeat(10) });
    expect(ring.bytes).toBe(26);
    ring.append({ data: 'z'.repeat(10) });
    expect(ring.size).toBe(2);
    expect(ring.bytes).toBe(26);
    expect(ring.read(a.id, all).events.map((e) => e.data)).toEqual(['y'.repeat(10), 'z'.repeat(10)]);
    const big = ring.append({ data: 'b'.repeat(100) });
    expect(ring.size).toBe(1);
    expect(ring.bytes).toBe(messageSize(big));
  });

  it('hands out the stored object itself, with the id added once', () => {
    const ring = new HistoryRing({ maxEvents: 10, maxBytes: 1000 });
    const message = { data: { n: 1 }, type: 't' };
    const stored = ring.append(message);
    expect(stored).not.toBe(message);
    expect(stored).toEqual({ ...message, id: stored.id });
    const first = ring.append({ data: 'x' });
    ring.append({ data: 'y' });
    expect(ring.read(stored.id, all).events[0]).toBe(first);
  });

  it("hands out a message with its own id and no other field itself, and else a copy of the event's fields", () => {
    const ring = new HistoryRing({ maxEvents: 10, maxBytes: 1000 }, () => 1);
    // No copy where none is needed: an own id in its plain form, and the event's fields alone.
    const plain = { id: '1-1', data: 'plain', type: 't', retry: 5 };
    expect(ring.append(plain)).toBe(plain);
    // A field beyond them is not stored, as Redis stores none: whatever engine, a filter sees the same.
    const extra = { id: '1-2', data: 'extra', userId: 7 };
    const stored = ring.append(extra);
    expect(stored).not.toBe(extra);
    expect(stored).toEqual({ id: '1-2', data: 'extra' });
    expect(ring.append({ data: 'new', room: 'a' } as { data: string })).toEqual({ id: '1-3', data: 'new' });
    expect(ring.read('1-1', all).events).toEqual([stored, { id: '1-3', data: 'new' }]);
    expect(ring.bytes).toBe(['plain1-1t', 'extra1-2', 'new1-3'].join('').length);
  });

  it('refuses data that cannot be serialized without spending an id', () => {
    const ring = new HistoryRing({ maxEvents: 10, maxBytes: 1000 }, () => 1);
    expect(() => ring.append({ data: { n: 1n } })).toThrow(TypeError);
    expect(ring.append({ data: 'ok' }).id).toBe('1-0');
  });

  it('refuses data that has no JSON with a TypeError that says so, without spending an id', () => {
    const ring = new HistoryRing({ maxEvents: 10, maxBytes: 1000 }, () => 1);
    for (const data of [undefined, () => 1, Symbol('s')])
      expect(() => ring.append({ data }), String(data)).toThrow(
        new TypeError('Channel data must be a string or JSON-serializable'),
      );
    expect(ring.append({ data: 'ok' }).id).toBe('1-0');
  });

  it('takes the next millisecond after the largest sequence, as XADD * does, and refuses past the largest id', () => {
    // An id past 64 bits would be stored, and fail every subscriber it is replayed or sent to.
    const ring = new HistoryRing({ maxEvents: 10, maxBytes: 1000 }, () => 5);
    const own = ring.append({ id: '5-18446744073709551615', data: 'own' });
    expect(ring.append({ data: 'next' }).id).toBe('6-0');
    expect(ring.read(own.id, all).events.map((e) => e.id)).toEqual(['6-0']);
    const largest = '18446744073709551615-18446744073709551615';
    const full = new HistoryRing({ maxEvents: 10, maxBytes: 1000 }, () => 5);
    full.append({ id: largest, data: 'last' });
    expect(() => full.append({ data: 'past it' })).toThrow(RangeError);
    expect(full.size).toBe(1);
    expect(full.read(largest, all)).toEqual({ events: [], bytes: 0, truncated: false, more: false });
  });

  it('lets go of an evicted event at once: the byte cap bounds the memory a topic holds', async () => {
    const ring = new HistoryRing({ maxEvents: 1000, maxBytes: 1 << 20 }, () => 1);
    // Four events of 256 KiB (the channel's largest) fill the cap: each one more evicts one.
    const evicted: WeakRef<object>[] = [];
    for (let i = 0; i < 8; i++) evicted.push(new WeakRef(ring.append({ data: 'x'.repeat(262_000) + i })));
    expect(ring.size).toBe(4);
    // A WeakRef keeps its target until the job that made it ends.
    await new Promise((resolve) => setTimeout(resolve, 0));
    gc();
    expect(evicted.map((ref) => ref.deref() !== undefined)).toEqual([
      ...Array(4).fill(false),
      ...Array(4).fill(true),
    ]);
  });

  it('finds every kept id across evictions and compactions', () => {
    let now = 0;
    const ring = new HistoryRing({ maxEvents: 50, maxBytes: 1 << 20 }, () => Math.floor(now++ / 3));
    const ids: string[] = [];
    for (let i = 0; i < 1000; i++) ids.push(ring.append({ data: String(i) }).id);
    for (let i = 950; i < 999; i++) {
      const page = ring.read(ids[i]!, { count: 2, bytes: 1000 });
      expect(page.events.map((e) => e.data)).toEqual(
        [String(i + 1), String(i + 2)].filter((d) => d !== '1000'),
      );
      expect(page.more).toBe(i < 997);
    }
    expect(ring.read(ids[948]!, all).truncated).toBe(true);
  });
});

describe('utf8Length', () => {
  it('counts the bytes TextEncoder writes, lone surrogates included', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary' }), (text) => {
        expect(utf8Length(text)).toBe(new TextEncoder().encode(text).length);
      }),
    );
    expect(utf8Length('\ud800')).toBe(3);
    expect(utf8Length('😀')).toBe(4);
  });
});
