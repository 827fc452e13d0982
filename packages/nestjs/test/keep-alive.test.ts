import 'reflect-metadata';
import { Agent, request } from 'node:http';
import { Controller, Module, Req, Res } from '@nestjs/common';
import { concat, NEVER, of } from 'rxjs';
import { describe, expect, it } from 'vitest';
import { sleep } from '../../../test/support/clients.js';
import { gc } from '../../../test/support/gc.js';
import { RxSse, RxsseModule } from '../src/index.js';
import { nestMajor, type Platform, startNest } from './harness.js';

/** GETs `url` on `agent`, reads the whole body. */
function get(agent: Agent, url: string): Promise<string> {
  return new Promise((resolve, reject) => {
    request(url, { agent }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        body += chunk;
      });
      res.on('end', () => resolve(body));
    })
      .on('error', reject)
      .end();
  });
}

describe.each<Platform>(['express', 'fastify'])(
  `nestjs ${nestMajor} on %s: one keep-alive connection`,
  (platform) => {
    it('lets go of every request whose stream ended while the connection stays open', async () => {
      const requests: WeakRef<object>[] = [];
      @Controller()
      class Events {
        @RxSse('done')
        done(@Req() req: object) {
          requests.push(new WeakRef(req));
          return of({ data: 'x' });
        }

        // A method that takes Nest's response to pass through, as one setting a cookie may.
        @RxSse('lifetime', { maxLifetime: 20 })
        lifetime(@Req() req: object, @Res({ passthrough: true }) _res: unknown) {
          requests.push(new WeakRef(req));
          return concat(of({ data: 'y' }), NEVER);
        }
      }
      @Module({ imports: [RxsseModule.forRoot({ heartbeat: false })], controllers: [Events] })
      class AppModule {}
      const server = await startNest(AppModule, platform, []);
      let connections = 0;
      server.app.getHttpServer().on('connection', () => connections++);
      const agent = new Agent({ keepAlive: true, maxSockets: 1 });
      try {
        for (let i = 0; i < 10; i++) {
          expect(await get(agent, `${server.url}/done`)).toBe('data: x\n\n');
          expect(await get(agent, `${server.url}/lifetime`)).toMatch(/^data: y\n\n/);
        }
        expect(connections).toBe(1);
        for (let i = 0; i < 5; i++) {
          gc();
          await sleep(20);
        }
        // The last may still be the connection's own.
        expect(requests.filter((ref) => ref.deref() !== undefined).length).toBeLessThanOrEqual(1);
        expect(server.logged).toEqual([]);
      } finally {
        agent.destroy();
        await server.close();
      }
    });
  },
);
