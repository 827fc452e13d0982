// What the three example servers share: the events of GET /sse and the page of GET /.
// Nothing here imports a framework or rxjs, so each server.mjs shows its own adapter in full.
import { readFileSync, realpathSync } from 'node:fs';
import { pathToFileURL } from 'node:url';

/**
 * The number of the first event to send: 1 on a first connection, or the one after the id the
 * client last saw when it reconnects (EventSource sends it as `Last-Event-ID`).
 * @param {string | undefined} lastEventId
 */
export function firstEventNumber(lastEventId) {
  return lastEventId !== undefined && /^\d{1,15}$/.test(lastEventId) ? Number(lastEventId) + 1 : 1;
}

/**
 * Event number `n`: every event has an id, and every 3rd one is a named `tick` event (the page
 * listens for it with `addEventListener('tick')`); the others are plain `message` events.
 * @param {number} n
 * @returns {{ id: string; type?: string; data: object }}
 */
export function exampleEvent(n) {
  const id = String(n);
  if (n % 3 === 0) return { id, type: 'tick', data: { n, at: new Date().toISOString() } };
  return { id, data: { hello: 'world', n } };
}

const template = readFileSync(new URL('./page.html', import.meta.url), 'utf8');

/**
 * The demo page, naming the framework that served it.
 * @param {string} framework
 */
export function page(framework) {
  return template.replaceAll('{{framework}}', framework);
}

/**
 * Listens on 127.0.0.1:`port` (0 picks a free port) and resolves to the server's URL and its
 * `close()`. The server must have its streams wired to close with it (closeStreamsOnServerClose).
 * @param {import('node:http').Server} server
 * @param {number} port
 */
export function listen(server, port) {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => {
      server.off('error', reject);
      resolve({ url: serverUrl(server), close: () => closeServer(server) });
    });
  });
}

/** `http://127.0.0.1:<port>/` of a listening server. */
export function serverUrl(server) {
  const address = server.address();
  return `http://127.0.0.1:${typeof address === 'object' && address ? address.port : address}/`;
}

function closeServer(server) {
  return new Promise((resolve, reject) => {
    server.close((error) => (error ? reject(error) : resolve()));
  });
}

/** The port a server listens on when run directly: `PORT` if set, else its own default. */
export function portFromEnv(fallback) {
  const port = process.env.PORT;
  return port ? Number(port) : fallback;
}

/**
 * Whether the module with this `import.meta.url` is the one Node was asked to run
 * (`node server.mjs`), rather than one imported by the demo or a test.
 * @param {string} moduleUrl
 */
export function isMain(moduleUrl) {
  const entry = process.argv[1];
  if (!entry) return false;
  try {
    return pathToFileURL(realpathSync(entry)).href === moduleUrl;
  } catch {
    return false;
  }
}

/**
 * Starts `start(port)` on the port from the environment, prints its URL, and stops it on
 * Ctrl-C or SIGTERM.
 * @param {(port: number) => Promise<{ url: string; close(): Promise<void> }>} start
 * @param {number} defaultPort
 */
export async function runMain(start, defaultPort) {
  let server;
  try {
    server = await start(portFromEnv(defaultPort));
  } catch (error) {
    console.error(`could not start: ${error instanceof Error ? error.message : error}`);
    process.exit(1);
  }
  console.log(server.url);
  const stop = () => {
    server.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}
