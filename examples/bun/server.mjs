// rxsse on Bun: `bun server.mjs` serves http://127.0.0.1:3006/ (PORT overrides).
import { closeStreamsAndStop, sse } from '@rxsse/web';
import { interval, map } from 'rxjs';
import { exampleEvent, firstEventNumber, page, portFromEnv } from '../shared.mjs';

// One event a second. A reconnecting EventSource sends the last id it saw, so it resumes after it.
// The default 4 s heartbeat keeps a quiet stream inside Bun's 10 s idle timeout.
const events = sse((_request, { lastEventId }) => {
  const first = firstEventNumber(lastEventId);
  return interval(1000).pipe(map((i) => exampleEvent(first + i)));
});

const html = page('Bun');

const server = Bun.serve({
  port: portFromEnv(3006),
  hostname: '127.0.0.1',
  fetch(request) {
    const { pathname } = new URL(request.url);
    if (pathname === '/sse') return events(request);
    if (pathname === '/')
      return new Response(html, { headers: { 'content-type': 'text/html; charset=utf-8' } });
    return new Response('not found', { status: 404 });
  },
});
console.log(server.url.href);

// Ctrl-C or SIGTERM: end the streams first (clients come back within 1-3 s, elsewhere), then stop.
// A stream dropped at the deadline (its client reads nothing) keeps its connection until Bun's
// idleTimeout, which a graceful stop waits for: a second on, cut what is left.
const stop = async () => {
  await closeStreamsAndStop(
    async () => {
      setTimeout(() => server.stop(true), 1000);
      await server.stop();
    },
    { retry: 1000, spread: 2000 },
  );
  process.exit(0);
};
process.once('SIGINT', stop);
process.once('SIGTERM', stop);
