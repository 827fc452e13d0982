import { ErrorReply } from 'redis';
import { describe, expect, it } from 'vitest';
import { Refusals, refusedCommand } from './refusals.js';

describe('Refusals', () => {
  it('tells onError of each refused command once, however often it is met, with the reply as cause', () => {
    const told: Error[] = [];
    const refusals = new Refusals((error) => told.push(error as Error));
    const evalRefused = new Error("NOPERM this user has no permissions to run the 'eval' command");
    const readOnlyRefused = new Error("ERR unknown command 'eval_ro', with args beginning with: ");
    const xinfoRefused = new Error("NOPERM this user has no permissions to run the 'xinfo|stream' command");
    for (let i = 0; i < 3; i++) {
      refusals.refusedReadOnly(readOnlyRefused);
      refusals.refusedEval(evalRefused);
      refusals.refused('XINFO', xinfoRefused, 'trimming is told as a gap');
    }
    expect(told.map((error) => error.message)).toEqual([
      `Redis refused EVAL_RO, so the scripts that only read run as EVAL, which Redis holds back while writes are paused (a failover): replays, topics' starts and live reads that run them wait for the pause to end, or time out: ${readOnlyRefused.message}`,
      `Redis refused EVAL, so reads fetch whole the entries the scripts only check or size (a live cursor's large entry at every read), and an entry too large to arrive in time is not skipped: live reads, replays and topics' starts over it fail until it arrives: ${evalRefused.message}`,
      `Redis refused XINFO, so trimming is told as a gap: ${xinfoRefused.message}`,
    ]);
    expect(told.map((error) => error.cause)).toEqual([readOnlyRefused, evalRefused, xinfoRefused]);
  });
});

describe('refusedCommand', () => {
  it.each([
    ["NOPERM this user has no permissions to run the 'eval_ro' command", 'eval_ro', true],
    ["NOPERM this user has no permissions to run the 'xinfo|stream' command", 'xinfo', true],
    ["ERR unknown command 'EVAL_RO', with args beginning with: 'return 1' '0' ", 'eval_ro', true],
    // Redis 6.2 knows no EVAL_RO, and quotes an unknown command in backticks.
    ['ERR unknown command `EVAL_RO`, with args beginning with: `return 1` `0` ', 'eval_ro', true],
    ["NOPERM this user has no permissions to run the 'eval_ro' command", 'eval', false],
    ["ERR unknown command 'EVAL_RO', with args beginning with: ", 'eval', false],
    ['NOPERM No permissions to access a key', 'xinfo', false],
  ])('reads %j as a refusal of %s: %s', (message, command, refused) => {
    expect(refusedCommand(new ErrorReply(message), command)).toBe(refused);
  });
});
