import 'reflect-metadata';
import { Controller, Injectable, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { Test } from '@nestjs/testing';
import type { MessageEvent } from '@rxsse/core';
import { type Observable, Subject } from 'rxjs';
import { describe, expect, it } from 'vitest';
import { rawClient, waitFor } from '../../../test/support/clients.js';
import { RxSse, RxsseModule, RxsseRuntime } from '../src/index.js';
import { nestMajor, startNest } from './harness.js';

describe(`nestjs ${nestMajor}: RxsseModule in the app's lifecycle`, () => {
  it('refuses shutdown options from forRootAsync that forRoot would refuse, when the app starts', async () => {
    const compiling = Test.createTestingModule({
      imports: [RxsseModule.forRootAsync({ useFactory: () => ({ shutdown: { spread: -1 } }) })],
    }).compile();
    await expect(compiling).rejects.toThrow(/spread/);
  });

  it('starts and closes in an application context without an HTTP server', async () => {
    @Module({ imports: [RxsseModule.forRoot()] })
    class WorkerModule {}
    const app = await NestFactory.createApplicationContext(WorkerModule, { logger: false });
    expect(app.get(RxsseRuntime).defaults.heartbeat).toBeGreaterThan(0);
    await app.close();
  });

  it("lets any module inject the app's RxsseRuntime", async () => {
    @Injectable()
    class Reads {
      constructor(readonly runtime: RxsseRuntime) {}
    }
    @Module({ providers: [Reads], exports: [Reads] })
    class FeatureModule {}
    @Module({ imports: [RxsseModule.forRoot({ heartbeat: 4321 }), FeatureModule] })
    class AppModule {}
    const moduleRef = await Test.createTestingModule({ imports: [AppModule] }).compile();
    expect(moduleRef.get(Reads).runtime.defaults.heartbeat).toBe(4321);
    await moduleRef.close();
  });

  it("closing one app ends its own streams and leaves another app's open", async () => {
    const events = new Subject<MessageEvent>();
    @Controller()
    class Feed {
      @RxSse('feed')
      feed(): Observable<MessageEvent> {
        return events;
      }
    }
    @Module({ imports: [RxsseModule.forRoot()], controllers: [Feed] })
    class FeedModule {}
    const first = await startNest(FeedModule, 'express', []);
    const second = await startNest(FeedModule, 'express', []);
    try {
      const [leaving, staying] = await Promise.all([
        rawClient(`${first.url}/feed`, { read: true }),
        rawClient(`${second.url}/feed`, { read: true }),
      ]);
      await waitFor(() => events.observers.length === 2, 5000, 'both subscriptions');
      await first.close();
      await leaving.done;
      events.next({ data: 'still here' });
      await waitFor(() => staying.text.includes('data: still here\n\n'), 5000, "the other app's event");
      expect(staying.closed).toBe(false);
      staying.destroy();
    } finally {
      await second.close();
    }
    expect([...first.logged, ...second.logged]).toEqual([]);
  });
});
