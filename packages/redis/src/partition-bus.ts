import {
  compareStreamIds,
  formatStreamId,
  type LiveListener,
  parseStreamId,
  type StoredMessage,
  type StreamId,
} from '@rxsse/core/channel';
import type { TimedClient } from './deadline.js';
import { type Listened, listenOn } from './listeners.js';
import type { LiveReader } from './live-reader.js';
import type { PartitionLayout } from './partition.js';
import type { Refusals } from './refusals.js';
import { fromEntry } from './stream-fields.js';
import { type Entry, NOT_A_STREAM, startPointOf } from './stream-read.js';

/** A partition entry, decoded once for every topic listener in the process. */
export interface Routed {
  topic: string;
  /** The message, with its topic stream's id. */
  message: StoredMessage;
}

/** Decodes a partition entry; throws for one this engine did not write. */
export function decodeRouted(entry: Entry): Routed {
  const { k: topic, i: id } = entry.message;
  if (topic === undefined || id === undefined || !parseStreamId(id))
    throw new TypeError(`Partition entry ${entry.id} has no topic and id: not written by this engine`);
  return { topic, message: fromEntry(id, entry.message).message };
}

interface Topic extends Listened<LiveListener> {
  readonly partition: number;
  /** The topic's last id delivered, or its last id when it started; `undefined` until known. */
  cursor: StreamId | undefined;
  /** Events read before the cursor was known: delivered then, if they follow it. */
  held: StoredMessage[];
  /**
   * What a new listener is told it starts after (`LiveListener.startsAfter`): the cursor, but none
   * from a gap of the partition until the topic's next event. The cursor stays through a gap, to
   * drop what was delivered already, while the topic's events above it may be lost from the
   * partition and still in its history, or its store may have restarted below it.
   */
  startsAfter: StreamId | undefined;
}

/**
 * Live delivery by partition: the reader blocks on the partitions' streams only, however many
 * topics there are, and this routes each entry to its topic's listeners. A topic starts at its
 * stream's last id (read after its partition is watched, so nothing appended later is missed), and
 * every event at or before the topic's cursor is dropped: none arrives twice or out of order.
 */
export class PartitionBus {
  readonly #topics = new Map<string, Topic>();
  /** Partitions the reader watches, while one of their topics has listeners: how to stop each. */
  readonly #watched = new Map<number, Promise<() => void>>();
  /** Listeners per partition, those still starting included: the last one gone unwatches it. */
  readonly #listeners = new Map<number, number>();

  constructor(
    /** The reader of a partition (one for all of them, or one each). */
    private readonly readerOf: (partition: number) => LiveReader<Routed>,
    private readonly main: TimedClient,
    private readonly layout: PartitionLayout,
    private readonly onError: (error: unknown) => void,
    /** The engine's: a refused script, met reading a topic's start point, is told once. */
    private readonly refusals: Refusals,
  ) {}

  /** As `LiveBus.listen`. */
  async listen(topic: string, listener: LiveListener): Promise<() => void> {
    const partition = this.layout.partitionOf(topic);
    this.#listeners.set(partition, (this.#listeners.get(partition) ?? 0) + 1);
    let left = false;
    const leave = () => {
      if (left) return;
      left = true;
      const count = this.#listeners.get(partition)! - 1;
      if (count > 0) this.#listeners.set(partition, count);
      else this.#unwatch(partition);
    };
    try {
      const unlisten = await listenOn(
        this.#topics,
        topic,
        listener,
        (key) => this.#add(key),
        (state) => state.startsAfter && formatStreamId(state.startsAfter),
      );
      return () => {
        unlisten();
        leave();
      };
    } catch (error) {
      leave();
      throw error;
    }
  }

  #add(topic: string): Topic {
    const state: Topic = {
      partition: this.layout.partitionOf(topic),
      listeners: new Set(),
      cursor: undefined,
      held: [],
      ready: Promise.resolve(),
      startsAfter: undefined,
    };
    state.ready = (async () => {
      await this.#watch(state.partition);
      const key = this.layout.topicKey(topic);
      // A key that is no stream (told) has no entry to start after: its appends fail until it is one.
      const last = await this.main.run((client) => startPointOf(client, key, this.refusals, this.onError));
      state.cursor = parseStreamId(last === NOT_A_STREAM ? '0-0' : (last?.id ?? '0-0'));
      // `0-0` for a stream that was empty: every event of the topic reaches its listeners.
      if (last !== NOT_A_STREAM) state.startsAfter = state.cursor;
      const held = state.held;
      state.held = [];
      for (const message of held) this.#deliver(state, message);
    })();
    // A start point that could not be read is retried by the next listener, not cached.
    state.ready.catch(() => {
      if (this.#topics.get(topic) === state) this.#topics.delete(topic);
    });
    this.#topics.set(topic, state);
    return state;
  }

  /**
   * Stops watching `partition`, whose last listener left: a process with no subscriber there reads
   * none of its events. A topic that comes back watches it again, from where it ends then.
   */
  #unwatch(partition: number): void {
    this.#listeners.delete(partition);
    const watching = this.#watched.get(partition);
    this.#watched.delete(partition);
    watching?.then(
      (unwatch) => unwatch(),
      () => {},
    );
  }

  #watch(partition: number): Promise<() => void> {
    const known = this.#watched.get(partition);
    if (known) return known;
    const watching = this.readerOf(partition).listen(this.layout.partitionKey(partition), {
      event: (routed) => this.#route(routed),
      gap: () => this.#gap(partition),
      end: () => this.#end(partition),
    });
    watching.catch(() => {
      if (this.#watched.get(partition) === watching) this.#watched.delete(partition);
    });
    this.#watched.set(partition, watching);
    return watching;
  }

  #route({ topic, message }: Routed): void {
    const state = this.#topics.get(topic);
    if (state === undefined) return;
    if (state.cursor === undefined) state.held.push(message);
    else this.#deliver(state, message);
  }

  #deliver(state: Topic, message: StoredMessage): void {
    const id = parseStreamId(message.id)!;
    if (compareStreamIds(id, state.cursor!) <= 0) return;
    state.cursor = state.startsAfter = id;
    for (const listener of state.listeners) this.#call(() => listener.event(message));
  }

  /**
   * The partition's stream lost entries: every topic in it may have. Cursors stay: a partition read
   * again from its start (after a failover to a replica that lacks its last entries) must not deliver
   * what was delivered already. A topic whose new ids are not above its cursor (a new master whose
   * clock is behind the old one's) is delivered again once they pass it: its ids always continue.
   */
  #gap(partition: number): void {
    for (const state of this.#topics.values()) {
      if (state.partition !== partition) continue;
      state.startsAfter = undefined;
      for (const listener of state.listeners) this.#call(() => listener.gap('continue'));
    }
  }

  /** The partition's reader closed: its topics' listeners are dropped and ended. */
  #end(partition: number): void {
    for (const [topic, state] of this.#topics) {
      if (state.partition !== partition) continue;
      this.#topics.delete(topic);
      for (const listener of state.listeners) this.#call(() => listener.end?.());
      // Ended from inside a listener's event: the listeners after it in the set get it no more.
      state.listeners.clear();
    }
  }

  #call(notify: () => void): void {
    try {
      notify();
    } catch (error) {
      this.onError(error);
    }
  }
}
