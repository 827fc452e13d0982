import { describe, expect, it } from 'vitest';
import { Refusals } from './refusals.js';

describe('Refusals', () => {
  it('tells onError of each refused command once, however often it is met, with the reply as cause', () => {
    const told: Error[] = [];
    const refusals = new Refusals((error) => told.push(error as Error));
    const evalRefused = new Error("NOPERM this user has no permissions to run the 'eval' command");
    const xinfoRefused = new Error("NOPERM this user has no permissions to run the 'xinfo|stream' command");
    for (let i = 0; i < 3; i++) {
      refusals.refusedEval(evalRefused);
      refusals.refused('XINFO', xinfoRefused, 'trimming is told as a gap');
    }
    expect(told.map((error) => error.message)).toEqual([
      `Redis refused EVAL, so an entry too large to arrive in time is not skipped, and live reads and replays over it fail until it arrives: ${evalRefused.message}`,
      `Redis refused XINFO, so trimming is told as a gap: ${xinfoRefused.message}`,
    ]);
    expect(told.map((error) => error.cause)).toEqual([evalRefused, xinfoRefused]);
  });
});
