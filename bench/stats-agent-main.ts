/**
 * The exporter alone (what `coffer agent stats` loads lazily), bundled by bench/stats.ts to measure its own idle
 * RSS apart from the CLI's start-up imports. argv: CRI_ENDPOINT CGROUP_ROOT
 */
import v8 from 'node:v8';
import { QuietGc } from '../src/node/stats/settle.js';
import { CriClient } from '../src/node/stats/cri-client.js';

// as the CLI's stats action does
v8.setFlagsFromString('--semi-space-growth-factor=1');
v8.setFlagsFromString('--compact-on-every-full-gc');
const settler = new QuietGc();
import { StatsExporter } from '../src/node/stats/exporter.js';

const ex = new StatsExporter({
  cri: new CriClient(process.argv[2]!),
  cgroupRoot: process.argv[3]!,
  cgroupVersion: 1,
  procRoot: '/proc',
  listen: { host: '127.0.0.1', port: 0 },
  log: (e, d) => process.stderr.write(JSON.stringify({ event: e, ...d }) + '\n'),
  afterScrape: settler.soon,
});
const a = await ex.start();
process.stderr.write(JSON.stringify({ event: 'listening', address: `127.0.0.1:${a.port}` }) + '\n');
process.on('SIGTERM', () => void ex.stop().then(() => process.exit(0)));
