/**
 * What the tests of a stream behind a framework's real middleware share: the origin their CORS
 * middleware allows, the messages of the route an EventSource reads whole, and a CORS preflight.
 */

import { concat, NEVER, type Observable, of } from 'rxjs';
import { expect } from 'vitest';
import { collectEvents, eventSourceClients, readUntil, waitFor } from './clients.js';

/** The one origin the apps' CORS middleware allows. */
export const ORIGIN = 'https://app.example';

/** Plain, typed with ids, on two lines, empty: then the stream stays open. */
export function everyKindOfEvent(): Observable<{ data: unknown; id?: string; type?: string }> {
  return concat(
    of(
      { data: 'hello' },
      { id: '0', type: 'tick', data: { n: 0 } },
      { id: '1', type: 'tick', data: 'a\nb' },
      { id: '2', data: '' },
    ),
    NEVER,
  );
}

/** Checks that every EventSource client parses {@link everyKindOfEvent}, served at `url`, exactly. */
export async function expectEveryKindOfEvent(url: string): Promise<void> {
  for (const [, EventSourceImpl] of eventSourceClients) {
    const events = await collectEvents(EventSourceImpl, url, ['message', 'tick'], 4);
    expect(events).toEqual([
      { type: 'message', data: 'hello', lastEventId: '' },
      { type: 'tick', data: '{"n":0}', lastEventId: '0' },
      { type: 'tick', data: 'a\nb', lastEventId: '1' },
      { type: 'message', data: '', lastEventId: '2' },
    ]);
  }
}

/**
 * Sends the CORS preflight of an EventSource from {@link ORIGIN} that resumes (`Last-Event-ID`) to
 * `url`, and checks it is answered with a 204 allowing that origin and no stream. `headers` go with
 * it (a rate limiter's client key).
 */
export async function expectPreflightAnswered(
  url: string,
  headers: Record<string, string> = {},
): Promise<Response> {
  const response = await fetch(url, {
    method: 'OPTIONS',
    headers: {
      origin: ORIGIN,
      'access-control-request-method': 'GET',
      'access-control-request-headers': 'last-event-id',
      ...headers,
    },
  });
  expect(response.status).toBe(204);
  expect(response.headers.get('access-control-allow-origin')).toBe(ORIGIN);
  expect(response.headers.get('content-type')).toBeNull();
  expect(await response.text()).toBe('');
  return response;
}

/**
 * Checks that the stream at `url`, which sends `data: hello` and stays open, goes out uncompressed
 * to a client that asks for gzip, and unbuffered: its one event arrives. `seen` (from `metered()`)
 * counts both streams opened and closed by their client.
 */
export async function expectStreamUncompressed(url: string, seen: readonly string[]): Promise<void> {
  const before = seen.length;
  const response = await fetch(url, { headers: { 'accept-encoding': 'gzip, br' } });
  expect(response.headers.get('content-encoding')).toBeNull();
  expect(response.headers.get('cache-control')).toBe('no-cache, no-transform');
  await response.body?.cancel();
  // Only an unbuffered stream delivers the one event of a stream that stays open.
  expect(await readUntil(url, (text) => text.includes('\n\n'), 5000)).toBe('data: hello\n\n');
  await waitFor(() => seen.length === before + 4, 5000, 'both streams to close');
  expect(seen.slice(before).sort()).toEqual(['closed:client', 'closed:client', 'opened', 'opened']);
}
