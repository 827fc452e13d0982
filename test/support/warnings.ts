// The process warnings a test's server may raise (a listener leak), apart from its clients' own, and
// the rejections a test leaves unhandled.

/** Warnings the clients of these tests emit themselves, not the server: undici's EventSource. */
const CLIENT_WARNINGS = [/^EventSource is experimental/];

/** Collects the process warnings emitted from now on, but the clients' own; call `stop` to stop. */
export function recordWarnings(): { warnings: Error[]; stop: () => void } {
  const warnings: Error[] = [];
  const listener = (warning: Error) => {
    if (!CLIENT_WARNINGS.some((pattern) => pattern.test(warning.message))) warnings.push(warning);
  };
  process.on('warning', listener);
  return { warnings, stop: () => process.off('warning', listener) };
}

/** Collects the rejections left unhandled from now on; call `stop` to stop. */
export function recordUnhandledRejections(): { rejections: unknown[]; stop: () => void } {
  const rejections: unknown[] = [];
  const listener = (reason: unknown) => void rejections.push(reason);
  process.on('unhandledRejection', listener);
  return { rejections, stop: () => process.off('unhandledRejection', listener) };
}
