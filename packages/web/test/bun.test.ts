import { afterAll, describe, expect, it } from 'vitest';
import { bun, type RuntimeServer, startRuntime } from './runtime/runtime.js';
import { describeRuntimeContract } from './runtime-contract.js';

describeRuntimeContract(bun);

/** Reads `url` for `ms` ms: the text, and after how long the server ended it (if it did). */
async function watch(url: string, ms: number): Promise<{ text: string; endedAfter?: number }> {
  const began = Date.now();
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), ms);
  const response = await fetch(url, { signal: abort.signal });
  const decoder = new TextDecoder();
  let text = '';
  try {
    for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
      text += decoder.decode(chunk, { stream: true });
    }
  } catch {
    if (abort.signal.aborted) return { text };
  } finally {
    clearTimeout(timer);
  }
  return { text, endedAfter: Date.now() - began };
}

describe('a quiet stream on a default Bun.serve (idle timeout 10 s)', () => {
  let server: RuntimeServer | undefined;
  afterAll(() => server?.stop());

  it('stays open for 60 s with the default heartbeat; without heartbeats Bun cuts it', async () => {
    server = await startRuntime(bun);
    const [kept, cut] = await Promise.all([
      watch(`${server.url}/quiet`, 61_000),
      watch(`${server.url}/quiet-without-heartbeats`, 61_000),
    ]);
    expect(kept.endedAfter).toBeUndefined();
    // 4 s heartbeats: one every 4 to 8 s of silence.
    expect(kept.text).toMatch(/^data: hello\n\n(:\n){7,}$/);
    expect(cut.text).toBe('data: hello\n\n');
    expect(cut.endedAfter).toBeGreaterThan(9_000);
    expect(cut.endedAfter).toBeLessThan(20_000);
  }, 90_000);
});
