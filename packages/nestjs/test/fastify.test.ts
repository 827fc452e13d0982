import { describeAdapterContract } from '../../../test/adapter-contract.js';
import { nestHarness } from './harness.js';

describeAdapterContract(nestHarness('fastify'));
