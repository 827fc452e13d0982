// The routes the Bun and Deno suites serve: the same route code on every runtime, with a ledger
// the tests read over HTTP, since the server lives in another process.
import {
  allStreams,
  type CloseReason,
  openStreams,
  StreamGroup,
  type StreamOptions,
  serverStreams,
  streamEvents,
} from '@rxsse/core';
import { createChannel, memoryEngine } from '@rxsse/core/channel';
import { concat, from, interval, map, NEVER, Observable, take } from 'rxjs';
import { notingMetrics } from '../../../../test/support/recording.js';
import { HOSTILE_MESSAGES } from '../../../../test/wire/hostile-messages.js';
import { closeStreamsAndStop, sse, WebSink } from '../../src/index.js';

export interface Closed {
  path: string;
  reason: CloseReason;
  peakQueuedBytes: number;
}

export const QUEUE_CAP = 1024 * 1024;

/** What the runtime's server hands the routes: a full collection, and the bytes it holds then. */
export interface RuntimeMemory {
  gc(): void;
  used(): number;
}

/** What the metrics hooks of a metered route reported: `opened`, `closed:<reason>`, `failed`. */
export interface Seen {
  path: string;
  seen: string;
}

/** The streams held now: the `/half-close` route's own group, the process's, and all of them. */
export interface Held {
  group: number;
  open: number;
  server: number;
  all: number;
}

/**
 * Every route's fetch handler, and the ledger's: `/closes`, `/seen`, `/held`, `/active`, `/waiting`,
 * `/memory`, `/publish`; `/shutdown` runs `closeStreamsAndStop` with the runtime's `stop` and a 2 s
 * deadline, and prints `stopped`.
 */
export function runtimeRoutes(
  memory: RuntimeMemory,
  stop: () => Promise<void>,
): (request: Request) => Promise<Response> {
  const closes: Closed[] = [];
  let active = 0;
  // `/late` handlers resolve once a shutdown aborted their signal; `/pending` ones ignore it, and
  // never settle.
  let waiting = 0;
  // `/unsettled` handlers never settle either, whatever their signal says: their signals, and how
  // many of their requests the fetch handler answered.
  const unsettled = { signals: [] as AbortSignal[], answered: 0 };
  const recorded = (path: string, options: StreamOptions = {}): StreamOptions => ({
    ...options,
    onClose: (reason, stats) => closes.push({ path, reason, peakQueuedBytes: stats.peakQueuedBytes }),
  });
  const seen: Seen[] = [];
  /** `recorded`, with metrics hooks that note what they report in `seen`. */
  const metered = (path: string, options: StreamOptions = {}): StreamOptions =>
    recorded(path, { ...options, metrics: notingMetrics((hook) => seen.push({ path, seen: hook })) });
  const halfCloseGroup = new StreamGroup();
  const counted = <T>(source: Observable<T>) =>
    new Observable<T>((subscriber) => {
      active++;
      const inner = source.subscribe(subscriber);
      return () => {
        active--;
        inner.unsubscribe();
      };
    });
  const kib = (n: number) => 'x'.repeat(1024 * n - 8);
  const chat = createChannel(memoryEngine(), 'chat');
  const routes: Record<string, (request: Request) => Promise<Response>> = {
    '/hostile': sse(
      () => from(HOSTILE_MESSAGES),
      recorded('/hostile', { headers: { Connection: 'keep-alive' } }),
    ),
    '/hostile-open': sse(() => concat(from(HOSTILE_MESSAGES), NEVER)),
    '/ticks': sse(() => counted(interval(5).pipe(map((n) => ({ data: String(n) })))), recorded('/ticks')),
    // Writes on after the client's FIN, more than a client that stops reading takes.
    '/half-close': sse(
      () => counted(concat(from([{ data: 'hi' }]), interval(5).pipe(map(() => ({ data: kib(16) }))))),
      metered('/half-close', { group: halfCloseGroup }),
    ),
    '/metered-ticks': sse(
      () => counted(interval(5).pipe(map((n) => ({ data: String(n) })))),
      metered('/metered-ticks'),
    ),
    // Events of 256 KiB, each handed to the runtime in four pieces, as fast as the client takes them:
    // pulled while it has room, so a client slower than the source (a loaded machine) meets no
    // overflow before it leaves.
    '/large-ticks': sse(
      async function* () {
        for (;;) yield { data: kib(256) };
      },
      recorded('/large-ticks', { stallTimeout: false }),
    ),
    '/flood': sse(
      () => interval(1).pipe(map(() => ({ data: kib(64) }))),
      recorded('/flood', { maxQueueBytes: 256 * 1024, stallTimeout: false }),
    ),
    '/stall': sse(
      () => concat(from(Array.from({ length: 400 }, () => ({ data: kib(64) }))), NEVER),
      recorded('/stall', { stallTimeout: 300, maxQueueBytes: 64 * 1024 * 1024 }),
    ),
    // Some 25 MB at once, more than the runtime and the socket take: a client that reads nothing
    // leaves this stream full until the shutdown deadline drops it.
    '/stuck': sse(
      () => counted(concat(from(Array.from({ length: 400 }, () => ({ data: kib(64) }))), NEVER)),
      recorded('/stuck', { stallTimeout: false, maxQueueBytes: 64 * 1024 * 1024 }),
    ),
    '/drop': sse(
      () => interval(1).pipe(map(() => ({ data: kib(16) }))),
      recorded('/drop', { maxQueueBytes: QUEUE_CAP, onOverflow: 'drop-oldest', stallTimeout: false }),
    ),
    '/busy-then-idle': sse(
      () =>
        concat(
          interval(30).pipe(
            take(40),
            map((n) => ({ data: String(n) })),
          ),
          NEVER,
        ),
      { heartbeat: 400 },
    ),
    '/quiet': sse(() => concat(from([{ data: 'hello' }]), NEVER)),
    // A route's own group, which nobody but the server's shutdown closes.
    '/quiet-own-group': sse(() => concat(from([{ data: 'hello' }]), NEVER), { group: new StreamGroup() }),
    '/quiet-without-heartbeats': sse(() => concat(from([{ data: 'hello' }]), NEVER), { heartbeat: false }),
    '/late': sse(async (_request, { signal }) => {
      waiting++;
      await new Promise((resolve) => signal.addEventListener('abort', resolve, { once: true }));
      return counted(interval(5).pipe(map((n) => ({ data: String(n) }))));
    }),
    '/pending': sse(() => {
      waiting++;
      return new Promise<never>(() => {});
    }),
    '/unsettled': answered(
      sse((_request, { signal }) => {
        unsettled.signals.push(signal);
        return new Promise<never>(() => {});
      }, recorded('/unsettled')),
      () => unsettled.answered++,
    ),
    // A transport of its own over the sink, as an author who does not go through sse() writes it.
    '/own-sink': async (request) => {
      const sink = new WebSink(request);
      streamEvents(counted(interval(5).pipe(map((n) => ({ data: String(n) })))), sink, recorded('/own-sink'));
      return sink.response;
    },
    '/last-id': sse((_request, { lastEventId }) => from([{ data: lastEventId ?? '(none)' }])),
    '/chat': sse(async (_request, context) => (await chat.subscribe(context)).pipe(take(1)), { retry: 50 }),
  };
  const json = (value: unknown) =>
    new Response(JSON.stringify(value), { headers: { 'content-type': 'application/json' } });
  return async (request) => {
    const path = new URL(request.url).pathname;
    if (path === '/closes') return json(closes);
    if (path === '/seen') return json(seen);
    if (path === '/held') {
      const held: Held = {
        group: halfCloseGroup.size,
        open: openStreams.size,
        server: serverStreams().size,
        all: allStreams.size,
      };
      return json(held);
    }
    if (path === '/active') return json(active);
    if (path === '/waiting') return json(waiting);
    if (path === '/unsettled/ledger') {
      const { signals, answered } = unsettled;
      return json({ started: signals.length, aborted: signals.filter((s) => s.aborted).length, answered });
    }
    if (path === '/shutdown') {
      // A deadline of 2 s, not the default 5 s: still well inside Bun's 10 s idle timeout, which a
      // stop that missed the deadline would wait for, and 3 s less to wait in every runtime's run.
      void closeStreamsAndStop(stop, { retry: 1000, deadline: 2000 }).then(() => console.log('stopped'));
      return json('stopping');
    }
    if (path === '/memory') {
      memory.gc();
      return json(memory.used());
    }
    if (path === '/publish') {
      const { data } = (await request.json()) as { data: string };
      return json(await chat.publish({ data }));
    }
    const route = routes[path];
    return route ? route(request) : new Response('not found', { status: 404 });
  };
}

/** `handler`, calling `settled` once the promise it returns settles: the runtime's answer is ready. */
function answered(
  handler: (request: Request) => Promise<Response>,
  settled: () => void,
): (request: Request) => Promise<Response> {
  return (request) => handler(request).finally(settled);
}
