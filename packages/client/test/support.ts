import { once } from 'node:events';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { closeStreamsOnServerClose } from '@rxsse/express';
import type { Observable, Subscription } from 'rxjs';

/** A server listening on 127.0.0.1, and how to close it (ending its event streams first). */
export interface Listening {
  url: string;
  close(): Promise<void>;
}

/** Listens on 127.0.0.1:`port` (0: any free port). Express, Nest or plain `node:http` servers alike. */
export async function listen(server: Server, port = 0): Promise<Listening> {
  server.listen(port, '127.0.0.1');
  await once(server, 'listening');
  closeStreamsOnServerClose(server);
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/**
 * The real `fetch`, counting its calls and keeping each request's headers and options: the client's
 * `fetch` option, so tests can tell exactly when a reconnect started.
 */
export function countingFetch() {
  const requests: Headers[] = [];
  const inits: RequestInit[] = [];
  return {
    requests,
    inits,
    fetch: ((input: RequestInfo | URL, init?: RequestInit) => {
      requests.push(new Headers(init?.headers));
      inits.push({ ...init });
      return fetch(input, init);
    }) as typeof fetch,
  };
}

/**
 * The real `fetch` behind a wrapper that drops the abort signal (a cache, a retry helper), so only
 * the client can let go of what it answers. Made `held`, it answers once `release()` is called;
 * `answered` counts its answers.
 */
export function deafFetch({ held = false } = {}) {
  let release = () => {};
  const gate = held ? new Promise<void>((resolve) => (release = resolve)) : undefined;
  const state = {
    answered: 0,
    release: () => release(),
    fetch: (async (input: RequestInfo | URL, init?: RequestInit) => {
      const response = await fetch(input, { ...init, signal: null });
      await gate;
      state.answered++;
      return response;
    }) as typeof fetch,
  };
  return state;
}

/** Everything a subscription delivered, and how it ended. */
export function record<T>(source: Observable<T>) {
  const state = {
    values: [] as T[],
    error: undefined as unknown,
    completed: false,
    subscription: undefined as unknown as Subscription,
  };
  state.subscription = source.subscribe({
    next: (value) => state.values.push(value),
    error: (error) => {
      state.error = error;
    },
    complete: () => {
      state.completed = true;
    },
  });
  return state;
}

// Taken before any test fakes timers. (vi.waitFor would advance fake timers while it polls.)
const realSetTimeout = globalThis.setTimeout;

/** Polls `check` on real timers until it holds; fake timers in a test are left where they are. */
export async function until(check: () => boolean, what: string, timeout = 10_000): Promise<void> {
  const deadline = performance.now() + timeout;
  while (!check()) {
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => realSetTimeout(resolve, 5));
  }
}

/**
 * An event stream's `Response` whose body is exactly `chunks`, each a read of its own, as a network
 * may cut a body: a real server's writes reach `fetch` joined or split as the network sees fit, so a
 * test that means a cut feeds it through the client's `fetch` option. Strings go as UTF-8. The body
 * stays open after the last chunk, as a stream the server has not ended, unless `end`.
 */
export function chunkedResponse(chunks: (string | Uint8Array)[], { end = false } = {}): Response {
  const utf8 = new TextEncoder();
  return new Response(
    new ReadableStream<Uint8Array>({
      start(controller) {
        for (const chunk of chunks)
          controller.enqueue(typeof chunk === 'string' ? utf8.encode(chunk) : chunk);
        if (end) controller.close();
      },
    }),
    { headers: { 'content-type': 'text/event-stream' } },
  );
}
