// Prints vitest's totals as plain closing lines, read from the JSON reports the test runs wrote:
// one line per report given as `label=path` ("vitest (node v24.1.0): ..."), then the combined
// "vitest: N passed, N failed, N skipped" last. A file that failed before running its tests (a hook
// or an import threw) counts as one failure, and so does a missing report, so the line never says
// 0 failed for a red run. Each failure is named first (file, test, the first line of its error), so
// a log whose head is lost still says what failed.
import { existsSync, readFileSync } from 'node:fs';
import { relative } from 'node:path';

const total = { passed: 0, failed: 0, skipped: 0, ok: true };
const reports = process.argv.slice(2);
for (const arg of reports) {
  const split = arg.indexOf('=');
  const label = split > 0 ? arg.slice(0, split) : undefined;
  const counts = read(split > 0 ? arg.slice(split + 1) : arg);
  for (const failure of counts.failures) console.log(`FAIL (${label ?? 'vitest'}) ${failure}`);
  total.passed += counts.passed;
  total.failed += counts.failed;
  total.skipped += counts.skipped;
  total.ok &&= counts.ok;
  if (label) console.log(`vitest (${label}): ${line(counts)}`);
}
console.log(`vitest: ${line(total)}`);
process.exit(reports.length > 0 && total.ok ? 0 : 1);

function read(path) {
  if (!existsSync(path))
    return { passed: 0, failed: 1, skipped: 0, ok: false, failures: [`no report at ${path}`] };
  const report = JSON.parse(readFileSync(path, 'utf8'));
  const failures = [];
  for (const file of report.testResults) {
    const name = relative(process.cwd(), file.name);
    const tests = file.assertionResults.filter((test) => test.status === 'failed');
    for (const test of tests)
      failures.push(`${name} > ${test.fullName}: ${firstLine(test.failureMessages[0])}`);
    // A file that failed before running its tests: a hook or an import threw.
    if (file.status === 'failed' && tests.length === 0) failures.push(`${name}: ${firstLine(file.message)}`);
  }
  const failed = failures.length;
  const passed = report.numPassedTests;
  const skipped = report.numPendingTests + report.numTodoTests;
  return { passed, failed, skipped, ok: report.success && failed === 0 && passed > 0, failures };
}

function firstLine(text) {
  return String(text ?? '')
    .trim()
    .split('\n')[0];
}

function line({ passed, failed, skipped }) {
  return `${passed} passed, ${failed} failed, ${skipped} skipped`;
}
