import type { createClient } from 'redis';

/** The node-redis client the engine uses (its own connections, created from the engine's options). */
export type RedisClient = ReturnType<typeof createClient>;
