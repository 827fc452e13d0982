import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bun, type RuntimeServer, startRuntime } from './runtime/runtime.js';
import { describeRuntimeContract } from './runtime-contract.js';

interface Watched {
  text: string;
  endedAfter?: number;
}

// The quiet streams are read for 30 s, three of Bun's idle timeouts, on a server of their own, begun
// before the contract's tests, which run meanwhile instead of after; their test then takes what was
// read. Past 20 s, a stream without heartbeats that Bun left open would show too.
const WATCHED_MS = 30_000;
let quiet: RuntimeServer | undefined;
let watched: Promise<[Watched, Watched]>;
beforeAll(async () => {
  quiet = await startRuntime(bun);
  watched = Promise.all([
    watch(`${quiet.url}/quiet`, WATCHED_MS),
    watch(`${quiet.url}/quiet-without-heartbeats`, WATCHED_MS),
  ]);
  watched.catch(() => {}); // awaited by its test, which fails with it
});
afterAll(() => quiet?.stop());

describeRuntimeContract(bun);

/** Reads `url` for `ms` ms: the text, and after how long the server ended it (if it did). */
async function watch(url: string, ms: number): Promise<Watched> {
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
  it('stays open for 30 s with the default heartbeat; without heartbeats Bun cuts it', async () => {
    const [kept, cut] = await watched;
    expect(kept.endedAfter).toBeUndefined();
    // 4 s heartbeats: one every 4 to 8 s of silence, so at least three in 30 s.
    expect(kept.text).toMatch(/^data: hello\n\n(:\n){3,}$/);
    expect(cut.text).toBe('data: hello\n\n');
    expect(cut.endedAfter).toBeGreaterThan(9_000);
    expect(cut.endedAfter).toBeLessThan(20_000);
  }, 60_000);
});
