import { describe, expect, it } from 'vitest';
import { EventQueue } from './queue.js';

const event = (i: number) => `data: {"n":${i},"msg":"${'x'.repeat(40)}"}\n\n`;

/** How many of `texts` the first chunk holds: events until they reach 64 Ki UTF-16 units. */
function firstChunk(texts: string[]): number {
  let units = 0;
  let count = 0;
  while (units < 64 * 1024) units += texts[count++]!.length;
  return count;
}

/** Takes every chunk: each but the last holds at least 64 Ki UTF-16 units, none an event more. */
function takeAll(queue: EventQueue): { text: string; sizes: number[] } {
  const sizes: number[] = [];
  let text = '';
  while (queue.length > 0) {
    const before = queue.length;
    const chunk = queue.take();
    expect(queue.length).toBeLessThan(before);
    sizes.push(chunk.length);
    text += chunk;
  }
  for (const size of sizes.slice(0, -1)) expect(size).toBeGreaterThanOrEqual(64 * 1024);
  for (const size of sizes) expect(size).toBeLessThan(64 * 1024 + 1100);
  return { text, sizes };
}

describe('EventQueue', () => {
  it('puts a text before the oldest and drops the oldest one, counted in exact bytes, also once compacted', () => {
    const queue = new EventQueue(false);
    // Of 9 to 15 bytes: a size counted for another text than its own would show.
    const text = (i: number) => `data: ${'x'.repeat(i % 7)}${i % 10}\n\n`;
    const sum = (from: number, to: number) => {
      let bytes = 0;
      for (let i = from; i < to; i++) bytes += text(i).length;
      return bytes;
    };
    for (let i = 0; i < 3000; i++) queue.add(text(i));
    // Past 1,024 dropped, and half, the arrays are compacted: nothing is left before the oldest.
    expect(queue.dropOldest(sum(1600, 3000))).toBe(1600);
    expect([queue.length, queue.size, queue.bytes()]).toEqual([1400, sum(1600, 3000), sum(1600, 3000)]);
    queue.addFirst('data: é\n\n', 10);
    queue.dropFirst();
    queue.dropFirst();
    // Now where the dropped ones were.
    queue.addFirst('data: €\n\n', 11);
    expect(queue.length).toBe(1400);
    expect(queue.bytes()).toBe(11 + sum(1601, 3000));
    queue.dropFirst();
    queue.dropFirst();
    expect(queue.bytes()).toBe(sum(1602, 3000));
    expect(queue.take().startsWith(`${text(1602)}${text(1603)}`)).toBe(true);
  });

  it('puts a text before the oldest of a queue that dropped none yet, and hands both out in order', () => {
    const queue = new EventQueue(false);
    for (const text of ['data: 1\n\n', 'data: 2\n\n']) queue.add(text);
    queue.addFirst('data: é\n\n', 10);
    expect(queue.length).toBe(3);
    expect(queue.bytes()).toBe(10 + 2 * 9);
    expect(queue.take()).toBe('data: é\n\ndata: 1\n\ndata: 2\n\n');
    expect(queue.length).toBe(0);
  });

  it('holds nothing once cleared: no event, no unit, no byte', () => {
    const queue = new EventQueue();
    for (let i = 0; i < 2000; i++) queue.add(event(i));
    expect(queue.clear()).toBe(2000);
    expect([queue.length, queue.size, queue.bytes()]).toEqual([0, 0, 0]);
  });

  it('joins waiting events into chunks of about 64 KiB, and still counts and returns every event', () => {
    const queue = new EventQueue();
    const texts = Array.from({ length: 5000 }, (_, i) => event(i));
    for (const text of texts) queue.add(text);
    expect(queue.length).toBe(5000);
    expect(queue.size).toBe(texts.join('').length);
    expect(queue.bytes()).toBe(texts.join('').length);
    const { text, sizes } = takeAll(queue);
    expect(text).toBe(texts.join(''));
    expect(sizes.length).toBe(Math.ceil(texts.join('').length / (64 * 1024)));
    expect(queue.size).toBe(0);
    expect(queue.bytes()).toBe(0);
  });

  it('takes one chunk at a time, and counts what remains exactly', () => {
    const queue = new EventQueue();
    const texts = Array.from({ length: 5000 }, (_, i) => event(i));
    for (const text of texts) queue.add(text);
    const total = queue.bytes();
    const first = queue.take();
    expect(queue.bytes()).toBe(total - first.length);
    expect(queue.length).toBe(5000 - firstChunk(texts));
  });

  it('measures joined chunks in UTF-8 bytes, whatever the text', () => {
    const queue = new EventQueue();
    // 1,024 UTF-16 units and 3,056 bytes each: 64 of them are joined into one chunk.
    const texts = Array.from({ length: 64 }, () => `data: ${'€'.repeat(1016)}\n\n`);
    for (const text of texts) queue.add(text);
    const bytes = 64 * 3056;
    expect(queue.size).toBe(bytes);
    expect(queue.bytes()).toBe(bytes);
    // A joined chunk counts exactly, not as 3 bytes a unit: a next event of 9 units may take
    // the queue past a cap only within 27 bytes of it.
    expect(queue.mayPass('data: 1\n\n', bytes + 27)).toBe(false);
    expect(queue.mayPass('data: 1\n\n', bytes + 26)).toBe(true);
    expect(takeAll(queue).text).toBe(texts.join(''));
  });

  it('counts the events it drops when cleared after merging', () => {
    const queue = new EventQueue();
    for (let i = 0; i < 3000; i++) queue.add(event(i));
    expect(queue.clear()).toBe(3000);
    expect(queue.length).toBe(0);
    expect(queue.bytes()).toBe(0);
  });

  it('keeps events apart for drop-oldest, which drops them one by one', () => {
    const queue = new EventQueue(false);
    const texts = Array.from({ length: 3000 }, (_, i) => event(i));
    for (const text of texts) queue.add(text);
    // Room for the last 10 events: the others are dropped, oldest first, and counted one by one.
    expect(queue.dropOldest(texts.slice(2990).join('').length)).toBe(2990);
    expect(queue.length).toBe(10);
    expect(queue.take()).toBe(texts.slice(2990).join(''));
    expect(queue.length).toBe(0);
  });

  it('hands out events kept apart in chunks of about 64 KiB too, and counts what remains', () => {
    const queue = new EventQueue(false);
    const texts = Array.from({ length: 5000 }, (_, i) => event(i));
    queue.bytes();
    for (const text of texts) queue.add(text, text.length);
    const first = queue.take();
    expect(queue.bytes()).toBe(texts.join('').length - first.length);
    const remaining = queue.length;
    expect(remaining).toBe(5000 - firstChunk(texts));
    expect(queue.dropOldest(0)).toBe(remaining);
    expect(queue.length).toBe(0);
    for (const text of texts) queue.add(text);
    expect(takeAll(queue).text).toBe(texts.join(''));
  });

  it('ends a chunk of events kept apart at the one that reaches 64 Ki units, not one later', () => {
    const queue = new EventQueue(false);
    // 1,024 units each: the 64th reaches 64 Ki exactly.
    for (let i = 0; i < 67; i++) queue.add(`data: ${'x'.repeat(1016)}\n\n`);
    expect(queue.take()).toHaveLength(64 * 1024);
    expect(queue.length).toBe(3);
  });

  it('keeps joining after sizes are measured, and counts exact sizes throughout', () => {
    const queue = new EventQueue();
    const texts = Array.from({ length: 3000 }, (_, i) => event(i));
    queue.add(texts[0]!);
    const first = queue.bytes();
    for (const text of texts.slice(1)) {
      queue.bytes();
      queue.add(text, text.length);
    }
    expect(first).toBe(texts[0]!.length);
    expect(queue.bytes()).toBe(texts.join('').length);
    expect(queue.length).toBe(3000);
    expect(takeAll(queue).text).toBe(texts.join(''));
  });

  it('takes two measured texts in a row, the first of which filled a chunk (a gap event, then its event)', () => {
    const queue = new EventQueue();
    const gap = `data: ${'g'.repeat(64 * 1024)}\n\n`;
    const text = event(1);
    queue.bytes();
    queue.add(gap, gap.length);
    queue.add(text, text.length);
    expect(queue.length).toBe(2);
    expect(queue.bytes()).toBe(gap.length + text.length);
    expect(takeAll(queue).text).toBe(gap + text);
  });
});
