// On SIGTERM `next start` stops taking connections, then exits once every open one has ended, which
// an event stream never does by itself: end the streams, with the retry hint. From a module the
// routes import: instrumentation.ts gets its own copy of the packages, whose `openStreams` is empty.
import { closeStreamsAndStop } from '../../../src/index.js';

// Next.js stops the server itself: until it exits, every request is turned away. A stream dropped at
// the deadline keeps its connection while its client reads nothing (Next.js waits for the socket to
// drain before it reads the body's error), and so does an Edge route's: exit once Node's keep-alive
// timeout (5 s) has closed the connections that ended.
process.once(
  'SIGTERM',
  () =>
    void closeStreamsAndStop(() => new Promise(() => setTimeout(() => process.exit(143), 6000)), {
      retry: 1000,
    }),
);
