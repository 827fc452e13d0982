export { RedisEngineError, RedisTimeoutError } from './errors.js';
export { type RedisEngineOptions, redisEngine } from './redis-engine.js';
