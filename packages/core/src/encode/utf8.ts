const ASCII = /^[\x00-\x7f]*$/;
const encoder = new TextEncoder();

/** Texts this long, up to {@link SCRATCH_UNITS}, are measured by encoding them into a scratch buffer. */
const LONG_UNITS = 1024;
/** A chunk of queued events is about 64 Ki units long: one more event fits. */
const SCRATCH_UNITS = 80 * 1024;
/** Every unit fits: one is at most 3 bytes. Made with the first long text. */
let scratch: Uint8Array | undefined;

/**
 * UTF-8 length of a string. A lone surrogate counts as the 3 bytes of the U+FFFD it is encoded as.
 * ASCII, the common case, takes one native scan; a long text (a queue's chunk) is encoded into a
 * scratch buffer instead, which copies ~5x faster than the regular expression scans.
 */
export function utf8Length(text: string): number {
  if (text.length >= LONG_UNITS && text.length <= SCRATCH_UNITS) {
    scratch ??= new Uint8Array(3 * SCRATCH_UNITS);
    return encoder.encodeInto(text, scratch).written;
  }
  if (ASCII.test(text)) return text.length;
  let bytes = text.length;
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code < 0x80) continue;
    if (code < 0x800) bytes += 1;
    else if (code >= 0xd800 && code <= 0xdbff && i + 1 < text.length) {
      const next = text.charCodeAt(i + 1);
      // A surrogate pair is 2 UTF-16 units and 4 UTF-8 bytes.
      if (next >= 0xdc00 && next <= 0xdfff) {
        bytes += 2;
        i++;
      } else bytes += 2;
    } else bytes += 2;
  }
  return bytes;
}

/**
 * UTF-8 bytes of a string, as `TextEncoder.encode` gives them, sooner: an ASCII string (nearly every
 * event stream) fills exactly `text.length` bytes, which `encodeInto` writes ~3x faster than
 * `encode` allocates and fills on Node 20 and 24. Other text continues where that buffer filled up.
 * The bytes are in a buffer of their own, which the caller may hand over (a Web body's chunk).
 */
export function utf8Bytes(text: string): Uint8Array<ArrayBuffer> {
  const bytes = new Uint8Array(text.length);
  const { read, written } = encoder.encodeInto(text, bytes);
  if (read === text.length) return bytes;
  const rest = encoder.encode(text.slice(read));
  const all = new Uint8Array(written + rest.length);
  all.set(bytes.subarray(0, written));
  all.set(rest, written);
  return all;
}
