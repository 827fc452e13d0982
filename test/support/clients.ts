import { connect, type Socket } from 'node:net';
import { setTimeout as realSleep } from 'node:timers/promises';
import { EventSource as PackageEventSource } from 'eventsource';
import { createParser } from 'eventsource-parser';
import { EventSource as UndiciEventSource } from 'undici';

/** What a client reports for one dispatched event. */
export interface Received {
  type: string;
  data: string;
  lastEventId: string;
}

type EventSourceClass = typeof UndiciEventSource | typeof PackageEventSource;

export const eventSourceClients: [string, EventSourceClass][] = [
  ['undici EventSource', UndiciEventSource],
  ['eventsource', PackageEventSource],
];

/** Opens an EventSource (with `init`), collects `count` events of the given types, then closes it. */
export function collectEvents(
  EventSourceImpl: EventSourceClass,
  url: string,
  types: string[],
  count: number,
  init?: ConstructorParameters<typeof UndiciEventSource>[1],
): Promise<Received[]> {
  return new Promise((resolve, reject) => {
    const source = new EventSourceImpl(url, init as never);
    const received: Received[] = [];
    const timer = setTimeout(() => {
      source.close();
      reject(new Error(`timed out with ${received.length} of ${count} events`));
    }, 10_000);
    for (const type of types) {
      source.addEventListener(type, (event) => {
        const { data, lastEventId } = event as MessageEvent<string>;
        received.push({ type, data, lastEventId });
        if (received.length === count) {
          clearTimeout(timer);
          source.close();
          resolve(received);
        }
      });
    }
  });
}

/** Fetches a stream to its end and parses it with eventsource-parser (ids persisted as browsers do). */
export async function fetchAndParse(url: string): Promise<Received[]> {
  const response = await fetch(url);
  const received: Received[] = [];
  let lastEventId = '';
  const parser = createParser({
    onEvent(event) {
      if (event.id !== undefined) lastEventId = event.id;
      received.push({ type: event.event ?? 'message', data: event.data, lastEventId });
    },
  });
  const decoder = new TextDecoder();
  for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
    parser.feed(decoder.decode(chunk, { stream: true }));
  }
  return received;
}

/** Reads a response body as text for `ms` milliseconds, then disconnects. */
export function readFor(url: string, ms: number): Promise<string> {
  return readUntil(url, () => false, ms);
}

/**
 * Reads a response body as text until `done(text)` holds, then disconnects; after `timeout` ms it
 * disconnects with what it has.
 */
export async function readUntil(
  url: string,
  done: (text: string) => boolean,
  timeout: number,
): Promise<string> {
  const abort = new AbortController();
  const response = await fetch(url, { signal: abort.signal });
  const decoder = new TextDecoder();
  let text = '';
  const reading = (async () => {
    for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
      text += decoder.decode(chunk, { stream: true });
      if (done(text)) return;
    }
  })().catch(() => {});
  const timer = setTimeout(() => abort.abort(), timeout);
  await reading;
  clearTimeout(timer);
  abort.abort();
  return text;
}

/** Reads a whole response body as bytes. */
export async function fetchBytes(
  url: string,
  init?: RequestInit,
): Promise<{ response: Response; body: Buffer }> {
  const response = await fetch(url, init);
  return { response, body: Buffer.from(await response.arrayBuffer()) };
}

/**
 * A raw HTTP/1.1 client over TCP. With `read: false` it never reads the response, so the server's
 * writes back up: the slowest client there is.
 */
export async function rawClient(url: string, options: { read: boolean }): Promise<RawClient> {
  const { hostname, port, pathname, search } = new URL(url);
  // An IPv6 host is bracketed in a URL, and not in what connect() takes.
  const socket = connect({ host: hostname.replace(/^\[(.*)\]$/, '$1'), port: Number(port) });
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve).once('error', reject);
  });
  socket.write(
    `GET ${pathname}${search} HTTP/1.1\r\nHost: ${hostname}:${port}\r\nAccept: text/event-stream\r\n\r\n`,
  );
  return new RawClient(socket, options.read);
}

/** A connection to `url`'s server that sends nothing, as a browser's preconnect or a client's spare. */
export async function silentClient(url: string): Promise<RawClient> {
  const { hostname, port } = new URL(url);
  const socket = connect({ host: hostname, port: Number(port) });
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve).once('error', reject);
  });
  return new RawClient(socket, true);
}

export class RawClient {
  text = '';
  closed = false;
  readonly done: Promise<void>;

  constructor(
    readonly socket: Socket,
    read: boolean,
  ) {
    this.done = new Promise((resolve) => socket.once('close', () => resolve()));
    socket.once('close', () => {
      this.closed = true;
    });
    socket.on('error', () => {});
    if (read) this.resume();
    else socket.pause();
  }

  /** Reads from here on; again after a `socket.pause()`, without counting any byte twice. */
  resume(): void {
    if (this.socket.listenerCount('data') === 0) {
      this.socket.setEncoding('latin1');
      this.socket.on('data', (chunk: string) => {
        this.text += chunk;
      });
    }
    this.socket.resume();
  }

  destroy(): void {
    this.socket.destroy();
  }
}

/** Resolves once `check` returns true, polling; rejects after `timeout` ms. */
export async function waitFor(check: () => boolean, timeout = 10_000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeout;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

/**
 * {@link waitFor} for a test whose `setTimeout`, `Date` or `performance` are fake: it polls on Node's
 * own timers, and `timeout` counts its polls.
 */
export async function waitForReal(check: () => boolean, timeout = 10_000, what = 'condition'): Promise<void> {
  for (let waited = 0; !check(); waited += 5) {
    if (waited > timeout) throw new Error(`timed out waiting for ${what}`);
    await realSleep(5);
  }
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * Opens a TCP connection and writes `requests` as they are (several pipelined ones, a HEAD, ...),
 * for what `fetch` never sends.
 */
export async function rawRequests(url: string, requests: string[], read = true): Promise<RawClient> {
  const { hostname, port } = new URL(url);
  const socket = connect({ host: hostname, port: Number(port) });
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve).once('error', reject);
  });
  socket.write(requests.join(''));
  return new RawClient(socket, read);
}

/** One HTTP/1.1 request as raw text. */
export function httpRequest(method: string, path: string): string {
  return `${method} ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n`;
}

/**
 * Sends `request` on a new connection, then `garbage` once `after` has arrived; resolves with every
 * byte received until the server closes the connection.
 */
export function rawExchange(
  port: number,
  request: string,
  after: string,
  garbage = 'garbage \x00\r\n\r\n',
): Promise<string> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    let received = '';
    let sent = false;
    const sendGarbage = () => {
      if (sent || !received.includes(after)) return;
      sent = true;
      socket.write(garbage);
    };
    socket.on('data', (chunk) => {
      received += chunk.toString('latin1');
      sendGarbage();
    });
    // A reset after the bytes were read is the drop itself, not a failure of the exchange.
    socket.on('error', () => {});
    socket.on('close', () => resolve(received));
    socket.write(request);
    sendGarbage();
  });
}
