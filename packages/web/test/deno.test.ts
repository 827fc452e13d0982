import { deno } from './runtime/runtime.js';
import { describeRuntimeContract } from './runtime-contract.js';

describeRuntimeContract(deno);
