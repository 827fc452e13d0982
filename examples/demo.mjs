// Starts the Express, Fastify, Koa, NestJS and Hono (Node) examples side by side: `pnpm run
// demo:start` from the repo root (it builds the packages first). Ports 3001 to 3005; PORT_BASE=4000
// moves them to 4001 to 4005. Ctrl-C (or SIGTERM) stops them all.
import * as expressExample from './express/server.mjs';
import * as fastifyExample from './fastify/server.mjs';
import * as honoExample from './hono/server.mjs';
import * as koaExample from './koa/server.mjs';
import * as nestExample from './nestjs/server.mjs';

const examples = [
  ['Express', expressExample],
  ['Fastify', fastifyExample],
  ['Koa', koaExample],
  ['NestJS', nestExample],
  ['Hono', honoExample],
];

const base = process.env.PORT_BASE ? Number(process.env.PORT_BASE) : undefined;
if (base !== undefined && !(Number.isInteger(base) && base >= 0 && base <= 65531)) {
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
