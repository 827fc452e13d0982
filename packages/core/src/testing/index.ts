// For authors of transports and channel engines: an in-memory Sink, and the contract suite
// (vitest) that every engine passes, `memoryEngine()` and `redisEngine()` included.
export { describeEngineContract, type EngineFixture, recordSource, until } from './engine-contract.js';
export { MemorySink } from './memory-sink.js';
