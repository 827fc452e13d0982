// What every server app shows across its life, checked the same way whatever builds the app: the
// Fastify adapter, NestJS on Fastify or Express, and a server of Koa's.
import dns from 'node:dns';
import { once } from 'node:events';
import { type AddressInfo, connect as connectTcp, type Server } from 'node:net';
import { connect as connectTls } from 'node:tls';
import type { MessageEvent } from '@rxsse/core';
import type { Subject } from 'rxjs';
import { expect, vi } from 'vitest';
import { httpRequest, RawClient, rawClient, waitFor, waitForReal } from './clients.js';

/** An app serving `/feed` from one shared `Subject`. */
interface FeedApp {
  url: string;
  close(): Promise<unknown>;
}

/** Closing `first` ends its stream on `/feed`; `second`'s stream, on the same source, stays open. */
export async function expectCloseEndsOnlyItsOwnStreams(
  events: Subject<MessageEvent>,
  first: FeedApp,
  second: FeedApp,
): Promise<void> {
  try {
    const [leaving, staying] = await Promise.all([
      rawClient(`${first.url}/feed`, { read: true }),
      rawClient(`${second.url}/feed`, { read: true }),
    ]);
    await waitFor(() => events.observers.length === 2, 5000, 'both subscriptions');
    await first.close();
    await leaving.done;
    events.next({ data: 'still here' });
    await waitFor(() => staying.text.includes('data: still here\n\n'), 5000, "the other app's event");
    expect(staying.closed).toBe(false);
    staying.destroy();
  } finally {
    await second.close();
  }
}

/**
 * Opens `/feed` (whose first event is `first`), lets 5 s of fake time pass from before the request
 * (when Fastify arms a route's `handlerTimeout`), then expects `events`' next one on the same stream.
 */
export async function expectStreamPastHandlerTimeout(
  url: string,
  events: Subject<MessageEvent>,
): Promise<void> {
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
  const client = await rawClient(`${url}/feed`, { read: true });
  try {
    while (!client.text.includes('data: first\n\n')) await once(client.socket, 'data');
    vi.advanceTimersByTime(5000);
  } finally {
    vi.useRealTimers();
  }
  events.next({ data: 'later' });
  await waitFor(() => client.text.includes('data: later\n\n') || client.closed, 5000, 'the later event');
  expect(client.closed).toBe(false);
  expect(client.text).not.toContain('FST_ERR');
  client.destroy();
}

/**
 * Asks for `/feed` (which sends `hi`, then nothing) again, on the connection of a stream the app's
 * close ended, from a Fastify `preClose` hook (run once the streams ended, before the server stops),
 * and expects it turned away: a 200 with the shutdown's `retry: 5000` and `connection: close`.
 */
export function turnAwayWhileClosing(fastify: {
  addHook(name: 'preClose', hook: () => Promise<void>): unknown;
}): { open(url: string): Promise<void>; expectTurnedAway(): void } {
  let client: RawClient | undefined;
  let answer = '';
  fastify.addHook('preClose', async () => {
    const kept = client!;
    await waitFor(() => kept.text.endsWith('\r\n0\r\n\r\n'), 5000, 'the end of the first stream');
    const before = kept.text.length;
    kept.socket.write(httpRequest('GET', '/feed'));
    await waitFor(() => kept.closed || kept.text.slice(before).includes('data: hi'), 5000, 'the answer');
    answer = kept.text.slice(before);
    kept.destroy();
  });
  return {
    async open(url) {
      client = await rawClient(`${url}/feed`, { read: true });
      await waitFor(() => client!.text.includes('data: hi'), 5000, 'the stream');
    },
    expectTurnedAway() {
      expect(answer).toMatch(/^HTTP\/1\.1 200/);
      expect(answer.toLowerCase()).toContain('connection: close');
      expect(answer).toContain('retry: 5000');
      expect(answer).not.toContain('data: hi');
    },
  };
}

/**
 * Makes `localhost` resolve to both loopback addresses, as on most hosts, so that Fastify's
 * listen() on it serves `::1` from a second server; returns the undo.
 */
export function localhostOnBothLoopbacks(): () => void {
  const lookup = dns.lookup;
  dns.lookup = ((host: string, options: { all?: boolean }, callback: (...args: unknown[]) => void) =>
    host === 'localhost' && options.all
      ? callback(null, [
          { address: '127.0.0.1', family: 4 },
          { address: '::1', family: 6 },
        ])
      : Reflect.apply(lookup, dns, [host, options, callback])) as typeof dns.lookup;
  return () => {
    dns.lookup = lookup;
  };
}

/**
 * On an app listening on `localhost` at `port` (`fastify` tells its addresses), opens `/own` (which
 * sends `hi`, then nothing, in a group the app does not close) and `/feed` on the `::1` server, then
 * closes the app and expects the `/own` stream ended with the shutdown's `retry: 5000`, and `/feed`
 * asked again there turned away (see {@link turnAwayWhileClosing}).
 */
export async function expectSecondServerClosedWithApp(
  fastify: { addresses(): unknown[] },
  port: number,
  asking: ReturnType<typeof turnAwayWhileClosing>,
  close: () => Promise<unknown>,
): Promise<void> {
  expect(fastify.addresses()).toContainEqual(expect.objectContaining({ address: '::1' }));
  const url = `http://[::1]:${port}`;
  const other = await rawClient(`${url}/own`, { read: true });
  try {
    await waitFor(() => other.text.includes('data: hi'), 5000, 'the stream of its own group');
    await asking.open(url);
    await close();
    asking.expectTurnedAway();
    await waitFor(() => other.closed, 5000, 'the stream of its own group to end');
    expect(other.text).toContain('retry: 5000');
  } finally {
    other.destroy();
  }
}

/**
 * With a spare TLS connection and one accepted whose handshake has not begun, runs `close` on fake
 * timers: the spare is dropped at once; the other ends its handshake only then and sends nothing,
 * which no timeout of Node's covers. Expects `close` to complete once `deadline` has passed, with
 * that connection dropped. `server` is the one `close` stops, listening on 127.0.0.1.
 */
export async function expectCloseDropsLateHandshake(
  server: Server,
  close: () => Promise<unknown>,
  deadline: number,
): Promise<void> {
  const { port } = server.address() as AddressInfo;
  const secured = once(server, 'secureConnection');
  const unused = new RawClient(connectTls({ host: '127.0.0.1', port, rejectUnauthorized: false }), true);
  await secured;
  const accepted = once(server, 'connection');
  const late = new RawClient(connectTcp(port, '127.0.0.1'), true);
  await accepted;
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance'] });
  try {
    let closed = false;
    void close().then(() => {
      closed = true;
    });
    await waitForReal(() => unused.closed, 5000, 'the unused connection to be dropped');
    // Its handshake ends now, after the close began, and it sends nothing.
    const lateSecured = once(server, 'secureConnection');
    connectTls({ socket: late.socket, rejectUnauthorized: false }).on('error', () => {});
    await lateSecured;
    vi.advanceTimersByTime(deadline + 10);
    await waitForReal(() => closed, 5000, 'the close to complete');
    // The server's side of it closed; the client hears of it a moment later.
    await waitForReal(() => late.closed, 5000, 'the late connection to be dropped');
  } finally {
    vi.useRealTimers();
    unused.destroy();
    late.destroy();
  }
}
