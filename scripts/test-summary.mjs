// Prints vitest's totals as one plain closing line ("vitest: N passed, N failed, N skipped"),
// read from the JSON report the test run wrote.
import { readFileSync } from 'node:fs';

const report = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const skipped = report.numPendingTests + report.numTodoTests;
console.log(`vitest: ${report.numPassedTests} passed, ${report.numFailedTests} failed, ${skipped} skipped`);
process.exit(report.success && report.numFailedTests === 0 && report.numPassedTests > 0 ? 0 : 1);
