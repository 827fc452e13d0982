import { encodeEvent } from './format.js';
import type { FormatOptions, MessageEvent } from './types.js';

type Encoder = (message: MessageEvent<unknown>) => Uint8Array;

const encoders = new WeakMap<FormatOptions, Encoder>();

/**
 * `encodeEvent` with a cache per options object, keyed by the message object: a message that one
 * `Subject` hands to many connections of a route is encoded once. Messages must not be mutated
 * once emitted.
 */
export function cachedEncoder(options: FormatOptions): Encoder {
  let encoder = encoders.get(options);
  if (!encoder) {
    const cache = new WeakMap<object, Uint8Array>();
    encoder = (message) => {
      let bytes = cache.get(message);
      if (!bytes) {
        bytes = encodeEvent(message, options);
        cache.set(message, bytes);
      }
      return bytes;
    };
    encoders.set(options, encoder);
  }
  return encoder;
}
