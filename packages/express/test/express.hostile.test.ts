import express from 'express';
import { NEVER } from 'rxjs';
import { describe, expect, it } from 'vitest';
import { describeHostileContract } from '../../../test/hostile-contract.js';
import { sse } from '../src/index.js';
import { expressHarness } from './harness.js';

describeHostileContract(expressHarness('express 5', express));

describe('express route options', () => {
  it('are checked when the route is created', () => {
    expect(() => sse(() => NEVER, { maxLifetime: 30 * 86_400_000 })).toThrow(/maxLifetime/);
    expect(() => sse(() => NEVER, { retry: 1.5 })).toThrow(/retry/);
    expect(() => sse(() => NEVER, { stallTimeout: Number.POSITIVE_INFINITY })).toThrow(/stallTimeout/);
  });
});
