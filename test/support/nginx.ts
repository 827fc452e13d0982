import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sleep } from './clients.js';
import { freePort } from './ports.js';

export interface Nginx {
  url: string;
  stop(): Promise<void>;
}

/**
 * Starts Debian's nginx (installed by scripts/system-deps.sh) in the foreground as a reverse proxy
 * to `upstream`, with nginx's defaults: response buffering on.
 */
export async function startNginx(upstream: string): Promise<Nginx> {
  const dir = await mkdtemp(join(tmpdir(), 'rxsse-nginx-'));
  const port = await freePort();
  const conf = `
daemon off;
master_process off;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log;
events { worker_connections 64; }
http {
  access_log off;
  client_body_temp_path ${dir}/body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  server {
    listen 127.0.0.1:${port};
    location / {
      proxy_pass ${upstream};
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }
}`;
  await writeFile(join(dir, 'nginx.conf'), conf);
  const binary = existsSync('/usr/sbin/nginx') ? '/usr/sbin/nginx' : 'nginx';
  const child: ChildProcess = spawn(binary, ['-p', dir, '-c', join(dir, 'nginx.conf')], { stdio: 'ignore' });
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; ; i++) {
    if (child.exitCode !== null) throw new Error(`nginx exited with ${child.exitCode}`);
    const up = await fetch(`${url}/favicon.ico`).then(
      () => true,
      () => false,
    );
    if (up) break;
    if (i > 200) throw new Error('nginx did not start');
    await sleep(25);
  }
  return {
    url,
    async stop() {
      child.kill('SIGKILL');
      if (child.exitCode === null) await new Promise((resolve) => child.once('exit', resolve));
      await rm(dir, { recursive: true, force: true });
    },
  };
}
