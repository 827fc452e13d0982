import { inspect } from 'node:util';
import { Logger, type LoggerService } from '@nestjs/common';
import { isThenable } from '@rxsse/core';

/** Where an app's streams report what fails once they run. */
export type StreamErrorLog = (message: string, stack: string | undefined) => void;

/** The context the reports carry, as Nest's loggers print it. */
const CONTEXT = 'RxSse';

// Nest's logger of the process: whichever `useLogger()` or `NestFactory.create({ logger })` set last.
const processLogger = new Logger(CONTEXT);

/**
 * The app's own logger when the module was given one, else Nest's logger of the process, so that
 * without the option `useLogger()` and `bufferLogs` apply as to any of Nest's own logs. Never throws:
 * what the app's logger refuses goes to Nest's.
 */
export function streamErrorLog(logger: LoggerService | undefined): StreamErrorLog {
  if (logger === undefined) return (message, stack) => processLogger.error(message, stack);
  return (message, stack) => {
    // Thrown from a teardown's rejection handler, or rejected unheard (a log shipper's `error` may
    // be async), it would be an unhandled rejection, which ends a Node process by default: Nest's
    // own log takes the report, and why the logger did not.
    const refused = (thrown: unknown) =>
      processLogger.error(`${message} (the module's logger threw: ${errorText(thrown)})`, stack);
    try {
      // The arguments Nest's `Logger` hands the logger it delegates to. One with a context of its
      // own (`new ConsoleLogger('tenant-a')`, `new Logger('Feeds')`) keeps it: ours would replace
      // it, or, behind the context a `Logger` adds, be printed as the stack.
      const result: unknown = hasContext(logger)
        ? logger.error(message, ...(stack === undefined ? [] : [stack]))
        : logger.error(message, stack, CONTEXT);
      if (isThenable(result)) result.then(undefined, refused);
    } catch (thrown) {
      refused(thrown);
    }
  };
}

/** Whether a Nest logger (`ConsoleLogger`, `Logger`) was given a context of its own. */
function hasContext(logger: LoggerService): boolean {
  const { context } = logger as { context?: unknown };
  return typeof context === 'string' && context !== '';
}

/**
 * What failed, for the report's line. A value `String()` cannot print (an object without a
 * prototype, as parsers hand out), or prints as `[object Object]` (a plain object thrown), is
 * inspected instead: a report that throws is lost, and one that says nothing does not help.
 */
export function errorText(error: unknown): string {
  let text: string;
  try {
    text = String(error);
  } catch {
    return inspect(error);
  }
  return text === '[object Object]' ? inspect(error) : text;
}

/**
 * The stack of an Error, for the report's trace; none for what is no Error, or one whose fields throw
 * as they are read (a getter, a Proxy's trap): a report that throws would miss the app's logger.
 */
export function stackOf(error: unknown): string | undefined {
  try {
    return error instanceof Error ? error.stack : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Refuses at setup a `logger` that the first failing stream would find unusable.
 * @throws {TypeError} naming the option, unless `logger` is an object with an `error` function.
 */
export function checkLogger(logger: unknown): asserts logger is LoggerService | undefined {
  if (logger === undefined) return;
  if (typeof logger !== 'object' || logger === null) throw refused(logger === null ? 'null' : typeof logger);
  if (typeof (logger as { error?: unknown }).error !== 'function') {
    throw refused(`an object (${logger.constructor?.name ?? 'no prototype'}) without an error function`);
  }
}

function refused(got: string): TypeError {
  return new TypeError(`logger must be a Nest LoggerService (an object with an error function), got ${got}`);
}
