// Serves the runtime routes on 127.0.0.1:<port> with the runtime's own server: `Bun.serve` or
// `Deno.serve`, each with its defaults (Bun's 10 s idle timeout included).
import { runtimeRoutes } from './routes.js';

declare const Bun:
  | { serve(options: object): { stop(): Promise<void> }; gc(force: boolean): void }
  | undefined;
declare const Deno:
  | {
      args: string[];
      serve(options: object, handler: (request: Request) => Promise<Response>): { shutdown(): Promise<void> };
    }
  | undefined;

if (typeof Bun !== 'undefined') {
  const port = Number(process.argv[2]);
  // JavaScriptCore counts strings and buffers in heapUsed already (and again in external).
  const memory = { gc: () => Bun.gc(true), used: () => process.memoryUsage().heapUsed };
  const server = Bun.serve({
    port,
    hostname: '127.0.0.1',
    fetch: runtimeRoutes(memory, () => server.stop()),
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
  const server = Deno.serve(
    listening,
    runtimeRoutes(memory, () => server.shutdown()),
  );
}
