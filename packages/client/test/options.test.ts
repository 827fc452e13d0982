// fromEventSource's options are checked where they are given: a wrong one throws at once, naming it,
// instead of failing every attempt, or turning the backoff off into a tight reconnect loop.
import { describe, expect, it } from 'vitest';
import { defineEvents, type EventSourceOptions, fromEventSource, text } from '../src/index.js';

const URL = 'http://127.0.0.1:1/sse';
const given = (options: unknown) => () => fromEventSource(URL, options as EventSourceOptions);

describe('fromEventSource options', () => {
  it('takes every option in range, the longest delays and lengths included', () => {
    for (const options of [
      undefined,
      {},
      { retryDelay: 1, maxRetryDelay: 1, stallTimeout: 1, maxEventLength: 1 },
      { retryDelay: 0.5 * 2 ** 32, maxRetryDelay: Number.POSITIVE_INFINITY, stallTimeout: false },
      { stallTimeout: Number.POSITIVE_INFINITY, maxEventLength: Number.POSITIVE_INFINITY },
      { retryDelay: undefined, maxRetryDelay: undefined, stallTimeout: undefined, maxEventLength: undefined },
      { events: defineEvents({ message: text }), fetch, onReconnect: () => {}, resumeWhenHidden: true },
      { method: 'POST', body: 'text', credentials: 'include', lastEventId: '7' },
      { method: 'POST', body: new URLSearchParams('a=1') },
      { method: 'POST', body: new Uint8Array(2) },
      { method: 'POST', body: new Blob(['x']) },
      { lastEventId: null },
      { headers: { authorization: 'Bearer x' } },
      { headers: [['authorization', 'Bearer x']] },
      { headers: new Headers() },
      { headers: async () => ({}) },
    ]) {
      expect(given(options), JSON.stringify(options)).not.toThrow();
    }
  });

  it('takes lastEventId as localStorage.getItem returns it, null for an id never stored', () => {
    const stored: string | null = null;
    const options: EventSourceOptions = { lastEventId: stored };
    expect(() => fromEventSource(URL, options)).not.toThrow();
  });

  it('takes a body of null, as fetch does: no body, on GET too', () => {
    expect(given({ body: null })).not.toThrow();
    expect(given({ method: 'POST', body: null })).not.toThrow();
  });

  it('refuses a delay that would turn the backoff off, or a timer that fires at once, naming it', () => {
    for (const name of ['retryDelay', 'maxRetryDelay', 'stallTimeout'] as const) {
      for (const [value, shown] of [
        [0, '0'],
        [-1000, '-1000'],
        [0.5, '0.5'],
        [Number.NaN, 'NaN'],
        ['1000', '"1000"'],
        [true, 'true'],
        [null, 'null'],
      ] as const) {
        expect(given({ [name]: value }), `${name}: ${shown}`).toThrow(RangeError);
        expect(given({ [name]: value })).toThrow(
          `${name} must be ${name === 'stallTimeout' ? 'false or ' : ''}a number of ms from 1, got ${shown}`,
        );
      }
    }
  });

  it('refuses a maxEventLength that is not a length, naming it', () => {
    for (const value of [0, -1, Number.NaN, '1000', null]) {
      expect(given({ maxEventLength: value })).toThrow(RangeError);
      expect(given({ maxEventLength: value })).toThrow(
        /^maxEventLength must be a number of characters from 1, got /,
      );
    }
  });

  it('refuses an option of the wrong type, naming it and what it got', () => {
    expect(given({ fetch: 'fetch' })).toThrow(new TypeError('fetch must be a function, got "fetch"'));
    expect(given({ onReconnect: console })).toThrow(
      new TypeError('onReconnect must be a function, got an object'),
    );
    expect(given({ method: 5 })).toThrow(new TypeError('method must be a string, got 5'));
    expect(given({ lastEventId: 7 })).toThrow(new TypeError('lastEventId must be a string, got 7'));
    // fetch would refuse it at every attempt: a misspelt value ends no Observable at subscribe time.
    expect(given({ credentials: 'includes' })).toThrow(
      new TypeError('credentials must be "omit", "same-origin" or "include", got "includes"'),
    );
    expect(given({ credentials: true })).toThrow(/^credentials must be .*, got true$/);
    expect(given({ resumeWhenHidden: 'false' })).toThrow(
      new TypeError('resumeWhenHidden must be a boolean, got "false"'),
    );
    expect(given({ headers: 'authorization: x' })).toThrow(
      new TypeError('headers must be an object, an array of pairs or a function, got "authorization: x"'),
    );
    expect(given({ headers: null })).toThrow(/^headers must be .*, got null$/);
    expect(given({ events: { message: 'text' } })).toThrow(
      new TypeError('events must be a contract made by defineEvents, got an object'),
    );
    expect(given({ events: text })).toThrow(TypeError);
    expect(given('POST')).toThrow(new TypeError('options must be an object, got "POST"'));
    expect(given(null)).toThrow(new TypeError('options must be an object, got null'));
  });

  it('refuses an option it does not know, naming it, rather than doing without it unseen', () => {
    // A signal would be ignored, the stream running on: unsubscribing is how it stops.
    expect(given({ signal: new AbortController().signal })).toThrow(new TypeError('unknown options: signal'));
    expect(given({ retrydelay: 10, stallTimeout: 10, keepalive: true })).toThrow(
      new TypeError('unknown options: retrydelay, keepalive'),
    );
    // As for the options it knows, one set to undefined is one not given.
    expect(given({ signal: undefined })).not.toThrow();
  });

  it('refuses a body it cannot send again on every reconnect, or would send as "[object Object]"', () => {
    expect(given({ method: 'POST', body: { prompt: 'hi' } })).toThrow(
      new TypeError('body must be a string, Blob, BufferSource, FormData or URLSearchParams, got an object'),
    );
    expect(given({ method: 'POST', body: ['a'] })).toThrow(/^body must be .*, got an array$/);
    expect(given({ method: 'POST', body: 5 })).toThrow(/^body must be .*, got 5$/);
    expect(given({ method: 'POST', body: new ReadableStream() })).toThrow(
      /^body must be .*, got a ReadableStream, which cannot be sent again$/,
    );
  });

  it('refuses a url that is not a string or a URL, which a page would resolve as "[object Object]"', () => {
    const from = (url: unknown) => () => fromEventSource(url as string);
    expect(from(new Request(URL))).toThrow(new TypeError('url must be a string or a URL, got an object'));
    expect(from(undefined)).toThrow(new TypeError('url must be a string or a URL, got undefined'));
    expect(from(new globalThis.URL(URL))).not.toThrow();
  });
});
