import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import compression from 'compression';
import express from 'express';
import { concat, from, NEVER } from 'rxjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFor } from '../../../test/support/clients.js';
import { type Nginx, startNginx } from '../../../test/support/nginx.js';
import { closeStreamsOnServerClose, sse } from '../src/index.js';

/** A stream that sends one small event and then stays open: only an unbuffered path delivers it. */
const oneEventThenOpen = () => concat(from([{ data: 'hello' }]), NEVER);

describe('express in production setups', () => {
  const app = express();
  // Compression middleware in front of everything, as many apps have it.
  app.use(compression());
  app.get('/sse', sse(oneEventThenOpen));
  const server = app.listen(0, '127.0.0.1');
  closeStreamsOnServerClose(server);
  const listening = once(server, 'listening');
  let url = '';
  let nginx: Nginx;

  beforeAll(async () => {
    await listening;
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    nginx = await startNginx(url);
  });
  afterAll(async () => {
    await nginx?.stop();
    await new Promise((resolve) => server.close(resolve));
  });

  it('is not buffered by compression middleware (Cache-Control: no-transform)', async () => {
    const response = await fetch(`${url}/sse`, { headers: { 'accept-encoding': 'gzip' } });
    expect(response.headers.get('content-encoding')).toBeNull();
    await response.body?.cancel();
    expect(await readFor(`${url}/sse`, 300)).toBe('data: hello\n\n');
  });

  it('streams live through nginx as a reverse proxy with its default buffering', async () => {
    const response = await fetch(`${nginx.url}/sse`);
    // nginx consumes X-Accel-Buffering itself; the event still arrives while the stream is open.
    expect(response.headers.get('x-accel-buffering')).toBeNull();
    expect(response.headers.get('content-type')).toBe('text/event-stream');
    await response.body?.cancel();
    expect(await readFor(`${nginx.url}/sse`, 500)).toBe('data: hello\n\n');
  });
});
