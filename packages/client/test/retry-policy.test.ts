// The reconnect policy as pure functions: which answers retry, how long to wait.
import { describe, expect, it } from 'vitest';
import { type DelayInput, reconnectDelay } from '../src/backoff.js';
import { SseResponseError } from '../src/errors.js';
import { checkResponse, MAX_DELAY, retryAfter } from '../src/response.js';

const base: DelayInput = {
  attempt: 0,
  retryAfter: undefined,
  serverRetry: undefined,
  retryDelay: 1000,
  maxRetryDelay: 30_000,
};

describe('reconnectDelay', () => {
  it('waits Retry-After when the answer had one, whatever else is known', () => {
    expect(reconnectDelay({ ...base, attempt: 5, retryAfter: 7000, serverRetry: 10 })).toBe(7000);
  });

  it('takes Retry-After: 0 (or a date gone by) as "at once" for one reconnect, not for a server that keeps failing', () => {
    expect(reconnectDelay({ ...base, retryAfter: 0 }, () => 0.5)).toBe(0);
    // Else a server (or a proxy) answering every request 503 with it gets them back to back.
    expect(reconnectDelay({ ...base, attempt: 1, retryAfter: 0 }, () => 0.5)).toBe(1000);
    expect(reconnectDelay({ ...base, attempt: 3, retryAfter: 0 }, () => 0.5)).toBe(4000);
    expect(reconnectDelay({ ...base, attempt: 3, retryAfter: 0, serverRetry: 5000 }, () => 0)).toBe(5000);
  });

  it("waits exactly the server's retry: on the first attempt after a live connection", () => {
    expect(reconnectDelay({ ...base, serverRetry: 2500 }, () => 0.5)).toBe(2500);
    expect(reconnectDelay({ ...base, serverRetry: 0 }, () => 0.5)).toBe(0);
    expect(reconnectDelay({ ...base, serverRetry: 1e300 })).toBe(MAX_DELAY);
  });

  it('backs off exponentially with full jitter, capped, from retry: or else retryDelay', () => {
    const top = (input: Partial<DelayInput>) => reconnectDelay({ ...base, ...input }, () => 1);
    expect([0, 1, 2, 3, 4, 5, 6].map((attempt) => top({ attempt }))).toEqual([
      1000, 2000, 4000, 8000, 16_000, 30_000, 30_000,
    ]);
    expect(top({ attempt: 2, serverRetry: 100 })).toBe(400);
    // retry: 0 allows one immediate reconnect, not a loop against a failing server.
    expect(top({ attempt: 1, serverRetry: 0 })).toBe(2000);
    expect(reconnectDelay({ ...base, attempt: 3 }, () => 0)).toBe(0);
    expect(reconnectDelay({ ...base, attempt: 3 }, () => 0.25)).toBe(2000);
    expect(top({ attempt: 80, maxRetryDelay: Number.POSITIVE_INFINITY })).toBe(MAX_DELAY);
  });

  it("never waits less than the server's retry: while the server keeps failing", () => {
    // The spec waits the reconnection time, then optionally more: backoff adds to retry:, never cuts it.
    for (const random of [0, 0.1, 0.5, 1]) {
      for (const attempt of [1, 2, 3, 8]) {
        const delay = reconnectDelay({ ...base, attempt, serverRetry: 5000 }, () => random);
        expect(delay).toBeGreaterThanOrEqual(5000);
        expect(delay).toBeLessThanOrEqual(Math.max(5000, Math.min(30_000, 5000 * 2 ** attempt)));
      }
    }
    // A retry: above the cap is the server's word still, as on the first attempt.
    expect(reconnectDelay({ ...base, attempt: 2, serverRetry: 60_000 }, () => 0.5)).toBe(60_000);
  });
});

describe('retryAfter', () => {
  const now = Date.parse('2026-01-01T00:00:00Z');

  it('reads seconds and HTTP dates', () => {
    expect(retryAfter('7', null, now)).toBe(7000);
    expect(retryAfter(' 0 ', null, now)).toBe(0);
    expect(retryAfter('Thu, 01 Jan 2026 00:00:30 GMT', null, now)).toBe(30_000);
    expect(retryAfter('THU, 01 JAN 2026 00:00:30 GMT', null, now)).toBe(30_000);
  });

  it("counts a date from the response's Date when it has a valid one, else from the client's clock", () => {
    const later = 'Thu, 01 Jan 2026 00:00:30 GMT';
    expect(retryAfter(later, 'Thu, 01 Jan 2026 00:00:20 GMT', now + 3_600_000)).toBe(10_000);
    expect(retryAfter(later, 'Thu, 01 Jan 2026 00:00:20 GMT', now - 3_600_000)).toBe(10_000);
    expect(retryAfter(later, 'Fri, 02 Jan 2026 00:00:00 GMT', now)).toBe(0);
    expect(retryAfter('7', 'Fri, 02 Jan 2026 00:00:00 GMT', now)).toBe(7000);
    for (const date of ['soon', '-5', '', null]) expect(retryAfter(later, date, now)).toBe(30_000);
  });

  it('takes off the Age of a cached answer, which has waited that long already', () => {
    expect(retryAfter('7', null, now, '3')).toBe(4000);
    expect(retryAfter('7', null, now, '10')).toBe(0);
    expect(retryAfter('7', null, now, '7')).toBe(0);
    expect(retryAfter('0', null, now, '0')).toBe(0);
    expect(retryAfter('7', 'Thu, 01 Jan 2026 00:00:00 GMT', now, ' 2 ')).toBe(5000);
    // A date counts from Date + Age, the server's now; without a Date, from the client's clock.
    const later = 'Thu, 01 Jan 2026 00:00:30 GMT';
    expect(retryAfter(later, 'Thu, 01 Jan 2026 00:00:10 GMT', now + 3_600_000, '5')).toBe(15_000);
    expect(retryAfter(later, 'Thu, 01 Jan 2026 00:00:10 GMT', now, '60')).toBe(0);
    expect(retryAfter(later, null, now, '5')).toBe(30_000);
    // An Age is whole seconds from 0: anything else is ignored.
    for (const age of ['-3', '1.5', '2s', 'soon', '3, 4', '', null, undefined])
      expect(retryAfter('7', null, now, age), String(age)).toBe(7000);
  });

  it('clamps a past date to 0 and a huge value to the longest timer, and ignores nonsense', () => {
    expect(retryAfter('Wed, 31 Dec 2025 23:00:00 GMT', null, now)).toBe(0);
    expect(retryAfter('99999999999', null, now)).toBe(MAX_DELAY);
    expect(retryAfter(null, null, now)).toBeUndefined();
    expect(retryAfter('soon', null, now)).toBeUndefined();
    expect(retryAfter('-5', null, now)).toBeUndefined();
  });

  it('takes only an HTTP date for a date, in any of its three forms, and ignores text a lenient Date.parse reads as one', () => {
    const at30 = (value: string) => expect(retryAfter(value, null, now), value).toBe(30_000);
    at30('Thu, 01 Jan 2026 00:00:30 GMT');
    at30('Thursday, 01-Jan-26 00:00:30 GMT');
    at30('Thu Jan  1 00:00:30 2026');
    for (const value of [
      'x 9999',
      'in 10',
      '5 minutes',
      'Jan 2027',
      '2026-01-01T00:00:30Z',
      'Thu, 01 Jan 2026',
    ])
      expect(retryAfter(value, null, now), value).toBeUndefined();
  });

  it('reads the asctime form of an HTTP date as GMT, whatever the time zone of the machine', () => {
    const zone = process.env.TZ;
    process.env.TZ = 'America/New_York';
    try {
      expect(retryAfter('Thu Jan  1 00:00:30 2026', null, now)).toBe(30_000);
      expect(retryAfter('7', 'Thu Jan  1 00:00:30 2026', now)).toBe(7000);
      expect(retryAfter('Thu, 01 Jan 2026 00:00:40 GMT', 'Thu Jan  1 00:00:30 2026', now)).toBe(10_000);
    } finally {
      if (zone === undefined) delete process.env.TZ;
      else process.env.TZ = zone;
    }
  });
});

describe('checkResponse', () => {
  const answer = (status: number, type?: string) =>
    new Response(status === 204 ? null : '', { status, headers: type ? { 'content-type': type } : {} });

  it('reads a 200 whose MIME essence is text/event-stream', () => {
    for (const type of [
      'text/event-stream',
      'text/event-stream;',
      'Text/Event-Stream; charset=utf-8',
      'text/event-stream ; charset=utf-8',
    ])
      expect(checkResponse(answer(200, type))).toBe('read');
  });

  it('takes the last valid type of a Content-Type sent more than once, as fetch extracts a MIME type', () => {
    for (const type of [
      'text/event-stream, text/event-stream',
      'text/html, text/event-stream',
      'text/event-stream, */*',
      'text/event-stream, not a type',
      'text/event-stream; note="a, b"',
    ])
      expect(checkResponse(answer(200, type)), type).toBe('read');
    for (const type of ['text/event-stream, text/html', 'text/html; note="x, text/event-stream;"'])
      expect(() => checkResponse(answer(200, type)), type).toThrow(SseResponseError);
  });

  it('stops on 204 and retries 408, 429 and 5xx', () => {
    expect(checkResponse(answer(204))).toBe('stop');
    for (const status of [408, 429, 500, 502, 503, 504]) expect(checkResponse(answer(status))).toBe('retry');
  });

  it('refuses every other answer with SseResponseError', () => {
    for (const [status, type] of [
      [200, 'text/x-bogus'],
      [200, 'x bogus'],
      [200, undefined],
      [201, 'text/event-stream'],
      [301, undefined],
      [400, 'text/event-stream'],
      [401, undefined],
      [404, 'text/html'],
      [410, undefined],
    ] as const) {
      expect(() => checkResponse(answer(status, type))).toThrow(SseResponseError);
    }
  });
});
