import { describe, expect, it } from 'vitest';
import { formatComment, formatEvent, formatRetry } from './format.js';

describe('formatEvent', () => {
  it('writes type, id, retry, then one data line per line', () => {
    expect(formatEvent({ data: 'a\nb', id: '1', type: 'tick', retry: 10 })).toBe(
      'event: tick\nid: 1\nretry: 10\ndata: a\ndata: b\n\n',
    );
  });
  it('serializes objects as JSON', () => {
    expect(formatEvent({ data: { hello: 'world' } })).toBe('data: {"hello":"world"}\n\n');
  });
  it('checks what a replaced JSON.stringify writes, as it checks any serializer', () => {
    const native = JSON.stringify;
    JSON.stringify = ((value: unknown) => native(value, null, 1)) as typeof JSON.stringify;
    try {
      expect(formatEvent({ data: { a: 1 } })).toBe('data: {\ndata:  "a": 1\ndata: }\n\n');
    } finally {
      JSON.stringify = native;
    }
  });
  it('writes comments without a blank line and retry blocks with one', () => {
    expect(formatComment('a\r\nb')).toBe(': a\n: b\n');
    expect(formatRetry(3000)).toBe('retry: 3000\n\n');
    expect(formatRetry(-0)).toBe('retry: 0\n\n');
  });
});
