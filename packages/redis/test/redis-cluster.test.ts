import { afterAll, beforeAll } from 'vitest';
import { describeEngineContract } from '@rxsse/core/testing';
import { redisEngine } from '../src/index.js';
import { RedisCluster } from './support/redis-cluster.js';

let cluster: RedisCluster;
beforeAll(async () => {
  cluster = await RedisCluster.start();
}, 30_000);
afterAll(async () => {
  await cluster?.stop();
});

// The suite both engines pass, on a real 3-master, 3-replica Redis Cluster.
describeEngineContract({
  name: 'redisEngine on Redis Cluster',
  create: ({ retain }) =>
    redisEngine({
      cluster: { rootNodes: cluster.rootNodes },
      partitions: 6,
      maxLength: retain,
      blockMs: 100,
    }),
  overflow: 300,
});
