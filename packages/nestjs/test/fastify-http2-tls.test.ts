import type { IncomingMessage } from 'node:http';
import { FastifyAdapter } from '@nestjs/platform-fastify';
import { describeHttp2Contract } from '../../../test/http2-contract.js';
import { appModuleOf, nestMajor, startNest } from './harness.js';

describeHttp2Contract({
  name: `nestjs ${nestMajor} on fastify (http2: true)`,
  async start({ key, cert }, routes, onRequest) {
    const adapter = new FastifyAdapter({
      http2: true,
      https: { key, cert, allowHTTP1: true },
    } as never) as FastifyAdapter;
    adapter.getInstance().addHook('onRequest', async (req) => onRequest(req.raw as IncomingMessage));
    return startNest(appModuleOf(routes), adapter, []);
  },
});
