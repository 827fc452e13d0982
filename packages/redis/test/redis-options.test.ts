// The options' documented defaults and bounds, read off the commands the engine sends (MONITOR) and
// the errors it throws, so none of them drifts unnoticed.
import { createChannel } from '@rxsse/core/channel';
import { until } from '@rxsse/core/testing';
import { firstValueFrom } from 'rxjs';
import { describe, expect, it, vi } from 'vitest';
import { freePort } from '../../../test/support/processes.js';
import { RedisEngineError, type RedisEngineOptions, redisEngine } from '../src/index.js';
import { PartitionLayout } from '../src/partition.js';
import { TopologyRefresh } from '../src/topology-refresh.js';
import { killLiveConnection, useRedis } from './support/use-redis.js';

const redis = useRedis({ flush: true });
const { engine } = redis;

/** Every command Redis runs from now on, as MONITOR prints it (`<time> [0 <addr>] "cmd" "arg" ...`), lower-cased. */
async function monitor() {
  const client = redis.raw.duplicate();
  client.on('error', () => {});
  await client.connect();
  const lines: string[] = [];
  await client.monitor((line) => lines.push(line.toLowerCase()));
  return {
    lines,
    /** Waits for a command line that contains `text`, and returns it. */
    async find(text: string): Promise<string> {
      let found: string | undefined;
      await until(() => {
        found = lines.find((line) => line.includes(text));
        return found !== undefined;
      }, text);
      return found!;
    },
    stop: () => client.destroy(),
  };
}

describe('redisEngine options', () => {
  it('trims each topic to about 10,000 entries, and reads live 500 at a time blocking 500 ms, by default', async () => {
    const commands = await monitor();
    try {
      const store = engine();
      const stop = await store.listen('defaults', { event: () => {}, gap: () => {} });
      await store.append('defaults', { data: 'x' });
      expect(await commands.find('"xadd" "sse:{defaults}"')).toContain('"maxlen" "~" "10000" "*"');
      const read = await commands.find('"xread"');
      expect(read).toContain('"block" "500"');
      expect(read).toContain('"count" "500"');
      stop();
    } finally {
      commands.stop();
    }
  });

  it('trims topic and partition streams to about 10,000 entries each by default, with partitions', async () => {
    const commands = await monitor();
    try {
      const store = engine({ partitions: 4 });
      await store.append('defaults', { data: 'x' });
      const layout = new PartitionLayout('sse:', 4);
      const topicKey = layout.topicKey('defaults');
      const partitionKey = layout.partitionKey(layout.partitionOf('defaults'));
      // EVAL <script> 2 <topic key> <partition key> <id> <maxLength> <partitionMaxLength> <topic> ...
      expect(await commands.find('"eval"')).toContain(
        `"2" "${topicKey}" "${partitionKey}" "*" "10000" "10000" "defaults"`,
      );
    } finally {
      commands.stop();
    }
  });

  it('asks for at most readCount entries per topic in every live read, blocking or checked', async () => {
    const commands = await monitor();
    try {
      const store = engine({ readCount: 7 });
      const seen: unknown[] = [];
      const stop = await store.listen('counted', { event: (m) => seen.push(m), gap: () => {} });
      // The stream starts after the listener: its first entries come through a checked read.
      await store.append('counted', { data: 'x' });
      await until(() => seen.length === 1, 'the event');
      stop();
      const reads = () => commands.lines.filter((line) => line.includes('"xread"'));
      const blocking = (line: string) => line.includes('"block"');
      await until(() => reads().some(blocking) && !reads().every(blocking), 'both kinds of read');
      for (const read of reads()) expect(read).toContain('"count" "7"');
    } finally {
      commands.stop();
    }
  });

  it('gives up on an unreachable Redis after 5 s by default', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    try {
      const store = engine({ url: `redis://127.0.0.1:${await freePort()}` });
      let outcome: unknown;
      store.append('t', { data: 'x' }).then(
        () => {
          outcome = 'stored';
        },
        (error: unknown) => {
          outcome = error;
        },
      );
      await vi.advanceTimersByTimeAsync(4999);
      expect(outcome).toBeUndefined();
      await vi.advanceTimersByTimeAsync(1);
      expect(outcome).toBeInstanceOf(RedisEngineError);
      expect((outcome as Error).message).toMatch(
        /^Redis publish on topic "t" failed: not connected within 5000 ms/,
      );
    } finally {
      vi.useRealTimers();
    }
  });

  it('checks the cluster topology every second by default', async () => {
    const nowhere = `redis://127.0.0.1:${await freePort()}`;
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    const check = vi.spyOn(TopologyRefresh.prototype, 'check');
    try {
      engine({ url: undefined, cluster: { rootNodes: [{ url: nowhere }] }, onError: () => {} });
      await vi.advanceTimersByTimeAsync(999);
      expect(check).not.toHaveBeenCalled();
      await vi.advanceTimersByTimeAsync(1);
      expect(check).toHaveBeenCalledTimes(1);
    } finally {
      check.mockRestore();
      vi.useRealTimers();
    }
  });

  it.each([
    ['per topic', undefined],
    ['partitioned', 4],
  ])('runs as an ACL user allowed only the commands the README lists (%s)', async (_mode, partitions) => {
    const allowed = [
      'xadd',
      'xrange',
      'xrevrange',
      'xread',
      'xinfo|stream',
      'exists',
      'type',
      'multi',
      'exec',
      'info',
    ];
    allowed.push('xtrim', 'eval', 'eval_ro');
    await redis.raw.aclSetUser('engine', [
      'reset',
      'on',
      '>secret',
      '~sse:*',
      ...allowed.map((c) => `+${c}`),
    ]);
    const errors: unknown[] = [];
    const store = engine({
      partitions,
      maxAgeMs: 60_000,
      clientOptions: { username: 'engine', password: 'secret' },
      onError: (error) => errors.push(error),
    });
    const channel = createChannel(store, 'acl');
    // A topic with no stream yet, read after a reconnect: the checked read and its XINFO STREAM.
    const live = firstValueFrom(await channel.subscribe());
    await killLiveConnection(redis.raw);
    const first = await channel.publish({ data: 'first' });
    expect(await live).toMatchObject({ id: first });
    const second = await channel.publish({ data: 'second' });
    expect(await firstValueFrom(await channel.subscribe({ lastEventId: first }))).toMatchObject({
      id: second,
    });
    const large = [];
    for (let i = 0; i < 8; i++) large.push(await channel.publish({ data: 'x'.repeat(20_000) }));
    // The live connection's reset is reported; no command was refused.
    expect(errors.filter((error) => String(error).includes('NOPERM'))).toEqual([]);
    await redis.raw.aclSetUser('engine', ['-xadd', '-eval', '-eval_ro']);
    await expect(channel.publish({ data: 'refused' })).rejects.toThrow(/failed: Redis replied "NOPERM /);
    // Without the scripts, a page goes on from a large entry with a plain XRANGE, which fetches it
    // again: each refusal told once.
    for (let i = 0; i < 2; i++) {
      const page = await store.read('acl', second, { count: 10, bytes: 1_000_000 });
      expect(page.events.map((m) => m.id)).toEqual(large);
    }
    const told = errors.filter((error) => String(error).includes('NOPERM'));
    expect(told.map((error) => (error as Error).message)).toEqual([
      expect.stringMatching(/^Redis refused EVAL_RO, so .*: NOPERM .*'eval_ro'/),
      expect.stringMatching(/^Redis refused EVAL, so .*: NOPERM .*'eval'/),
    ]);
  });

  it('checks a large live cursor by EVAL_RO as an ACL user without EVAL, with nothing to report', async () => {
    await redis.raw.aclSetUser('engine', ['reset', 'on', '>secret', '~sse:*', '+@all', '-eval']);
    const errors: unknown[] = [];
    const store = engine({
      blockMs: 100,
      clientOptions: { username: 'engine', password: 'secret' },
      onError: (error) => errors.push(error),
    });
    const ids: string[] = [];
    const stop = await store.listen('no-eval', {
      event: (m) => ids.push(m.id),
      gap: () => ids.push('<gap>'),
    });
    const large = await redis.raw.xAdd('sse:{no-eval}', '*', { d: 'x'.repeat(20_000) });
    await until(() => ids.length === 1, 'the large event');
    // The read after the reset is a checked one, whose MULTI queues the script as EVAL_RO: as EVAL,
    // refused, it would abort the MULTI.
    await killLiveConnection(redis.raw);
    const small = await redis.raw.xAdd('sse:{no-eval}', '*', { d: 'small' });
    await until(() => ids.length === 2, 'the event after it');
    stop();
    expect(ids).toEqual([large, small]);
    expect(errors.filter((error) => String(error).includes('NOPERM'))).toEqual([]);
  });

  it('delivers live as an ACL user without INFO, and tells onError once, then asks no more', async () => {
    await redis.raw.aclSetUser('engine', ['reset', 'on', '>secret', '~sse:*', '+@all', '-info']);
    const errors: unknown[] = [];
    const store = engine({
      blockMs: 100,
      clientOptions: { username: 'engine', password: 'secret' },
      onError: (error) => errors.push(error),
    });
    const refusedInfo = async () =>
      Number((await redis.raw.info('commandstats')).match(/cmdstat_info:.*rejected_calls=(\d+)/)?.[1] ?? 0);
    // Two topics start at once: both ask, one report.
    const [one, two] = [createChannel(store, 'no-info'), createChannel(store, 'no-info-2')];
    const lives = await Promise.all([one.subscribe(), two.subscribe()]);
    const live = firstValueFrom(lives[0]!);
    await killLiveConnection(redis.raw);
    const id = await one.publish({ data: 'x' });
    expect(await live).toMatchObject({ id });
    const asked = await refusedInfo();
    const again = firstValueFrom(lives[1]!);
    await killLiveConnection(redis.raw);
    const second = await two.publish({ data: 'y' });
    expect(await again).toMatchObject({ id: second });
    // A topic that starts later does not ask either.
    (await store.listen('no-info-3', { event: () => {}, gap: () => {} }))();
    expect(await refusedInfo()).toBe(asked);
    const refused = errors.filter((error) => String(error).includes('NOPERM'));
    expect(refused).toHaveLength(1);
    expect(String(refused[0])).toMatch(/INFO.*restart.*cursors only.*info/s);
  });

  it('rejects every call with wrong credentials where the default user needs a password, and tells onError of the WRONGPASS', async () => {
    await redis.raw.aclSetUser('engine', ['reset', 'on', '>secret', '~sse:*', '+@all']);
    // Connections open now keep their login: only new ones need the password.
    await redis.raw.aclSetUser('default', ['resetpass', '>admin']);
    try {
      const errors: unknown[] = [];
      const store = engine({
        commandTimeoutMs: 1000,
        clientOptions: { username: 'engine', password: 'wrong' },
        onError: (error) => errors.push(error),
      });
      const failed = await store.append('creds', { data: 'x' }).catch((error: unknown) => error);
      expect(failed).toBeInstanceOf(RedisEngineError);
      expect(String(failed)).toMatch(/Redis replied "NOAUTH /);
      expect(errors.map(String).join('\n')).toMatch(/WRONGPASS/);
    } finally {
      await redis.raw.aclSetUser('default', ['resetpass', 'nopass']);
    }
  });

  it('runs as the default user with wrong credentials where it needs no password, and tells onError of the WRONGPASS', async () => {
    await redis.raw.aclSetUser('engine', ['reset', 'on', '>secret', '~sse:*', '+@all']);
    const errors: unknown[] = [];
    const store = engine({
      clientOptions: { username: 'engine', password: 'wrong' },
      onError: (error) => errors.push(error),
    });
    await store.append('creds', { data: 'x' });
    expect(errors.map(String).join('\n')).toMatch(/WRONGPASS/);
  });

  it('takes the bounds of its ranges and refuses what lies past them', async () => {
    const url = redis.server.url;
    for (const options of [
      { blockMs: 1000 },
      { partitions: 1 },
      { partitions: 1024 },
      { url: `${url}/0` },
      // An empty hash tag matters on a Cluster only.
      { keyPrefix: 'app{}:', partitions: 4 },
    ])
      expect(() => engine(options), JSON.stringify(options)).not.toThrow();
    expect(() => redisEngine({ url, blockMs: 1001 })).toThrow(
      /^blockMs must be an integer from 1 to 1000, got 1001$/,
    );
    for (const partitions of [0, 1025, 1.5])
      expect(() => redisEngine({ url, partitions }), String(partitions)).toThrow(
        new RegExp(`^partitions must be an integer from 1 to 1024, got ${partitions}$`),
      );
    expect(() => redisEngine({ url, cluster: { rootNodes: [{ url }] } })).toThrow(
      /^Give either url or cluster, not both$/,
    );
    // The longest refresh period a Node timer can wait; nothing listens on the port.
    const nowhere = `redis://127.0.0.1:${await freePort()}`;
    // On a Cluster, partitions default to 16: a partitionMaxLength of its own applies.
    expect(() =>
      engine({
        url: undefined,
        cluster: {
          // Database 0 named: the only one a Cluster has.
          rootNodes: [{ url: `${nowhere.replace('redis:', 'rediss:')}/0` }],
          topologyRefreshMs: 2 ** 31 - 1,
        },
        partitionMaxLength: 100,
        // A TLS Cluster: its nodes' connections take TLS from the options every node gets.
        clientOptions: { socket: { tls: true } },
        onError: () => {},
      }),
    ).not.toThrow();
  });
});

describe('redisEngine connection options', () => {
  it('connects to a unix: URL', async () => {
    const channel = createChannel(engine({ url: redis.server.socketUrl }), 'over a socket');
    const first = await channel.publish({ data: 'a' });
    await channel.publish({ data: 'b' });
    const replayed = await firstValueFrom(await channel.subscribe({ lastEventId: first }));
    expect(replayed).toMatchObject({ data: 'b' });
  });

  it('keeps its streams in the database its url names, and reads them live there, over TCP and a socket', async () => {
    for (const [url, database] of [
      [`${redis.server.url}/2`, 2],
      [`${redis.server.socketUrl}?db=3`, 3],
    ] as const) {
      const channel = createChannel(engine({ url }), 'in a database');
      const live = await channel.subscribe({});
      const first = await channel.publish({ data: 'a' });
      await expect(firstValueFrom(live), url).resolves.toMatchObject({ id: first, data: 'a' });
      await channel.publish({ data: 'b' });
      const replayed = await firstValueFrom(await channel.subscribe({ lastEventId: first }));
      expect(replayed, url).toMatchObject({ data: 'b' });
      const there = redis.raw.duplicate({ database });
      await there.connect();
      try {
        expect(await there.xLen('sse:{in a database}'), url).toBe(2);
      } finally {
        there.destroy();
      }
      expect(await redis.raw.exists('sse:{in a database}'), url).toBe(0);
      await redis.raw.flushAll();
    }
  });

  it("leaves the caller's clientOptions as they were, so they serve another engine too", async () => {
    const clientOptions = { socket: Object.freeze({ connectTimeout: 2000 }) };
    for (const topic of ['one', 'two']) {
      const channel = createChannel(engine({ clientOptions }), topic);
      await expect(channel.publish({ data: topic })).resolves.toMatch(/^\d+-\d+$/);
    }
    expect(clientOptions).toEqual({ socket: { connectTimeout: 2000 } });
  });
});

describe('redisEngine option checks', () => {
  // Each fails before any connection is made: nothing listens where the valid ones point.
  const url = 'redis://127.0.0.1:1';
  const cluster = { rootNodes: [{ url }] };
  /** The refusal of a url whose database is no whole number. */
  const notWhole = (got: string) =>
    new RegExp(
      `^url must name its database by a whole number \\(redis://host/2, unix:///path\\?db=2\\), got "${got.replaceAll('.', '\\.')}"$`,
    );
  const UNIX_FORM =
    /^url must be a unix:\/\/\/path\/to\/socket URL \(lower case, the path absolute\), got another form$/;
  it.each<[string, unknown, typeof TypeError | typeof RangeError, RegExp]>([
    ['null', null, TypeError, /^options must be an object, got null$/],
    ['a string', url, TypeError, /^options must be an object, got string redis:/],
    ['url', { url: 6379 }, TypeError, /^url must be a string, got number 6379$/],
    [
      'url',
      { url: 'localhost:6379' },
      RangeError,
      /^url must be a redis:, rediss: or unix: URL, got protocol localhost:$/,
    ],
    // node-redis would throw for these as it makes its client, or ask Redis to SELECT a database that is
    // no whole number, failing every connection while commands went on to database 0.
    ['url', { url: 'redis://127.0.0.1:1/db' }, RangeError, notWhole('db')],
    ['url', { url: 'redis://127.0.0.1:1/-1' }, RangeError, notWhole('-1')],
    ['url', { url: 'redis://127.0.0.1:1/1.5' }, RangeError, notWhole('1.5')],
    ['url', { url: 'redis://127.0.0.1:1/1e20' }, RangeError, notWhole('1e20')],
    ['url', { url: 'unix:///run/redis.sock?db=x' }, RangeError, notWhole('x')],
    ['url', { url: 'unix:run/redis.sock' }, RangeError, UNIX_FORM],
    ['url', { url: 'UNIX:///run/redis.sock' }, RangeError, UNIX_FORM],
    ['url', { url: 'unix://localhost/run/redis.sock' }, RangeError, UNIX_FORM],
    ['url', { url: 'unix:///#socket' }, RangeError, UNIX_FORM],
    ['url', { url: 'unix:///' }, RangeError, UNIX_FORM],
    [
      'cluster.rootNodes[0].url',
      { cluster: { rootNodes: [{ url: 'redis://127.0.0.1:1/x' }] } },
      RangeError,
      /^cluster.rootNodes\[0\].url must name its database by a whole number .*, got "x"$/,
    ],
    // A Cluster refuses SELECT: a node named with another database would never connect.
    [
      'cluster.rootNodes[0].url',
      { cluster: { rootNodes: [{ url: 'redis://127.0.0.1:1/1' }] } },
      RangeError,
      /^cluster.rootNodes\[0\].url must name database 0 or none \(a Redis Cluster has no other\), got "1"$/,
    ],
    [
      'url',
      { url: '' },
      RangeError,
      /^url must be a redis:, rediss: or unix: URL, got a string that is no URL$/,
    ],
    [
      'url',
      { url: 'no url' },
      RangeError,
      /^url must be a redis:, rediss: or unix: URL, got a string that is no URL$/,
    ],
    ['cluster', { cluster: null }, TypeError, /^cluster must be an object \{ rootNodes \}, got null$/],
    [
      'cluster',
      { cluster: [url] },
      TypeError,
      /^cluster must be an object \{ rootNodes \}, got an array of 1$/,
    ],
    [
      'cluster.rootNodes',
      { cluster: { rootNodes: url } },
      TypeError,
      /^cluster.rootNodes must be an array of \{ url \}, got string redis:/,
    ],
    [
      'cluster.rootNodes',
      { cluster: { rootNodes: [] } },
      RangeError,
      /^cluster.rootNodes must name at least one node, got none$/,
    ],
    [
      'cluster.rootNodes[1]',
      { cluster: { rootNodes: [{ url }, url] } },
      TypeError,
      /^cluster.rootNodes\[1\] must be an object \{ url \}, got string redis:/,
    ],
    [
      'cluster.rootNodes[0]',
      { cluster: { rootNodes: [null] } },
      TypeError,
      /^cluster.rootNodes\[0\] must be an object \{ url \}, got null/,
    ],
    [
      'cluster.rootNodes[0].url',
      { cluster: { rootNodes: [{ url: 7000 }] } },
      TypeError,
      /^cluster.rootNodes\[0\].url must be a string, got number 7000$/,
    ],
    [
      'cluster.rootNodes[0].url',
      { cluster: { rootNodes: [{ url: 'http://a' }] } },
      RangeError,
      /^cluster.rootNodes\[0\].url must be a redis: or rediss: URL, got protocol http:$/,
    ],
    [
      'cluster.topologyRefreshMs',
      { cluster: { ...cluster, topologyRefreshMs: '1000' } },
      TypeError,
      /^cluster.topologyRefreshMs must be a number of ms from 1 to 2147483647, got string 1000$/,
    ],
    [
      'cluster.topologyRefreshMs',
      { cluster: { ...cluster, topologyRefreshMs: 0 } },
      RangeError,
      /^cluster.topologyRefreshMs must be a number of ms from 1 to 2147483647, got 0$/,
    ],
    [
      'cluster.topologyRefreshMs',
      { cluster: { ...cluster, topologyRefreshMs: 2 ** 31 } },
      RangeError,
      /, got 2147483648$/,
    ],
    ['url with cluster', { url, cluster }, RangeError, /^Give either url or cluster, not both$/],
    // A misspelt name would run on the default: a stream trimmed at another length, say.
    [
      'an unknown name',
      { url, maxlength: 100 },
      TypeError,
      /^Unknown redisEngine option "maxlength" \(did you mean "maxLength"\?\)$/,
    ],
    ['an unknown name', { url, maxlen: 100 }, TypeError, /^Unknown redisEngine option "maxlen"$/],
    [
      'an unknown cluster name',
      { cluster: { ...cluster, topologyRefresh: 500 } },
      TypeError,
      /^Unknown cluster option "topologyRefresh" \(did you mean "topologyRefreshMs"\?\)$/,
    ],
    [
      'clientOptions',
      { clientOptions: 'tls' },
      TypeError,
      /^clientOptions must be an object of node-redis options, got string tls$/,
    ],
    [
      'clientOptions',
      { clientOptions: [{ username: 'engine' }] },
      TypeError,
      /^clientOptions must be an object of node-redis options, got /,
    ],
    // Its url would be replaced by the default one: the engine would connect to another Redis.
    [
      'clientOptions.url',
      { clientOptions: { url: 'redis://user:secret@db:6379' } },
      TypeError,
      /^clientOptions must not hold a url \(got one\): give it as the url option$/,
    ],
    // node-redis takes the address from the url (its default too) over these: another Redis.
    [
      'clientOptions.socket',
      { url, clientOptions: { socket: { host: 'db', port: 6380 } } },
      TypeError,
      /^clientOptions.socket must not hold a host or port \(got host\): give the address as the url option \(or cluster.rootNodes\)$/,
    ],
    [
      'clientOptions.socket',
      { cluster, clientOptions: { socket: { port: 7000 } } },
      TypeError,
      /^clientOptions.socket must not hold a host or port \(got port\)/,
    ],
    [
      'clientOptions.socket',
      { url, clientOptions: { socket: { path: '/run/redis.sock' } } },
      TypeError,
      /^clientOptions.socket must not hold a path: give a unix: url instead$/,
    ],
    [
      'clientOptions.socket.tls',
      { clientOptions: { socket: { tls: true } } },
      RangeError,
      /^clientOptions.socket.tls is true, but url is a redis: URL \(the default\): TLS takes a rediss: url$/,
    ],
    [
      'clientOptions.socket.tls',
      { url: 'unix:///run/redis.sock', clientOptions: { socket: { tls: true } } },
      RangeError,
      /^clientOptions.socket.tls is true, but url is a unix: URL: TLS takes a rediss: url$/,
    ],
    [
      'clientOptions.socket',
      { url, clientOptions: { socket: null } },
      TypeError,
      /^clientOptions.socket must be an object, got null$/,
    ],
    [
      'cluster.rootNodes[0].url',
      { cluster: { rootNodes: [{ url: 'unix:///run/redis.sock' }] } },
      RangeError,
      /^cluster.rootNodes\[0\].url must be a redis: or rediss: URL, got protocol unix:$/,
    ],
    ['keyPrefix', { keyPrefix: 5 }, TypeError, /^keyPrefix must be a string, got number 5$/],
    [
      'keyPrefix',
      { keyPrefix: 'a\uD800' },
      RangeError,
      /^keyPrefix must be well-formed UTF-16, got "a\\ud800"$/,
    ],
    [
      'keyPrefix',
      { keyPrefix: 'app{}:', cluster: { rootNodes: [{ url: 'redis://127.0.0.1:1' }] } },
      RangeError,
      /^keyPrefix "app\{\}:" starts a hash tag with an empty one, so a Cluster would hash a topic's keys to different slots and refuse every publish \(CROSSSLOT\)$/,
    ],
    [
      'partitions',
      { partitions: '16' },
      TypeError,
      /^partitions must be an integer from 1 to 1024, got string 16$/,
    ],
    [
      'partitions',
      { partitions: 1025 },
      RangeError,
      /^partitions must be an integer from 1 to 1024, got 1025$/,
    ],
    ['partitions', { partitions: 1.5 }, RangeError, /, got 1.5$/],
    [
      'partitionMaxLength',
      { partitionMaxLength: 0 },
      RangeError,
      /^partitionMaxLength must be a positive integer, got 0$/,
    ],
    // It would trim nothing: without partitions no partition stream is written.
    [
      'partitionMaxLength',
      { url, partitionMaxLength: 1000 },
      RangeError,
      /^partitionMaxLength needs partitions \(or a cluster\), got none$/,
    ],
    ['maxLength', { maxLength: -1 }, RangeError, /^maxLength must be a positive integer, got -1$/],
    ['maxLength', { maxLength: '100' }, TypeError, /^maxLength must be a positive integer, got string 100$/],
    ['maxAgeMs', { maxAgeMs: Number.NaN }, RangeError, /^maxAgeMs must be a positive integer, got NaN$/],
    ['blockMs', { blockMs: 1001 }, RangeError, /^blockMs must be an integer from 1 to 1000, got 1001$/],
    ['blockMs', { blockMs: 0 }, RangeError, /^blockMs must be an integer from 1 to 1000, got 0$/],
    [
      'readCount',
      { readCount: Number.POSITIVE_INFINITY },
      RangeError,
      /^readCount must be a positive integer, got Infinity$/,
    ],
    [
      'commandTimeoutMs',
      { commandTimeoutMs: null },
      TypeError,
      /^commandTimeoutMs must be an integer from 1 to 2147482647, got null$/,
    ],
    // A live read's timer, blockMs longer, would fire at once: every read would time out.
    [
      'commandTimeoutMs',
      { commandTimeoutMs: 2 ** 31 - 1000 },
      RangeError,
      /^commandTimeoutMs must be an integer from 1 to 2147482647, got 2147482648$/,
    ],
    ['onError', { onError: 'log' }, TypeError, /^onError must be a function, got string log$/],
  ])('refuses %s: %o', (_name, options, type, message) => {
    let thrown: unknown;
    try {
      redisEngine(options as RedisEngineOptions);
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(type);
    expect((thrown as Error).message).toMatch(message);
  });
});
