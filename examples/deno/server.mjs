// rxsse on Deno: `deno run --unstable-no-legacy-abort --allow-net=127.0.0.1 --allow-read --allow-env server.mjs`
// serves http://127.0.0.1:3007/ (PORT overrides). The flag makes request.signal abort only when the
// client leaves, not after every complete response (which Deno warns of).
import { closeStreamsAndStop, sse } from '@rxsse/web';
import { interval, map } from 'rxjs';
import { exampleEvent, firstEventNumber, page, portFromEnv } from '../shared.mjs';

// One event a second. A reconnecting EventSource sends the last id it saw, so it resumes after it.
const events = sse((_request, { lastEventId }) => {
  const first = firstEventNumber(lastEventId);
  return interval(1000).pipe(map((i) => exampleEvent(first + i)));
});

const html = page('Deno');

const listening = {
  port: portFromEnv(3007),
  hostname: '127.0.0.1',
  onListen: ({ port }) => console.log(`http://127.0.0.1:${port}/`),
};

// Aborting it closes the server and every connection, at the end of a shutdown.
const controller = new AbortController();

const server = Deno.serve({ ...listening, signal: controller.signal }, (request) => {
  const { pathname } = new URL(request.url);
  if (pathname === '/sse') return events(request);
  if (pathname === '/')
    return new Response(html, { headers: { 'content-type': 'text/html; charset=utf-8' } });
  return new Response('not found', { status: 404 });
});

// Ctrl-C or SIGTERM: end the streams first (clients come back within 1-3 s, elsewhere), then stop.
// A stream dropped at the deadline (its client reads nothing) keeps its connection until the client
// reads, which server.shutdown() waits for, for good: a second on, abort the server instead.
const stop = async () => {
  await closeStreamsAndStop(
    async () => {
      await new Promise((resolve) => setTimeout(resolve, 1000));
      controller.abort();
      await server.finished;
    },
    { retry: 1000, spread: 2000 },
  );
  Deno.exit(0);
};
Deno.addSignalListener('SIGINT', stop);
Deno.addSignalListener('SIGTERM', stop);
