import { joinTexts } from '../encode/encoder-cache.js';
import { utf8Length } from '../encode/utf8.js';

/** UTF-8 bytes per UTF-16 unit, at most: a text of n units is at most 3n bytes. */
const MAX_BYTES_PER_UNIT = 3;
/**
 * An empty array already holding strings' elements kind. A literal `[]` starts as small integers,
 * so the first event of each new stream changed its map and deoptimized the optimized push path.
 */
const EMPTY: string[] = [''].slice(1);
/** Waiting events are joined into chunks of about this many UTF-16 units: what one write hands over. */
export const CHUNK_UNITS = 64 * 1024;

/**
 * The formatted events waiting for a slow client. The newest wait as separate texts, counted in
 * UTF-16 units (a cheap bound of their UTF-8 size); every 64 Ki units of them are joined into one
 * chunk, measured exactly. A client that cannot keep up leaves a few chunks here, not thousands of
 * small strings that every young-generation GC would copy; exact sizes of the texts are measured
 * only once the queue could come near its cap, since a byte count is a scan that a queue far below
 * the cap need not pay.
 *
 * {@link take} hands out one chunk at a time, so a transport that drains gets about 64 KiB, and the
 * rest stays here: counted, under the cap, and subject to the overflow policy.
 */
export class EventQueue {
  /** Joined chunks, oldest first; created with the first (most queues never fill one). */
  #chunks: Chunk[] | undefined;
  #chunkBytes = 0;
  /** Texts not joined yet, from `#head` (`dropOldest` moves it), and their UTF-16 units. */
  #texts: string[] = EMPTY.slice();
  #head = 0;
  #units = 0;
  #count = 0;
  /** UTF-8 sizes of `#texts[0 .. sizes.length)`, created on first use; `#textBytes` sums them from `#head`. */
  #sizes: number[] | undefined;
  #textBytes = 0;

  /**
   * @param merge Whether waiting texts are joined into chunks (not for `drop-oldest`, which drops
   *   events one by one).
   */
  constructor(private readonly merge = true) {}

  /** Events queued. */
  get length(): number {
    return this.#count;
  }

  /** About the bytes queued: exact for joined chunks, UTF-16 units for the texts. 0 when empty. */
  get size(): number {
    return this.#chunkBytes + this.#units;
  }

  /** Whether adding `text` could take the queue past `cap` bytes: then measure before adding. */
  mayPass(text: string, cap: number): boolean {
    return this.#chunkBytes + (this.#units + text.length) * MAX_BYTES_PER_UNIT > cap;
  }

  /** Exact UTF-8 size of the queue, measuring the texts not measured yet. */
  bytes(): number {
    const texts = this.#texts;
    this.#sizes ??= [];
    const sizes = this.#sizes;
    for (let i = sizes.length; i < texts.length; i++) {
      const size = utf8Length(texts[i]!);
      sizes.push(size);
      this.#textBytes += size;
    }
    return this.#chunkBytes + this.#textBytes;
  }

  /**
   * Adds `text`; `size`, its UTF-8 length, only once {@link bytes} measured the rest. A text added
   * with its size since may have filled a chunk and left none to measure (a gap event before its
   * event): the sizes start anew then.
   */
  add(text: string, size?: number): void {
    if (size !== undefined) {
      this.#sizes ??= [];
      this.#sizes.push(size);
      this.#textBytes += size;
    }
    this.#texts.push(text);
    this.#units += text.length;
    this.#count++;
    if (this.#units >= CHUNK_UNITS && this.merge) this.#joinTexts();
  }

  /**
   * Removes and returns the oldest events as one chunk of about 64 KiB (or less, when less waits);
   * {@link length} tells how many events it held. Only call it while the queue is not empty.
   */
  take(): string {
    if (this.#chunks) return this.#takeChunk();
    const texts = this.#texts;
    const head = this.#head;
    let end = head;
    let units = 0;
    while (end < texts.length && units < CHUNK_UNITS) units += texts[end++]!.length;
    const chunk = joinTexts(texts, head, end);
    if (end === texts.length) {
      this.#count -= end - head;
      this.#resetTexts();
    } else {
      // Only a queue that is not merged (drop-oldest) keeps more than 64 KiB of texts.
      this.#drop(end);
    }
    return chunk;
  }

  /** Drops the oldest events until at most `keep` bytes remain; returns how many it dropped. */
  dropOldest(keep: number): number {
    this.bytes();
    let end = this.#head;
    let bytes = this.#textBytes;
    while (bytes > keep) bytes -= this.#sizes![end++]!;
    return this.#drop(end);
  }

  /** Puts `text`, of `size` UTF-8 bytes, before the oldest event. Only for a queue that is not merged. */
  addFirst(text: string, size: number): void {
    this.bytes();
    if (this.#head > 0) {
      this.#texts[--this.#head] = text;
      this.#sizes![this.#head] = size;
    } else {
      this.#texts.unshift(text);
      this.#sizes!.unshift(size);
    }
    this.#textBytes += size;
    this.#units += text.length;
    this.#count++;
  }

  /** Drops the oldest event. Only for a queue that is not merged. */
  dropFirst(): void {
    this.bytes();
    this.#drop(this.#head + 1);
  }

  /** Empties the queue, discarding its events; returns how many there were. */
  clear(): number {
    const count = this.#count;
    this.#chunks = undefined;
    this.#chunkBytes = 0;
    this.#texts = EMPTY.slice();
    this.#resetTexts();
    this.#count = 0;
    return count;
  }

  /** Joins the waiting texts into one chunk: its size is exact, and they no longer need measuring. */
  #joinTexts(): void {
    const texts = this.#texts;
    const text = joinTexts(texts, this.#head, texts.length);
    const bytes = utf8Length(text);
    this.#chunks ??= [];
    this.#chunks.push({ text, bytes, events: texts.length - this.#head });
    this.#chunkBytes += bytes;
    this.#resetTexts();
  }

  #takeChunk(): string {
    const chunks = this.#chunks!;
    // A few chunks at most (the cap over 64 KiB): shifting costs nothing, and a client that stays a
    // chunk behind for hours leaves no trail of emptied slots.
    const { text, bytes, events } = chunks.shift()!;
    if (chunks.length === 0) this.#chunks = undefined;
    this.#count -= events;
    this.#chunkBytes -= bytes;
    return text;
  }

  /** Removes the texts before `end`; returns how many. */
  #drop(end: number): number {
    const texts = this.#texts;
    const sizes = this.#sizes;
    const from = this.#head;
    for (let i = from; i < end; i++) {
      this.#units -= texts[i]!.length;
      if (sizes && i < sizes.length) this.#textBytes -= sizes[i]!;
      texts[i] = ''; // let the text go now, not at the next compaction
    }
    this.#head = end;
    this.#count -= end - from;
    // Compact now and then: a client stalled for hours must not grow the arrays without end.
    if (end > 1024 && end * 2 > texts.length) {
      this.#texts = texts.slice(end);
      this.#sizes = sizes?.slice(end);
      this.#head = 0;
    }
    return end - from;
  }

  /** Empties the texts (taken, joined or cleared), keeping the array's capacity for the next tick. */
  #resetTexts(): void {
    this.#texts.length = 0;
    this.#sizes = undefined;
    this.#head = 0;
    this.#units = 0;
    this.#textBytes = 0;
  }
}

/** Events joined together, as one write hands them over, and their UTF-8 size. */
interface Chunk {
  readonly text: string;
  readonly bytes: number;
  readonly events: number;
}
