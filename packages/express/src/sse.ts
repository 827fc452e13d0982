import { checkEventHandler, type MessageEvent, resolveStreamOptions, type StreamOptions } from '@rxsse/core';
import { consoleReporter, type EventHandler, openEventStream } from '@rxsse/node';
import type { NextFunction, Request, RequestHandler, Response } from 'express';

/**
 * An Express handler that streams the events `handler` returns for each request.
 *
 * @example
 * ```ts
 * app.get('/sse', sse(() => interval(1000).pipe(map(() => ({ data: { hello: 'world' } })))));
 * ```
 */
export function sse<M extends MessageEvent<unknown> = MessageEvent<unknown>>(
  handler: EventHandler<Request, NoInfer<M>>,
  options?: StreamOptions,
): RequestHandler {
  checkEventHandler(handler, 'sse');
  const resolved = resolveStreamOptions(options);
  return (req: Request, res: Response, next: NextFunction) => {
    // A handler that throws before the first byte is Express's to answer, like any other route.
    // Express has no logger: later errors go to console.error, naming the route.
    const report = consoleReporter(req, req.originalUrl);
    openEventStream(req, res, (context) => handler(req, context), resolved, report).catch((error) =>
      // A response another writer is sending is left to finish: Express would destroy its socket.
      res.headersSent ? report(error) : next(error),
    );
  };
}
