// The README's line as it stands: a route handler that is `sse(...)` and nothing more, no config.
import { concat, interval, map, of } from 'rxjs';
import { sse } from '../../../../src/index.js';
import '../close-on-sigterm.js';

export const GET = sse(() =>
  concat(of({ data: 'first' }), interval(50).pipe(map((n) => ({ data: String(n) })))),
);
