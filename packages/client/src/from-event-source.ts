import { Observable, type Subscriber } from 'rxjs';
import { reconnectDelay } from './backoff.js';
import type { EventContract, EventMap } from './contract.js';
import { SseEventError, SseResponseError, SseStallError } from './errors.js';
import { type EventOf, HISTORY_TRUNCATED, type HistoryTruncated, type SseEvent } from './events.js';
import { checkOptions, isObject, show } from './options.js';
import { createParser, type EventStreamParser, type ParsedEvent } from './parser.js';
import { checkResponse, MAX_DELAY, retryAfter } from './response.js';
import { sleep, whenVisible } from './wait.js';

type HeaderValues = NonNullable<RequestInit['headers']>;

/** Options of {@link fromEventSource}. Every option is optional. */
export interface EventSourceOptions<M extends object = EventMap> {
  /**
   * The event contract shared with the server route (see `defineEvents`): it types the events and
   * decodes each type's data as JSON or text. Without it, `data` is the text that arrived.
   */
  events?: EventContract<M> | undefined;
  /** @defaultValue 'GET' */
  method?: string | undefined;
  /** Sent with every (re)connect, so it must be re-readable: no `ReadableStream`. */
  body?: Exclude<RequestInit['body'], ReadableStream> | undefined;
  /**
   * Request headers, or a function that returns them, called again before every (re)connect: the
   * place to fetch a fresh token. One that rejects fails the attempt as a network failure does (it
   * is retried, and `onReconnect` gets its error), unless with an `AbortError`: the app's own signal
   * aborted it, and would abort every attempt, so the Observable ends with it, as it does with what
   * one that throws threw, and with a `TypeError` for one that returns anything but headers (`null`,
   * a string). One that has not settled within `stallTimeout` counts as a stall: it is called again
   * for the next attempt.
   */
  headers?: (HeaderValues | (() => HeaderValues | Promise<HeaderValues>)) | undefined;
  /** As in `fetch`; `'include'` sends cookies cross-origin. */
  credentials?: RequestInit['credentials'] | undefined;
  /**
   * The `fetch` to use. One that fails with an `AbortError` the client did not cause (a wrapper's own
   * signal) ends the Observable with it: a network failure is a `TypeError`, and is retried.
   * @defaultValue the global `fetch`
   */
  fetch?: typeof fetch | undefined;
  /**
   * Resume after this id on the first connect too (sent as `Last-Event-ID`); `null` for none, as
   * `localStorage.getItem` returns an id never stored. `''` is an id the stream cleared (an error's
   * `lastEventId` after an empty `id:`): no id is sent, neither a `Last-Event-ID` of the `headers`
   * option nor a `lastEventId` query parameter of the URL's own.
   */
  lastEventId?: string | null | undefined;
  /**
   * The base of the exponential backoff, in ms (1 or more), when the server sent no `retry:`.
   * @defaultValue 1000
   */
  retryDelay?: number | undefined;
  /** The longest backoff, in ms (1 or more). @defaultValue 30000 */
  maxRetryDelay?: number | undefined;
  /**
   * A connection that delivers no byte for this long (heartbeats count) is dead: it is aborted and
   * opened again. In ms (1 or more); `false` turns the check off.
   * @defaultValue 45000 (three of an rxsse server's default 15 s heartbeat intervals)
   */
  stallTimeout?: number | false | undefined;
  /**
   * Most characters one event may take (its type, the id it carries and its data, and the line being
   * read, which counts in place of an id or type it replaces; a comment counts nothing, nor does an id
   * outside an event, as a resume id while only heartbeats come) before the Observable ends with
   * `SseEventError`.
   * @defaultValue 16 Mi (2^24) characters
   */
  maxEventLength?: number | undefined;
  /** Reconnect while the tab is hidden, too. @defaultValue false: wait until it is visible again */
  resumeWhenHidden?: boolean | undefined;
  /**
   * Told before each reconnect why it happens (a network error, an `SseResponseError` for 408, 429
   * or 5xx, an `SseStallError`, or `undefined` when the stream ended) and how long it waits. If it
   * throws, or returns a promise that rejects, the Observable ends with its error.
   */
  onReconnect?: ((reason: unknown, delay: number) => void) | undefined;
}

/**
 * A cold Observable of a server-sent event stream, read with `fetch`. Subscribing connects;
 * unsubscribing aborts the request, and nothing is delivered afterwards. It reconnects with
 * `Last-Event-ID` after network errors, 408, 429, 5xx, stalls and ended streams (honouring
 * `Retry-After` and `retry:`, else exponential backoff), completes on 204, and errors with
 * `SseResponseError` on any other answer, and with `SseEventError` on an event the contract refuses
 * (either error's `lastEventId` is where a new subscription resumes).
 * @throws {TypeError} for a `url` that is not a string or a `URL`.
 * @throws {RangeError} naming a delay or `maxEventLength` that is not a number from 1.
 * @throws {TypeError} naming any other option of the wrong type (a `fetch` that is not a function...),
 * and options it does not know, such as a `signal`: unsubscribing stops it.
 *
 * @example
 * ```ts
 * const events$ = fromEventSource('/sse', {
 *   events, // defineEvents({ tick: json<{ n: number }>(), message: text }), shared with the route
 *   headers: async () => ({ authorization: `Bearer ${await token()}` }),
 * });
 * events$.subscribe((e) => { if (e.type === 'tick') console.log(e.data.n); });
 * ```
 */
export function fromEventSource<M extends object>(
  url: string | URL,
  options: EventSourceOptions<M> & { events: EventContract<M> },
): Observable<EventOf<M>>;
export function fromEventSource(
  url: string | URL,
  options?: EventSourceOptions,
): Observable<SseEvent | HistoryTruncated>;
export function fromEventSource<M extends object>(
  url: string | URL,
  options: EventSourceOptions<M>,
): Observable<EventOf<M> | SseEvent | HistoryTruncated>;
export function fromEventSource(
  url: string | URL,
  options: EventSourceOptions = {},
): Observable<SseEvent<string, unknown>> {
  // A page would resolve anything else as its text, "[object Request]", and ask that URL instead.
  if (typeof url !== 'string' && !(url instanceof URL))
    throw new TypeError(`url must be a string or a URL, got ${show(url)}`);
  checkOptions(options);
  return new Observable((subscriber) => {
    const stop = new AbortController();
    connect(url, options, subscriber, stop.signal).then(
      () => subscriber.complete(),
      (error) => subscriber.error(error),
    );
    return () => stop.abort();
  });
}

/** The connection loop: returns on 204 or unsubscribe, throws what ends the Observable. */
async function connect(
  url: string | URL,
  options: EventSourceOptions,
  subscriber: Subscriber<SseEvent<string, unknown>>,
  signal: AbortSignal,
): Promise<void> {
  const { events, stallTimeout = 45_000, maxEventLength = 16 * 2 ** 20 } = options;
  // A URL fetch cannot parse would fail every attempt: it ends the Observable instead (TypeError).
  const page = (globalThis as { location?: Location }).location;
  // Relative to the document's base URL (a <base> element's), as fetch and EventSource resolve it.
  const target = new URL(url, (globalThis as { document?: Document }).document?.baseURI ?? page?.href);
  // So would a scheme fetch answers with a network error (EventSource fails it): fetch reads data: and
  // blob:, and an app's webview may serve its page's own (tauri:, capacitor:), but not file:, which
  // browsers' fetch refuses on a page opened from a file too (a relative URL there is one).
  if (
    !/^(https?|data|blob):$/.test(target.protocol) &&
    (target.protocol === 'file:' || target.protocol !== page?.protocol)
  )
    throw new TypeError(`url must be http(s), got ${target.protocol}`);
  // So would a request fetch refuses whatever the server does (a body on GET, a URL with credentials,
  // a forbidden method): building it once throws the TypeError every attempt would be rejected with.
  new Request(target, {
    method: options.method,
    body: options.body,
    credentials: options.credentials,
  } as RequestInit);
  // `undefined` until the option or the stream sets one: a Last-Event-ID the headers option gives holds till
  // then. An empty one is set: an id the stream cleared, given back from an error's `lastEventId`.
  let lastEventId = options.lastEventId ?? undefined;
  let serverRetry: number | undefined;
  let attempt = 0;
  const deliver = ({ type, data, lastEventId: id }: ParsedEvent) => {
    // A callback that unsubscribed (take(1)) leaves the rest of its chunk unread: no contract's decode
    // runs for events no one gets. The throw unwinds the parser into the catch that sees the abort.
    if (signal.aborted) throw signal.reason;
    const decoded =
      type === HISTORY_TRUNCATED ? truncation(data) : events ? decode(events, type, data) : data;
    // Only an event proves the stream works: a server that sends a comment or a `retry:` and then
    // ends (one turning clients away, say) is failing, and is backed off as one that refuses.
    attempt = 0;
    subscriber.next({ type, data: decoded, id });
    // Unsubscribed as it took the chunk's last event: no read after the cancel, no stall timer.
    if (signal.aborted) throw signal.reason;
  };
  for (;;) {
    const connection = new AbortController();
    const abort = () => connection.abort();
    signal.addEventListener('abort', abort);
    let stalled: SseStallError | undefined;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const arm = () => {
      clearTimeout(timer);
      if (stallTimeout !== false)
        timer = setTimeout(
          () => {
            stalled = new SseStallError(stallTimeout);
            connection.abort();
          },
          // Past the longest wait a timer holds, it would fire at once and drop every connection.
          Math.min(stallTimeout, MAX_DELAY),
        );
    };
    let reason: unknown;
    let wait: number | undefined;
    let parser: EventStreamParser | undefined;
    let unusable: TypeError | undefined;
    let answer: unknown;
    let unread: ReadableStream | null | undefined;
    try {
      // From the headers on: a headers() that never settles (a token endpoint that hangs) is a stall.
      arm();
      // The attempt's answer is headers()'s until they come: one that rejects failed the attempt as
      // a fetch that rejects does (a token endpoint out of reach while the network is down), and is
      // retried; one that throws is broken, as is such a fetch.
      let given = options.headers;
      if (typeof given === 'function') {
        given = await abortable(
          () => (answer = (given as () => HeaderValues | Promise<HeaderValues>)()),
          connection.signal,
        );
        answer = undefined;
      }
      if (given !== undefined && !isObject(given))
        throw new TypeError(
          `headers() must return an object, an array of pairs or a Headers, got ${show(given)}`,
        );
      const headers = new Headers(given);
      headers.set('accept', 'text/event-stream');
      let request = target;
      if (lastEventId !== undefined) {
        // The id the client has, even an empty one (the stream cleared it), is the resume point, not one
        // the headers option gives; servers read the header before the query parameter.
        headers.delete('last-event-id');
        if (HEADER_SAFE.test(lastEventId)) headers.set('last-event-id', utf8Bytes(lastEventId));
        else {
          // A header would refuse (Node) or trim it, and resume from another id: the query parameter
          // servers read instead (rxsse routes and the EventSource polyfills' servers do) carries it whole.
          // An empty one (the stream cleared it) leaves none, not even the URL's own.
          request = withLastEventId(target, lastEventId);
        }
      }
      // The request has its whole stallTimeout, however long headers() took.
      arm();
      const response = (await abortable(
        () =>
          (answer = (options.fetch ?? fetch)(request, {
            method: options.method,
            body: options.body,
            headers,
            credentials: options.credentials,
            cache: 'no-store',
            signal: connection.signal,
          } as RequestInit)),
        connection.signal,
      )) as Response | undefined;
      // A wrapper that forgot its return would fail every attempt: it ends the Observable instead.
      if (typeof response?.status !== 'number' || typeof response.headers?.get !== 'function') {
        unusable = new TypeError(`fetch must resolve to a Response, got ${show(response)}`);
        throw unusable;
      }
      // Its headers are bytes too: a server slow to answer has its whole stallTimeout from them.
      arm();
      unread = response.body;
      const verdict = checkResponse(response);
      if (verdict === 'stop') return;
      if (verdict === 'retry') {
        reason = new SseResponseError(response);
        const { headers } = response;
        wait = retryAfter(headers.get('retry-after'), headers.get('date'), Date.now(), headers.get('age'));
      } else if (
        typeof response.body?.getReader === 'function' &&
        !response.body.locked &&
        !response.bodyUsed
      ) {
        parser = createParser(deliver, (ms) => (serverRetry = ms), lastEventId, maxEventLength);
        await read(response.body, parser, arm, connection.signal, (error) => (unusable = error));
      } else if (options.method?.toUpperCase() !== 'HEAD') {
        // A runtime whose fetch does not stream (React Native's), or gives a Node stream (node-fetch 2),
        // or a body a wrapper read (`bodyUsed`) or holds a reader of (`locked`), would be asked again
        // for good.
        unusable = new TypeError('fetch resolved an event stream without a readable body');
        throw unusable;
      }
    } catch (error) {
      if (signal.aborted) return;
      if (error instanceof SseResponseError || error instanceof SseEventError) {
        // Where a new subscription resumes (its lastEventId option) to miss and repeat nothing.
        const id = parser ? parser.lastEventId : lastEventId;
        // An empty one (the stream cleared it) too: given back, it sends no id, as a reconnect would.
        (error as { lastEventId?: string | undefined }).lastEventId = id;
        throw error;
      }
      // fetch rejects, it never throws: one that threw is broken and would throw at every attempt, as
      // would a headers() that threw or returned no headers. Nor does a network failure abort (fetch
      // rejects with a TypeError): an abort the client did not ask for is a wrapper's own signal,
      // which would abort every attempt. Set, `unusable` is what was thrown: a failure with no reason
      // (`undefined`, a body errored so) is retried as any other.
      if (
        unusable ||
        (answer === undefined && !stalled) ||
        (!connection.signal.aborted && (error as Error)?.name === 'AbortError')
      )
        throw error;
      reason = error;
    } finally {
      clearTimeout(timer);
      signal.removeEventListener('abort', abort);
      // Releases the socket of a response not read to its end (retry statuses, refused events).
      connection.abort();
      // A body the client reads has its resume point; one it does not (retry and stop statuses,
      // refusals) is cancelled too: a fetch that does not heed the abort would hold its connection for
      // good. `read` cancels one it reads.
      if (parser) lastEventId = parser.lastEventId;
      else release(unread);
      // One it stopped waiting for (a fetch that does not heed the abort) has its body let go when it answers.
      if (unread === undefined && answer !== undefined)
        Promise.resolve(answer)
          .then((late) => release((late as Response | undefined)?.body))
          .catch(() => {});
    }
    // Unsubscribed as a body ended (one abort does not cut, a mock's): there is no reconnect to tell of.
    if (signal.aborted) return;
    reason = stalled ?? reason;
    const delay = reconnectDelay({
      attempt: attempt++,
      retryAfter: wait,
      serverRetry,
      retryDelay: options.retryDelay ?? 1000,
      maxRetryDelay: options.maxRetryDelay ?? 30_000,
    });
    // One that is async and rejects ends the Observable as one that throws does, rather than leave an
    // unhandled rejection (which ends a Node process); it is not awaited, so it cannot hold the wait.
    Promise.resolve(options.onReconnect?.(reason, delay)).catch((error: unknown) => subscriber.error(error));
    await sleep(delay, signal);
    if (!options.resumeWhenHidden) await whenVisible(signal);
    if (signal.aborted) return;
  }
}

/**
 * `target` with `lastEventId` as its one `lastEventId` query parameter, or none for an empty one. The
 * rest of the query is kept byte for byte: `searchParams` would write it all again (`~` as `%7E`,
 * `%20` as `+`, `flag` as `flag=`), and a signed URL would fail its signature.
 */
function withLastEventId(target: URL, lastEventId: string): URL {
  const pairs = target.search ? target.search.slice(1).split('&') : [];
  const kept = pairs.filter((pair) => !new URLSearchParams(pair).has('lastEventId'));
  if (lastEventId === '' && kept.length === pairs.length) return target;
  if (lastEventId !== '') kept.push(String(new URLSearchParams({ lastEventId })));
  const request = new URL(target);
  request.search = kept.join('&');
  return request;
}

/** An id a header carries as it is: no control character, nor a space or tab at either end. */
const HEADER_SAFE = /^[^\x00-\x20\x7f](?:[^\x00-\x1f\x7f]*[^\x00-\x20\x7f])?$/;

/**
 * `text` as the byte string (one character per byte) of its UTF-8 encoding. A header value is a
 * byte string: an id past U+00FF would make `Headers` throw, and a Latin-1 one would leave as
 * Latin-1, where the spec and browsers send `Last-Event-ID` as UTF-8.
 */
function utf8Bytes(text: string): string {
  return Array.from(new TextEncoder().encode(text), (byte) => String.fromCharCode(byte)).join('');
}

/**
 * What `start` answers, or a rejection with the signal's reason as soon as it aborts: a fetch that
 * does not heed the signal may never settle, and a stall or an unsubscribe would wait on it for good.
 * Once the signal has aborted, `start` is not called: an unsubscribe as headers() settled would
 * otherwise still send the request, with a fetch that does not heed the signal.
 */
function abortable<T>(start: () => T, signal: AbortSignal): Promise<Awaited<T>> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason);
    signal.addEventListener('abort', () => reject(signal.reason));
    Promise.resolve(start()).then(resolve, reject);
  });
}

/**
 * Feeds `body` to `parser` until it ends or `signal` aborts; `onBytes` runs once each chunk is fed,
 * and `refuse` is given the error of a body that is not bytes, which ends the Observable.
 */
async function read(
  body: ReadableStream<Uint8Array>,
  parser: EventStreamParser,
  onBytes: () => void,
  signal: AbortSignal,
  refuse: (error: TypeError) => TypeError,
): Promise<void> {
  const reader = body.getReader();
  // Fetch errors its body on abort; a body it did not make is cancelled, and the read waits no more.
  // A fetch that does not heed the signal may answer after it aborted (unsubscribed, stalled): at once.
  let stop: (reason: unknown) => void = () => {};
  const cancel = () => {
    release(reader);
    stop(signal.reason);
  };
  if (signal.aborted) cancel();
  else signal.addEventListener('abort', cancel);
  const decoder = new TextDecoder();
  for (;;) {
    // A reader of a mock's own may never settle a read, cancelled or not: the abort ends the wait
    // (a stall would wait for good).
    const { done, value } = await new Promise<ReadableStreamReadResult<Uint8Array>>((resolve, reject) => {
      stop = reject;
      reader.read().then(resolve, reject);
    });
    if (done) return;
    let text: string | undefined;
    try {
      // `decode` takes undefined for no bytes: a mock's reader that never says done would be read on
      // for good, and keep the event loop too busy for any timer, the stall timer included.
      if (value !== undefined) text = decoder.decode(value, { stream: true });
    } catch {}
    // A mock's stream of strings, which Response hands on as it is, would fail every attempt.
    if (text === undefined)
      throw refuse(new TypeError('fetch resolved an event stream whose body is not bytes'));
    parser.feed(text);
    // After the subscriber had the chunk's events: the time it spent on them is not the server's.
    onBytes();
  }
}

/**
 * Cancels a body or its reader, whatever a fetch of the app's own made it: a mock's may have no
 * cancel, or one that throws or returns no promise, and an abort listener that throws ends a Node process.
 */
function release(stream: { cancel?: () => unknown } | null | undefined): void {
  try {
    Promise.resolve(stream?.cancel?.()).catch(() => {});
  } catch {}
}

/**
 * `contract.decode`, whatever a contract of the app's own throws as `SseEventError`: any other
 * error would pass for a network error, and the reconnect would resume past the event.
 */
function decode(contract: EventContract<EventMap>, type: string, data: string): unknown {
  try {
    return contract.decode(type, data);
  } catch (error) {
    if (error instanceof SseEventError) throw error;
    throw new SseEventError(type, 'has data the contract refused', { cause: error });
  }
}

/**
 * rxsse's truncation event always carries JSON, whatever the contract says, and is delivered only as
 * its type says: code that switches on `reason` or resumes from `lastEventId` cannot meet another.
 */
function truncation(data: string): HistoryTruncated['data'] {
  try {
    const value = JSON.parse(data);
    if (
      ['history', 'limit', 'gap'].includes(value?.reason) &&
      (value.lastEventId === null || typeof value.lastEventId === 'string')
    )
      return value;
  } catch {}
  throw new SseEventError(HISTORY_TRUNCATED, 'has data that is not a truncation notice');
}
