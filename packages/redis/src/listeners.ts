/** What a reader keeps per listened key: its listeners, and when it knows where the key's stream ends. */
export interface Listened<L> {
  readonly listeners: Set<L>;
  ready: Promise<void>;
}

/** A listener that may be told where it starts (as `LiveListener.startsAfter`). */
interface Starting {
  startsAfter?(id: string): void;
}

/**
 * Adds `listener` to the entry of `key` (created by `add` if there is none) and resolves, once the
 * entry is ready, to the function that removes it again, dropping the entry with its last listener.
 * If the entry never gets ready, the listener is removed and the error thrown. Once ready, the
 * listener is told the id `startOf` gives, if any: every entry after it reaches the listener, which
 * has been in the entry since before the entry's cursor passed it.
 */
export async function listenOn<L extends Starting, E extends Listened<L>>(
  entries: Map<string, E>,
  key: string,
  listener: L,
  add: (key: string) => E,
  startOf: (entry: E) => string | undefined,
): Promise<() => void> {
  const entry = entries.get(key) ?? add(key);
  entry.listeners.add(listener);
  const unlisten = () => {
    entry.listeners.delete(listener);
    if (entry.listeners.size === 0 && entries.get(key) === entry) entries.delete(key);
  };
  try {
    await entry.ready;
    const start = startOf(entry);
    if (start !== undefined) listener.startsAfter?.(start);
  } catch (error) {
    unlisten();
    throw error;
  }
  return unlisten;
}
