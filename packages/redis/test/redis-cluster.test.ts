import { describeEngineContract } from '@rxsse/core/testing';
import { redisEngine } from '../src/index.js';
import { useRedisCluster } from './support/use-redis.js';

const redis = useRedisCluster();

// The suite both engines pass, on a real 3-master, 3-replica Redis Cluster.
describeEngineContract({
  name: 'redisEngine on Redis Cluster',
  create: ({ retain }) =>
    redisEngine({
      cluster: { rootNodes: redis.cluster.rootNodes },
      partitions: 6,
      maxLength: retain,
      blockMs: 100,
    }),
  overflow: 300,
});
