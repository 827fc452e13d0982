// Every route of the runtime contract, served by Next.js as one catch-all route handler.
import { runtimeRoutes } from '../../../runtime/routes.js';
import '../close-on-sigterm.js';

// `next build` loads this module too, without --expose-gc: the check waits for `/memory`.
const memory = {
  gc: () => {
    const gc = (globalThis as { gc?: () => void }).gc;
    if (!gc) throw new Error('run next start with node --expose-gc');
    gc();
  },
  used: () => process.memoryUsage().heapUsed + process.memoryUsage().external,
};

const handler = runtimeRoutes(memory, async () => {});

export const GET = handler;
export const POST = handler;
