import { MemorySink } from '../src/testing/index.js';

const encoder = new TextEncoder();

/**
 * A {@link MemorySink} that takes text too, as a transport that encodes text itself does (Node's):
 * `kinds` tells how each chunk came, and `chunks` holds them all as bytes.
 */
export class TextSink extends MemorySink {
  readonly kinds: ('text' | 'bytes')[] = [];
  override write(chunk: Uint8Array) {
    this.kinds.push('bytes');
    return super.write(chunk);
  }
  writeText(text: string) {
    this.kinds.push('text');
    return super.write(encoder.encode(text));
  }
}
