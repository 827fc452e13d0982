import {
  checkShutdownOptions,
  checkStreamGroup,
  openStreams,
  type ShutdownOptions,
  type StreamGroup,
} from '@rxsse/core';

/**
 * Graceful shutdown for a runtime's own server, which a fetch handler cannot see: ends the group's
 * streams (reason `'shutdown'`, each after its queue and the retry hint), then runs `stop`, and
 * turns every request away until `stop` has settled. A request whose handler resolves only after
 * the streams ended is turned away too: a stream begun then would hold the stopping server open.
 *
 * @param stop - the runtime's graceful stop: `() => server.stop()` on Bun, `() => server.shutdown()`
 *   on Deno.
 * @throws {RangeError} at once, for a `retry`, `spread` or `deadline` out of range.
 * @throws {TypeError} at once, for a `stop` that is not a function or a `group` that is not a
 *   `StreamGroup`.
 *
 * @example
 * ```ts
 * process.once('SIGINT', () => closeStreamsAndStop(() => server.stop(), { retry: 1000, spread: 2000 }));
 * ```
 */
export function closeStreamsAndStop(
  stop: () => PromiseLike<unknown>,
  options: ShutdownOptions & { group?: StreamGroup } = {},
): Promise<void> {
  if (typeof stop !== 'function') {
    throw new TypeError(
      `closeStreamsAndStop() takes a function that stops the server, got ${describe(stop)}`,
    );
  }
  const { group = openStreams, ...shutdown } = options;
  checkShutdownOptions(shutdown);
  checkStreamGroup(group);
  let stopped!: () => void;
  group.closeUntil(new Promise<void>((resolve) => (stopped = resolve)));
  return closeThenStop(group, shutdown, stop).finally(stopped);
}

async function closeThenStop(
  group: StreamGroup,
  shutdown: ShutdownOptions,
  stop: () => PromiseLike<unknown>,
) {
  await group.close(shutdown);
  await stop();
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (typeof value === 'object') return `an object (${value.constructor?.name ?? 'no prototype'})`;
  return typeof value;
}
