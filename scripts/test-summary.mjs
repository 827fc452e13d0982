// Prints vitest's totals as plain closing lines, read from the JSON reports the test runs wrote:
// one line per report given as `label=path` ("vitest (node v24.1.0): ..."), then the combined
// "vitest: N passed, N failed, N skipped" last. A file that failed before running its tests (a hook
// or an import threw) counts as one failure, and so does a missing report, so the line never says
// 0 failed for a red run.
import { existsSync, readFileSync } from 'node:fs';

const total = { passed: 0, failed: 0, skipped: 0, ok: true };
const reports = process.argv.slice(2);
for (const arg of reports) {
  const split = arg.indexOf('=');
  const label = split > 0 ? arg.slice(0, split) : undefined;
  const counts = read(split > 0 ? arg.slice(split + 1) : arg);
  total.passed += counts.passed;
  total.failed += counts.failed;
  total.skipped += counts.skipped;
  total.ok &&= counts.ok;
  if (label) console.log(`vitest (${label}): ${line(counts)}`);
}
console.log(`vitest: ${line(total)}`);
process.exit(reports.length > 0 && total.ok ? 0 : 1);

function read(path) {
  if (!existsSync(path)) return { passed: 0, failed: 1, skipped: 0, ok: false };
  const report = JSON.parse(readFileSync(path, 'utf8'));
  const brokenFiles = report.testResults.filter(
    (file) => file.status === 'failed' && !file.assertionResults.some((test) => test.status === 'failed'),
  ).length;
  const failed = report.numFailedTests + brokenFiles;
  const passed = report.numPassedTests;
  const skipped = report.numPendingTests + report.numTodoTests;
  return { passed, failed, skipped, ok: report.success && failed === 0 && passed > 0 };
}

function line({ passed, failed, skipped }) {
  return `${passed} passed, ${failed} failed, ${skipped} skipped`;
}
