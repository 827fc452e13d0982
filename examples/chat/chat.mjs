// What both chat instances share: the Redis engine, the channel, message checks and the page.
// Switching `redisEngine(...)` for `memoryEngine()` (from @rxsse/core) runs the same chat in one
// process: the engine is the only line that knows about Redis.
import { readFileSync } from 'node:fs';
import { createChannel } from '@rxsse/core/channel';
import { redisEngine } from '@rxsse/redis';

export const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

/** Base URLs of every instance, for the page to fail over to. */
export const INSTANCES = (process.env.CHAT_INSTANCES ?? 'http://127.0.0.1:3011,http://127.0.0.1:3012')
  .split(',')
  .map((url) => url.trim().replace(/\/$/, ''));

export const engine = redisEngine({
  url: REDIS_URL,
  maxLength: 1000,
  onError: (error) => console.error(`redis: ${error instanceof Error ? error.message : error}`),
});

/** The room: every instance's clients see every message, and a reconnecting page misses none. */
export const room = createChannel(engine, 'chat', { maxReplay: { events: 500 } });

/** Stream options: any page origin may listen (instances are different origins), reconnect fast. */
export const streamOptions = { headers: { 'Access-Control-Allow-Origin': '*' }, retry: 1000 };

/**
 * Publishes a message posted as JSON `{ name, text }` (sent as text/plain, so no CORS preflight).
 * Resolves to `[status, body]`.
 * @param {unknown} body
 * @param {string} via which instance took the post
 */
export async function post(body, via) {
  let message;
  try {
    message = typeof body === 'string' ? JSON.parse(body) : body;
  } catch {
    return [400, { error: 'expected JSON { name, text }' }];
  }
  const name =
    String(message?.name ?? '')
      .trim()
      .slice(0, 40) || 'anonymous';
  const text = String(message?.text ?? '')
    .trim()
    .slice(0, 2000);
  if (!text) return [400, { error: 'empty message' }];
  try {
    const id = await room.publish({ type: 'chat', data: { name, text, via, at: Date.now() } });
    return [200, { id }];
  } catch (error) {
    // Redis is down: say so, the page keeps the text and the user can send it again.
    return [503, { error: error instanceof Error ? error.message : String(error) }];
  }
}

const template = readFileSync(new URL('./page.html', import.meta.url), 'utf8');

/**
 * The page, served by instance `self` (its base URL), which it tries first.
 * @param {string} framework
 * @param {string} self
 */
export function page(framework, self) {
  const instances = [self, ...INSTANCES.filter((url) => url !== self)];
  return template
    .replaceAll('{{framework}}', framework)
    .replace('{{instances}}', JSON.stringify(instances).replaceAll('&', '&amp;').replaceAll('"', '&quot;'));
}

/** Closes the engine's Redis connections once the server is closed. */
export async function closeAll(server) {
  await server.close();
  await engine.close();
}
