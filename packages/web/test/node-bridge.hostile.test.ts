import { describeHostileContract } from '../../../test/hostile-contract.js';
import { nodeBridgeHarness } from './harness.js';

describeHostileContract(nodeBridgeHarness);
