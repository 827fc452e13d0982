import { describe, expect, it } from 'vitest';
import { gc } from '../../../test/support/gc.js';
import { memoryEngine } from '../src/channel/index.js';
import { describeEngineContract } from '../src/testing/index.js';

describeEngineContract({
  name: 'memoryEngine',
  create: ({ retain }) => memoryEngine({ maxEvents: retain }),
  overflow: 30,
});

describe('memoryEngine and topics named by clients', () => {
  it.each([
    ['read', false],
    ['read and listened to, once its listeners left', true],
  ])('keeps nothing of a topic that was only %s', async (_, listen) => {
    const engine = memoryEngine();
    const first = await engine.append('room', { data: 'first' });
    await engine.append('room', { data: 'kept' });
    // A client may name any topic (`/rooms/:id`): each one it reads and leaves must cost nothing.
    const visit = async (n: number) => {
      for (let i = 0; i < n; i++) {
        const name = `room ${i} ${'x'.repeat(64)}`;
        await engine.read(name, '0-0', { count: 10, bytes: 1000 });
        if (listen) (await engine.listen(name, { event: () => {}, gap: () => {} }))();
      }
    };
    await visit(1000);
    gc();
    const before = process.memoryUsage().heapUsed;
    await visit(20_000);
    gc();
    // 20,000 topics kept would be several MB (a ring each); none kept is noise.
    expect(process.memoryUsage().heapUsed - before).toBeLessThan(1_000_000);
    // The topic with events keeps them.
    const page = await engine.read('room', first, { count: 10, bytes: 1000 });
    expect(page.events.map((e) => e.data)).toEqual(['kept']);
    await engine.close();
  });

  it('keeps a topic for its listener when an earlier listener is unregistered again', async () => {
    const engine = memoryEngine();
    const stopFirst = await engine.listen('room', { event: () => {}, gap: () => {} });
    stopFirst();
    const received: string[] = [];
    const stop = await engine.listen('room', {
      event: (message) => received.push(message.data as string),
      gap: () => {},
    });
    // The first topic was forgotten when its listener left: unregistering it again forgets no other.
    stopFirst();
    await engine.append('room', { data: 'live' });
    expect(received).toEqual(['live']);
    stop();
    await engine.close();
  });
});

describe('memoryEngine options', () => {
  it('refuses a maxEvents or maxBytes that is no positive integer, naming it', () => {
    for (const bad of [0, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY]) {
      expect(() => memoryEngine({ maxEvents: bad })).toThrow(
        new RangeError('maxEvents must be a positive integer'),
      );
      expect(() => memoryEngine({ maxBytes: bad })).toThrow(
        new RangeError('maxBytes must be a positive integer'),
      );
    }
    expect(() => memoryEngine({ maxEvents: 1, maxBytes: 1 })).not.toThrow();
  });
});
