import { describeAdapterContract } from '../../../test/adapter-contract.js';
import { fastifyHarness } from './harness.js';

describeAdapterContract(fastifyHarness);
