// The Bun contenders, run by Bun: `bun.mjs rxsse|hand`. Both serve the burst and fan-out routes with
// Bun.serve; `rxsse` through @rxsse/web, `hand` as one writes it by hand, a ReadableStream that
// enqueues each event as it comes. No stalled client: Bun.serve tells no socket's close.

import { sse } from '@rxsse/web';
import { queryN, ROUTES, serve } from './common.mjs';

const encoder = new TextEncoder();
const HEADERS = { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' };

/** A hand-written event stream: every event enqueued at once, the client gone at cancel(). */
function handStream(source) {
  let subscription;
  const body = new ReadableStream({
    start(controller) {
      subscription = source.subscribe({
        next: (m) => controller.enqueue(encoder.encode(`data: ${JSON.stringify(m.data)}\n\n`)),
        complete: () => controller.close(),
      });
    },
    cancel() {
      subscription?.unsubscribe();
    },
  });
  return new Response(body, { headers: HEADERS });
}

const routes = {};
for (const { path, source, options } of ROUTES.filter((route) => route.path !== '/stall')) {
  const events = (request) => source(queryN(request.url));
  routes[path] =
    process.argv[2] === 'rxsse' ? sse(events, options) : async (request) => handStream(events(request));
}

const server = Bun.serve({
  port: 0,
  hostname: '127.0.0.1',
  fetch(request) {
    const route = routes[new URL(request.url).pathname];
    return route ? route(request) : new Response('not found', { status: 404 });
  },
});
serve({ port: server.port });
