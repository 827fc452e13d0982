import { describeAdapterContract } from '../../../test/adapter-contract.js';
import { koaHarness } from './harness.js';

describeAdapterContract(koaHarness);
