import { of } from 'rxjs';
import { describe, expect, it } from 'vitest';
import { SseFormatError } from './errors.js';
import { formatComment, formatEvent, formatRetry } from './format.js';

/** The reason `formatEvent` refuses `message` with. */
function reason(message: unknown, options = {}): string | undefined {
  try {
    formatEvent(message as never, options);
  } catch (error) {
    return (error as SseFormatError).reason;
  }
  return undefined;
}

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
  it('refuses a message that is not an object, whatever the serializer, naming what it got', () => {
    for (const [value, got] of [
      [null, 'null'],
      [undefined, 'undefined'],
      [42, 'number'],
      ['hello', 'string'],
    ] as const) {
      for (const options of [{}, { serialize: String }]) {
        const error = (() => {
          try {
            formatEvent(value as never, options);
          } catch (caught) {
            return caught;
          }
        })();
        expect(error).toBeInstanceOf(SseFormatError);
        expect(error).toMatchObject({
          field: 'data',
          reason: `a message must be an object like { data }, got ${got}`,
        });
      }
    }
  });
  it('names a null id, type or serializer result as null, not as an object', () => {
    expect(reason({ data: 'x', id: null })).toBe('must be a string, got null');
    expect(reason({ data: 'x', type: null })).toBe('must be a string, got null');
    expect(reason({ data: {} }, { serialize: () => null })).toBe(
      'the serializer returned null, not a string',
    );
  });
  it('names a Promise an async serializer returned, which no stream can wait for', () => {
    const text = Promise.resolve('{}');
    expect(reason({ data: {} }, { serialize: (() => text) as never })).toBe(
      'the serializer returned a Promise: it must return the text itself (an async serialize cannot be awaited)',
    );
  });
  it('names a Promise given as data, which JSON would send as {}', () => {
    // `{ data: fetchScore() }`: JSON.stringify turns a Promise into `{}`, which no client could tell
    // from an empty object.
    const data = Promise.resolve({ score: 1 });
    expect(reason({ data })).toBe(
      'is a Promise: send what it resolves to (await it, or mergeMap), not the Promise',
    );
    expect(formatEvent({ data: {} })).toBe('data: {}\n\n');
  });
  it('names a Promise emitted in place of a message, and data left out', () => {
    // `map(async (x) => ...)` emits Promises: the message it meant is what one resolves to.
    const promise = Promise.resolve({ data: 'x' });
    for (const options of [{}, { serialize: String }]) {
      expect(reason(promise, options)).toBe(
        'a message must be an object like { data }, got a Promise: emit what it resolves to (mergeMap or concatMap), not the Promise',
      );
    }
    expect(reason(of({ data: 'x' }))).toBe(
      'a message must be an object like { data }, got an Observable: emit its messages (mergeMap, concatMap or switchMap), not the Observable',
    );
    // `toArray()`, `bufferTime()`: the messages it meant are the array's.
    for (const options of [{}, { serialize: String }]) {
      expect(reason([{ data: 'x' }, { data: 'y' }], options)).toBe(
        'a message must be an object like { data }, got an array of 2: emit its messages one by one (mergeMap(from) or concatAll()), not the array',
      );
    }
    expect(reason({ dat: 'x' })).toBe(
      'data is undefined: give it a value, or an empty string for an event without data',
    );
    // A serializer of its own may take undefined.
    expect(formatEvent({ data: undefined }, { serialize: () => 'none' })).toBe('data: none\n\n');
  });
  it('names CR, LF or NUL in a default (portable) id, not only its portability', () => {
    for (const id of ['a\nid: 666', 'a\rb', 'a\0b']) {
      expect(reason({ data: 'x', id })).toBe('must not contain CR, LF or NUL');
    }
    expect(reason({ data: 'x', id: 'é' })).toMatch(/^must be printable ASCII/);
  });
  it('names a bad maxDataLines given to a direct call, not the data it would cut', () => {
    expect(() => formatEvent({ data: 'a\nb' }, { maxDataLines: 0 })).toThrow(
      /^maxDataLines must be a positive integer, got 0$/,
    );
  });
  it('writes comments without a blank line and retry blocks with one', () => {
    expect(formatComment('a\r\nb')).toBe(': a\n: b\n');
    expect(formatRetry(3000)).toBe('retry: 3000\n\n');
    expect(formatRetry(-0)).toBe('retry: 0\n\n');
  });
});
