export type { ClusterOptions } from './connections.js';
export { RedisEngineError, RedisTimeoutError, RedisTopicError } from './errors.js';
export type { RedisEngineOptions } from './options.js';
export { redisEngine } from './redis-engine.js';
