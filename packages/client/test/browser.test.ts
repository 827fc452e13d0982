// The built client (dist/index.mjs) as an ES module in Chromium, with rxjs's own ES modules, against
// an rxsse route whose server restarts.
import { existsSync } from 'node:fs';
import { createServer } from 'node:http';
import { createRequire } from 'node:module';
import { dirname, join, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createChannel, memoryEngine } from '@rxsse/core/channel';
import { sse } from '@rxsse/express';
import express from 'express';
import type { Page } from 'playwright-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { withBrowser } from '../../../test/support/browser.js';
import { freePort } from '../../../test/support/ports.js';
import { defineEvents, json, text } from '../src/index.js';
import { type Listening, listen, until } from './support.js';

const dist = fileURLToPath(new URL('../dist/', import.meta.url));
const require = createRequire(import.meta.url);
const rxjs = join(dirname(require.resolve('rxjs/package.json')), 'dist/esm');
const tslib = dirname(createRequire(join(rxjs, '..', '..', 'package.json')).resolve('tslib/package.json'));

// The page's contract, written out again: the page imports only what the server serves it.
const events = defineEvents({ tick: json<{ n: number }>(), message: text });

// Served at /app/page with a base element: a relative URL resolves against the document's base URL,
// as fetch and EventSource resolve it, not against the page's own.
const PAGE = `<!doctype html><meta charset="utf-8"><base href="/"><title>rxsse client</title>
<script type="importmap">{"imports": {
  "@rxsse/client": "/modules/client/index.mjs",
  "rxjs": "/modules/rxjs/index.js",
  "tslib": "/modules/tslib/tslib.es6.mjs"
}}</script>
<script>
// The visibilitychange listeners on document, counted: a wait for a visible tab must leave none.
const visibilityListeners = new Set();
const add = document.addEventListener.bind(document);
const remove = document.removeEventListener.bind(document);
document.addEventListener = (type, listener, options) => {
  if (type === 'visibilitychange') visibilityListeners.add(listener);
  add(type, listener, options);
};
document.removeEventListener = (type, listener, options) => {
  if (type === 'visibilitychange') visibilityListeners.delete(listener);
  remove(type, listener, options);
};
window.visibilityListeners = () => visibilityListeners.size;
</script>
<script type="module">
import { defineEvents, fromEventSource, json, text } from '@rxsse/client';
const events = defineEvents({ tick: json(), message: text });
window.received = [];
window.requests = 0;
window.reconnects = 0;
const fetchCounted = (...args) => { window.requests++; return fetch(...args); };
window.subscription = fromEventSource('sse', { events, fetch: fetchCounted, onReconnect: () => window.reconnects++ }).subscribe({
  next: (event) => window.received.push(event),
  error: (error) => { window.failure = String(error); },
});
</script>`;

/** Files under `root` only; ES modules that import without an extension get `.js`. */
function modules(dir: string): express.RequestHandler {
  const root = resolve(dir);
  return (req, res) => {
    const file = resolve(root, `.${decodeURIComponent(req.path)}`);
    if (!file.startsWith(root + sep)) return void res.sendStatus(404);
    const found = [file, `${file}.js`].find((path) => existsSync(path) && !path.endsWith(sep));
    if (found === undefined) return void res.sendStatus(404);
    // pnpm keeps packages under node_modules/.pnpm: a dot segment send() would refuse.
    res.type('text/javascript').sendFile(found, { dotfiles: 'allow' });
  };
}

/** The app: the page, the modules, and GET /sse on a channel that outlives server restarts. */
function pageServer() {
  const channel = createChannel(memoryEngine(), 'browser');
  let live = 0;
  const app = express();
  app.get('/app/page', (_req, res) => {
    res.type('html').send(PAGE);
  });
  app.get('/favicon.ico', (_req, res) => {
    res.sendStatus(404);
  });
  app.use('/modules/client', modules(dist));
  app.use('/modules/rxjs', modules(rxjs));
  app.use('/modules/tslib', modules(tslib));
  app.get(
    '/sse',
    sse(
      async (_req, context) => {
        const source = await channel.subscribe(context);
        live++;
        return source;
      },
      { retry: 50, heartbeat: false },
    ),
  );
  let server: Listening | undefined;
  let port = 0;
  return {
    /** Subscriptions made so far. */
    live: () => live,
    publish: (n: number) =>
      channel.publish(events.encode(n % 2 ? { type: 'tick', data: { n } } : { data: `message ${n}` })),
    get url() {
      return server!.url;
    },
    async start() {
      port ||= await freePort();
      server = await listen(createServer(app), port);
    },
    stop: () => server!.close(),
  };
}

type PageState = {
  received: { type: string; data: unknown; id: string }[];
  requests: number;
  failure?: string | undefined;
};
type PageWindow = PageState & {
  reconnects: number;
  visibilityListeners: () => number;
  subscription: { unsubscribe(): void };
};
const pageState = (page: Page) =>
  page.evaluate((): PageState => {
    const { received, requests, failure } = window as unknown as PageWindow;
    return { received, requests, failure };
  });
const visibilityListeners = (page: Page) =>
  page.evaluate(() => (window as unknown as PageWindow).visibilityListeners());

/** Waits in the page until `count` events arrived. */
async function received(page: Page, count: number) {
  await page.waitForFunction((n) => (window as unknown as PageState).received.length >= n, count);
  return (await pageState(page)).received;
}

/** What the page must show for events 1..count, given their ids. */
function expected(ids: string[]) {
  return ids.map((id, i) => {
    const n = i + 1;
    return n % 2 ? { type: 'tick', data: { n }, id } : { type: 'message', data: `message ${n}`, id };
  });
}

describe('in Chromium', () => {
  beforeAll(() => {
    if (!existsSync(join(dist, 'index.mjs')))
      throw new Error('build the client first (npx -y pnpm@10.34.8 --filter @rxsse/client run build)');
  });

  it('the built ES module shows typed events and resumes after the server restarts', async () => {
    const server = pageServer();
    await server.start();
    try {
      await withBrowser(async (page) => {
        await page.goto(`${server.url}/app/page`);
        await until(() => server.live() === 1, 'the page to subscribe');
        const ids = [await server.publish(1), await server.publish(2)];
        expect(await received(page, 2)).toEqual(expected(ids));

        await server.stop();
        ids.push(await server.publish(3), await server.publish(4));
        await server.start();
        await until(() => server.live() === 2, 'the page to reconnect');
        ids.push(await server.publish(5));

        expect(await received(page, 5)).toEqual(expected(ids));
        const state = await pageState(page);
        expect(state.failure).toBeUndefined();
        // One request, then one per reconnect: attempts while the server was down fail at connect,
        // so how many there were depends on how long the restart took.
        const reconnects = await page.evaluate(() => (window as unknown as PageWindow).reconnects);
        expect(reconnects).toBeGreaterThanOrEqual(1);
        expect(state.requests).toBe(1 + reconnects);
      });
    } finally {
      await server.stop();
    }
  });

  it('keeps its stream in a hidden tab, reconnects only once the tab is visible again, and leaves no listener', async () => {
    const server = pageServer();
    await server.start();
    try {
      await withBrowser(async (page) => {
        await page.clock.install();
        await page.goto(`${server.url}/app/page`);
        await until(() => server.live() === 1, 'the page to subscribe');
        // Headless Chromium reports every page visible: the page is told it is hidden, as a tab
        // switch would tell it.
        const setVisibility = (state: 'hidden' | 'visible') =>
          page.evaluate((value) => {
            Object.defineProperty(document, 'visibilityState', { value, configurable: true });
            document.dispatchEvent(new Event('visibilitychange'));
          }, state);
        await setVisibility('hidden');
        const ids = [await server.publish(1)];
        expect(await received(page, 1)).toEqual(expected(ids));

        await server.stop();
        await page.waitForFunction(() => (window as unknown as PageWindow).reconnects === 1);
        await server.start();
        // Two minutes of page time: any backoff would have run out many times over.
        await page.clock.runFor(120_000);
        expect((await pageState(page)).requests).toBe(1);
        expect(await visibilityListeners(page)).toBe(1);

        await setVisibility('visible');
        await until(() => server.live() === 2, 'the page to reconnect');
        ids.push(await server.publish(2));
        expect(await received(page, 2)).toEqual(expected(ids));
        expect((await pageState(page)).requests).toBe(2);
        expect(await visibilityListeners(page)).toBe(0);

        // Unsubscribed while it waits for a hidden tab: the wait ends then, not when the tab shows.
        await setVisibility('hidden');
        await server.stop();
        await page.waitForFunction(() => (window as unknown as PageWindow).reconnects === 2);
        await page.clock.runFor(120_000);
        expect(await visibilityListeners(page)).toBe(1);
        await page.evaluate(() => (window as unknown as PageWindow).subscription.unsubscribe());
        expect(await visibilityListeners(page)).toBe(0);
      });
    } finally {
      await server.stop();
    }
  });
});
