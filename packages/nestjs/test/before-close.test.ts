import { describe, expect, it } from 'vitest';
import { runBeforeClose } from '../src/before-close.js';
import { nestMajor } from './harness.js';

/** An adapter whose own `beforeClose`, on its prototype, reads its instance. */
class Adapter {
  readonly log: string[] = [];
  fails = false;
  beforeClose(): void {
    this.log.push('own');
    if (this.fails) throw new Error('own step failed');
  }
}

describe(`nestjs ${nestMajor}: runBeforeClose`, () => {
  it("runs after the adapter's own beforeClose, called on the adapter", async () => {
    const adapter = new Adapter();
    runBeforeClose(adapter, async () => {
      adapter.log.push('run');
    });
    await adapter.beforeClose();
    expect(adapter.log).toEqual(['own', 'run']);
  });

  it("still runs when the adapter's own beforeClose throws, and rethrows it", async () => {
    const adapter = new Adapter();
    adapter.fails = true;
    runBeforeClose(adapter, async () => {
      adapter.log.push('run');
    });
    await expect(adapter.beforeClose()).rejects.toThrow('own step failed');
    expect(adapter.log).toEqual(['own', 'run']);
  });

  it('runs on an adapter that has no beforeClose of its own', async () => {
    const log: string[] = [];
    const adapter: { beforeClose?: () => unknown } = {};
    runBeforeClose(adapter, async () => {
      log.push('run');
    });
    await adapter.beforeClose?.();
    expect(log).toEqual(['run']);
  });
});
