// examples/chat in a real browser: two instances on one Redis, one is killed, the page moves to the
// other and misses nothing. The example imports the built packages.
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { withBrowser } from '../../../test/support/browser.js';
import { type Child, freePort, startChild } from '../../../test/support/processes.js';
import { assertBuilt } from './support/apps.js';
import { useRedis } from './support/use-redis.js';

const redis = useRedis();
const instances: { child: Child; url: string }[] = [];

beforeAll(async () => {
  assertBuilt();
  const ports = [await freePort(), await freePort()];
  const urls = ports.map((port) => `http://127.0.0.1:${port}`);
  // Both at once: each takes its while to load.
  const scripts = ['express-server.mjs', 'fastify-server.mjs'];
  const children = scripts.map((script, i) => {
    const path = fileURLToPath(new URL(`../../../examples/chat/${script}`, import.meta.url));
    return startChild(process.execPath, [path], {
      PORT: String(ports[i]),
      REDIS_URL: redis.server.url,
      CHAT_INSTANCES: urls.join(','),
    });
  });
  instances.push(...children.map((child, i) => ({ child, url: urls[i]! })));
  await Promise.all(children.map((child) => child.waitFor(/http:\/\/127\.0\.0\.1:\d+\//)));
});
afterAll(async () => {
  await Promise.all(instances.map(({ child }) => child.stop()));
});

async function post(url: string, name: string, text: string): Promise<string> {
  const response = await fetch(`${url}/messages`, {
    method: 'POST',
    headers: { 'content-type': 'text/plain' },
    body: JSON.stringify({ name, text }),
  });
  expect(response.status).toBe(200);
  return ((await response.json()) as { id: string }).id;
}

it('moves the page to the other instance when its own is killed, missing no message', async () => {
  const [express, fastify] = instances as [(typeof instances)[0], (typeof instances)[0]];
  await withBrowser(async (page) => {
    await page.goto(express.url);
    await page.waitForFunction(() => document.getElementById('status')?.textContent?.startsWith('live from'));
    await page.fill('#name', 'ann');
    await page.fill('#text', 'typed in the page');
    await page.click('button[type=submit]');
    await page.waitForFunction(() => document.querySelectorAll('#log li').length === 1);
    await post(fastify.url, 'bob', 'posted to fastify');
    await page.waitForFunction(() => document.querySelectorAll('#log li').length === 2);

    await express.child.kill9();
    // Published while the page has no connection: it must get it after moving to fastify.
    await post(fastify.url, 'bob', 'while the page moves');
    await page.waitForFunction(
      (url) => document.getElementById('status')?.textContent === `live from ${url}`,
      fastify.url,
    );
    await post(fastify.url, 'bob', 'after the move');
    await page.waitForFunction(() => document.querySelectorAll('#log li').length >= 4);

    const items = await page.$$eval('#log li', (lis) =>
      lis.map((li) => ({ text: li.textContent, notice: li.className })),
    );
    expect(items.map((item) => item.notice)).toEqual(['', '', '', '']);
    expect(items.map((item) => item.text?.replace(/ \d.*$/, ''))).toEqual([
      'ann typed in the page',
      'bob posted to fastify',
      'bob while the page moves',
      'bob after the move',
    ]);
  });
});
