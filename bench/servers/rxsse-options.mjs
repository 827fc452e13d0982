// The one option the rxsse contenders change: a synchronous burst of 100,000 events (~7 MB) is
// queued whole within one tick, so the burst route raises maxQueueBytes (default 1 MiB) above it.
// Every other route runs on the defaults (1 MiB cap, close on overflow, 30 s stall timeout).
export const BURST_OPTIONS = { maxQueueBytes: 64 * 1024 * 1024 };
