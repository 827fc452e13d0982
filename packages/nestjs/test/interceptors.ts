import { type CallHandler, Injectable, type NestInterceptor } from '@nestjs/common';
import type { MessageEvent } from '@rxsse/core';
import { catchError, map, merge, NEVER, type Observable, of, startWith } from 'rxjs';

/** Upper-cases every event's data, as an interceptor that maps the method's events does. */
@Injectable()
export class Shouts implements NestInterceptor {
  intercept(_context: unknown, next: CallHandler): Observable<unknown> {
    return next
      .handle()
      .pipe(map((event: MessageEvent) => ({ ...event, data: String(event.data).toUpperCase() })));
  }
}

/** Sends an event of its own before the method's. */
@Injectable()
export class Greets implements NestInterceptor {
  intercept(_context: unknown, next: CallHandler): Observable<unknown> {
    return next.handle().pipe(startWith({ data: 'welcome' }));
  }
}

/** Answers a source that fails with an event of its own. */
@Injectable()
export class FallsBack implements NestInterceptor {
  intercept(_context: unknown, next: CallHandler): Observable<unknown> {
    return next.handle().pipe(catchError(() => of({ data: 'fallback' })));
  }
}

/** Merges a feed of its own (a server-wide one that never ends) into every stream. */
@Injectable()
export class MergesFeed implements NestInterceptor {
  intercept(_context: unknown, next: CallHandler): Observable<unknown> {
    return merge(next.handle(), NEVER);
  }
}
