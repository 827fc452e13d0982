import type { StreamOptions } from './options.js';
import { heard } from './source-feed.js';

/** Where a stream's errors go when no `onError` takes them: the framework's own log. */
export type ErrorReporter = (error: unknown) => void;

/** The log of a transport that passes none. */
export const consoleReporter: ErrorReporter = (error) =>
  console.error('rxsse: unhandled event-stream error', error);

/** Hands `error` to `onError`, else to `report`; neither may throw out of the stream. */
export function reportTo(onError: StreamOptions['onError'], report: ErrorReporter, error: unknown): void {
  if (onError) {
    try {
      // A rejection, as a throw, leaves the error itself untaken: both go to the log.
      heard(onError(error), (rejected) => {
        reportUnhandled(report, rejected);
        reportUnhandled(report, error);
      });
      return;
    } catch (thrown) {
      reportUnhandled(report, thrown);
    }
  }
  reportUnhandled(report, error);
}

function reportUnhandled(report: ErrorReporter, error: unknown): void {
  try {
    report(error);
  } catch (thrown) {
    // The framework's log failed (a listener or serializer that throws): the console still tells.
    try {
      console.error("rxsse: an event-stream error, and the framework's log failed with it", error, thrown);
    } catch {
      // Not even the console can show it: there is nowhere left to tell.
    }
  }
}
