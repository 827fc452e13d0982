import { ErrorReply } from 'redis';

/**
 * A Redis command of the engine failed: Redis is down or unreachable past the command timeout, or
 * refused the command. The message names the operation, the topic and the cause (a timeout and its
 * length, the connection error, or Redis's own error text); `cause` is that error.
 */
export class RedisEngineError extends Error {
  override readonly name = 'RedisEngineError';
  constructor(
    /** What the engine was doing. */
    readonly operation: 'publish' | 'read' | 'listen',
    /** The channel topic. */
    readonly topic: string,
    cause: unknown,
  ) {
    super(`Redis ${operation} on topic ${JSON.stringify(topic)} failed: ${describe(cause)}`, { cause });
  }
}

/**
 * No reply within the command timeout. While the connection is up, Redis is frozen, overloaded or cut
 * off; while it is not, `cause` is the last connection error (e.g. `ECONNREFUSED`), if there was one.
 */
export class RedisTimeoutError extends Error {
  override readonly name = 'RedisTimeoutError';
  constructor(
    /** The timeout, in ms. */
    readonly timeoutMs: number,
    /** Whether the connection to Redis was up when the time ran out. */
    readonly connected: boolean,
    cause?: unknown,
  ) {
    const what = connected ? 'no reply' : 'not connected';
    super(`${what} within ${timeoutMs} ms${cause === undefined ? '' : `: ${describe(cause)}`}`, { cause });
  }
}

/**
 * A topic the Redis engine cannot store: keys are UTF-8, and a string that is not well-formed
 * UTF-16 (a lone surrogate) would share its key with another topic.
 */
export class RedisTopicError extends TypeError {
  override readonly name = 'RedisTopicError';
  constructor(
    /** The refused topic. */
    readonly topic: string,
  ) {
    super(`Topic ${JSON.stringify(topic)} is not well-formed UTF-16 (a lone surrogate): it has no Redis key`);
  }
}

/** What keeps failing: the live reads, or the connections to Redis (an outage, a restart). */
export type RedisFailing = 'live reads' | 'connections';

/**
 * A live read, or a connection to Redis, failed again as it did when last told to `onError`:
 * repeats of one failure are told at growing intervals (1 s, 2 s, 4 s, ... up to a minute), not at
 * every retry. `cause` is the latest.
 */
export class RedisRepeatedFailure extends Error {
  override readonly name = 'RedisRepeatedFailure';
  constructor(
    readonly failing: RedisFailing,
    /** How many more times it failed since it was last told, untold until now. */
    readonly heldBack: number,
    cause: unknown,
  ) {
    super(`${sentence(failing)} still fail (${heldBack} more since last told): ${describe(cause)}`, {
      cause,
    });
  }
}

/**
 * Live reads, or connections to Redis, succeed again after `failures` in a row (told to `onError`
 * before, or counted there).
 */
export class RedisRecovered extends Error {
  override readonly name = 'RedisRecovered';
  constructor(
    readonly failing: RedisFailing,
    /** Failures since the last success. */
    readonly failures: number,
    /** Of those, how many no report told or counted. */
    readonly heldBack: number,
  ) {
    super(
      `${sentence(failing)} succeed again, after ${failures} failed (${heldBack} of them not told before)`,
    );
  }
}

function sentence(failing: RedisFailing): string {
  return failing === 'live reads' ? 'Live reads' : 'Connections to Redis';
}

function describe(error: unknown): string {
  if (error instanceof ErrorReply) return `Redis replied "${error.message}"`;
  if (!(error instanceof Error)) return String(error);
  if (error instanceof RedisTimeoutError) return error.message;
  // node-redis's errors keep the name `Error` (and some have no message): their class says more.
  const name = error.name === 'Error' ? error.constructor.name : error.name;
  if (!error.message) return name;
  return name === 'Error' ? error.message : `${name}: ${error.message}`;
}

/**
 * Whether Redis refused a command to this user (an ACL), or knows it by no name (an operator's
 * `rename-command EVAL ""`): a script refused, the engine falls back.
 */
export function isNoPermission(error: unknown): boolean {
  return error instanceof ErrorReply && /^(NOPERM|ERR unknown command)/.test(error.message);
}

/**
 * Redis's refusal of an XADD id at or below the stream's last, also from within the append script,
 * whose error Redis before 7.0 wraps in one of its own.
 */
export function isIdNotAfterLast(error: unknown): boolean {
  return (
    error instanceof ErrorReply &&
    error.message.includes('ERR The ID specified in XADD is equal or smaller than the target stream top item')
  );
}
