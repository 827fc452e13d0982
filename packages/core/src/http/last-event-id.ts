/** The query parameter polyfills use when they cannot set the `Last-Event-ID` header. */
export const LAST_EVENT_ID_PARAM = 'lastEventId';

/**
 * The id a reconnecting client last saw: the `Last-Event-ID` header, or else the `lastEventId`
 * query parameter of the request URL. `undefined` on a first connection.
 *
 * @param header - the header's value as the runtime hands it over. Node and fetch `Headers` give
 *   byte strings (one character per byte) while browsers send UTF-8, so bytes that are valid UTF-8
 *   are read as UTF-8; any other string is kept as it is. What is no string (Node's array for a
 *   repeated header, a bridge's own `get()`) is no header.
 */
export function pickLastEventId(header: unknown, url: string | undefined): string | undefined {
  if (typeof header === 'string' && header) return decodeBytesAsUtf8(header);
  const query = url?.indexOf('?') ?? -1;
  if (query < 0) return undefined;
  return new URLSearchParams(url!.slice(query + 1)).get(LAST_EVENT_ID_PARAM) || undefined;
}

// `ignoreBOM`: a leading U+FEFF is part of the id (legal under `ids: 'spec'`), not a byte order mark.
const strictUtf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

function decodeBytesAsUtf8(value: string): string {
  // ASCII needs no decoding; a character past U+00FF means the runtime decoded it already.
  if (/^[\x00-\x7f]*$/.test(value) || /[^\x00-\xff]/.test(value)) return value;
  // A loop, not `Uint8Array.from(value, fn)`: a function call per character cost a 16 KB header
  // ~1.5 ms of the event loop, for every request, whether its route reads the id or not.
  const bytes = new Uint8Array(value.length);
  for (let i = 0; i < value.length; i++) bytes[i] = value.charCodeAt(i);
  try {
    return strictUtf8.decode(bytes);
  } catch {
    return value;
  }
}
