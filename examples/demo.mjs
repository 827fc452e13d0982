// Starts the Express, Fastify and Koa examples side by side: `pnpm run demo:start` from the repo
// root (it builds the packages first). Ports 3001, 3002 and 3003; PORT_BASE=4000 moves them to
// 4001, 4002 and 4003. Ctrl-C (or SIGTERM) stops all three.
import * as expressExample from './express/server.mjs';
import * as fastifyExample from './fastify/server.mjs';
import * as koaExample from './koa/server.mjs';

const examples = [
  ['Express', expressExample],
  ['Fastify', fastifyExample],
  ['Koa', koaExample],
];

const base = process.env.PORT_BASE ? Number(process.env.PORT_BASE) : undefined;
if (base !== undefined && !(Number.isInteger(base) && base >= 0 && base <= 65532)) {
  console.error(`PORT_BASE must be a port number, not ${JSON.stringify(process.env.PORT_BASE)}`);
  process.exit(1);
}

/** @type {{ url: string; close(): Promise<void> }[]} */
const running = [];
let stopping = false;

async function stop(code) {
  if (stopping) return;
  stopping = true;
  const results = await Promise.allSettled(running.map((server) => server.close()));
  for (const result of results) {
    if (result.status === 'rejected') console.error('while stopping:', result.reason);
  }
  process.exit(code);
}

for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => {
    // A second Ctrl-C while the servers close means "now".
    if (stopping) process.exit(130);
    console.log('\nstopping…');
    stop(0);
  });
}

try {
  for (const [index, [name, example]] of examples.entries()) {
    const port = base === undefined ? example.DEFAULT_PORT : base + index + 1;
    const server = await example.start(port);
    running.push(server);
    console.log(`${name.padEnd(8)} ${server.url}`);
  }
} catch (error) {
  console.error(`could not start the examples: ${error instanceof Error ? error.message : error}`);
  await stop(1);
}

console.log('\nEach page shows its /sse stream live. Ctrl-C to stop.');
