import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

/** A PEM private key and the certificate that goes with it. */
export interface KeyAndCert {
  key: Buffer;
  cert: Buffer;
}

const run = promisify(execFile);

/**
 * Makes a fresh self-signed certificate for `localhost` and `127.0.0.1`, valid for a day, with the
 * `openssl` CLI. The files live in a temporary directory that is removed before this resolves.
 */
export async function selfSignedCertificate(): Promise<KeyAndCert> {
  const dir = await mkdtemp(join(tmpdir(), 'rxsse-tls-'));
  try {
    const keyPath = join(dir, 'key.pem');
    const certPath = join(dir, 'cert.pem');
    // execFile, not a shell: the arguments are passed as they are.
    await run('openssl', [
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-keyout',
      keyPath,
      '-out',
      certPath,
      '-days',
      '1',
      '-subj',
      '/CN=localhost',
      '-addext',
      'subjectAltName=DNS:localhost,IP:127.0.0.1',
    ]);
    const [key, cert] = await Promise.all([readFile(keyPath), readFile(certPath)]);
    return { key, cert };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
