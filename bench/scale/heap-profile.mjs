// Where the per-connection heap goes: `node scale/heap-profile.mjs KIND [N] [--churn] [--keep]`.
// Starts a server child of KIND (see server.mjs), takes a heap snapshot after warm-up and another
// with N idle connections open (with --churn: after N connect/disconnect cycles on /churn, 50 at a
// time), and prints the difference grouped by node type and constructor, in bytes per connection
// (with --churn: in bytes). Snapshots go to a temporary folder, deleted unless --keep.
// SCALE_SERVER_ARGS adds node flags to the server child, as for main.mjs.

import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fdLimit, killAll, sleep, startChild } from './proc.mjs';

const args = process.argv.slice(2).filter((arg) => !arg.startsWith('--'));
const keep = process.argv.includes('--keep');
const churn = process.argv.includes('--churn');
const kind = args[0] ?? 'rxsse-node';
const n = Number(args[1] ?? 2_000);
const dir = mkdtempSync(join(tmpdir(), 'rxsse-heap-'));

/** Self size and count per `type:name` of a .heapsnapshot file. */
function aggregate(file) {
  const snapshot = JSON.parse(readFileSync(file, 'utf8'));
  const { node_fields: fields, node_types: types } = snapshot.snapshot.meta;
  const width = fields.length;
  const typeAt = fields.indexOf('type');
  const nameAt = fields.indexOf('name');
  const sizeAt = fields.indexOf('self_size');
  const { nodes, strings } = snapshot;
  const groups = new Map();
  for (let i = 0; i < nodes.length; i += width) {
    const type = types[typeAt][nodes[i + typeAt]];
    let name = strings[nodes[i + nameAt]];
    // Strings and code are grouped by type alone; objects and closures by constructor / function.
    if (!['object', 'closure', 'array', 'hidden', 'object shape'].includes(type)) name = '';
    if (name.length > 60) name = `${name.slice(0, 57)}...`;
    const key = `${type}:${name}`;
    const group = groups.get(key) ?? { size: 0, count: 0 };
    group.size += nodes[i + sizeAt];
    group.count++;
    groups.set(key, group);
  }
  return groups;
}

let server;
let client;
try {
  const limit = fdLimit();
  const nodeArgs = process.env.SCALE_SERVER_ARGS?.split(' ').filter(Boolean) ?? [];
  server = await startChild('server', [kind], { limit, nodeArgs });
  client = await startChild('client', [], { limit });
  const { port } = server.info;
  const path = churn ? '/churn' : '/sse';
  await client.request('churn', { port, path, cycles: churn ? 2_000 : 200, concurrency: 50 });
  await sleep(500);
  const before = await server.request('snapshot', { path: join(dir, 'before.heapsnapshot') });
  if (churn) await client.request('churn', { port, path, cycles: n, concurrency: 50 });
  else await client.request('open', { port, path, count: n, concurrency: 200 });
  await sleep(500);
  const after = await server.request('snapshot', { path: join(dir, 'after.heapsnapshot') });
  await client.request('closeAll');
  const a = aggregate(before);
  const b = aggregate(after);
  const rows = [];
  for (const [key, group] of b) {
    const base = a.get(key) ?? { size: 0, count: 0 };
    const per = churn ? 1 : n;
    const bytes = (group.size - base.size) / per;
    const count = (group.count - base.count) / per;
    if (Math.abs(bytes) >= (churn ? 4096 : 8)) rows.push({ key, bytes, count });
  }
  rows.sort((x, y) => y.bytes - x.bytes);
  const total = rows.reduce((sum, row) => sum + row.bytes, 0);
  console.log(
    churn
      ? `${kind}: ${n} connect/disconnect cycles, heap snapshot difference (groups >= 4 KiB)`
      : `${kind}: ${n} connections, heap snapshot difference per connection (groups >= 8 B)`,
  );
  for (const row of rows) {
    console.log(`${row.bytes.toFixed(0).padStart(9)} B  ${row.count.toFixed(2).padStart(8)} x  ${row.key}`);
  }
  console.log(`${total.toFixed(0).padStart(9)} B  total of the rows above`);
  if (keep) console.log(`snapshots kept in ${dir}`);
} finally {
  await client?.stop();
  await server?.stop();
  killAll();
  if (!keep) rmSync(dir, { recursive: true, force: true });
}
