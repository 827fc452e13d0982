import { describeAdapterContract } from '../../../test/adapter-contract.js';
import { honoHarness } from './harness.js';

describeAdapterContract(honoHarness);
