import { ErrorReply } from 'redis';
import { describe, expect, it } from 'vitest';
import { RedisEngineError, RedisTimeoutError } from './errors.js';

describe('RedisEngineError', () => {
  it('says what failed and why, naming a cause by its class where its name does not', () => {
    const failed = (cause: unknown) => new RedisEngineError('publish', 't', cause).message;
    expect(failed(new ErrorReply('ERR wrong'))).toBe(
      'Redis publish on topic "t" failed: Redis replied "ERR wrong"',
    );
    expect(failed(new RedisTimeoutError(300, true))).toBe(
      'Redis publish on topic "t" failed: no reply within 300 ms',
    );
    // node-redis's errors keep the name `Error`: their class says what happened.
    class ClientClosedError extends Error {}
    expect(failed(new ClientClosedError('The client is closed'))).toBe(
      'Redis publish on topic "t" failed: ClientClosedError: The client is closed',
    );
    expect(failed(new ClientClosedError())).toBe('Redis publish on topic "t" failed: ClientClosedError');
    expect(failed(new TypeError('bad'))).toBe('Redis publish on topic "t" failed: TypeError: bad');
    expect(failed(new Error('plain'))).toBe('Redis publish on topic "t" failed: plain');
    expect(failed('a string')).toBe('Redis publish on topic "t" failed: a string');
  });
});
