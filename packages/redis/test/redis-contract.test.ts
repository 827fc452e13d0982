import { describeEngineContract } from '@rxsse/core/testing';
import { redisEngine } from '../src/index.js';
import { useRedis } from './support/use-redis.js';

const redis = useRedis();

// The same suite memoryEngine passes in @rxsse/core, against a real redis-server.
describeEngineContract({
  name: 'redisEngine',
  create: ({ retain }) => redisEngine({ url: redis.server.url, maxLength: retain, blockMs: 100 }),
  // MAXLEN ~ trims whole stream nodes (100 entries each by default): publish well past one.
  overflow: 300,
});

// Many-topics mode: live delivery by partition, history per topic; the same suite, unchanged.
describeEngineContract({
  name: 'redisEngine with partitions',
  create: ({ retain }) =>
    redisEngine({ url: redis.server.url, maxLength: retain, blockMs: 100, partitions: 4 }),
  overflow: 300,
});
