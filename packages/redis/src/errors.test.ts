import { ErrorReply } from 'redis';
import { describe, expect, it } from 'vitest';
import { isIdNotAfterLast, RedisEngineError, RedisTimeoutError } from './errors.js';

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

describe('isIdNotAfterLast', () => {
  const message = 'ERR The ID specified in XADD is equal or smaller than the target stream top item';

  it.each([
    ['an XADD', message],
    ['the append script on Redis 7', `${message} script: 6d1d9f0f, on @user_script:12.`],
    // Before 7.0, Redis wrapped an error raised inside a script in one of its own.
    [
      'the append script on Redis 6.2',
      `ERR Error running script (call to f_6d1d9f0f): @user_script:12: ${message}`,
    ],
  ])('tells the refusal of an id not after the last, from %s', (_from, text) => {
    expect(isIdNotAfterLast(new ErrorReply(text))).toBe(true);
  });

  it('tells no other error', () => {
    expect(isIdNotAfterLast(new ErrorReply('ERR The ID specified in XADD must be greater than 0-0'))).toBe(
      false,
    );
    expect(isIdNotAfterLast(new Error(message))).toBe(false);
    expect(isIdNotAfterLast(undefined)).toBe(false);
  });
});
