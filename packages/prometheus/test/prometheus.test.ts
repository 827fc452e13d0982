import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { openStreams, StreamGroup, type StreamStats } from '@rxsse/core';
import { closeStreamsOnServerClose, sse } from '@rxsse/express';
import { rxsse } from '@rxsse/fastify';
import express from 'express';
import Fastify from 'fastify';
import { Counter, register as defaultRegistry, type OpenMetricsContentType, Registry } from 'prom-client';
import { concat, defer, from, interval, map, NEVER, range } from 'rxjs';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { type RawClient, rawClient, sleep, waitFor } from '../../../test/support/clients.js';
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
  // Far more than a socket buffers, to a client that never reads: the rest waits in the queue.
  app.get(
    '/flood',
    sse(() => concat(range(0, 256).pipe(map(() => ({ data: 'x'.repeat(64 * 1024) }))), NEVER), {
      metrics,
      group,
      maxQueueBytes: 64 * 1024 * 1024,
      stallTimeout: false,
    }),
  );
  app.get(
    '/failing',
    sse(() => Promise.reject(new Error('no source today')), { metrics, group }),
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

  it('counts a handler that failed, and a HEAD as a stream that completed', async () => {
    const before = await sample('rxsse_connections_total');
    const completed = await sample('rxsse_closes_total{reason="complete"}');
    const failed = await fetch(`${url}/failing`);
    await failed.text();
    expect(failed.status).toBe(500);
    expect(await sample('rxsse_handler_failures_total')).toBe(1);
    expect((await fetch(`${url}/done`, { method: 'HEAD' })).status).toBe(200);
    await waitFor(() => group.size === 0, 5000, 'the HEAD to end');
    expect(await sample('rxsse_connections_total')).toBe(before + 1);
    expect(await sample('rxsse_closes_total{reason="complete"}')).toBe(completed + 1);
  });

  it('counts refused messages', async () => {
    expect(await (await fetch(`${url}/refused`)).text()).toBe('data: a\n\ndata: b\n\n');
    expect(await sample('rxsse_refused_messages_total')).toBe(1);
  });

  it('gauges the bytes queued for a client that does not read', async () => {
    const client = await rawClient(`${url}/flood`, { read: false });
    await waitFor(() => group.queuedBytes > 0, 5000, 'a queue');
    const queued = await sample('rxsse_queued_bytes');
    expect(queued).toBeGreaterThan(0);
    expect(queued).toBeLessThanOrEqual(256 * (64 * 1024 + 8));
    client.destroy();
    await waitFor(() => group.size === 0, 5000, 'the disconnect');
    expect(await sample('rxsse_queued_bytes')).toBe(0);
  });

  it('counts heartbeats and dropped events as the stream reports them', async () => {
    const before = {
      heartbeats: await sample('rxsse_heartbeats_total'),
      dropped: await sample('rxsse_dropped_events_total'),
    };
    metrics.heartbeat();
    metrics.heartbeat();
    metrics.dropped(3);
    metrics.dropped(4);
    expect((await sample('rxsse_heartbeats_total')) - before.heartbeats).toBe(2);
    expect((await sample('rxsse_dropped_events_total')) - before.dropped).toBe(7);
  });

  it('counts replay outcomes', async () => {
    metrics.replay('hit');
    metrics.replay('truncated');
    metrics.replay('truncated');
    expect(await sample('rxsse_replays_total{outcome="hit"}')).toBe(1);
    expect(await sample('rxsse_replays_total{outcome="truncated"}')).toBe(2);
  });
});

describe('prometheusMetrics before any stream', () => {
  it('exposes every close reason and replay outcome at 0, so that the first of each is an increase', async () => {
    const registry = new Registry();
    prometheusMetrics({ registry });
    const text = await registry.metrics();
    for (const reason of ['client', 'complete', 'error', 'overflow', 'stall', 'lifetime', 'shutdown']) {
      expect(text).toContain(`rxsse_closes_total{reason="${reason}"} 0\n`);
    }
    for (const outcome of ['hit', 'miss', 'truncated']) {
      expect(text).toContain(`rxsse_replays_total{outcome="${outcome}"} 0\n`);
    }
  });

  it('exposes every metric it documents, each with its type and help', async () => {
    // What a dashboard shows beside each metric, and what a query's type assumes.
    const registry = new Registry();
    prometheusMetrics({ registry, group: new StreamGroup() });
    const text = await registry.metrics();
    const described = text
      .split('\n')
      .filter((line) => line.startsWith('# '))
      .join('\n');
    expect(described).toBe(
      [
        ['connections_open', 'gauge', 'Open event streams.'],
        ['queued_bytes', 'gauge', 'Bytes queued for slow clients, beyond what sockets buffer.'],
        ['connections_total', 'counter', 'Event streams opened.'],
        ['events_written_total', 'counter', 'Events written to clients.'],
        ['bytes_written_total', 'counter', 'Bytes written to clients (events, heartbeats, retry hints).'],
        ['heartbeats_total', 'counter', 'Heartbeat comments written.'],
        ['closes_total', 'counter', 'Event streams closed, by reason.'],
        ['dropped_events_total', 'counter', 'Events dropped for slow clients.'],
        ['refused_messages_total', 'counter', 'Messages a stream could not send (see onInvalidMessage).'],
        [
          'handler_failures_total',
          'counter',
          'Requests whose handler threw, rejected or returned no source: no stream began.',
        ],
        [
          'replays_total',
          'counter',
          'Last-Event-ID replays by outcome; truncated counts every time a subscription is told that events are missing.',
        ],
      ]
        .map(([name, type, help]) => `# HELP rxsse_${name} ${help}\n# TYPE rxsse_${name} ${type}`)
        .join('\n'),
    );
  });

  it('exposes them at 0 again once the registry reset its metrics', async () => {
    const registry = new Registry();
    const metrics = prometheusMetrics({ registry });
    metrics.closed('stall', {} as StreamStats);
    metrics.replay('hit');
    registry.resetMetrics();
    const text = await registry.metrics();
    for (const reason of ['client', 'complete', 'error', 'overflow', 'stall', 'lifetime', 'shutdown']) {
      expect(text).toContain(`rxsse_closes_total{reason="${reason}"} 0\n`);
    }
    for (const outcome of ['hit', 'miss', 'truncated']) {
      expect(text).toContain(`rxsse_replays_total{outcome="${outcome}"} 0\n`);
    }
    // Counting goes on from 0, and the JSON a cluster's aggregator reads has every series too.
    metrics.closed('stall', {} as StreamStats);
    expect(await registry.metrics()).toContain('rxsse_closes_total{reason="stall"} 1\n');
    const json = await registry.getMetricsAsJSON();
    expect(json.find(({ name }) => name === 'rxsse_replays_total')?.values).toHaveLength(3);
  });
});

describe('prometheusMetrics given what it cannot use', () => {
  it('throws a TypeError naming it, and registers nothing', async () => {
    const registry = new Registry();
    const before = (await defaultRegistry.getMetricsAsJSON()).length;
    // Say, the registry itself instead of { registry }: the metrics would go to the global one.
    expect(() => prometheusMetrics(registry as never)).toThrow(
      /^prometheusMetrics\(\) takes options, got a Registry: pass \{ registry \}$/,
    );
    expect(() => prometheusMetrics({ registry: {} as never })).toThrow(
      /^registry must be a prom-client Registry, got an object \(Object\)$/,
    );
    // One method alone, say a wrapper's: every call would fail on the next one it lacks.
    expect(() => prometheusMetrics({ registry: { registerMetric() {} } as never })).toThrow(
      /^registry must be a prom-client Registry, got an object \(Object\)$/,
    );
    // The two a registry of another kind has too (a wrapper's): the lookup of every metric on it
    // would fail on a method it lacks, naming none of this.
    expect(() =>
      prometheusMetrics({ registry: { registerMetric() {}, getSingleMetric() {} } as never }),
    ).toThrow(/^registry must be a prom-client Registry, got an object \(Object\)$/);
    expect(() => prometheusMetrics({ registry, group: new Set() as never })).toThrow(
      /^group must be a StreamGroup \(or a size and queuedBytes to read\), got an object \(Set\)$/,
    );
    expect(() => prometheusMetrics({ registry, prefix: 5 as never })).toThrow(
      /^prefix must be a string, got number 5$/,
    );
    expect(() => prometheusMetrics({ registry, prefix: null as never })).toThrow(
      /^prefix must be a string, got null$/,
    );
    // A misspelt name would register on the global registry, or under the default prefix, unseen.
    expect(() => prometheusMetrics({ registy: registry } as never)).toThrow(TypeError);
    expect(() => prometheusMetrics({ registy: registry } as never)).toThrow(
      /^Unknown prometheusMetrics option "registy" \(did you mean "registry"\?\)$/,
    );
    expect(() => prometheusMetrics({ registry, Prefix: 'app_' } as never)).toThrow(
      /\(did you mean "prefix"\?\)$/,
    );
    expect(await registry.getMetricsAsJSON()).toEqual([]);
    expect(await defaultRegistry.getMetricsAsJSON()).toHaveLength(before);
  });

  it('throws a TypeError naming null given as the options, not one of its own lookup', () => {
    // A config's blank: without this check, the option names' lookup would fail on null, naming nothing.
    expect(() => prometheusMetrics(null as never)).toThrow(/^prometheusMetrics\(\) takes options, got null$/);
  });

  it.each([
    ['a size alone', { size: 0 }],
    ['queuedBytes alone', { queuedBytes: 0 }],
  ])('refuses a group with %s: each gauge reads one of the two', (_name, group) => {
    // A group lacking either would set its gauge to undefined at every scrape, and fail it there.
    const registry = new Registry();
    expect(() => prometheusMetrics({ registry, group: group as never })).toThrow(
      /^group must be a StreamGroup \(or a size and queuedBytes to read\), got an object \(Object\)$/,
    );
  });
});

describe('prometheusMetrics hooks given values no stream reports', () => {
  // What a transport of another package could pass: a close reason or outcome from user input would
  // add a series per value, and a NaN would leave its counter at NaN for good.
  it.each<[string, (m: ReturnType<typeof prometheusMetrics>) => void, RegExp]>([
    ['a negative byte count', (m) => m.wrote(1, -5), /^wrote\(\) takes a byte count of 0 or more, got -5$/],
    [
      'a byte count of NaN',
      (m) => m.wrote(1, Number.NaN),
      /^wrote\(\) takes a byte count of 0 or more, got NaN$/,
    ],
    [
      'an event count of NaN',
      (m) => m.wrote(Number.NaN, 10),
      /^wrote\(\) takes an event count of 0 or more, got NaN$/,
    ],
    [
      'a negative event count',
      (m) => m.wrote(-1, 10),
      /^wrote\(\) takes an event count of 0 or more, got -1$/,
    ],
    [
      'a byte count as a string',
      (m) => m.wrote(1, '10' as never),
      /^wrote\(\) takes a byte count of 0 or more, got string 10$/,
    ],
    [
      'a dropped count of NaN',
      (m) => m.dropped(Number.NaN),
      /^dropped\(\) takes a count of 0 or more, got NaN$/,
    ],
    ['a negative dropped count', (m) => m.dropped(-1), /^dropped\(\) takes a count of 0 or more, got -1$/],
    // prom-client refuses an infinite count too, but with a message that names no metric.
    [
      'an infinite byte count',
      (m) => m.wrote(1, Number.POSITIVE_INFINITY),
      /^wrote\(\) takes a byte count of 0 or more, got Infinity$/,
    ],
    [
      'an infinite dropped count',
      (m) => m.dropped(Number.POSITIVE_INFINITY),
      /^dropped\(\) takes a count of 0 or more, got Infinity$/,
    ],
    [
      'an unknown close reason',
      (m) => m.closed('/chat/1234' as never, {} as StreamStats),
      /^closed\(\) takes a CloseReason \(client, complete, error, overflow, stall, lifetime, shutdown\), got string \/chat\/1234$/,
    ],
    [
      'an unknown replay outcome',
      (m) => m.replay('x' as never),
      /^replay\(\) takes 'hit', 'miss' or 'truncated', got string x$/,
    ],
  ])('refuses %s, naming it, and counts nothing', async (_name, call, message) => {
    const registry = new Registry();
    const metrics = prometheusMetrics({ registry, group: new StreamGroup() });
    const before = await registry.metrics();
    expect(() => call(metrics)).toThrow(message);
    expect(await registry.metrics()).toBe(before);
  });

  it('counts 0 events and bytes, and 0 dropped, as nothing', async () => {
    const registry = new Registry();
    const metrics = prometheusMetrics({ registry, group: new StreamGroup() });
    metrics.wrote(0, 0);
    metrics.dropped(0);
    metrics.wrote(2, 7);
    const text = await registry.metrics();
    expect(text).toContain('rxsse_events_written_total 2\n');
    expect(text).toContain('rxsse_bytes_written_total 7\n');
    expect(text).toContain('rxsse_dropped_events_total 0\n');
  });
});

describe('prometheusMetrics called again on one registry', () => {
  it('returns the same hooks for the same prefix and group (a hot reload, an app built per test)', async () => {
    const registry = new Registry();
    const group = new StreamGroup();
    const first = prometheusMetrics({ registry, group });
    const again = prometheusMetrics({ registry, group });
    expect(again).toBe(first);
    again.opened();
    expect(await registry.metrics()).toContain('rxsse_connections_total 1\n');
  });

  it('registers anew, from 0, once the registry was cleared, and the hooks routes hold count there', async () => {
    const registry = new Registry();
    const first = prometheusMetrics({ registry });
    first.opened();
    first.opened();
    registry.clear();
    const again = prometheusMetrics({ registry });
    // A route made before the clear (a module a hot reload kept) still holds the first hooks.
    first.opened();
    again.opened();
    expect(await registry.metrics()).toContain('rxsse_connections_total 2\n');
    expect(await registry.metrics()).toContain('rxsse_closes_total{reason="stall"} 0\n');
  });

  it('registers anew after every clear of an OpenMetrics registry that was scraped before', async () => {
    const registry = new Registry<OpenMetricsContentType>();
    registry.setContentType(Registry.OPENMETRICS_CONTENT_TYPE);
    const first = prometheusMetrics({ registry });
    // prom-client names an OpenMetrics counter by its family (no `_total`) once it was scraped.
    await registry.metrics();
    for (let clears = 1; clears <= 3; clears++) {
      registry.clear();
      expect(prometheusMetrics({ registry })).toBe(first);
      first.opened();
      const text = await registry.metrics();
      expect(text).toContain('rxsse_connections_total 1\n');
      expect(text.match(/^# TYPE rxsse_connections counter$/gm)).toHaveLength(1);
      // Scraped or not, the next call finds them registered.
      expect(prometheusMetrics({ registry })).toBe(first);
    }
  });

  it('refuses a name taken after a clear, naming it, and registers nothing', async () => {
    const registry = new Registry<OpenMetricsContentType>();
    registry.setContentType(Registry.OPENMETRICS_CONTENT_TYPE);
    prometheusMetrics({ registry });
    registry.clear();
    // The family of `rxsse_heartbeats_total`, taken by the app while rxsse's metrics were off.
    new Counter({ name: 'rxsse_heartbeats', help: "the app's own", registers: [registry] });
    expect(() => prometheusMetrics({ registry })).toThrow(
      /^A metric named 'rxsse_heartbeats' is on this registry already: give rxsse's metrics a prefix of their own$/,
    );
    expect((await registry.getMetricsAsJSON()).map(({ name }) => name)).toEqual(['rxsse_heartbeats']);
  });

  it('registers anew once the registry was cleared, for another group too', async () => {
    const registry = new Registry();
    prometheusMetrics({ registry, group: new StreamGroup() });
    registry.clear();
    const group = new StreamGroup();
    prometheusMetrics({ registry, group }).opened();
    expect(await registry.metrics()).toContain('rxsse_connections_total 1\n');
    expect(prometheusMetrics({ registry, group })).toBeDefined();
  });

  it('refuses another group under the same prefix, naming the way out, and registers nothing more', async () => {
    const registry = new Registry();
    prometheusMetrics({ registry, group: new StreamGroup() });
    const before = (await registry.getMetricsAsJSON()).length;
    expect(() => prometheusMetrics({ registry, group: new StreamGroup() })).toThrow(
      /^rxsse's metrics with prefix 'rxsse_' are on this registry already, for another group: give each group a prefix of its own$/,
    );
    expect(await registry.getMetricsAsJSON()).toHaveLength(before);
  });

  it('refuses a registry that holds a metric of one of its names, naming it, and registers nothing', async () => {
    const registry = new Registry();
    // Not the first name it registers: the ones before it would stay, their gauges reading live streams.
    new Counter({ name: 'rxsse_heartbeats_total', help: "the app's own", registers: [registry] });
    expect(() => prometheusMetrics({ registry })).toThrow(
      /^A metric named 'rxsse_heartbeats_total' is on this registry already: give rxsse's metrics a prefix of their own$/,
    );
    expect((await registry.getMetricsAsJSON()).map(({ name }) => name)).toEqual(['rxsse_heartbeats_total']);
    // The way out it names works on the same registry.
    prometheusMetrics({ registry, prefix: 'sse_' }).heartbeat();
    expect(await registry.metrics()).toContain('sse_heartbeats_total 1\n');
    expect(await registry.metrics()).not.toContain('rxsse_connections_open');
  });

  it("refuses an OpenMetrics registry that holds a metric of one of its families' names, with or without _total", async () => {
    // OpenMetrics names a counter's family without `_total`: these would be two families of one name.
    for (const [name, type] of [
      ['rxsse_events_written', Counter],
      ['rxsse_connections_open_total', Counter],
    ] as const) {
      const registry = new Registry<OpenMetricsContentType>();
      registry.setContentType(Registry.OPENMETRICS_CONTENT_TYPE);
      new type({ name, help: "the app's own", registers: [registry] });
      expect(() => prometheusMetrics({ registry }), name).toThrow(
        new RegExp(`^A metric named '${name}' is on this registry already`),
      );
    }
    // In the Prometheus text format they are names of their own.
    const registry = new Registry();
    new Counter({ name: 'rxsse_events_written', help: "the app's own", registers: [registry] });
    prometheusMetrics({ registry }).wrote(1, 10);
    expect(await registry.metrics()).toContain('rxsse_events_written_total 1\n');
  });

  it('shares the metrics with a copy of itself loaded again (a hot reload that keeps prom-client)', async () => {
    const registry = new Registry();
    const group = new StreamGroup();
    const first = prometheusMetrics({ registry });
    const grouped = prometheusMetrics({ registry, prefix: 'grouped_', group });
    vi.resetModules();
    const reloaded = await import('../src/index.js');
    expect(reloaded.prometheusMetrics).not.toBe(prometheusMetrics);
    // @rxsse/core is loaded again too: its default group is another object, gauging the same streams.
    const again = reloaded.prometheusMetrics({ registry });
    expect(again).toBe(first);
    again.opened();
    expect(reloaded.prometheusMetrics({ registry, prefix: 'grouped_', group })).toBe(grouped);
    expect(() => reloaded.prometheusMetrics({ registry, prefix: 'grouped_' })).toThrow(/for another group/);
    expect(await registry.metrics()).toContain('rxsse_connections_total 1\n');
  });

  it('takes an empty prefix: the metrics go by their bare names', async () => {
    // '' starts no name, so it cannot make an invalid one: the names are rxsse's own.
    const registry = new Registry();
    const metrics = prometheusMetrics({ registry, prefix: '', group: new StreamGroup() });
    metrics.opened();
    const text = await registry.metrics();
    expect(text).toContain('\nconnections_total 1\n');
    expect(text).toContain('\nconnections_open 0\n');
  });

  it('refuses a prefix that makes no valid metric name, naming it', () => {
    expect(() => prometheusMetrics({ registry: new Registry(), prefix: 'rxsse-' })).toThrow(
      /^prefix must start a valid metric name \(\[a-zA-Z_:\]\[a-zA-Z0-9_:\]\*\), got 'rxsse-'$/,
    );
  });
});

describe('prometheusMetrics with its defaults', () => {
  it("registers on prom-client's global registry and gauges the streams of openStreams", async () => {
    const prefix = 'rxsse_defaults_test_';
    const metrics = prometheusMetrics({ prefix });
    const app = express();
    app.get(
      '/open',
      sse(() => concat(from([{ data: 'hello' }]), NEVER), { metrics }),
    );
    const server = app.listen(0, '127.0.0.1');
    await once(server, 'listening');
    try {
      const client = await rawClient(`http://127.0.0.1:${(server.address() as AddressInfo).port}/open`, {
        read: true,
      });
      await waitFor(() => client.text.includes('data: hello'), 5000, 'the open stream');
      const text = await defaultRegistry.metrics();
      expect(text).toContain(`${prefix}connections_total 1\n`);
      expect(text).toContain(`${prefix}connections_open ${openStreams.size}\n`);
      expect(openStreams.size).toBeGreaterThan(0);
      client.destroy();
    } finally {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
      for (const metric of await defaultRegistry.getMetricsAsJSON()) {
        if (metric.name.startsWith(prefix)) defaultRegistry.removeSingleMetric(metric.name);
      }
    }
  });
});

describe('prometheusMetrics without a group', () => {
  it("gauges the streams of a Fastify app, whose plugin gives them a group of the app's own", async () => {
    const registry = new Registry();
    const metrics = prometheusMetrics({ registry });
    const app = Fastify();
    await app.register(rxsse, { metrics, heartbeat: false });
    app.get('/open', (_req, reply) => reply.sse(concat(from([{ data: 'hello' }]), NEVER)));
    const url = await app.listen({ port: 0, host: '127.0.0.1' });
    try {
      const client = await rawClient(`${url.replace('localhost', '127.0.0.1')}/open`, { read: true });
      await waitFor(() => client.text.includes('data: hello'), 5000, 'the open stream');
      const text = await registry.metrics();
      expect(text).toContain('rxsse_connections_total 1\n');
      expect(text).toContain('rxsse_connections_open 1\n');
      client.destroy();
    } finally {
      await app.close();
    }
  });
});

describe('prometheusMetrics over streams that end for every reason', () => {
  it('counts one close, by its reason, for every stream opened, and gauges nothing once they ended', async () => {
    const registry = new Registry();
    const group = new StreamGroup();
    const metrics = prometheusMetrics({ registry, group });
    const app = express();
    const options = { metrics, group, onError: () => {} };
    const flood = () => interval(2).pipe(map(() => ({ data: 'f'.repeat(16 * 1024) })));
    app.get(
      '/client',
      sse(() => NEVER, options),
    );
    app.get(
      '/complete',
      sse(() => from([{ data: 'a' }]), options),
    );
    app.get(
      '/error',
      // Fails once open: one that fails at once is refused, counted as a failed handler instead.
      sse(() => defer(async (): Promise<never> => Promise.reject(new Error('failed'))), options),
    );
    app.get(
      '/lifetime',
      sse(() => NEVER, { ...options, maxLifetime: 50 }),
    );
    app.get('/overflow', sse(flood, { ...options, maxQueueBytes: 256 * 1024, stallTimeout: false }));
    app.get('/stall', sse(flood, { ...options, onOverflow: 'drop-oldest', stallTimeout: 100 }));
    app.get(
      '/shutdown',
      sse(() => NEVER, options),
    );
    const server = app.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    closeStreamsOnServerClose(server, { group, deadline: 1000 });
    const sample = async (line: string) =>
      Number(
        (await registry.metrics())
          .split('\n')
          .find((l) => l.startsWith(`${line} `))
          ?.split(' ')[1] ?? 0,
      );
    const closed = async () => {
      let total = 0;
      for (const reason of ['client', 'complete', 'error', 'lifetime', 'overflow', 'stall', 'shutdown']) {
        total += await sample(`rxsse_closes_total{reason="${reason}"}`);
      }
      return total;
    };
    let clients: RawClient[] = [];
    try {
      for (const path of ['/client', '/complete', '/error', '/lifetime', '/overflow', '/stall']) {
        clients = await Promise.all(
          [1, 2, 3].map(() => rawClient(`${url}${path}`, { read: !['/overflow', '/stall'].includes(path) })),
        );
        if (path === '/client') {
          await waitFor(() => group.size === 3, 5000, 'the streams');
          for (const client of clients) client.destroy();
        }
        const reason = `rxsse_closes_total{reason="${path.slice(1)}"}`;
        while ((await sample(reason)) < 3) await sleep(5);
        for (const client of clients) client.destroy();
        expect(await closed()).toBe(await sample('rxsse_connections_total'));
        expect(await sample('rxsse_connections_open')).toBe(0);
        expect(await sample(`rxsse_closes_total{reason="${path.slice(1)}"}`)).toBe(3);
      }
      clients = await Promise.all([1, 2, 3].map(() => rawClient(`${url}/shutdown`, { read: true })));
      await waitFor(() => group.size === 3, 5000, 'the streams');
    } finally {
      await new Promise((resolve) => server.close(resolve));
      for (const client of clients) client.destroy();
    }
    expect(await sample('rxsse_closes_total{reason="shutdown"}')).toBe(3);
    expect(await sample('rxsse_connections_total')).toBe(21);
    expect(await closed()).toBe(21);
    expect(await sample('rxsse_connections_open')).toBe(0);
    expect(await sample('rxsse_queued_bytes')).toBe(0);
  });
});
