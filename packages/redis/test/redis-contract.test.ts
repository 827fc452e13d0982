import { afterAll, beforeAll } from 'vitest';
import { describeEngineContract } from '@rxsse/core/testing';
import { redisEngine } from '../src/index.js';
import { RedisServer } from './support/redis-server.js';

let redis: RedisServer;
beforeAll(async () => {
  redis = await RedisServer.start();
});
afterAll(async () => {
  await redis?.stop();
});

// The same suite memoryEngine passes in @rxsse/core, against a real redis-server.
describeEngineContract({
  name: 'redisEngine',
  create: ({ retain }) => redisEngine({ url: redis.url, maxLength: retain, blockMs: 100 }),
  // MAXLEN ~ trims whole stream nodes (100 entries each by default): publish well past one.
  overflow: 300,
});

// Many-topics mode: live delivery by partition, history per topic; the same suite, unchanged.
describeEngineContract({
  name: 'redisEngine with partitions',
  create: ({ retain }) => redisEngine({ url: redis.url, maxLength: retain, blockMs: 100, partitions: 4 }),
  overflow: 300,
});
