import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { StreamGroup } from '@rxsse/core';
import { sse } from '@rxsse/express';
import express from 'express';
import { Registry } from 'prom-client';
import { concat, from, NEVER } from 'rxjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rawClient, waitFor } from '../../../test/support/clients.js';
import { prometheusMetrics } from '../src/index.js';

describe('prometheusMetrics', () => {
  const registry = new Registry();
  const group = new StreamGroup();
  const metrics = prometheusMetrics({ registry, group });
  const app = express();
  app.get(
    '/done',
    sse(() => from([{ data: 'a' }, { data: 'b' }]), { metrics, group }),
  );
  app.get(
    '/open',
    sse(() => concat(from([{ data: 'hello' }]), NEVER), { metrics, group }),
  );
  app.get(
    '/refused',
    sse(() => from([{ data: 'a' }, { data: 'x', id: 'bad\nid' }, { data: 'b' }]), {
      metrics,
      group,
      onError: () => {},
    }),
  );
  app.get('/metrics', async (_req, res) => {
    res.type(registry.contentType).send(await registry.metrics());
  });
  const server = app.listen(0, '127.0.0.1');
  const listening = once(server, 'listening');
  let url = '';

  beforeAll(async () => {
    await listening;
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  /** The value of one sample line of the exposition text. */
  async function sample(line: string): Promise<number> {
    const text = await (await fetch(`${url}/metrics`)).text();
    const match = text.split('\n').find((l) => l.startsWith(`${line} `));
    return Number(match?.split(' ')[1]);
  }

  it('counts connections, events, bytes and closes by reason, and gauges open streams', async () => {
    await (await fetch(`${url}/done`)).text();
    await (await fetch(`${url}/done`)).text();
    const client = await rawClient(`${url}/open`, { read: true });
    await waitFor(() => client.text.includes('data: hello'), 5000, 'the open stream');

    expect(await sample('rxsse_connections_total')).toBe(3);
    expect(await sample('rxsse_connections_open')).toBe(1);
    expect(await sample('rxsse_events_written_total')).toBe(5);
    expect(await sample('rxsse_bytes_written_total')).toBe(2 * 18 + 13);
    expect(await sample('rxsse_closes_total{reason="complete"}')).toBe(2);
    expect(await sample('rxsse_queued_bytes')).toBe(0);

    client.destroy();
    await waitFor(() => group.size === 0, 5000, 'the disconnect');
    expect(await sample('rxsse_closes_total{reason="client"}')).toBe(1);
    expect(await sample('rxsse_connections_open')).toBe(0);
  });

  it('counts refused messages', async () => {
    expect(await (await fetch(`${url}/refused`)).text()).toBe('data: a\n\ndata: b\n\n');
    expect(await sample('rxsse_refused_messages_total')).toBe(1);
  });

  it('counts replay outcomes', async () => {
    metrics.replay('hit');
    metrics.replay('truncated');
    metrics.replay('truncated');
    expect(await sample('rxsse_replays_total{outcome="hit"}')).toBe(1);
    expect(await sample('rxsse_replays_total{outcome="truncated"}')).toBe(2);
  });
});
