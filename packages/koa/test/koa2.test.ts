import type Koa from 'koa';
import { describeAdapterContract } from '../../../test/adapter-contract.js';
import { describeHostileContract } from '../../../test/hostile-contract.js';
import { koaHarnessOf } from './harness.js';

// Koa 2.15.0, the lowest the peer range allows, installed under the alias `koa2` (a devDependency):
// the same contracts as Koa 3.
const Koa2: typeof Koa = (await import('koa2' as string)).default;
const harness = koaHarnessOf('koa 2', Koa2);

describeAdapterContract(harness);
describeHostileContract(harness);
