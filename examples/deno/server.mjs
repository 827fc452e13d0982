// rxsse on Deno: `deno run --unstable-no-legacy-abort --allow-net=127.0.0.1 --allow-read --allow-env server.mjs`
// serves http://127.0.0.1:3007/ (PORT overrides). The flag makes request.signal abort only when the
// client leaves, not after every complete response (which Deno warns of).
import { openStreams } from '@rxsse/core';
import { sse } from '@rxsse/web';
import { interval, map } from 'rxjs';
import { exampleEvent, firstEventNumber, page, portFromEnv } from '../shared.mjs';

// One event a second. A reconnecting EventSource sends the last id it saw, so it resumes after it.
const events = sse((_request, { lastEventId }) => {
  const first = firstEventNumber(lastEventId);
  return interval(1000).pipe(map((i) => exampleEvent(first + i)));
});

const html = page('Deno');

const server = Deno.serve({ port: portFromEnv(3007), hostname: '127.0.0.1' }, (request) => {
  const { pathname } = new URL(request.url);
  if (pathname === '/sse') return events(request);
  if (pathname === '/')
    return new Response(html, { headers: { 'content-type': 'text/html; charset=utf-8' } });
  return new Response('not found', { status: 404 });
});

// Ctrl-C: end the streams first (clients come back within 1-3 s, elsewhere), then stop.
Deno.addSignalListener('SIGINT', async () => {
  await Promise.all([openStreams.close({ retry: 1000, spread: 2000 }), server.shutdown()]);
  Deno.exit(0);
});
