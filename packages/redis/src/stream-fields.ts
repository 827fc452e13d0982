import type { MessageEvent } from '@rxsse/core';
import type { StoredMessage } from '@rxsse/core/channel';

/** The fields of a stream entry: `d` string data or `j` JSON data, `t` type, `r` retry. */
export type EntryFields = Record<string, string>;

/**
 * The entry fields of a message. String data is stored as is and comes back a string; anything
 * else is stored as JSON and comes back parsed, so data must be JSON-safe.
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

/** A stream entry as a message, and its size as `messageSize` counts it (without re-serializing). */
export function fromEntry(id: string, fields: EntryFields): { message: StoredMessage; size: number } {
  const text = fields.d ?? fields.j ?? '';
  const data: unknown = fields.d ?? (fields.j === undefined ? '' : JSON.parse(fields.j));
  // One object shape for every entry keeps property access monomorphic in the encoder.
  const message: { id: string; type: string | undefined; data: unknown; retry: number | undefined } = {
    id,
    type: fields.t,
    data,
    retry: fields.r === undefined ? undefined : Number(fields.r),
  };
  const size = Buffer.byteLength(text) + id.length + (fields.t ? Buffer.byteLength(fields.t) : 0);
  return { message: message as StoredMessage, size };
}
