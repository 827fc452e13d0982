import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import cors from 'cors';
import express, { type ErrorRequestHandler } from 'express';
import { rateLimit } from 'express-rate-limit';
import session from 'express-session';
import helmet from 'helmet';
import morgan from 'morgan';
import { concat, NEVER, of } from 'rxjs';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../../../test/support/clients.js';
import {
  everyKindOfEvent,
  expectEveryKindOfEvent,
  expectPreflightAnswered,
  ORIGIN,
} from '../../../test/support/ecosystem.js';
import { captureConsoleErrors } from '../../../test/support/logged.js';
import { metered } from '../../../test/support/recording.js';
import { closeStreamsOnServerClose, sse } from '../src/index.js';

declare module 'express-session' {
  interface SessionData {
    visits: number;
  }
}

/** A memory store that notes the id of every session it is asked to save. */
class RecordingStore extends session.MemoryStore {
  readonly saved: string[] = [];
  override set(sid: string, data: session.SessionData, callback?: (error?: unknown) => void): void {
    this.saved.push(sid);
    super.set(sid, data, callback);
  }
}

/**
 * One app with the ecosystem's most used middleware registered globally, as a production app has
 * them, and the stream routes among its other routes.
 */
function describeMiddleware(name: string, createApp: typeof express) {
  describe(`${name} sse() behind helmet, cors, express-rate-limit, express-session and morgan`, () => {
    const { options, closes, seen } = metered();
    const logged: string[] = [];
    const lines: string[] = [];
    const store = new RecordingStore();
    const app = createApp();
    app.use(morgan('tiny', { stream: { write: (line: string) => lines.push(line) } }));
    app.use(helmet());
    app.use(cors({ origin: ORIGIN }));
    // Keyed by a header, so that only the case that means to passes the limit.
    app.use(
      rateLimit({
        limit: (req) => (req.headers['x-client'] === 'limited' ? 2 : 1000),
        keyGenerator: (req) => String(req.headers['x-client'] ?? 'anyone'),
      }),
    );
    const plain = session({ secret: 'a session secret', store, resave: false, saveUninitialized: false });
    const rolling = session({
      name: 'rolling.sid',
      secret: 'a session secret',
      store,
      rolling: true,
      resave: true,
      saveUninitialized: false,
    });
    // Every route has a session: the rolling one under /rolling, express-session's defaults elsewhere.
    app.use((req, res, next) => (req.path.startsWith('/rolling/') ? rolling : plain)(req, res, next));
    app.get(
      '/open',
      sse(() => concat(of({ data: 'hello' }), NEVER), options),
    );
    app.get(
      '/events',
      sse(() => everyKindOfEvent(), options),
    );
    // Routes that count their client's visits in the session: a stream that saves it as the README
    // has it, one that leaves that to express-session, and a page.
    app.get(
      '/visit',
      sse(async (req) => {
        req.session.visits = (req.session.visits ?? 0) + 1;
        await new Promise<void>((resolve, reject) =>
          req.session.save((error) => (error ? reject(error) : resolve())),
        );
        return concat(of({ data: String(req.session.visits) }), NEVER);
      }, options),
    );
    app.get(
      '/unsaved',
      sse((req) => {
        req.session.visits = (req.session.visits ?? 0) + 1;
        return concat(of({ data: String(req.session.visits) }), NEVER);
      }, options),
    );
    app.get(
      '/rolling/open',
      sse(() => concat(of({ data: 'hello' }), NEVER), options),
    );
    const page: express.RequestHandler = (req, res) => {
      req.session.visits = (req.session.visits ?? 0) + 1;
      res.send(String(req.session.visits));
    };
    app.get('/page', page);
    app.get('/rolling/page', page);
    const recordError: ErrorRequestHandler = (error, _req, _res, next) => {
      logged.push(String(error));
      next(error);
    };
    app.use(recordError);
    const server = app.listen(0, '127.0.0.1');
    closeStreamsOnServerClose(server);
    const listening = once(server, 'listening');
    let url = '';
    let restoreConsole = () => {};

    beforeAll(async () => {
      await listening;
      restoreConsole = captureConsoleErrors(logged);
      url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    });
    afterAll(async () => {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      restoreConsole();
    });
    // Every case's streams have closed, each with its reason counted, before the next counts its own.
    afterEach(async () => {
      await waitFor(
        () => seen.filter((s) => s === 'opened').length === closes.length,
        5000,
        'the streams to close',
      );
      // Each by its client: nothing in front of the stream ended or dropped one.
      expect(closes.map((c) => c.reason).filter((r) => r !== 'client')).toEqual([]);
      // Emptied, so an error fails the case it came in, not every case after it.
      expect(logged.splice(0)).toEqual([]);
    });

    it("parses exactly in an EventSource, with helmet's, cors' and the rate limit's headers on a simple GET from another origin", async () => {
      const response = await fetch(`${url}/open`, { headers: { origin: ORIGIN } });
      await response.body?.cancel();
      expect(response.headers.get('content-type')).toBe('text/event-stream');
      expect(response.headers.get('cache-control')).toBe('no-cache, no-transform');
      expect(response.headers.get('access-control-allow-origin')).toBe(ORIGIN);
      expect(response.headers.get('vary')).toContain('Origin');
      expect(response.headers.get('x-content-type-options')).toBe('nosniff');
      expect(response.headers.get('content-security-policy')).toContain("default-src 'self'");
      expect(response.headers.get('x-powered-by')).toBeNull();
      expect(response.headers.get('x-ratelimit-limit')).toBe('1000');
      await expectEveryKindOfEvent(`${url}/events`);
    });

    it("answers a CORS preflight with cors' 204, never a stream", async () => {
      const before = [...seen];
      const response = await expectPreflightAnswered(`${url}/open`, { 'x-client': 'preflight' });
      expect(response.headers.get('access-control-allow-headers')).toBe('last-event-id');
      expect(seen).toEqual(before);
    });

    it("answers the request over the rate limit with express-rate-limit's 429, never a stream", async () => {
      const before = seen.length;
      const headers = { 'x-client': 'limited' };
      for (let i = 0; i < 2; i++) {
        const response = await fetch(`${url}/open`, { headers });
        expect(response.status).toBe(200);
        await response.body?.cancel();
      }
      const refused = await fetch(`${url}/open`, { headers });
      expect(refused.status).toBe(429);
      expect(refused.headers.get('retry-after')).not.toBeNull();
      expect(refused.headers.get('content-type')).not.toBe('text/event-stream');
      await refused.text();
      await waitFor(() => seen.length === before + 4, 5000, 'the two streams to close');
      // The refused request counts nothing: no stream opened, and no failed one.
      expect(seen.slice(before).sort()).toEqual(['closed:client', 'closed:client', 'opened', 'opened']);
    });

    it("sends express-session's cookie with a stream whose handler saved the session, saved before its first event", async () => {
      const saved = store.saved.length;
      const first = await fetch(`${url}/visit`);
      const reader = first.body?.getReader();
      expect(new TextDecoder().decode((await reader?.read())?.value)).toBe('data: 1\n\n');
      const cookies = first.headers.getSetCookie();
      expect(cookies.map((c) => c.split('=')[0])).toEqual(['connect.sid']);
      expect(store.saved.length).toBe(saved + 1);
      // A page the client opens while its stream runs sees the session.
      const page = await fetch(`${url}/page`, { headers: { cookie: cookieOf(cookies) } });
      expect(await page.text()).toBe('2');
      await reader?.cancel();
    });

    it("saves a session the stream's handler changed without saving once its client leaves, and sends its cookie", async () => {
      const saved = store.saved.length;
      const first = await fetch(`${url}/unsaved`);
      const reader = first.body?.getReader();
      expect(new TextDecoder().decode((await reader?.read())?.value)).toBe('data: 1\n\n');
      const cookies = first.headers.getSetCookie();
      expect(cookies.map((c) => c.split('=')[0])).toEqual(['connect.sid']);
      // express-session saves at the response's end, which a stream reaches only when it closes.
      expect(store.saved.length).toBe(saved);
      await reader?.cancel();
      await waitFor(() => store.saved.length === saved + 1, 5000, 'the session to be saved');
      const page = await fetch(`${url}/page`, { headers: { cookie: cookieOf(cookies) } });
      expect(await page.text()).toBe('2');
    });

    it('renews a rolling session with the stream, and saves it again (resave) once its client leaves', async () => {
      const page = await fetch(`${url}/rolling/page`);
      const cookies = page.headers.getSetCookie();
      expect(cookies.map((c) => c.split('=')[0])).toEqual(['rolling.sid']);
      expect(await page.text()).toBe('1');
      const saved = store.saved.length;
      const response = await fetch(`${url}/rolling/open`, { headers: { cookie: cookieOf(cookies) } });
      const reader = response.body?.getReader();
      expect(new TextDecoder().decode((await reader?.read())?.value)).toBe('data: hello\n\n');
      expect(response.headers.getSetCookie().map((c) => c.split('=')[0])).toEqual(['rolling.sid']);
      expect(store.saved.length).toBe(saved);
      await reader?.cancel();
      await waitFor(() => store.saved.length === saved + 1, 5000, 'the session to be saved again');
    });

    it('has morgan log a stream once its client leaves, :response-time being the time to its headers', async () => {
      const before = lines.length;
      const response = await fetch(`${url}/open`);
      const reader = response.body?.getReader();
      expect(new TextDecoder().decode((await reader?.read())?.value)).toBe('data: hello\n\n');
      expect(lines.length).toBe(before);
      await reader?.cancel();
      await waitFor(() => lines.length === before + 1, 5000, "morgan's line");
      expect(lines[before]).toMatch(/^GET \/open 200 - - [\d.]+ ms\n$/);
    });
  });
}

/** The `Cookie` header that sends back what `Set-Cookie` headers set. */
const cookieOf = (setCookies: string[]) => setCookies.map((c) => c.split(';')[0]).join('; ');

describeMiddleware('express 5', express);
// Express 4, installed under the alias `express4` (a devDependency), as `express4.test.ts` runs it.
describeMiddleware('express 4', (await import('express4' as string)).default);
