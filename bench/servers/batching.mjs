// The batching reference: one write per connection per tick (see lib/batching-server.mjs).
import { startBatchingServer } from '../lib/batching-server.mjs';

startBatchingServer();
