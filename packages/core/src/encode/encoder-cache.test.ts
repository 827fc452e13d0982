import { afterEach, describe, expect, it, vi } from 'vitest';
import { cachedFormatter, joinTexts } from './encoder-cache.js';

describe('joinTexts', () => {
  afterEach(() => {
    vi.restoreAllMocks();
  });

  it('joins the same strings in the same order once', () => {
    const texts = ['data: 1\n\n', 'data: 2\n\n', 'data: €\n\n'];
    const join = vi.spyOn(Array.prototype, 'join');
    expect(joinTexts(texts, 0, 3)).toBe(texts.join(''));
    const joins = join.mock.calls.length;
    expect(joinTexts([...texts], 0, 3)).toBe(texts.join(''));
    expect(join.mock.calls.length).toBe(joins + 1);
  });

  it('joins another order or another range anew', () => {
    const texts = ['data: a\n\n', 'data: b\n\n', 'data: c\n\n'];
    expect(joinTexts(texts, 0, 3)).toBe('data: a\n\ndata: b\n\ndata: c\n\n');
    expect(joinTexts([...texts].reverse(), 0, 3)).toBe('data: c\n\ndata: b\n\ndata: a\n\n');
    expect(joinTexts(texts, 1, 3)).toBe('data: b\n\ndata: c\n\n');
    expect(joinTexts(texts, 0, 1)).toBe('data: a\n\n');
  });

  it('joins a range of the same length at another start anew', () => {
    const texts = ['data: a\n\n', 'data: b\n\n', 'data: c\n\n'];
    expect(joinTexts(texts, 0, 2)).toBe('data: a\n\ndata: b\n\n');
    expect(joinTexts(texts, 1, 3)).toBe('data: b\n\ndata: c\n\n');
  });
});

describe('cachedFormatter', () => {
  it('forgets its entry at the next microtask: data changed in place since is formatted anew', async () => {
    const format = cachedFormatter({});
    const data = { n: 1 };
    const message = { data };
    expect(format(message, { formatted: 0 })).toBe('data: {"n":1}\n\n');
    // Same message, same data object, same field values: only the tick tells the contents changed.
    data.n = 2;
    await Promise.resolve();
    expect(format(message, { formatted: 0 })).toBe('data: {"n":2}\n\n');
  });
});
