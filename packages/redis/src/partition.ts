import type { RedisClient } from './client.js';
import type { EntryFields } from './stream-fields.js';

/** Redis Cluster's slot count. */
const SLOTS = 16_384;

/**
 * Where a topic lives when topics share partitions: every key of a partition carries the same hash
 * tag, so a publish (one script over two keys) stays in one Cluster slot. Tags are chosen so the
 * partitions' slots spread evenly over the slot range (a bare `{0}`, `{1}`, ... would crowd a few
 * slots, and so a few shards).
 */
export class PartitionLayout {
  readonly #tags: string[];

  constructor(
    private readonly prefix: string,
    readonly count: number,
  ) {
    this.#tags = Array.from({ length: count }, (_, i) => tagInSlotRange(i, count));
  }

  /** The partition of `topic`: FNV-1a over its UTF-16 code units, so every process agrees. */
  partitionOf(topic: string): number {
    let hash = 0x811c9dc5;
    for (let i = 0; i < topic.length; i++) hash = Math.imul(hash ^ topic.charCodeAt(i), 0x01000193);
    return (hash >>> 0) % this.count;
  }

  /** The live stream of a partition: every event of its topics, in publish order. */
  partitionKey(partition: number): string {
    return `${this.prefix}{${this.#tags[partition]}}`;
  }

  /** A topic's own stream, its history. The `:` keeps it apart from the partition's key. */
  topicKey(topic: string): string {
    return `${this.partitionKey(this.partitionOf(topic))}:${topic}`;
  }
}

/** The Cluster slot of a hash tag: CRC16 (XMODEM) of its UTF-8 bytes, mod 16,384. */
export function slotOf(tag: string): number {
  let crc = 0;
  for (const byte of Buffer.from(tag)) {
    crc ^= byte << 8;
    for (let bit = 0; bit < 8; bit++)
      crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
  }
  return crc % SLOTS;
}

/** The first tag `<i>.<n>` whose slot is in partition `i`'s even share of the slot range. */
function tagInSlotRange(i: number, count: number): string {
  const low = Math.floor((i * SLOTS) / count);
  const high = Math.floor(((i + 1) * SLOTS) / count);
  for (let n = 0; ; n++) {
    const slot = slotOf(`${i}.${n}`);
    if (slot >= low && slot < high) return `${i}.${n}`;
  }
}

/**
 * Appends to the topic's stream, then the same fields, with the topic and its id, to the
 * partition's stream: both or neither (a script stops at its first error, but keeps what it wrote:
 * the partition's key is checked first, so the first XADD is the only one that can refuse, with an
 * explicit id that is not after the last). Ids are the topic stream's own.
 */
const APPEND = `
local kind = redis.call('TYPE', KEYS[2]).ok
if kind ~= 'stream' and kind ~= 'none' then
  return redis.error_reply('WRONGTYPE Operation against a key holding the wrong kind of value')
end
local id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[2], ARGV[1], unpack(ARGV, 5))
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[3], '*', 'k', ARGV[4], 'i', id, unpack(ARGV, 5))
return id
`;

/** What {@link appendToPartition} writes. */
export interface PartitionAppend {
  topic: string;
  topicKey: string;
  partitionKey: string;
  /** An explicit id, or `*`. */
  id: string;
  fields: EntryFields;
  maxLength: number;
  partitionMaxLength: number;
}

/**
 * Runs the append script. Always `EVAL`, never `EVALSHA` with a fallback: a fallback after
 * `NOSCRIPT` (a new or restarted Redis) would send the call again behind later ones, and publishes
 * would be stored out of call order. Redis caches the compiled script either way.
 */
export async function appendToPartition(client: RedisClient, append: PartitionAppend): Promise<string> {
  return String(
    await client.eval(APPEND, {
      keys: [append.topicKey, append.partitionKey],
      arguments: [
        append.id,
        String(append.maxLength),
        String(append.partitionMaxLength),
        append.topic,
        ...Object.entries(append.fields).flat(),
      ],
    }),
  );
}
