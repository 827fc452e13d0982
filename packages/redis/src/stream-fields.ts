import type { MessageEvent } from '@rxsse/core';
import { dataFromJson, type StoredMessage } from '@rxsse/core/channel';

/** The fields of a stream entry: `d` string data or `j` JSON data, `t` type, `r` retry. */
export type EntryFields = Record<string, string>;

/**
 * The entry fields of a message. String data is stored as is and comes back a string; anything
 * else is stored as JSON and comes back as `dataFromJson` reads it, so data must be JSON-safe.
 */
export function toFields(message: MessageEvent<unknown>): EntryFields {
  const fields: EntryFields = {};
  const { data } = message;
  if (typeof data === 'string') fields.d = data;
  else {
    const json = JSON.stringify(data);
    if (json === undefined) throw new TypeError('Channel data must be a string or JSON-serializable');
    fields.j = json;
  }
  if (message.type) fields.t = message.type;
  if (message.retry !== undefined) fields.r = String(message.retry);
  return fields;
}

/** A retry as {@link toFields} writes it: a decimal integer in 0..2^31-1, as the encoder allows. */
const RETRY = /^(?:0|[1-9]\d{0,9})$/;
/** What no type may hold, whatever the routes' options: the encoder refuses it. */
const FORBIDDEN_IN_TYPE = /[\r\n\0]/;

/**
 * A stream entry as a message, and its size as `messageSize` counts it (without re-serializing).
 * @throws {TypeError} for an entry {@link toFields} did not write: no `d` or `j`, or a `retry` or
 *   a type (CR, LF or NUL in it) no publish could have stored (it would fail every subscriber's
 *   encoder). `SyntaxError` for a `j` that is not JSON.
 */
export function fromEntry(id: string, fields: EntryFields): { message: StoredMessage; size: number } {
  const text = fields.d ?? fields.j;
  const { r, t } = fields;
  if (
    text === undefined ||
    (r !== undefined && !(RETRY.test(r) && Number(r) <= 2 ** 31 - 1)) ||
    (t !== undefined && FORBIDDEN_IN_TYPE.test(t))
  )
    throw new TypeError(
      `Stream entry ${id} has no data, a bad retry or a bad type: not written by this engine`,
    );
  const data: unknown = fields.d ?? dataFromJson(text);
  // One object shape for every entry keeps property access monomorphic in the encoder.
  const message: { id: string; type: string | undefined; data: unknown; retry: number | undefined } = {
    id,
    type: fields.t,
    data,
    retry: r === undefined ? undefined : Number(r),
  };
  const size = Buffer.byteLength(text) + id.length + (fields.t ? Buffer.byteLength(fields.t) : 0);
  return { message: message as StoredMessage, size };
}
