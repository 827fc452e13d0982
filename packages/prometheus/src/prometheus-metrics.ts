import {
  allStreams,
  type CloseReason,
  checkOptionNames,
  describeValue,
  processWide,
  type StreamGauges,
  type StreamMetrics,
} from '@rxsse/core';
import { Counter, register as defaultRegistry, Gauge, Registry, type RegistryContentType } from 'prom-client';

/** Where the metrics go and what they watch. */
export interface PrometheusMetricsOptions {
  /** An OpenMetrics registry too. @defaultValue prom-client's global registry */
  registry?: Registry<RegistryContentType> | undefined;
  /** Prepended to every metric name. @defaultValue 'rxsse_' */
  prefix?: string | undefined;
  /**
   * The streams whose open count and queue depth the gauges read: a `StreamGroup`.
   * @defaultValue `allStreams`, every stream of the process, whatever its group (the Fastify plugin
   *   and `RxsseModule` give each app a group of its own)
   */
  group?: StreamGauges | undefined;
}

/** What a resume ended as: served from history, nothing to replay, or told that events are missing (a first connection too). */
export type ReplayOutcome = 'hit' | 'miss' | 'truncated';

/** {@link StreamMetrics} backed by prom-client, plus a counter for replay outcomes. */
export interface PrometheusMetrics extends StreamMetrics {
  replay(outcome: ReplayOutcome): void;
}

/**
 * Registers rxsse's metrics and returns the hooks to pass as the `metrics` option. Called again with
 * the same registry, prefix and group (a hot reload, an app built per test), it returns the same
 * hooks, also from a copy of this package loaded again and after a `registry.clear()` (their metrics
 * are registered again, from 0); another group needs a prefix of its own, as does a registry that
 * holds a metric of one of these names, or on an OpenMetrics registry one of these names with or
 * without `_total` (refused, naming it, before anything is registered). Metric names (with the
 * default prefix):
 *
 * | name | type | labels |
 * | --- | --- | --- |
 * | `rxsse_connections_open` | gauge | |
 * | `rxsse_connections_total` | counter | |
 * | `rxsse_events_written_total` | counter | |
 * | `rxsse_bytes_written_total` | counter | |
 * | `rxsse_heartbeats_total` | counter | |
 * | `rxsse_closes_total` | counter | `reason`: client, complete, error, overflow, stall, lifetime, shutdown |
 * | `rxsse_dropped_events_total` | counter | |
 * | `rxsse_refused_messages_total` | counter | |
 * | `rxsse_handler_failures_total` | counter | |
 * | `rxsse_queued_bytes` | gauge | |
 * | `rxsse_replays_total` | counter | `outcome`: hit, miss, truncated |
 *
 * Every reason and outcome is exposed from the start, at 0, and again after `registry.resetMetrics()`.
 * The hooks take only what a stream reports: another reason or outcome (no series of a value from
 * outside), or a count below 0, NaN or no number, throws naming it, and counts nothing.
 *
 * @example
 * ```ts
 * const metrics = prometheusMetrics();
 * app.get('/sse', sse(handler, { metrics }));
 * app.get('/metrics', async (req, res) => res.type(register.contentType).send(await register.metrics()));
 * ```
 */
export function prometheusMetrics(options: PrometheusMetricsOptions = {}): PrometheusMetrics {
  checkOptions(options);
  const { registry = defaultRegistry, prefix = 'rxsse_', group = allStreams } = options;
  // The default by no object: a copy of @rxsse/core loaded again has an `allStreams` of its own,
  // which gauges the same streams.
  const gauged = group === allStreams ? undefined : group;
  const made = registrations.get(registry)?.get(prefix);
  // By object, not name: prom-client renames an OpenMetrics counter to its family once scraped.
  const registered: object[] = registry.getMetricsAsArray();
  if (made && registered.includes(made.connections)) {
    if (made.group === gauged) return made.metrics;
    throw new TypeError(
      `rxsse's metrics with prefix '${prefix}' are on this registry already, for another group: give each group a prefix of its own`,
    );
  }
  // Cleared since (`registry.clear()`, a hot reload's): the same metrics go back, from 0, so that the
  // hooks the routes made before still hold count there, rather than into metrics no one reads.
  if (made && made.group === gauged) {
    refuseTaken(registry, made.all);
    for (const [, metric] of made.all) {
      metric.reset();
      registry.registerMetric(metric);
    }
    return made.metrics;
  }
  // Made unregistered, and registered together once no name is taken: one taken halfway would leave
  // the metrics before it on the registry, its gauges reading live streams, and every call after fail.
  const all: [name: string, metric: Counter | Gauge][] = [];
  // A series that first appears at 1 shows no increase to `rate()` or `increase()`: a rare
  // overflow or error would never reach an alert. The labels are few and known, so each is there at
  // 0 from the first scrape on, and again after a `registry.resetMetrics()`, which drops them all.
  const counter = (name: string, help: string, label?: string, values: string[] = []) => {
    const metric = new Counter({
      name: prefix + name,
      help,
      labelNames: label ? [label] : [],
      registers: [],
      collect() {
        for (const value of values) this.inc({ [label as string]: value }, 0);
      },
    });
    all.push([prefix + name, metric]);
    return metric;
  };

  // Gauges are read at scrape time from the group, so the hot path never touches them.
  const gauge = (name: string, help: string, read: () => number) =>
    all.push([
      prefix + name,
      new Gauge({
        name: prefix + name,
        help,
        registers: [],
        collect() {
          this.set(read());
        },
      }),
    ]);
  gauge('connections_open', 'Open event streams.', () => group.size);
  gauge(
    'queued_bytes',
    'Bytes queued for slow clients, beyond what sockets buffer.',
    () => group.queuedBytes,
  );
  const connections = counter('connections_total', 'Event streams opened.');
  const events = counter('events_written_total', 'Events written to clients.');
  const bytes = counter('bytes_written_total', 'Bytes written to clients (events, heartbeats, retry hints).');
  const heartbeats = counter('heartbeats_total', 'Heartbeat comments written.');
  const closes = counter('closes_total', 'Event streams closed, by reason.', 'reason', CLOSE_REASONS);
  const dropped = counter('dropped_events_total', 'Events dropped for slow clients.');
  const refused = counter(
    'refused_messages_total',
    'Messages a stream could not send (see onInvalidMessage).',
  );
  const failures = counter(
    'handler_failures_total',
    'Requests whose handler threw, rejected or returned no source: no stream began.',
  );
  const replays = counter(
    'replays_total',
    'Last-Event-ID replays by outcome; truncated counts every time a subscription is told that events are missing.',
    'outcome',
    REPLAY_OUTCOMES,
  );
  refuseTaken(registry, all);
  for (const [, metric] of all) registry.registerMetric(metric);

  const metrics: PrometheusMetrics = {
    opened: () => connections.inc(),
    wrote(count, size) {
      amount(count, 'wrote() takes an event count');
      amount(size, 'wrote() takes a byte count');
      if (count > 0) events.inc(count);
      bytes.inc(size);
    },
    heartbeat: () => heartbeats.inc(),
    dropped: (count) => dropped.inc(amount(count, 'dropped() takes a count')),
    refused: () => refused.inc(),
    failed: () => failures.inc(),
    closed: (reason: CloseReason) => closes.inc({ reason: known(reason, CLOSE_REASONS, CLOSED_TAKES) }),
    replay: (outcome) => replays.inc({ outcome: known(outcome, REPLAY_OUTCOMES, REPLAY_TAKES) }),
  };
  const byPrefix = registrations.get(registry) ?? new Map();
  registrations.set(registry, byPrefix.set(prefix, { group: gauged, metrics, connections, all }));
  return metrics;
}

/** Throws naming a metric of `registry` that has one of these names (on OpenMetrics, their family). */
function refuseTaken(registry: Registry<RegistryContentType>, all: [name: string, metric: object][]): void {
  // OpenMetrics names a counter's family without `_total`: there, `x` and `x_total` are one name.
  const openMetrics = registry.contentType === Registry.OPENMETRICS_CONTENT_TYPE;
  const family = (name: string) => (openMetrics ? name.replace(/_total$/, '') : name);
  const ours = new Set(all.map(([name]) => family(name)));
  const taken = registry.getMetricsAsArray().find(({ name }) => ours.has(family(name)));
  if (taken)
    throw new TypeError(
      `A metric named '${taken.name}' is on this registry already: give rxsse's metrics a prefix of their own`,
    );
}

/**
 * The hooks made per registry and prefix, with the group they gauge (none: the default) and their
 * metrics. One map per process: a hot reload that loads this module again, but not prom-client and
 * its registry, finds its metrics there, rather than taking them for another library's. The key
 * names the shape of its entries: a version that changes it takes another key.
 */
const registrations = processWide(
  'prometheusRegistrations.v1',
  () =>
    new WeakMap<
      Registry<RegistryContentType>,
      Map<
        string,
        {
          group: StreamGauges | undefined;
          metrics: PrometheusMetrics;
          connections: Counter;
          all: [name: string, metric: Counter | Gauge][];
        }
      >
    >(),
);

/** Every {@link CloseReason}: the type fails to compile here when one is added without it. */
const CLOSE_REASONS = Object.keys({
  client: 0,
  complete: 0,
  error: 0,
  overflow: 0,
  stall: 0,
  lifetime: 0,
  shutdown: 0,
} satisfies Record<CloseReason, 0>);

const REPLAY_OUTCOMES = Object.keys({ hit: 0, miss: 0, truncated: 0 } satisfies Record<ReplayOutcome, 0>);

const OPTION_NAMES = Object.keys({
  registry: true,
  prefix: true,
  group: true,
} satisfies Record<keyof PrometheusMetricsOptions, true>);

/**
 * Checks the options before anything is registered, so a wrong one fails here, naming it, rather
 * than at every scrape (a group without gauges) or silently (the registry passed as the options
 * registers on the global one).
 */
function checkOptions(options: PrometheusMetricsOptions): void {
  if (isRegistry(options))
    throw new TypeError('prometheusMetrics() takes options, got a Registry: pass { registry }');
  if (typeof options !== 'object' || options === null) {
    throw new TypeError(`prometheusMetrics() takes options, got ${describeValue(options)}`);
  }
  checkOptionNames('prometheusMetrics', options, OPTION_NAMES);
  const { registry, prefix, group } = options;
  if (registry !== undefined && !isRegistry(registry)) {
    throw new TypeError(`registry must be a prom-client Registry, got ${describeValue(registry)}`);
  }
  if (prefix !== undefined && typeof prefix !== 'string') {
    throw new TypeError(`prefix must be a string, got ${describeValue(prefix)}`);
  }
  if (prefix !== undefined && !/^[a-zA-Z_:][a-zA-Z0-9_:]*$|^$/.test(prefix)) {
    throw new TypeError(`prefix must start a valid metric name ([a-zA-Z_:][a-zA-Z0-9_:]*), got '${prefix}'`);
  }
  const gauges = group as Partial<StreamGauges> | null | undefined;
  if (group !== undefined && (typeof gauges?.size !== 'number' || typeof gauges.queuedBytes !== 'number')) {
    throw new TypeError(
      `group must be a StreamGroup (or a size and queuedBytes to read), got ${describeValue(group)}`,
    );
  }
}

const CLOSED_TAKES = `closed() takes a CloseReason (${CLOSE_REASONS.join(', ')})`;
const REPLAY_TAKES = "replay() takes 'hit', 'miss' or 'truncated'";

/**
 * Checks a label value before it makes a series: one a transport took from a request (a path, a
 * client's message) would add a series per value, without bound, to every scrape.
 * @throws {TypeError} naming it, unless it is one of `values`.
 */
function known<T extends string>(value: T, values: readonly string[], what: string): T {
  if (!values.includes(value)) throw new TypeError(`${what}, got ${describeValue(value)}`);
  return value;
}

/**
 * Checks a count a transport reports before it reaches a counter: prom-client refuses a negative
 * one with a message that names no metric, and adds a NaN, which leaves the counter at NaN for good.
 * @throws {TypeError} for a value that is no number, {RangeError} for one below 0 or not finite.
 */
function amount(value: number, what: string): number {
  if (typeof value !== 'number') throw new TypeError(`${what} of 0 or more, got ${describeValue(value)}`);
  if (!(Number.isFinite(value) && value >= 0)) throw new RangeError(`${what} of 0 or more, got ${value}`);
  return value;
}

/** Whether `value` has the methods used here, so a look-alike fails here rather than at its first lookup. */
function isRegistry(value: unknown): boolean {
  const registry = value as Partial<Registry> | null;
  return typeof registry?.registerMetric === 'function' && typeof registry.getMetricsAsArray === 'function';
}
