// Per-user topics on @rxsse/redis: the live path per topic (the default) against the partitioned
// one (`partitions: 16`), at 100, 10,000 and 100,000 topics. The work runs in its own process
// (lib/redis-topics-run.mjs), which starts and stops its own redis-server and 3 app processes on
// loopback; this file only formats what it reports.

import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { rate, table } from '../lib/harness.mjs';

export const description = [
  '10,000 channel subscriptions (one per simulated client, as an SSE route holds them; no HTTP) over',
  '3 app processes, each with one engine; 1,000 events/s published from a fourth process, uniformly',
  'over the topics; client c listens to topic c × topics / 10,000 (so 100 topics have 100 clients',
  'each, and at 100,000 topics 10% of events reach a client). Latency: the publisher stamps each event',
  'with the shared clock when it calls `append`, the client reads it on delivery. 1 s warm-up, 4 s',
  'measured. Redis commands/s: `INFO commandstats` over the window, client commands (the XADDs inside',
  'the publish script are Redis calls, not round trips: shown apart). Redis CPU: `INFO cpu` user+sys.',
].join('\n');

export const defaults = { rounds: 1, events: 10_000 };

/** The run's shape, for runners that print one line above the tables. */
export function summary({ events }) {
  return `one run per topic count and mode; ${rate(events)} subscriptions (--events); needs redis-server and built packages`;
}

const ms = (value) => (value < 10 ? value.toFixed(1) : Math.round(value).toLocaleString('en-US'));

export function run({ events }) {
  const script = fileURLToPath(new URL('../lib/redis-topics-run.mjs', import.meta.url));
  const child = spawnSync(process.execPath, [script, String(events)], {
    encoding: 'utf8',
    timeout: 260_000,
    killSignal: 'SIGKILL',
    stdio: ['ignore', 'pipe', 'inherit'],
    maxBuffer: 64 * 2 ** 20,
  });
  const last = child.stdout?.trim().split('\n').at(-1) ?? '';
  if (child.status !== 0 || !last.startsWith('{')) {
    const why = child.error?.message ?? `exit ${child.status ?? child.signal}`;
    return { markdown: `_not run: ${why} (is redis-server installed, and the packages built?)_`, goals: [] };
  }
  const { results } = JSON.parse(last);
  const rows = results.map((r) => {
    const seconds = r.measuredMs / 1000;
    const inScript = 2 * (r.commands.eval ?? 0);
    const total = Object.values(r.commands).reduce((sum, n) => sum + n, 0);
    return [
      r.mode,
      rate(r.topics),
      rate(r.listenedTopics),
      rate(r.deliveriesPerSecond),
      ms(r.p50),
      ms(r.p99),
      ms(r.max),
      rate((total - inScript) / seconds),
      inScript ? rate(inScript / seconds) : '–',
      `${Math.round(r.redisCpuPercent)} %`,
      Math.round((r.redisCpuPercent * 10_000) / r.publishedPerSecond),
      Math.round(r.redisCpuUsPerDelivery),
      `${r.missing} / ${r.extra + r.repeated}`,
    ];
  });
  const goals = results
    .filter((r) => r.mode.startsWith('partitioned'))
    .flatMap((r) => [
      {
        name: `partitioned, ${rate(r.topics)} topics: p99 ≤ 50 ms`,
        pass: r.p99 <= 50,
        actual: `${ms(r.p99)} ms`,
      },
      {
        name: `partitioned, ${rate(r.topics)} topics: every event once`,
        pass: r.missing === 0 && r.extra === 0 && r.repeated === 0 && r.failedPublishes === 0,
        actual: `${r.missing} missing, ${r.extra + r.repeated} extra, ${r.failedPublishes} failed publishes`,
      },
    ]);
  const markdown = table(
    [
      'live path',
      'topics',
      'topics listened',
      'deliveries/s',
      'p50 ms',
      'p99 ms',
      'max ms',
      'Redis commands/s',
      'XADD in script/s',
      'Redis CPU',
      'Redis CPU µs/publish',
      'Redis CPU µs/delivery',
      'missing / extra',
    ],
    rows,
  );
  return { markdown, goals };
}
