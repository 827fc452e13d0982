import { describeHostileContract } from '../../../test/hostile-contract.js';
import { koaHarness } from './harness.js';

describeHostileContract(koaHarness);
