import { ErrorReply } from 'redis';
import type { RedisClient } from './client.js';

/** Clients whose Redis refused `EVAL_RO` (older than 7, or an ACL without it): `EVAL` for them. */
const withoutReadOnly = new WeakSet<RedisClient>();

/**
 * Runs a script that only reads, as `EVAL_RO`: while Redis holds writes back (`CLIENT PAUSE WRITE`,
 * which `FAILOVER` and a Cluster's manual failover run), it holds back `EVAL` too, whatever the
 * script does, and a replay or a topic's start would time out though Redis could serve it. Refused
 * once, `EVAL` from then on, for that client.
 */
export async function evalReadOnly(
  client: RedisClient,
  script: string,
  options: { keys: string[]; arguments?: string[] },
): Promise<unknown> {
  if (!withoutReadOnly.has(client)) {
    try {
      return await client.evalRo(script, options);
    } catch (error) {
      if (!(error instanceof ErrorReply && /^(NOPERM|ERR unknown command)/.test(error.message))) throw error;
      withoutReadOnly.add(client);
    }
  }
  return client.eval(script, options);
}
