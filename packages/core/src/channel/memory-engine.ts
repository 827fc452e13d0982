import type { MessageEvent } from '../encode/types.js';
import { checkOptionNames, checkOptionsObject } from '../http/option-names.js';
import { describeValue } from '../http/source.js';
import type { ChannelEngine, HistoryPage, LiveListener, ReadLimit, StoredMessage } from './engine.js';
import { HistoryRing } from './ring.js';

/** Options of {@link memoryEngine}. */
export interface MemoryEngineOptions {
  /**
   * Most events kept per topic for replay.
   * @defaultValue 1000
   */
  maxEvents?: number | undefined;
  /**
   * Most bytes kept per topic (UTF-8 of data, id and type); the newest event is kept whatever its size.
   * @defaultValue 1_048_576 (1 MiB)
   */
  maxBytes?: number | undefined;
  /** The clock ids are taken from, in ms (a function, not a time). @defaultValue `Date.now` */
  now?: (() => number) | undefined;
}

const MEMORY_ENGINE_OPTION_NAMES = Object.keys({
  maxEvents: true,
  maxBytes: true,
  now: true,
} satisfies Record<keyof MemoryEngineOptions, true>);

interface Topic {
  ring: HistoryRing;
  listeners: Set<LiveListener>;
  /** While events are handed out: the ones still to hand out, those stored meanwhile at the end. */
  delivering: StoredMessage[] | undefined;
}

/**
 * A {@link ChannelEngine} for one process: per topic, a ring of recent events capped by count and
 * bytes, and synchronous fan-out to the process's subscribers. Ids are `<ms>-<seq>` like Redis
 * Streams', and an event keeps its `data`, `id`, `type` and `retry` alone, as there, so moving to
 * `@rxsse/redis` changes no id format a client sees, and no field a filter reads. History is lost
 * when the process exits; clients that come back then get the truncation signal. A topic's ring
 * lives as long as the engine once it has an event: publish to a bounded set of topics (rooms), not
 * one per request. A topic only read or listened to is forgotten once its last listener leaves.
 *
 * @throws {TypeError} naming it, for options that are no object, a name none of them has, or a
 *   `now` that is no function.
 * @throws {RangeError} for a `maxEvents` or `maxBytes` that is no positive integer.
 * @example
 * ```ts
 * const chat = createChannel(memoryEngine({ maxEvents: 500 }), 'chat');
 * ```
 */
export function memoryEngine(options: MemoryEngineOptions = {}): ChannelEngine {
  // Checked here, as createChannel checks its own: a clock that is no function would fail every
  // publish that takes an id, far from the mistake.
  checkOptionsObject(options);
  checkOptionNames('memoryEngine', options, MEMORY_ENGINE_OPTION_NAMES);
  if (options.now !== undefined && typeof options.now !== 'function') {
    throw new TypeError(
      `now must be a function that gives the time in ms, got ${describeValue(options.now)}`,
    );
  }
  const limits = {
    maxEvents: positive(options.maxEvents ?? 1000, 'maxEvents'),
    maxBytes: positive(options.maxBytes ?? 1_048_576, 'maxBytes'),
  };
  const now = options.now ?? Date.now;
  const topics = new Map<string, Topic>();
  let closed = false;
  const newTopic = (): Topic => ({
    ring: new HistoryRing(limits, now),
    listeners: new Set(),
    delivering: undefined,
  });
  const topicOf = (name: string): Topic => {
    let topic = topics.get(name);
    if (!topic) {
      topic = newTopic();
      topics.set(name, topic);
    }
    return topic;
  };

  return {
    async append(name: string, message: MessageEvent<unknown>): Promise<string> {
      // Nobody can listen any more: a publish that resolved would be an event dropped silently.
      if (closed) throw new Error('The memory engine is closed');
      const topic = topicOf(name);
      const stored = topic.ring.append(message);
      deliver(topic, stored);
      return stored.id;
    },
    async read(name: string, afterId: string, limit: ReadLimit): Promise<HistoryPage> {
      // A topic no one published to is read as an empty one, and not kept: clients may name any.
      return (topics.get(name) ?? newTopic()).ring.read(afterId, limit);
    },
    async listen(name: string, listener: LiveListener): Promise<() => void> {
      // A listener added now would be held, and served, by an engine the app has shut down.
      if (closed) throw new Error('The memory engine is closed');
      const topic = topicOf(name);
      const last = topic.ring.lastId;
      if (last !== undefined) listener.startsAfter?.(last);
      topic.listeners.add(listener);
      return () => {
        topic.listeners.delete(listener);
        // A topic with no events and no listeners is forgotten: one a client named and left costs nothing.
        if (topic.listeners.size === 0 && topic.ring.size === 0 && topics.get(name) === topic)
          topics.delete(name);
      };
    },
    async close(): Promise<void> {
      if (closed) return;
      closed = true;
      for (const topic of topics.values()) {
        // From the set itself: one that a listener's end unregisters is not told after it left.
        for (const listener of topic.listeners) endListener(listener);
        topic.listeners.clear();
      }
    },
  };
}

/**
 * Hands `message` to every listener of `topic`, each event after the one before it. A listener may
 * publish while it is handed an event (a bot answering in its room): that event waits until every
 * listener has the current one. Handed out at once, it would reach the listeners after this one
 * first, and they would drop the earlier id that follows as a duplicate.
 */
function deliver(topic: Topic, message: StoredMessage): void {
  if (topic.delivering) {
    topic.delivering.push(message);
    return;
  }
  const queue = [message];
  topic.delivering = queue;
  try {
    for (let i = 0; i < queue.length; i++)
      for (const listener of topic.listeners) handOn(listener, queue[i]!);
  } finally {
    topic.delivering = undefined;
  }
}

/**
 * Hands one listener one event. One that throws (it must not) cannot keep the listeners after it
 * from the event, nor anyone from the events published meanwhile, with no truncation event; nor
 * fail a publish whose event is stored.
 */
function handOn(listener: LiveListener, message: StoredMessage): void {
  try {
    listener.event(message);
  } catch (error) {
    console.error('rxsse: a channel listener threw on an event', error);
  }
}

/** Ends one listener; one that throws (it must not) cannot keep the others open. */
function endListener(listener: LiveListener): void {
  try {
    listener.end?.();
  } catch (error) {
    console.error('rxsse: a channel listener threw when its engine closed', error);
  }
}

function positive(value: number, name: string): number {
  if (!(Number.isInteger(value) && value > 0)) throw new RangeError(`${name} must be a positive integer`);
  return value;
}
