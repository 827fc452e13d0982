import { describe, expect, it } from 'vitest';
import { removedHeaders, sseHeaders } from './headers.js';
import { pickLastEventId } from './last-event-id.js';
import { checkEventSource, isSubscribable, isThenable } from './source.js';

describe('what every transport shares', () => {
  it("sseHeaders: the defaults, the same on every HTTP version: the connection is the transport's", () => {
    const defaults = {
      'content-type': 'text/event-stream',
      'cache-control': 'no-cache, no-transform',
      'x-accel-buffering': 'no',
    };
    expect(sseHeaders(false)).toEqual(defaults);
    expect(sseHeaders(true)).toEqual(defaults);
  });

  it('sseHeaders: connection-specific overrides apply on HTTP/1 and are dropped on HTTP/2', () => {
    const overrides = { Connection: 'close', 'Keep-Alive': 'timeout=5' };
    expect(sseHeaders(false, overrides)).toMatchObject({ connection: 'close', 'keep-alive': 'timeout=5' });
    const h2 = sseHeaders(true, overrides);
    expect(h2).not.toHaveProperty('connection');
    expect(h2).not.toHaveProperty('keep-alive');
  });

  it('removedHeaders: names in lower case', () => {
    expect(removedHeaders({ 'X-Powered-By': null, 'X-Other': 'kept' })).toEqual(['x-powered-by']);
  });

  it('removedHeaders: on HTTP/2, the HTTP/1-only names as well, whether or not the route removes one of its own', () => {
    const http1Only = ['connection', 'keep-alive', 'transfer-encoding', 'upgrade', 'proxy-connection', 'te'];
    expect(removedHeaders({}, true)).toEqual(expect.arrayContaining(http1Only));
    const removed = removedHeaders({ 'X-Powered-By': null }, true);
    expect(removed).toEqual(expect.arrayContaining([...http1Only, 'x-powered-by']));
  });

  it('pickLastEventId: header first, the query when the header is missing or empty', () => {
    expect(pickLastEventId('5-0', '/sse?lastEventId=7-0')).toBe('5-0');
    expect(pickLastEventId('', '/sse?lastEventId=7-0')).toBe('7-0');
    expect(pickLastEventId(undefined, '/sse?a=1&lastEventId=7-0')).toBe('7-0');
    expect(pickLastEventId(undefined, '/sse?lastEventId=')).toBeUndefined();
    expect(pickLastEventId(undefined, '/sse?a=1')).toBeUndefined();
    expect(pickLastEventId(undefined, '/sse')).toBeUndefined();
    expect(pickLastEventId(undefined, undefined)).toBeUndefined();
    // What is no string (Node's array for a repeated header, a bridge's own get()) is no header.
    expect(pickLastEventId(['5-0', '6-0'], '/sse?lastEventId=7-0')).toBe('7-0');
    expect(pickLastEventId(5, undefined)).toBeUndefined();
  });

  it('pickLastEventId: a header given as bytes is read as UTF-8 when it is valid UTF-8', () => {
    const bytes = (text: string) => String.fromCharCode(...new TextEncoder().encode(text));
    expect(pickLastEventId(bytes('é-1'), undefined)).toBe('é-1');
    expect(pickLastEventId(bytes('\ufeff7'), undefined)).toBe('\ufeff7');
    // Not UTF-8: kept as the bytes' Latin-1 characters. Decoded already: kept as it is.
    expect(pickLastEventId('id\u00e9', undefined)).toBe('id\u00e9');
    expect(pickLastEventId('é-\u20ac', undefined)).toBe('é-\u20ac');
    // Even one whose characters, cut to bytes, would make valid UTF-8 (0xC3 0xA9 reads as é).
    expect(pickLastEventId('\u00c3\u01a9', undefined)).toBe('\u00c3\u01a9');
  });

  it('isThenable: only a then method makes a thenable, not a then of another kind', () => {
    expect(isThenable(Promise.resolve())).toBe(true);
    // A callback's result with a then property that is no method is no promise: nothing to await.
    const withThen = (then: unknown) => Object.fromEntries([['then', then]]);
    expect(isThenable(withThen(() => {}))).toBe(true);
    expect(isThenable(withThen(true))).toBe(false);
    expect(isThenable(withThen(null))).toBe(false);
    expect(isThenable(undefined)).toBe(false);
  });

  it('checkEventSource: accepts a function with a subscribe method', () => {
    const subscribable = Object.assign(() => {}, { subscribe: () => ({ unsubscribe() {} }) });
    expect(checkEventSource(subscribable)).toBe(subscribable);
  });

  it('checkEventSource: takes an AsyncIterable with a subscribe property that is no method as iterable', () => {
    const source = {
      subscribe: null,
      async *[Symbol.asyncIterator]() {
        yield { data: 'pulled' };
      },
    };
    expect(checkEventSource(source)).toBe(source);
    expect(isSubscribable(source)).toBe(false);
  });
});
