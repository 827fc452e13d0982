const ASCII = /^[\x00-\x7f]*$/;

/**
 * UTF-8 length of a string, without encoding it. A lone surrogate counts as the 3 bytes of the
 * U+FFFD it is encoded as. ASCII, the common case, takes one native scan.
 */
export function utf8Length(text: string): number {
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
