import { describe, expect, it } from 'vitest';
import { checkOptionNames } from './option-names.js';

const known = ['maxQueueBytes', 'maxReplay', 'heartbeat', 'retry', 'id'];
const check = (options: object) => () => checkOptionNames('stream', options, known);

describe('checkOptionNames', () => {
  it('takes known names, and an empty object', () => {
    expect(check({ maxQueueBytes: 1, heartbeat: false, retry: undefined })).not.toThrow();
    expect(check({})).not.toThrow();
    // As one left out: no reader sees it.
    expect(check({ maxQueueByte: undefined })).not.toThrow();
  });

  it('refuses an unknown name with a TypeError naming it and the near known one', () => {
    expect(check({ maxQueueByte: 1 })).toThrow(TypeError);
    expect(check({ maxQueueByte: 1 })).toThrow(
      /^Unknown stream option "maxQueueByte" \(did you mean "maxQueueBytes"\?\)$/,
    );
    expect(check({ maxreplay: 1 })).toThrow(/\(did you mean "maxReplay"\?\)$/);
    expect(check({ maxRpelay: 1 })).toThrow(/\(did you mean "maxReplay"\?\)$/);
    expect(check({ hartbet: 1 })).toThrow(/\(did you mean "heartbeat"\?\)$/);
    // A swap of two neighbours is one edit: "di" is one from "id", not two.
    expect(check({ di: 1 })).toThrow(/^Unknown stream option "di" \(did you mean "id"\?\)$/);
    // Case aside: a name in capitals is still a slip of the known one.
    expect(check({ MAXQUEUEBYTES: 1 })).toThrow(/\(did you mean "maxQueueBytes"\?\)$/);
    // Two letters mistyped are two edits, one each: still a slip of the known one.
    expect(check({ naxReplsy: 1 })).toThrow(
      /^Unknown stream option "naxReplsy" \(did you mean "maxReplay"\?\)$/,
    );
  });

  it('names no guess for a name far from every known one', () => {
    expect(check({ compression: true })).toThrow(/^Unknown stream option "compression"$/);
    // Two edits from "id", but as far from it as from anything.
    expect(check({ ab: 1 })).toThrow(/^Unknown stream option "ab"$/);
  });
});
