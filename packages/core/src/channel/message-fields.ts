/**
 * The first field of `message` beyond `data`, `id`, `type` and `retry`, the fields of an event on
 * every engine and on the wire; `undefined` if it has none. Its enumerable string keys, whatever
 * their values, without allocating: it runs on every publish.
 */
export function otherField(message: object): string | undefined {
  for (const key in message) {
    if (key !== 'data' && key !== 'id' && key !== 'type' && key !== 'retry') return key;
  }
  return undefined;
}
