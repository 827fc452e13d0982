import { TimeoutError } from 'redis';

/**
 * `promise`, or a node-redis `TimeoutError` after `ms`. node-redis times out single commands, but
 * not MULTI, which waits in the offline queue for as long as Redis is away: reads must not.
 */
export function withDeadline<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new TimeoutError()), ms);
  });
  // The command may still settle later; its outcome is no longer anyone's concern.
  promise.catch(() => {});
  return Promise.race([promise, expired]).finally(() => clearTimeout(timer));
}
