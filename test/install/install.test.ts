import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { promisify } from 'node:util';
import { EventSource } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
// @ts-expect-error: a plain .mjs script without types.
import { packAll, readTarball, tarballProblems } from '../../scripts/pack.mjs';
import { freePort } from '../support/ports.js';

const run = promisify(execFile);
const root = new URL('../../', import.meta.url).pathname;
const PACKAGES = ['core', 'node', 'express', 'fastify', 'koa', 'nestjs', 'redis', 'prometheus', 'web'];
const SERVERS = ['express', 'fastify', 'koa'];
/** What a user installs next to the packages: frameworks, rxjs, and the compiler with types. */
const DEPENDENCIES = [
  'express@^5',
  'fastify@^5',
  'koa@^3',
  '@nestjs/common@^12',
  '@nestjs/core@^12',
  '@nestjs/platform-express@^12',
  'rxjs@^7.8',
  'prom-client@^15',
  'typescript@5.9.3',
  // The native compiler, beside 5.9 under another name: both compile the same app.
  'typescript7@npm:typescript@^7',
  '@types/node@^20.19',
  '@types/express@^5',
  '@types/koa@^3',
];
const TSCONFIG = {
  compilerOptions: {
    strict: true,
    module: 'NodeNext',
    moduleResolution: 'NodeNext',
    target: 'ES2022',
    types: ['node'],
    // As `tsc --init` sets it: @types/koa 3 does not check against the content-disposition it installs.
    skipLibCheck: true,
    // As a NestJS project sets them: Nest's decorators and its DI need both.
    experimentalDecorators: true,
    emitDecoratorMetadata: true,
    rootDir: 'src',
    outDir: 'dist',
  },
  include: ['src'],
};
// A channel on memoryEngine(), one event per connection: the client reconnects after each, so
// the second event reaches it only by replay after the Last-Event-ID it sent.
const CHANNEL_APP = `
import { createChannel, memoryEngine } from '@rxsse/core/channel';
import { sse } from '@rxsse/express';
import express from 'express';
import { take } from 'rxjs';

const chat = createChannel(memoryEngine(), 'chat');
const app = express();
app.get('/chat', sse(async (req, context) => (await chat.subscribe(context)).pipe(take(1)), { retry: 50 }));
app.post('/chat', (req, res) => {
  chat
    .publish({ data: 'one' })
    .then(() => chat.publish({ data: 'two' }))
    .then(() => res.end(), (error: unknown) => res.status(500).end(String(error)));
});
app.listen(3000);
`;

let app: string;
let tarballs: string[];

beforeAll(async () => {
  app = await mkdtemp(join(tmpdir(), 'rxsse-install-'));
  // The suite runs after the build: pack what was built, as `npm run pack` does.
  tarballs = packAll({ out: join(app, 'packs'), build: false });
  await writeFile(join(app, 'package.json'), JSON.stringify({ name: 'rxsse-install-proof', private: true }));
  await npm(['install', '--prefer-offline', '--no-audit', '--no-fund', ...tarballs, ...DEPENDENCIES]);
  await mkdir(join(app, 'src'));
  for (const name of PACKAGES) await writeBothFormats(name, await readmeUsage(name));
  await writeBothFormats('channel', CHANNEL_APP);
  await writeFile(join(app, 'tsconfig.json'), JSON.stringify(TSCONFIG));
}, 300_000);

afterAll(async () => {
  if (app) await rm(app, { recursive: true, force: true });
});

describe('the packed packages, installed with npm outside the workspace', () => {
  it('are one tarball per package, each with its LICENSE and README and no workspace: range', () => {
    expect(tarballs.map((path) => basename(path).replace(/-\d.*$/, '')).sort()).toEqual(
      expect.arrayContaining(PACKAGES.map((name) => `rxsse-${name}`).sort()),
    );
    for (const tarball of tarballs) {
      const { files, manifest } = readTarball(tarball);
      expect(tarballProblems(files, manifest), basename(tarball)).toEqual([]);
      expect(manifest.repository?.directory, basename(tarball)).toMatch(/^packages\//);
      expect(manifest.engines.node, basename(tarball)).toBe('^20.19.0 || >=22');
    }
  });

  it('install cleanly: npm ls finds nothing missing, invalid or extraneous', async () => {
    const { stdout } = await npm(['ls', '--all']);
    expect(stdout).toContain('@rxsse/express@');
  });

  it("compile every package README's usage with tsc --strict (NodeNext), as ESM and as CommonJS", async () => {
    await tsc('typescript', []);
  }, 120_000);

  it('compile the same with TypeScript 7, emitting the decorator metadata Nest reads as 5.9 does', async () => {
    await tsc('typescript7', ['--outDir', 'dist-ts7']);
    for (const file of ['nestjs.mjs', 'nestjs.cjs']) {
      const metadata = async (outDir: string) =>
        (await readFile(join(app, outDir, file), 'utf8')).match(/__metadata\([^)]*\)/g);
      expect(await metadata('dist-ts7'), file).toEqual(await metadata('dist'));
      expect(await metadata('dist-ts7'), file).toContainEqual(expect.stringContaining('design:paramtypes'));
    }
  }, 120_000);

  for (const name of SERVERS) {
    for (const ext of ['mjs', 'cjs']) {
      it(`run the ${name} README as ${ext === 'mjs' ? 'ESM' : 'CommonJS'}: a client receives its first event`, async () => {
        await withApp(`${name}.${ext}`, async (url) => {
          const [event] = await receive(`${url}/ticks`, 1);
          expect(event).toEqual({ data: '{"n":0}', lastEventId: '0' });
        });
      });
    }
  }

  for (const ext of ['mjs', 'cjs']) {
    it(`run the nestjs README as ${ext === 'mjs' ? 'ESM' : 'CommonJS'}: a client receives its first event`, async () => {
      await withApp(`nestjs.${ext}`, async (url) => {
        const [event] = await receive(`${url}/sse`, 1);
        expect(event).toEqual({ data: '{"hello":"world"}', lastEventId: '' });
      });
    });
  }

  for (const ext of ['mjs', 'cjs']) {
    it(`replay a memoryEngine channel to a client that reconnects (${ext})`, async () => {
      await withApp(`channel.${ext}`, async (url) => {
        const events = receive(`${url}/chat`, 2, async () => {
          const response = await fetch(`${url}/chat`, { method: 'POST' });
          expect(response.status).toBe(200);
        });
        expect((await events).map((event) => event.data)).toEqual(['one', 'two']);
      });
    });
  }
});

function npm(args: string[]): Promise<{ stdout: string }> {
  return inApp('npm', args);
}

async function inApp(command: string, args: string[]): Promise<{ stdout: string }> {
  try {
    return await run(command, args, { cwd: app, maxBuffer: 64 * 1024 * 1024 });
  } catch (error) {
    const { stdout, stderr } = error as { stdout?: string; stderr?: string };
    throw new Error(`${basename(command)} ${args.join(' ')} failed:\n${stdout}\n${stderr}`);
  }
}

/** Compiles the app with the installed `tsc` of package `typescript` (`npm exec` would add npm's start-up). */
function tsc(typescript: string, args: string[]): Promise<{ stdout: string }> {
  return inApp(process.execPath, [join(app, 'node_modules', typescript, 'bin', 'tsc'), '-p', '.', ...args]);
}

/** The first TypeScript block of a package's README, listening where the test says. */
async function readmeUsage(name: string): Promise<string> {
  const readme = await readFile(join(root, 'packages', name, 'README.md'), 'utf8');
  const block = /```ts\n([\s\S]*?)```/.exec(readme)?.[1];
  if (!block) throw new Error(`packages/${name}/README.md has no \`\`\`ts block`);
  if (SERVERS.includes(name) && !block.includes('3000'))
    throw new Error(`the ${name} README listens elsewhere`);
  return block;
}

/** The same source as an ES module and as a CommonJS one; either listens on $PORT. */
async function writeBothFormats(name: string, source: string): Promise<void> {
  const listening = source.replaceAll('3000', 'Number(process.env.PORT)');
  await writeFile(join(app, 'src', `${name}.mts`), listening);
  await writeFile(join(app, 'src', `${name}.cts`), listening);
}

/** Runs a compiled app on a free port until `body` is done. */
async function withApp(file: string, body: (url: string) => Promise<void>): Promise<void> {
  const port = await freePort();
  const child = spawn(process.execPath, [join(app, 'dist', file)], {
    cwd: app,
    env: { ...process.env, PORT: String(port) },
    stdio: ['ignore', 'inherit', 'pipe'],
  });
  let stderr = '';
  child.stderr?.on('data', (chunk) => {
    stderr += chunk;
  });
  try {
    await listening(port, child);
    await body(`http://127.0.0.1:${port}`);
  } catch (error) {
    throw stderr ? new Error(`${(error as Error).message}\n${file} wrote:\n${stderr}`) : error;
  } finally {
    child.kill();
    if (child.exitCode === null) await once(child, 'exit');
  }
}

async function listening(port: number, child: ChildProcess): Promise<void> {
  for (let attempt = 0; attempt < 200; attempt++) {
    if (child.exitCode !== null) throw new Error(`the app exited with ${child.exitCode}`);
    const socket = connect(port, '127.0.0.1');
    const up = await new Promise<boolean>((resolve) => {
      socket.once('connect', () => resolve(true));
      socket.once('error', () => resolve(false));
    });
    socket.destroy();
    if (up) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`nothing listens on ${port}`);
}

/** Collects `count` messages with undici's EventSource; `opened` runs once it first connects. */
function receive(
  url: string,
  count: number,
  opened?: () => Promise<void>,
): Promise<{ data: string; lastEventId: string }[]> {
  return new Promise((resolve, reject) => {
    const source = new EventSource(url);
    const received: { data: string; lastEventId: string }[] = [];
    const fail = (error: unknown) => {
      clearTimeout(timer);
      source.close();
      reject(error);
    };
    const timer = setTimeout(() => fail(new Error(`${url}: ${received.length} of ${count} events`)), 10_000);
    source.addEventListener('open', () => opened?.().catch(fail), { once: true });
    source.addEventListener('message', ({ data, lastEventId }) => {
      received.push({ data, lastEventId });
      if (received.length < count) return;
      clearTimeout(timer);
      source.close();
      resolve(received);
    });
  });
}
