// Starts the chat twice, as two processes on one Redis: Express on 3011 and Fastify on 3012.
// `node start.mjs` from this folder (build the packages first: `npx -y pnpm@10.34.8 build`).
// Needs a Redis at REDIS_URL (default redis://127.0.0.1:6379), e.g. `redis-server --save ''`.
// Kill one instance (its pid is printed) and the open pages move to the other without losing a
// message; start it again with `PORT=3011 node express-server.mjs`. Ctrl-C stops both.
import { spawn } from 'node:child_process';
import { connect } from 'node:net';
import { REDIS_URL } from './chat.mjs';

const { hostname, port } = new URL(REDIS_URL);
const reachable = await new Promise((resolve) => {
  const socket = connect({ host: hostname || '127.0.0.1', port: Number(port || 6379) });
  socket.once('connect', () => resolve(socket.end() && true)).once('error', () => resolve(false));
});
if (!reachable) {
  console.error(`No Redis at ${REDIS_URL}. Start one (redis-server --save '') or set REDIS_URL.`);
  process.exit(1);
}

const instances = [
  ['Express', 'express-server.mjs', 3011],
  ['Fastify', 'fastify-server.mjs', 3012],
];
const env = {
  ...process.env,
  REDIS_URL,
  CHAT_INSTANCES: instances.map(([, , p]) => `http://127.0.0.1:${p}`).join(','),
};
const children = instances.map(([name, script, p]) => {
  const child = spawn(process.execPath, [new URL(script, import.meta.url).pathname], {
    env: { ...env, PORT: String(p) },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  console.log(`${name}: http://127.0.0.1:${p}/  (pid ${child.pid}: \`kill ${child.pid}\` to stop it)`);
  child.on('exit', (code, signal) => console.log(`${name} exited (${signal ?? code})`));
  return child;
});

let stopping = false;
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => {
    if (stopping) process.exit(130);
    stopping = true;
    for (const child of children) if (child.exitCode === null) child.kill('SIGTERM');
    Promise.all(
      children.map((child) => child.exitCode !== null || new Promise((r) => child.once('exit', r))),
    ).then(() => process.exit(0));
  });
}
