import type { RedisClient } from './client.js';
import { type Refusals, refusedCommand } from './refusals.js';

/** Clients whose Redis refused `EVAL_RO` (older than 7, or an ACL without it): `EVAL` for them. */
const withoutReadOnly = new WeakSet<RedisClient>();

/**
 * Runs a script that only reads, as `EVAL_RO`: while Redis holds writes back (`CLIENT PAUSE WRITE`,
 * which `FAILOVER` and a Cluster's manual failover run), it holds back `EVAL` too, whatever the
 * script does, and a replay or a topic's start would time out though Redis could serve it. Refused
 * once (the command, not a key), `EVAL` from then on, for that client. Either refusal is told to
 * `refusals`; a refused `EVAL` is thrown, for the caller to read without the script.
 */
export async function evalReadOnly(
  client: RedisClient,
  script: string,
  options: { keys: string[]; arguments?: string[] },
  refusals: Refusals,
): Promise<unknown> {
  if (!withoutReadOnly.has(client)) {
    try {
      return await client.evalRo(script, options);
    } catch (error) {
      // A key the ACL refuses is refused to EVAL alike, and says nothing of EVAL_RO.
      if (!refusedReadOnly(client, error)) throw error;
      refusals.refusedReadOnly(error);
    }
  }
  try {
    return await client.eval(script, options);
  } catch (error) {
    if (refusedEval(error)) refusals.refusedEval(error);
    throw error;
  }
}

/**
 * Whether `client` runs read-only scripts as `EVAL_RO`, for a MULTI that queues them: Redis holds
 * back a MULTI with an `EVAL` while writes are paused, not one with `EVAL_RO` and reads alone.
 */
export function readsAsReadOnly(client: RedisClient): boolean {
  return !withoutReadOnly.has(client);
}

/**
 * Whether `error`, a MULTI's, is Redis refusing the `EVAL_RO` queued in it (an ACL, or Redis older
 * than 7): `client` runs read-only scripts as `EVAL` from then on. Another command refused there
 * (an `XREAD` the ACL forbids) says nothing of `EVAL_RO`.
 */
export function refusedReadOnly(client: RedisClient, error: unknown): boolean {
  // A NOPERM names it; Redis 6.2 knows no such command.
  if (!refusedCommand(error, 'eval_ro')) return false;
  withoutReadOnly.add(client);
  return true;
}

/** Whether `error` is Redis refusing `EVAL` to this user (see {@link refusedCommand}). */
export function refusedEval(error: unknown): boolean {
  return refusedCommand(error, 'eval');
}
