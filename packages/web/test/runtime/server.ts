// Serves the runtime routes on 127.0.0.1:<port> with the runtime's own server: `Bun.serve` or
// `Deno.serve`, each with its defaults (Bun's 10 s idle timeout included).
import { runtimeRoutes } from './routes.js';

declare const Bun:
  | { serve(options: object): { stop(force?: boolean): Promise<void> }; gc(force: boolean): void }
  | undefined;
declare const Deno:
  | {
      args: string[];
      serve(options: object, handler: (request: Request) => Promise<Response>): { finished: Promise<void> };
    }
  | undefined;

if (typeof Bun !== 'undefined') {
  const port = Number(process.argv[2]);
  // JavaScriptCore counts strings and buffers in heapUsed already (and again in external).
  const memory = { gc: () => Bun.gc(true), used: () => process.memoryUsage().heapUsed };
  const server = Bun.serve({
    port,
    hostname: '127.0.0.1',
    // A graceful stop waits for the connection of a stream the deadline dropped (its client reads
    // nothing) until Bun's idleTimeout: a second after the deadline, cut what is left.
    fetch: runtimeRoutes(memory, async () => {
      const cut = setTimeout(() => server.stop(true), 1000);
      await server.stop();
      clearTimeout(cut);
    }),
  });
  console.log('listening');
} else if (typeof Deno !== 'undefined') {
  // V8 keeps buffers outside the heap: external counts them. `gc` is there with --expose-gc.
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) throw new Error('run Deno with --v8-flags=--expose-gc');
  const memory = { gc, used: () => process.memoryUsage().heapUsed + process.memoryUsage().external };
  const listening = {
    port: Number(Deno.args[0]),
    hostname: '127.0.0.1',
    onListen: () => console.log('listening'),
  };
  // `shutdown()` waits for the connection of a stream the deadline dropped (its client reads
  // nothing) for good, and cannot be cut short: a second after the deadline, abort the server.
  const controller = new AbortController();
  const server = Deno.serve(
    { ...listening, signal: controller.signal },
    runtimeRoutes(memory, async () => {
      await new Promise((resolve) => setTimeout(resolve, 1000));
      controller.abort();
      await server.finished;
    }),
  );
}
