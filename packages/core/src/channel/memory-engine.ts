import type { MessageEvent } from '../encode/types.js';
import type { ChannelEngine, HistoryPage, LiveListener, ReadLimit } from './engine.js';
import { HistoryRing } from './ring.js';

/** Options of {@link memoryEngine}. */
export interface MemoryEngineOptions {
  /**
   * Most events kept per topic for replay.
   * @defaultValue 1000
   */
  maxEvents?: number;
  /**
   * Most bytes kept per topic (UTF-8 of data, id and type); the newest event is kept whatever its size.
   * @defaultValue 1_048_576 (1 MiB)
   */
  maxBytes?: number;
  /** The clock ids are taken from, in ms. @defaultValue `Date.now` */
  now?: () => number;
}

interface Topic {
  ring: HistoryRing;
  listeners: Set<LiveListener>;
}

/**
 * A {@link ChannelEngine} for one process: per topic, a ring of recent events capped by count and
 * bytes, and synchronous fan-out to the process's subscribers. Ids are `<ms>-<seq>` like Redis
 * Streams', so moving to `@rxsse/redis` changes no client-visible id format. History is lost when
 * the process exits; clients that come back then get the truncation signal. A topic's ring lives as
 * long as the engine: use a bounded set of topics (rooms), not one per request.
 *
 * @example
 * ```ts
 * const chat = createChannel(memoryEngine({ maxEvents: 500 }), 'chat');
 * ```
 */
export function memoryEngine(options: MemoryEngineOptions = {}): ChannelEngine {
  const limits = {
    maxEvents: positive(options.maxEvents ?? 1000, 'maxEvents'),
    maxBytes: positive(options.maxBytes ?? 1_048_576, 'maxBytes'),
  };
  const now = options.now ?? Date.now;
  const topics = new Map<string, Topic>();
  const topicOf = (name: string): Topic => {
    let topic = topics.get(name);
    if (!topic) {
      topic = { ring: new HistoryRing(limits, now), listeners: new Set() };
      topics.set(name, topic);
    }
    return topic;
  };

  return {
    async append(name: string, message: MessageEvent<unknown>): Promise<string> {
      const topic = topicOf(name);
      const stored = topic.ring.append(message);
      for (const listener of topic.listeners) listener.event(stored);
      return stored.id;
    },
    async read(name: string, afterId: string, limit: ReadLimit): Promise<HistoryPage> {
      return topicOf(name).ring.read(afterId, limit);
    },
    async listen(name: string, listener: LiveListener): Promise<() => void> {
      const { listeners } = topicOf(name);
      listeners.add(listener);
      return () => {
        listeners.delete(listener);
      };
    },
    async close(): Promise<void> {
      for (const topic of topics.values()) topic.listeners.clear();
    },
  };
}

function positive(value: number, name: string): number {
  if (!(Number.isInteger(value) && value > 0)) throw new RangeError(`${name} must be a positive integer`);
  return value;
}
