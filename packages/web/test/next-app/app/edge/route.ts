// The README's route on Next.js's Edge runtime, with its closes readable at `?closes`.
import type { CloseReason } from '@rxsse/core';
import { concat, interval, map, of } from 'rxjs';
import { sse } from '../../../../src/index.js';

export const runtime = 'edge';

const closes: CloseReason[] = [];
const events = sse(
  () => concat(of({ data: 'first' }), interval(50).pipe(map((n) => ({ data: String(n) })))),
  { onClose: (reason) => closes.push(reason) },
);

export const GET = (request: Request): Promise<Response> =>
  new URL(request.url).searchParams.has('closes') ? Promise.resolve(Response.json(closes)) : events(request);
