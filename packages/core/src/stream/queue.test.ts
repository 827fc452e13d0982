import { describe, expect, it } from 'vitest';
import { EventQueue } from './queue.js';

const event = (i: number) => `data: {"n":${i},"msg":"${'x'.repeat(40)}"}\n\n`;

describe('EventQueue', () => {
  it('joins waiting events into few strings, and still counts and returns every event', () => {
    const queue = new EventQueue();
    const texts = Array.from({ length: 5000 }, (_, i) => event(i));
    for (const text of texts) queue.add(text);
    expect(queue.length).toBe(5000);
    expect(queue.units).toBe(texts.join('').length);
    expect(queue.bytes()).toBe(texts.join('').length);
    expect(queue.take()).toBe(texts.join(''));
    expect(queue.length).toBe(0);
  });

  it('counts the events it drops when cleared after merging', () => {
    const queue = new EventQueue();
    for (let i = 0; i < 3000; i++) queue.add(event(i));
    expect(queue.clear()).toBe(3000);
  });

  it('keeps events apart for drop-oldest, which drops them one by one', () => {
    const queue = new EventQueue(false);
    const texts = Array.from({ length: 3000 }, (_, i) => event(i));
    for (const text of texts) queue.add(text);
    // Room for the last 10 events: the others are dropped, oldest first, and counted one by one.
    expect(queue.dropOldest(texts.slice(2990).join('').length)).toBe(2990);
    expect(queue.length).toBe(10);
    expect(queue.take()).toBe(texts.slice(2990).join(''));
  });

  it('stops merging once sizes are measured, so each measured size stays one string', () => {
    const queue = new EventQueue();
    const texts = Array.from({ length: 3000 }, (_, i) => event(i));
    queue.add(texts[0]!);
    const first = queue.bytes();
    for (const text of texts.slice(1)) queue.add(text, text.length);
    expect(first).toBe(texts[0]!.length);
    expect(queue.bytes()).toBe(texts.join('').length);
    expect(queue.length).toBe(3000);
    expect(queue.take()).toBe(texts.join(''));
  });
});
