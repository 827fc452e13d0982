import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

// Tests of what is let go collect garbage themselves: vitest's workers run without --expose-gc.
setFlagsFromString('--expose-gc');

/** V8's full garbage collection. */
export const gc = runInNewContext('gc') as () => void;
