import { describeHostileContract } from '../../../test/hostile-contract.js';
import { honoHarness } from './harness.js';

describeHostileContract(honoHarness);
