/**
 * A Redis command of the engine failed: Redis is down or unreachable past the command timeout, or
 * refused the command. The message names the operation and the topic; `cause` is node-redis's error.
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

function describe(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  // node-redis's TimeoutError has no message of its own.
  if (error.name === 'TimeoutError') return 'no reply within the command timeout (is Redis reachable?)';
  return error.message ? `${error.name}: ${error.message}` : error.name;
}
