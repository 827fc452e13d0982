export type { ClusterOptions } from './connections.js';
export {
  RedisEngineError,
  type RedisFailing,
  RedisRecovered,
  RedisRepeatedFailure,
  RedisTimeoutError,
  RedisTopicError,
} from './errors.js';
export type { RedisEngineOptions } from './options.js';
export { redisEngine } from './redis-engine.js';
