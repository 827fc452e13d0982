import { describeHostileContract } from '../../../test/hostile-contract.js';
import { fastifyHarness } from './harness.js';

describeHostileContract(fastifyHarness);
