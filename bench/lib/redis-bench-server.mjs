// One app instance of the redis suite, forked by redis-bench-run.mjs with an IPC channel:
// node:http + @rxsse/node (no framework, so the numbers are the channel's), a channel per room on
// the engine named by ENGINE (`redis` or `memory`), and commands over IPC to publish at a rate,
// prefill a room and report its heap. Loopback only. Imports the BUILT packages.

import { randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import { createChannel, memoryEngine, resolveStreamOptions } from '@rxsse/core';
import { openEventStream } from '@rxsse/node';

const engine =
  process.env.ENGINE === 'redis'
    ? (await import('@rxsse/redis')).redisEngine({
        url: process.env.REDIS_URL,
        maxLength: 1_000_000,
      })
    : memoryEngine({ maxEvents: 1_000_000, maxBytes: 1 << 30 });

const channels = new Map();
/** One channel per room; replay limits high enough for the replay measurement. */
function channel(room) {
  let found = channels.get(room);
  if (!found) {
    found = createChannel(engine, room, { maxReplay: { events: 1_000_000, bytes: 1 << 30 } });
    channels.set(room, found);
  }
  return found;
}

const liveOptions = resolveStreamOptions({ heartbeat: false });
// A replay is queued for the client at once: the queue must hold all of it.
const replayOptions = resolveStreamOptions({ heartbeat: false, maxQueueBytes: 1 << 30 });

const server = createServer((req, res) => {
  const url = new URL(req.url ?? '/', 'http://127.0.0.1');
  const room = url.searchParams.get('room') ?? 'room-0';
  const options = url.pathname === '/replay' ? replayOptions : liveOptions;
  openEventStream(req, res, (context) => channel(room).subscribe(context), options).catch((error) => {
    res.statusCode = 500;
    res.end(String(error));
  });
});
server.keepAliveTimeout = 0;
server.listen(0, '127.0.0.1', () => process.send({ type: 'ready', port: server.address().port }));

/** Publishes `rate` events/s for `ms`, round-robin over `rooms`, each stamped with the monotonic clock. */
function publishAtRate({ rate, rooms, ms, size }) {
  return new Promise((resolve) => {
    const pad = 'x'.repeat(size);
    const start = performance.now();
    let published = 0;
    let stored = 0;
    let failed = 0;
    const tick = () => {
      const elapsed = performance.now() - start;
      // Catch up on whatever a late timer missed: the average rate holds even under load.
      const due = Math.min(Math.floor((elapsed * rate) / 1000), Math.floor((ms * rate) / 1000));
      for (; published < due; published++) {
        const room = rooms[published % rooms.length];
        const data = `t=${Number(process.hrtime.bigint())};${pad}`;
        channel(room)
          .publish({ data })
          .then(
            () => stored++,
            () => failed++,
          );
      }
      if (elapsed < ms) setTimeout(tick, 5);
      else setTimeout(() => resolve({ published, stored, failed, seconds: elapsed / 1000 }), 200);
    };
    tick();
  });
}

/**
 * Stores `count` events of `size` bytes in `room`, up to 256 in flight; resolves to the first id.
 * Each payload is its own string, as real messages are, so memory per event counts its bytes.
 */
async function prefill({ room, count, size }) {
  const target = channel(room);
  const payload = () => randomBytes(size / 2).toString('hex');
  const first = await target.publish({ data: payload() });
  for (let sent = 1; sent < count; ) {
    const batch = [];
    for (let i = 0; i < 256 && sent < count; i++, sent++) batch.push(target.publish({ data: payload() }));
    await Promise.all(batch);
  }
  return { first };
}

function heapUsed() {
  globalThis.gc?.();
  globalThis.gc?.();
  return process.memoryUsage().heapUsed;
}

const commands = { publishAtRate, prefill, heapUsed };

process.on('message', async ({ id, command, args }) => {
  try {
    process.send({ type: 'reply', id, result: await commands[command](args) });
  } catch (error) {
    process.send({ type: 'reply', id, error: String(error?.stack ?? error) });
  }
});
process.on('disconnect', async () => {
  server.closeAllConnections();
  server.close();
  await engine.close();
  process.exit(0);
});
