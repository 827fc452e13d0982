import { memoryEngine } from '../src/channel/index.js';
import { describeEngineContract } from '../src/testing/index.js';

describeEngineContract({
  name: 'memoryEngine',
  create: ({ retain }) => memoryEngine({ maxEvents: retain }),
  overflow: 30,
});
