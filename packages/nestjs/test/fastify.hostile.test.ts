import { describeHostileContract } from '../../../test/hostile-contract.js';
import { nestHarness } from './harness.js';

describeHostileContract(nestHarness('fastify'));
