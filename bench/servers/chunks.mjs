// The chunking reference: the batching reference, but a tick that emits more than 64 KiB writes
// it as it goes, and each full write is sent at once (see lib/batching-server.mjs).
import { startBatchingServer } from '../lib/batching-server.mjs';

startBatchingServer({ chunkBytes: 64 * 1024 });
