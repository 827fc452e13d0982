import type Fastify from 'fastify';
import { describeAdapterContract } from '../../../test/adapter-contract.js';
import { fastifyHarnessOf } from './harness.js';

// Fastify 5.0.0, the lowest the peer range allows, installed under the alias `fastify50` (a
// devDependency): the adapter contract only, as the hostile one would cost the suite as much again.
const fastify50: typeof Fastify = (await import('fastify50' as string)).default;

describeAdapterContract(fastifyHarnessOf('fastify 5.0', fastify50));
