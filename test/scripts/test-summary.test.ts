import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';

const script = fileURLToPath(new URL('../../scripts/test-summary.mjs', import.meta.url));
const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

type Test = { fullName: string; status: string; failureMessages: string[] };
type File = { name: string; status: string; message: string; assertionResults: Test[] };

/** Writes a vitest JSON report of `files` and returns its path. */
function report(files: File[]): string {
  const dir = mkdtempSync(join(tmpdir(), 'rxsse-summary-'));
  dirs.push(dir);
  const tests = files.flatMap((file) => file.assertionResults);
  const count = (status: string) => tests.filter((test) => test.status === status).length;
  const path = join(dir, 'vitest.json');
  writeFileSync(
    path,
    JSON.stringify({
      success: files.every((file) => file.status === 'passed'),
      numPassedTests: count('passed'),
      numFailedTests: count('failed'),
      numPendingTests: count('skipped'),
      numTodoTests: 0,
      testResults: files,
    }),
  );
  return path;
}

function summary(...args: string[]) {
  const run = spawnSync(process.execPath, [script, ...args], { encoding: 'utf8', cwd: process.cwd() });
  return { status: run.status, lines: run.stdout.trim().split('\n') };
}

const passed = (fullName: string): Test => ({ fullName, status: 'passed', failureMessages: [] });

describe('scripts/test-summary.mjs (the closing lines of npm test)', () => {
  it('names each failure, a file that broke before its tests included, before the totals', () => {
    const red = report([
      {
        name: join(process.cwd(), 'packages/a/test/a.test.ts'),
        status: 'failed',
        message: '',
        assertionResults: [
          passed('a works'),
          {
            fullName: 'a holds',
            status: 'failed',
            failureMessages: ['AssertionError: expected 1 to be 2\n    at …'],
          },
        ],
      },
      {
        name: join(process.cwd(), 'packages/b/test/b.test.ts'),
        status: 'failed',
        message: 'Error: Hook timed out in 10000ms\nmore',
        assertionResults: [],
      },
    ]);
    const green = report([
      { name: 'c.test.ts', status: 'passed', message: '', assertionResults: [passed('c')] },
    ]);
    const { status, lines } = summary(`node v20=${red}`, `node v24=${green}`);
    expect(lines).toEqual([
      'FAIL (node v20) packages/a/test/a.test.ts > a holds: AssertionError: expected 1 to be 2',
      'FAIL (node v20) packages/b/test/b.test.ts: Error: Hook timed out in 10000ms',
      'vitest (node v20): 1 passed, 2 failed, 0 skipped',
      'vitest (node v24): 1 passed, 0 failed, 0 skipped',
      'vitest: 2 passed, 2 failed, 0 skipped',
    ]);
    expect(status).toBe(1);
  });

  it('passes a green run and fails a missing report', () => {
    const green = report([
      { name: 'c.test.ts', status: 'passed', message: '', assertionResults: [passed('c')] },
    ]);
    expect(summary(`node=${green}`)).toEqual({
      status: 0,
      lines: ['vitest (node): 1 passed, 0 failed, 0 skipped', 'vitest: 1 passed, 0 failed, 0 skipped'],
    });
    const missing = join(tmpdir(), 'rxsse-no-such-report.json');
    expect(summary(`node=${missing}`)).toEqual({
      status: 1,
      lines: [
        `FAIL (node) no report at ${missing}`,
        'vitest (node): 0 passed, 1 failed, 0 skipped',
        'vitest: 0 passed, 1 failed, 0 skipped',
      ],
    });
  });
});
