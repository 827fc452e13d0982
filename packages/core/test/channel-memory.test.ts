import { memoryEngine } from '../src/index.js';
import { describeChannelContract } from './channel-contract.js';

describeChannelContract({
  name: 'memoryEngine',
  create: ({ retain }) => memoryEngine({ maxEvents: retain }),
  overflow: 30,
});
