// AppServers: the servers an app's streams come through, a second one besides the app's own (as
// Fastify binds for localhost's ::1) included, ended and turned away with the app's.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { type MessageEvent, resolveStreamOptions, StreamGroup, type StreamOptions } from '@rxsse/core';
import { concat, NEVER, of } from 'rxjs';
import { describe, expect, it } from 'vitest';
import { type RawClient, rawClient, waitFor } from '../../../test/support/clients.js';
import { AppServers, openEventStream } from '../src/index.js';
import { serve } from './serve.js';

/** An app whose `/sse` sends `hi`, then nothing, each request noted first; `handled` counts its handler's runs. */
function app(servers: AppServers, options: StreamOptions) {
  const resolved = resolveStreamOptions(options);
  const state = { handled: 0, errors: [] as unknown[] };
  const handle = (req: IncomingMessage, res: ServerResponse) => {
    servers.note((req.socket as { server?: object }).server);
    const events = () => {
      state.handled++;
      return concat(of<MessageEvent>({ data: 'hi' }), NEVER);
    };
    openEventStream(req, res, events, resolved, (error) => state.errors.push(error)).catch((error) =>
      state.errors.push(error),
    );
  };
  return { handle, state };
}

async function streaming(url: string): Promise<RawClient> {
  const client = await rawClient(`${url}/sse`, { read: true });
  await waitFor(() => client.text.includes('data: hi\n\n'), 5000, 'the stream');
  return client;
}

/** Whether the stream's response ended: its connection may stay for another request. */
const ended = (client: RawClient) => client.text.endsWith('\r\n0\r\n\r\n');

describe('AppServers', () => {
  it("ends the streams of the app's server and of a server noted besides it, whatever their group", async () => {
    const group = new StreamGroup();
    const own = new StreamGroup();
    let main: object | undefined;
    const servers = new AppServers(() => main);
    const ofApp = app(servers, { group });
    const ofOwn = app(servers, { group: own });
    const first = await serve(ofApp.handle);
    main = first.server;
    const second = await serve(ofOwn.handle);
    const [onMain, onSecond] = await Promise.all([streaming(first.url), streaming(second.url)]);
    await servers.closeStreams(group, { retry: 5000 });
    await waitFor(() => ended(onMain) && ended(onSecond), 5000, 'both streams to end');
    expect(onMain.text).toContain('retry: 5000\n\n');
    expect(onSecond.text).toContain('retry: 5000\n\n');
    // The second server's stream ended as one of its server's, not by its group.
    expect(own.closing).toBe(false);
    expect([...ofApp.state.errors, ...ofOwn.state.errors]).toEqual([]);
  });

  it('turns away, without running the handler, the request of a server first noted after the close', async () => {
    const group = new StreamGroup();
    const { server: main } = await serve(app(new AppServers(() => undefined), { group }).handle);
    const servers = new AppServers(() => main);
    // Of a group that does not close: only its server's mark turns it away.
    const late = app(servers, { group: new StreamGroup(), retry: 3000 });
    const { url } = await serve(late.handle);
    await servers.closeStreams(group, {});
    const client = await rawClient(`${url}/sse`, { read: true });
    await waitFor(() => client.closed, 5000, 'the request to be turned away');
    expect(late.state.handled).toBe(0);
    expect(client.text).toMatch(/^HTTP\/1\.1 200/);
    expect(client.text.toLowerCase()).toContain('connection: close');
    expect(client.text).toContain('retry: 3000\n\n');
    expect(late.state.errors).toEqual([]);
  });

  it('streams from a server first noted once the app was marked open again', async () => {
    const group = new StreamGroup();
    const { server: main } = await serve(app(new AppServers(() => undefined), { group }).handle);
    const servers = new AppServers(() => main);
    await servers.closeStreams(group, {});
    servers.reopen();
    const later = app(servers, { group: new StreamGroup() });
    const { url } = await serve(later.handle);
    const client = await streaming(url);
    expect(client.closed).toBe(false);
    expect(later.state.handled).toBe(1);
    client.destroy();
  });

  it("ends the group's streams when the app has no server of its own", async () => {
    const group = new StreamGroup();
    const servers = new AppServers(() => undefined);
    const { url } = await serve(app(servers, { group }).handle);
    const client = await streaming(url);
    await servers.closeStreams(group, { retry: 2000 });
    await waitFor(() => ended(client), 5000, 'the stream to end');
    expect(client.text).toContain('retry: 2000\n\n');
  });
});
