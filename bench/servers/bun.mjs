// The Bun suite's servers, run by Bun: `bun servers/bun.mjs rxsse|hand`. Both serve the stream
// suite's routes with Bun.serve; `rxsse` through @rxsse/web, `hand` as one would write it by hand,
// a ReadableStream that enqueues each event as it comes. The parent drives them over HTTP
// (`/subscribers`, `/emit?count=&batch=`), since a Bun child has no Node IPC channel here. The
// first line printed is the port.

import { sse } from '@rxsse/web';
import { burstSource, emitFanout, fanout, queryNumber } from './common.mjs';
import { BURST_OPTIONS } from './rxsse-options.mjs';

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

const routes =
  process.argv[2] === 'rxsse'
    ? {
        '/burst': sse((request) => burstSource(queryNumber(request.url, 'n')), BURST_OPTIONS),
        '/fanout': sse(() => fanout),
      }
    : {
        '/burst': async (request) => handStream(burstSource(queryNumber(request.url, 'n'))),
        '/fanout': async () => handStream(fanout),
      };

const server = Bun.serve({
  port: 0,
  hostname: '127.0.0.1',
  async fetch(request) {
    const url = new URL(request.url);
    if (url.pathname === '/subscribers') return Response.json(fanout.observers.length);
    if (url.pathname === '/emit') {
      await emitFanout(queryNumber(request.url, 'count'), queryNumber(request.url, 'batch'));
      return Response.json(true);
    }
    const route = routes[url.pathname];
    return route ? route(request) : new Response('not found', { status: 404 });
  },
});
console.log(server.port);
