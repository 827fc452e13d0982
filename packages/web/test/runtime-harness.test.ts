import { describe, expect, it } from 'vitest';
import { bun, deno, startRuntime } from './runtime/runtime.js';

/** Whether anything still accepts connections at `url`. */
async function answers(url: string): Promise<boolean> {
  try {
    await fetch(`${url}/closes`, { signal: AbortSignal.timeout(2_000) });
    return true;
  } catch {
    return false;
  }
}

describe('the runtime test harness', () => {
  for (const runtime of [bun, deno]) {
    it(`stops ${runtime.name} itself, not only a launcher in front of it`, async () => {
      const server = await startRuntime(runtime);
      expect(await answers(server.url)).toBe(true);
      await server.stop();
      expect(await answers(server.url)).toBe(false);
    }, 60_000);
  }
});
