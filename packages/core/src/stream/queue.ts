import { utf8Length } from '../encode/utf8.js';

/** UTF-8 bytes per UTF-16 unit, at most: a queue of n units holds at most 3n bytes. */
const MAX_BYTES_PER_UNIT = 3;
/**
 * An empty array already holding strings' elements kind. A literal `[]` starts as small integers,
 * so the first event of each new stream changed its map and deoptimized the optimized push path.
 */
const EMPTY: string[] = [''].slice(1);
/** A waiting queue joins its newest events into one string per this many UTF-16 units. */
const MERGE_UNITS = 64 * 1024;

/**
 * The formatted events waiting for a slow client, encoded together at the next write. It counts
 * UTF-16 units, a cheap bound of the UTF-8 size; exact sizes are measured only once the queue could
 * come near its cap, since a byte count is a scan of every event that a queue far below the cap
 * (nearly every queue) need not pay.
 */
export class EventQueue {
  #texts: string[] = EMPTY.slice();
  #head = 0;
  #units = 0;
  #count = 0;
  /** Where the events not merged yet begin in `#texts`, and their UTF-16 units. */
  #tail = 0;
  #tailUnits = 0;
  /** UTF-8 sizes of `#texts[0 .. sizes.length)`, created on first use; `#bytes` sums them from `#head`. */
  #sizes: number[] | undefined;
  #bytes = 0;

  /** UTF-16 units queued: 0 when empty, and the UTF-8 size is between this and 3 times this. */
  get units(): number {
    return this.#units;
  }

  /**
   * @param merge Whether events may be joined while they wait (not for `drop-oldest`, which drops
   *   them one by one). A client that cannot keep up may leave thousands of small strings here,
   *   each copied by every young-generation GC until it is old; one string per 64 KiB is not.
   */
  constructor(private readonly merge = true) {}

  /** Events queued. */
  get length(): number {
    return this.#count;
  }

  /** Whether adding `text` could take the queue past `cap` bytes: then measure before adding. */
  mayPass(text: string, cap: number): boolean {
    return (this.#units + text.length) * MAX_BYTES_PER_UNIT > cap;
  }

  /** Exact UTF-8 size of the queue, measuring the events not measured yet. */
  bytes(): number {
    const texts = this.#texts;
    this.#sizes ??= [];
    const sizes = this.#sizes;
    for (let i = sizes.length; i < texts.length; i++) {
      const size = utf8Length(texts[i]!);
      sizes.push(size);
      this.#bytes += size;
    }
    return this.#bytes;
  }

  /** Adds `text`; `size`, its UTF-8 length, only right after {@link bytes} measured the rest. */
  add(text: string, size?: number): void {
    if (size !== undefined) {
      this.#sizes!.push(size);
      this.#bytes += size;
    }
    const texts = this.#texts;
    texts.push(text);
    this.#units += text.length;
    this.#count++;
    this.#tailUnits += text.length;
    // Sizes are measured per string: once they are, strings stay as they are.
    if (this.#tailUnits >= MERGE_UNITS && this.merge && this.#sizes === undefined) {
      texts.push(texts.splice(this.#tail).join(''));
      this.#tail = texts.length;
      this.#tailUnits = 0;
    }
  }

  /** Drops the oldest events until at most `keep` bytes remain; returns how many it dropped. */
  dropOldest(keep: number): number {
    this.bytes();
    const sizes = this.#sizes!;
    const texts = this.#texts;
    const from = this.#head;
    while (this.#bytes > keep) {
      this.#bytes -= sizes[this.#head]!;
      this.#units -= texts[this.#head]!.length;
      texts[this.#head++] = ''; // let the dropped text go now, not at the next compaction
    }
    const dropped = this.#head - from;
    this.#count -= dropped;
    // Compact now and then: a client stalled for hours must not grow the arrays without end.
    if (this.#head > 1024 && this.#head * 2 > sizes.length) {
      this.#texts = texts.slice(this.#head);
      this.#sizes = sizes.slice(this.#head);
      this.#head = 0;
    }
    return dropped;
  }

  /** Empties the queue and returns its text as one string. */
  take(): string {
    const texts = this.#texts;
    const head = this.#head;
    const text = texts.length - head === 1 ? texts[head]! : (head === 0 ? texts : texts.slice(head)).join('');
    // Keep the array (and its capacity) for the next tick: the usual case is one event per tick.
    texts.length = 0;
    this.#reset();
    return text;
  }

  /** Empties the queue, discarding its events; returns how many there were. */
  clear(): number {
    const count = this.#count;
    this.#texts = EMPTY.slice();
    this.#reset();
    return count;
  }

  #reset(): void {
    this.#sizes = undefined;
    this.#head = 0;
    this.#units = 0;
    this.#bytes = 0;
    this.#count = 0;
    this.#tail = 0;
    this.#tailUnits = 0;
  }
}
