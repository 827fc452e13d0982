import { encodeEvent } from './format.js';
import type { FormatOptions, MessageEvent } from './types.js';

type Encoder = (message: MessageEvent<unknown>) => Uint8Array;

const encoders = new WeakMap<FormatOptions, Encoder>();

/**
 * `encodeEvent` that remembers the last message it encoded for these options: a `Subject` (or a
 * channel) hands one message object to every subscriber in a row, so a message that reaches many
 * connections of a route is encoded once. One entry, not a map: most messages reach one connection
 * only, and a map entry per event costs more than it saves (see the burst profile in bench/).
 * Messages must not be mutated once emitted.
 */
export function cachedEncoder(options: FormatOptions): Encoder {
  let encoder = encoders.get(options);
  if (!encoder) {
    let lastMessage: object | undefined;
    let lastBytes = new Uint8Array(0);
    encoder = (message) => {
      if (message !== lastMessage) {
        lastBytes = encodeEvent(message, options);
        lastMessage = message;
      }
      return lastBytes;
    };
    encoders.set(options, encoder);
  }
  return encoder;
}
