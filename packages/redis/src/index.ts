export type { ClusterOptions } from './connections.js';
export { RedisEngineError, RedisTimeoutError, RedisTopicError } from './errors.js';
export { type RedisEngineOptions, redisEngine } from './redis-engine.js';
