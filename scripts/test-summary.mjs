// Prints vitest's totals as one plain closing line ("vitest: N passed, N failed, N skipped"), read
// from the JSON report the test run wrote. A file that failed before running its tests (a hook or
// an import threw) counts as one failure, so the line never says 0 failed for a red run.
import { readFileSync } from 'node:fs';

const report = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const brokenFiles = report.testResults.filter(
  (file) => file.status === 'failed' && !file.assertionResults.some((test) => test.status === 'failed'),
).length;
const failed = report.numFailedTests + brokenFiles;
const skipped = report.numPendingTests + report.numTodoTests;
console.log(`vitest: ${report.numPassedTests} passed, ${failed} failed, ${skipped} skipped`);
process.exit(report.success && failed === 0 && report.numPassedTests > 0 ? 0 : 1);
