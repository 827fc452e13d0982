import {
  checkShutdownOptions,
  checkStreamGroup,
  closeEach,
  describeValue,
  openStreams,
  type ShutdownOptions,
  type StreamGroup,
  serverStreams,
} from '@rxsse/core';

/**
 * Graceful shutdown for a runtime's own server, which a fetch handler cannot see: ends every stream
 * of the process's fetch handlers, a route's own `group` included, and those of `group` (reason
 * `'shutdown'`, each after its queue and the retry hint), then runs `stop`, and turns every
 * request away until `stop` has settled. A request whose handler resolves only after
 * the streams ended is turned away too: a stream begun then would hold the stopping server open.
 * A handler still setting up has its `signal` aborted, and is turned away at the `deadline` if it
 * has not settled by then. Rejects with what `stop` failed with, or else with what the `group`'s
 * `close()` failed with (a subclass's), once `stop` has settled all the same.
 *
 * @param stop - stops the runtime's server, and cuts what is left a little later: a stream dropped at
 *   the deadline (its client reads nothing) keeps its connection until the client reads, which a
 *   graceful stop waits for (Bun: until its `idleTimeout`; Deno: for good). See the example.
 * @throws {RangeError} at once, for a `retry`, `spread` or `deadline` out of range.
 * @throws {TypeError} at once, for a `stop` that is not a function, options that are not an object,
 *   or a `group` that is not a `StreamGroup`.
 *
 * @example Bun
 * ```ts
 * const stop = async () => {
 *   setTimeout(() => server.stop(true), 1000);
 *   await server.stop();
 * };
 * process.once('SIGINT', () => closeStreamsAndStop(stop, { retry: 1000, spread: 2000 }));
 * ```
 *
 * @example Deno, served with `Deno.serve({ signal: controller.signal }, handler)`
 * ```ts
 * const stop = async () => {
 *   await new Promise((resolve) => setTimeout(resolve, 1000));
 *   controller.abort(); // server.shutdown() cannot be cut short
 *   await server.finished;
 * };
 * Deno.addSignalListener('SIGINT', () => closeStreamsAndStop(stop, { retry: 1000 }));
 * ```
 */
export function closeStreamsAndStop(
  stop: () => PromiseLike<unknown>,
  options: ShutdownOptions & { group?: StreamGroup | undefined } = {},
): Promise<void> {
  if (typeof stop !== 'function') {
    throw new TypeError(
      `closeStreamsAndStop() takes a function that stops the server, got ${describeValue(stop)}`,
    );
  }
  // Checked before it is taken apart: a number or a string would leave no option, silently.
  checkShutdownOptions(options, ['group']);
  const { group = openStreams, ...shutdown } = options;
  checkStreamGroup(group);
  let stopped!: () => void;
  const until = new Promise<void>((resolve) => (stopped = resolve));
  group.closeUntil(until);
  serverStreams().closeUntil(until);
  return closeThenStop(group, shutdown, stop).finally(stopped);
}

async function closeThenStop(
  group: StreamGroup,
  shutdown: ShutdownOptions,
  stop: () => PromiseLike<unknown>,
) {
  // A group whose close fails still leaves the server to stop: then its failure is told.
  const closing = closeEach([group, serverStreams()], shutdown);
  await closing.catch(() => {});
  await stop();
  await closing;
}
