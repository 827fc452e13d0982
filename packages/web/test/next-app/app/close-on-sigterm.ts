// On SIGTERM `next start` stops taking connections, then exits once every open one has ended, which
// an event stream never does by itself: end the streams, with the retry hint. From a module the
// routes import: instrumentation.ts gets its own copy of the packages, whose `openStreams` is empty.
import { closeStreamsAndStop } from '../../../src/index.js';

// Next.js stops the server itself: until it exits, every request is turned away.
process.once('SIGTERM', () => void closeStreamsAndStop(() => new Promise(() => {}), { retry: 1000 }));
