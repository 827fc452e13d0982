import { describeAdapterContract } from '../../../test/adapter-contract.js';
import { nodeBridgeHarness } from './harness.js';

describeAdapterContract(nodeBridgeHarness);
