import { format } from 'node:util';

/**
 * Collects what a framework's own error channel receives, as text: `console.error` (Express and
 * bare Node, restored by the returned function) and a Fastify logger stream.
 */
export function captureConsoleErrors(logged: string[]): () => void {
  const original = console.error;
  console.error = (...args: unknown[]) => {
    logged.push(format(...args));
  };
  return () => {
    console.error = original;
  };
}

/** A Fastify `logger.stream` that keeps each line logged at level error or above. */
export function fastifyLogStream(logged: string[]): { write(line: string): void } {
  return {
    write(line) {
      const entry = JSON.parse(line) as {
        level: number;
        msg?: string;
        err?: { type?: string; message?: string };
      };
      if (entry.level >= 50) logged.push(`${entry.msg} ${entry.err?.type}: ${entry.err?.message}`);
    },
  };
}
