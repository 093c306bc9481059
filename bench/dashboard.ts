// Dashboard: time until each page is interactive (its content rendered, handlers attached) on a full load in
// Debian's Chromium against a real `coffer up --dev`, and the JavaScript each page loads. Baseline in the same run
// and browser: a full load of a trivial same-origin document (/healthz), i.e. the browser's own floor.
// Usage: npm run bench:dashboard [-- --runs 7]
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { gzipSync } from 'node:zlib';
import { cli, spawnCofferServer } from '../test/support/cli.js';
import { chromiumSkip, launchChromium } from '../test/support/browser.js';

// page.evaluate callbacks run in the browser (no DOM lib in this project's compile).
declare const performance: { now(): number };

const { values: args } = parseArgs({ options: { runs: { type: 'string', default: '7' } } });
const runs = Math.max(1, Math.min(50, Number(args.runs) || 7));
if (chromiumSkip) {
  console.log(chromiumSkip);
  process.exit(0);
}

const PAGES: [string, string][] = [
  ['overview', 'svg.chart'],
  ['verify', '#ev-file'],
  ['policies', '#new-doc'],
  ['kbs', '#k-dec'],
  ['cluster', '#cl-0'],
];

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

const dir = mkdtempSync(join(tmpdir(), 'coffer-bench-ui-'));
const server = await spawnCofferServer(['up', '--dev', '--port', '0', '--data', dir, '--swtpm', 'off', '--pcs-url', 'off', '--kds-url', 'off'], { timeoutMs: 120_000 });
const browser = await launchChromium();
try {
  const token = (await cli(['admin-token', '--data', dir])).out.trim();
  const page = await browser.context.newPage();
  const js = new Map<string, number>();
  page.on('response', (r) => {
    if (/javascript/.test(r.headers()['content-type'] ?? '')) void r.body().then((b) => js.set(r.url(), b.length), () => {});
  });
  await page.goto(`${server.url}/`);
  await page.fill('#token', token);
  await page.click('button[type=submit]');
  await page.waitForSelector('svg.chart');

  // Warm-up, then `runs` full loads of each page (new document each time; HTTP cache off: cache-control no-store).
  const base: number[] = [];
  const times = new Map<string, number[]>();
  for (let i = 0; i <= runs; i++) {
    await page.goto(`${server.url}/healthz`, { waitUntil: 'load' });
    const b = await page.evaluate(() => performance.now());
    if (i > 0) base.push(b);
    for (const [name, sel] of PAGES) {
      await page.goto('about:blank');
      await page.goto(`${server.url}/#/${name}`, { waitUntil: 'commit' });
      await page.waitForSelector(sel);
      const t = await page.evaluate(() => performance.now());
      if (i > 0) times.set(name, [...(times.get(name) ?? []), t]);
    }
  }
  const bundle = await (await fetch(`${server.url}/ui/app.js`)).arrayBuffer();
  const css = await (await fetch(`${server.url}/ui/app.css`)).arrayBuffer();
  const floor = median(base);
  console.log(`dashboard: ${runs} full loads per page, Chromium ${browser.context.browser()?.version() ?? ''} headless, loopback`);
  console.log(`baseline (trivial same-origin document /healthz): ${floor.toFixed(1)} ms median`);
  for (const [name] of PAGES) {
    const m = median(times.get(name)!);
    console.log(`  ${name.padEnd(9)} interactive in ${m.toFixed(1).padStart(6)} ms median (${(m / floor).toFixed(1)}x baseline; max ${Math.max(...times.get(name)!).toFixed(1)} ms)`);
  }
  const jsBytes = [...js.values()].reduce((a, b) => a + b, 0);
  console.log(`JavaScript per page: ${(jsBytes / 1024).toFixed(1)} KB (one bundle for every page: app.js ${(bundle.byteLength / 1024).toFixed(1)} KB, ${(gzipSync(Buffer.from(bundle)).length / 1024).toFixed(1)} KB gzipped); CSS ${(css.byteLength / 1024).toFixed(1)} KB`);
  console.log(`budget: 200 KB of JavaScript (${((jsBytes / (200 * 1024)) * 100).toFixed(0)}% used), interactive under 1000 ms`);
} finally {
  await browser.close();
  server.kill();
  rmSync(dir, { recursive: true, force: true });
}
