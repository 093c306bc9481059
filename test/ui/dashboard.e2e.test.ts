/**
 * The dashboard end to end: a real `coffer up --dev` (temp data dir, random port) and Debian's Chromium through
 * playwright-core. Sign in, verify evidence through the Verify page, create and edit a policy with its diff and
 * history, a refused KBS fetch on the key-broker page, a live attestation on the overview; axe-core on every page
 * in light and dark; screenshots of every page (light/dark, 390 px and 1280 px) in test-artifacts/screenshots/.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { cli, spawnCofferServer, type CofferServer } from '../support/cli.js';
import { axe, chromiumSkip, describeViolations, launchChromium, type Browser } from '../support/browser.js';
import { haveVectors, repoRoot, vectorsDir, vectorsSkip } from '../support/vectors.js';
import { startFakeApiServer, type FakeApiServer } from '../support/fake-apiserver.js';
import { putFleet, writeKubeconfig } from '../support/cluster-fixture.js';

// page.evaluate callbacks run in the browser; the project compiles without the DOM lib, so its globals are loose here.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
declare const window: any, document: any, localStorage: any, sessionStorage: any;

const SHOTS = join(repoRoot, 'test-artifacts', 'screenshots');
const SECRET = 'do-not-render-this-secret-7f3a';

describe('dashboard in Chromium', { skip: chromiumSkip }, () => {
  let dir: string;
  let server: CofferServer;
  let browser: Browser;
  let page: Page;
  let adminToken: string;
  let kubeApi: FakeApiServer;
  const consoleErrors: string[] = [];

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'coffer-ui-e2e-'));
    mkdirSync(SHOTS, { recursive: true });
    // The test PKI root for the project's sample quote and, when the vectors are here, Intel's real root.
    const anchors = [join(repoRoot, 'samples/test-pki-root.pem'), ...(haveVectors ? [join(vectorsDir, 'roots/Intel_SGX_RootCA.pem')] : [])];
    // The cluster side: the fake kube-apiserver holding a node in each trust state, read through --kubeconfig.
    kubeApi = await startFakeApiServer({ namespaces: ['apps'] });
    putFleet(kubeApi);
    writeKubeconfig(join(dir, 'kubeconfig'), kubeApi.url);
    server = await spawnCofferServer(['up', '--dev', '--port', '0', '--data', dir, '--swtpm', 'off', '--pcs-url', 'off', '--kds-url', 'off', '--kubeconfig', join(dir, 'kubeconfig'), '--trust-anchor', ...anchors], { timeoutMs: 120_000 });
    adminToken = (await cli(['admin-token', '--data', dir])).out.trim();
    // A stored secret: the dashboard lists its path and must never show its value.
    const secretFile = join(dir, 'secret.bin');
    writeFileSync(secretFile, SECRET);
    assert.equal((await cli(['kbs-client', '--url', server.url, '--admin-token', adminToken, 'set-resource', '--path', 'default/key/db', '--resource-file', secretFile])).code, 0);
    browser = await launchChromium();
    page = await browser.context.newPage();
    page.on('console', (m) => void (m.type() === 'error' && consoleErrors.push(m.text())));
    page.on('pageerror', (e) => void consoleErrors.push(String(e)));
  });

  after(async () => {
    await browser?.close();
    server?.kill();
    await kubeApi?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  async function checkAxe(name: string) {
    for (const scheme of ['light', 'dark'] as const) {
      await page.emulateMedia({ colorScheme: scheme });
      const v = await axe(page);
      assert.deepEqual(v.map((x) => x.id), [], `axe on ${name} (${scheme}):\n${describeViolations(v)}`);
    }
  }

  /** Every page in light and dark, 390 px and 1280 px wide. */
  async function shots(name: string) {
    for (const width of [390, 1280]) {
      await page.setViewportSize({ width, height: 900 });
      for (const scheme of ['light', 'dark'] as const) {
        await page.emulateMedia({ colorScheme: scheme });
        await page.screenshot({ path: join(SHOTS, `${name}-${scheme}-${width}.png`), fullPage: true });
        if (width === 390) {
          // Usable at 390 px: nothing forces the page wider than the screen.
          const sw = await page.evaluate(() => document.documentElement.scrollWidth);
          assert.ok(sw <= 390, `${name} is ${sw} px wide at 390 px`);
        }
      }
    }
    await page.setViewportSize({ width: 1280, height: 900 });
    await page.emulateMedia({ colorScheme: 'light' });
  }

  test('security headers on the page; the API says 401 without a session', async () => {
    const res = await fetch(`${server.url}/`);
    assert.equal(res.status, 200);
    const csp = res.headers.get('content-security-policy') ?? '';
    for (const d of ["default-src 'self'", "script-src 'self'", "style-src 'self'", "frame-ancestors 'none'"]) assert.ok(csp.includes(d), csp);
    assert.ok(!/unsafe-inline|unsafe-eval/.test(csp));
    assert.equal(res.headers.get('x-content-type-options'), 'nosniff');
    assert.equal(res.headers.get('referrer-policy'), 'no-referrer');
    const html = await res.text();
    assert.ok(!/<script>|<style>|style="/.test(html), 'no inline script or style');
    // Every page is this one document and its one bundle: under 200 KB of JavaScript.
    assert.deepEqual([...html.matchAll(/<script[^>]*src="([^"]+)"/g)].map((m) => m[1]), ['/ui/app.js']);
    const js = await (await fetch(`${server.url}/ui/app.js`)).arrayBuffer();
    assert.ok(js.byteLength > 1000 && js.byteLength < 200 * 1024, `app.js is ${js.byteLength} bytes`);
    const api = await fetch(`${server.url}/v1/dashboard/overview`);
    assert.equal(api.status, 401);
    assert.equal(api.headers.get('content-type'), 'application/problem+json; charset=utf-8');
  });

  test('sign in with a pasted admin token; the token is not kept by the page', async () => {
    await page.goto(`${server.url}/`);
    await page.waitForSelector('#token');
    await checkAxe('sign-in');
    await shots('sign-in');
    await page.fill('#token', 'not-a-token-at-all-xxxxxxxx');
    await page.click('button[type=submit]');
    await page.waitForSelector('#login-error:not(:empty)');
    consoleErrors.length = 0; // the refused sign-in's 401 is expected
    await page.fill('#token', adminToken);
    await page.keyboard.press('Enter');
    await page.waitForSelector('nav a[aria-current=page]');
    const cookies = await browser.context.cookies(server.url);
    const c = cookies.find((x) => x.name === 'coffer_ui');
    assert.ok(c, 'session cookie');
    assert.equal(c.httpOnly, true);
    assert.equal(c.sameSite, 'Strict');
    assert.equal(await page.evaluate(() => document.cookie), '', 'the session cookie is invisible to scripts');
    const stored = await page.evaluate(() => JSON.stringify({ ...localStorage }) + JSON.stringify({ ...sessionStorage }) + document.documentElement.outerHTML);
    assert.ok(!stored.includes(adminToken), 'the token is nowhere in the page or its storage');
  });

  test('overview: an attestation appears live (server-sent events, no reload)', async () => {
    await page.goto(`${server.url}/#/overview`);
    await page.waitForSelector('svg.chart');
    await page.waitForSelector('#live.on');
    const label = () => page.getAttribute('svg.chart', 'aria-label');
    assert.match((await label()) ?? '', /: 0 in all/);
    await page.evaluate(() => ((window as unknown as { marker: number }).marker = 42));
    const r = await cli(['kbs-client', '--url', server.url, 'attest', '--sample-key', join(dir, 'keys/sample-dev.jwk')]);
    assert.equal(r.code, 0, r.err);
    await page.waitForFunction(() => /: 1 in all; 1 affirming/.test(document.querySelector('svg.chart')?.getAttribute('aria-label') ?? ''), null, { timeout: 10_000 });
    assert.equal(await page.evaluate(() => (window as unknown as { marker?: number }).marker), 42, 'the page was not reloaded');
    assert.match(await page.textContent('#h-tee + *') ?? '', /sample/);
    await checkAxe('overview');
    await shots('overview');
  });

  async function verify(file: string, collateral: string[], at?: string) {
    await page.goto(`${server.url}/#/verify`);
    await page.waitForSelector('#ev-file');
    await page.setInputFiles('#ev-file', file);
    await page.setInputFiles('#ev-collateral', collateral);
    if (at) await page.fill('#ev-at', at);
    await page.click('form button[type=submit]');
    await page.waitForSelector('#verify-result');
  }

  test("verify page: the project's sample SGX quote with its collateral → verified, TCB UpToDate", async () => {
    const coll = join(repoRoot, 'samples/collateral');
    await verify(join(repoRoot, 'samples/sgx-quote.dat'), readdirSync(coll).map((f) => join(coll, f)));
    assert.match(await page.textContent('#tcb-status') ?? '', /UpToDate/);
    const checks = await page.textContent('#verify-result table') ?? '';
    assert.match(checks, /Signatures, certificate chain, revocation, collateral and TCB/);
    assert.match(checks, /passed/);
    assert.match(await page.textContent('#verify-result') ?? '', /mrenclave/);
    await checkAxe('verify');
    await shots('verify');
  });

  test('verify page: a rejected file shows the failed check with its code and sentence', async () => {
    const junk = join(dir, 'junk.bin');
    writeFileSync(junk, Buffer.alloc(64, 7));
    await page.goto(`${server.url}/#/verify`);
    await page.setInputFiles('#ev-file', junk);
    await page.click('form button[type=submit]');
    await page.waitForSelector('#verify-result');
    const text = await page.textContent('#verify-result') ?? '';
    assert.match(text, /rejected/);
    assert.match(text, /failed/);
    assert.match(text, /[A-Z_]{6,}/, 'an error code is shown');
  });

  test('verify page: a real Intel SGX quote (dcap-qvl) → ConfigurationAndSWHardeningNeeded with linked advisories', { skip: vectorsSkip }, async () => {
    await verify(join(vectorsDir, 'sgx/dcap-qvl_sgx_quote.bin'), [join(vectorsDir, 'collateral/dcap-qvl_sgx_quote_collateral.json')], '2025-07-01T00:00:00Z');
    assert.match(await page.textContent('#tcb-status') ?? '', /ConfigurationAndSWHardeningNeeded/);
    const links = await page.$$eval('#advisories a', (as) => as.map((a) => [a.textContent, a.getAttribute('href')]));
    assert.deepEqual(links, [
      ['INTEL-SA-00289', 'https://www.intel.com/content/www/us/en/security-center/advisory/intel-sa-00289.html'],
      ['INTEL-SA-00615', 'https://www.intel.com/content/www/us/en/security-center/advisory/intel-sa-00615.html'],
    ]);
    await checkAxe('verify (real vector)');
  });

  test('policies: inline validation error, diff before saving, new version in the history and audit trail', async () => {
    await page.goto(`${server.url}/#/policies`);
    await page.click('#new-doc');
    await page.fill('#doc-id', 'e2e-policy');
    await page.fill('#doc-body', 'rules: [{id: x, claim: debug, eq: false, status: nonsense, vector: hardware}]');
    await page.click('#review-btn');
    await page.waitForSelector('#doc-error:not(:empty)');
    assert.equal(await page.getAttribute('#doc-body', 'aria-invalid'), 'true');
    assert.equal(await page.$('#save'), null, 'no save button for an invalid document');
    await page.fill('#doc-body', 'rules:\n  - id: no-debug\n    claim: debug\n    eq: false\n    status: contraindicated\n    vector: executables\n');
    await page.click('#review-btn');
    await page.waitForSelector('#diff');
    assert.match(await page.textContent('#diff') ?? '', /^\+ +- id: no-debug$/m);
    await page.click('#save');
    await page.waitForFunction(() => /Saved e2e-policy as version 1/.test(document.querySelector('#pol-status')?.textContent ?? ''));
    await page.waitForSelector('#history li');
    // A second version: the diff shows the removed and added lines; the history lists both.
    await page.fill('#doc-body', 'rules:\n  - id: no-debug\n    claim: debug\n    eq: false\n    status: warning\n    vector: executables\n');
    await page.click('#review-btn');
    await page.waitForSelector('#diff');
    const diff = await page.textContent('#diff') ?? '';
    assert.match(diff, /^- +status: contraindicated$/m);
    assert.match(diff, /^\+ +status: warning$/m);
    await checkAxe('policies (diff)');
    await shots('policies');
    await page.click('#save');
    await page.waitForFunction(() => /version 2/.test(document.querySelector('#pol-status')?.textContent ?? ''));
    await page.waitForFunction(() => document.querySelectorAll('#history li').length === 2);
    assert.match(await page.textContent('#history') ?? '', /v2.*admin[\s\S]*v1/);
    // The audit trail is fetched after the history is drawn (policies.ts): wait for it rather than read it at once.
    await page.waitForFunction(() => /policy\.put/.test(document.querySelector('section[aria-labelledby=doc-title]')?.textContent ?? ''));
    await checkAxe('policies (history)');
  });

  test('key broker: a refused fetch appears within 2 s; paths shown, values never', async () => {
    await page.goto(`${server.url}/#/kbs`);
    await page.waitForSelector('#k-dec');
    const before = await page.$$eval('[aria-label="Key-broker decisions"] tbody tr', (r) => r.length).catch(() => 0);
    const r = await cli(['kbs-client', '--url', server.url, 'get-resource', '--path', 'default/key/db', '--sample-key', join(dir, 'keys/sample-dev.jwk')]);
    assert.notEqual(r.code, 0, 'refused: no resource policy (default deny)');
    await page.waitForFunction((n) => document.querySelectorAll('[aria-label="Key-broker decisions"] tbody tr').length > n, before, { timeout: 2000 });
    const row = await page.textContent('[aria-label="Key-broker decisions"] tbody tr') ?? '';
    assert.match(row, /default\/key\/db/);
    assert.match(row, /denied/);
    assert.match(row, /default deny/);
    assert.match(row, /[0-9a-f]{16}/, 'the token id');
    assert.match(await page.textContent('#k-res + * + *') ?? '', /default\/key\/db/);
    const html = await page.content();
    assert.ok(!html.includes(SECRET) && !html.includes(Buffer.from(SECRET).toString('base64')), 'the resource value is never rendered');
    await checkAxe('key broker');
    await shots('kbs');
  });

  test('cluster page shows each node\'s trust state, pods per isolation level, edge nodes and runtime classes', async () => {
    await page.goto(`${server.url}/#/cluster`);
    await page.waitForSelector('section[aria-labelledby=cl-nodes] table');
    const rows = await page.$$eval('section[aria-labelledby=cl-nodes] tbody tr', (trs: any[]) => trs.map((tr) => [...tr.querySelectorAll('td')].map((td: any) => td.textContent.trim())));
    // Untrusted first; each row: node, TEE, trust (with the reason), TCB (with advisories), ..., edge, confidential pods.
    assert.deepEqual(rows.map((r) => [r[0], r[1], r[2].split(' ')[0]]), [
      ['tpm-node-bad', 'tpm', 'untrusted'], ['sgx-node-old', 'sgx', 'expired'], ['plain-node', '–', 'not'], ['snp-node-1', 'snp', 'trusted'], ['tdx-node-1', 'tdx', 'trusted'],
    ]);
    assert.match(rows[0][2], /pcr 7 does not match/);
    assert.match(rows[1][3], /OutOfDate INTEL-SA-00837/);
    assert.deepEqual([rows[4][6], rows[4][7], rows[4][8]], ['kata-cc-tdx', 'online', '2']);
    assert.equal(rows[3][7], 'autonomous');
    const trust = await page.textContent('section[aria-labelledby=cl-trust]') ?? '';
    assert.match(trust, /2\s*trusted\s*2\s*untrusted\s*1\s*not attested/);
    assert.match(await page.textContent('section[aria-labelledby=cl-pods]') ?? '', /confidential-vm\s*2.*enclave\s*1|enclave\s*1.*confidential-vm\s*2/s);
    assert.match(await page.textContent('section[aria-labelledby=cl-edge]') ?? '', /1\s*online\s*1\s*autonomous/);
    assert.match(await page.textContent('section[aria-labelledby=cl-rc]') ?? '', /kata-cc-snp.*kata-qemu-snp/s);
    await checkAxe('cluster');
    await shots('cluster');
  });

  test('overview after the session: each result in the chart, the refused fetch counted', async () => {
    await page.goto(`${server.url}/#/overview`);
    await page.waitForSelector('svg.chart');
    // Two more KBS attestations under a policy whose rule the sample TEE fails: once as a warning, once contraindicated.
    const pol = join(dir, 'kbs-policy.yaml');
    for (const status of ['warning', 'contraindicated']) {
      writeFileSync(pol, `referenceValues: default\nrules:\n  - {id: demo-debug, claim: debug, eq: true, status: ${status}, vector: configuration, reason: demo rule}\n`);
      assert.equal((await cli(['kbs-client', '--url', server.url, '--admin-token', adminToken, 'set-attestation-policy', '--policy-file', pol, '--id', 'default_cpu'])).code, 0);
      const r = await cli(['kbs-client', '--url', server.url, 'attest', '--sample-key', join(dir, 'keys/sample-dev.jwk')]);
      assert.equal(r.code, 0, r.err);
    }
    await page.waitForFunction(() => /: 4 in all; 2 affirming, 1 warning, 1 contraindicated/.test(document.querySelector('svg.chart')?.getAttribute('aria-label') ?? ''), null, { timeout: 10_000 });
    assert.match(await page.textContent('section[aria-labelledby=h-kbs]') ?? '', /1\s*refused/);
    // Trusted vs untrusted nodes from the cluster (the expired one counts as untrusted).
    assert.match(await page.textContent('section[aria-labelledby=h-nodes]') ?? '', /2\s*trusted\s*2\s*untrusted\s*1\s*not attested\s*All 5 nodes/);
    await checkAxe('overview (after)');
    await shots('overview-after');
  });

  test('keyboard: the navigation and the theme toggle work without a mouse', async () => {
    await page.goto(`${server.url}/#/overview`);
    await page.waitForSelector('svg.chart');
    await page.focus('nav a[href="#/verify"]');
    await page.keyboard.press('Enter');
    await page.waitForSelector('#ev-file');
    await page.focus('#theme');
    const was = await page.evaluate(() => document.documentElement.dataset.theme ?? '');
    await page.keyboard.press('Enter');
    const now = await page.evaluate(() => document.documentElement.dataset.theme);
    assert.notEqual(now, was);
    assert.equal(await page.getAttribute('#theme', 'aria-pressed'), String(now === 'dark'));
    await page.keyboard.press('Enter'); // back
  });

  test('sign out ends the session; no console errors on the way', async () => {
    await page.click('text=Sign out');
    await page.waitForSelector('#token');
    const res = await page.evaluate(() => fetch('/v1/dashboard/overview').then((r) => r.status));
    assert.equal(res, 401);
    consoleErrors.splice(0, consoleErrors.length, ...consoleErrors.filter((e) => !/401/.test(e))); // the probe just above
    assert.deepEqual(consoleErrors, []);
  });

  test('a viewer session reads every page and is offered no edit', async () => {
    const viewer = (await cli(['admin-token', '--data', dir, '--viewer'])).out.trim();
    await page.fill('#token', viewer);
    await page.click('button[type=submit]');
    await page.waitForSelector('nav a[aria-current=page]');
    assert.match(await page.textContent('header') ?? '', /viewer \(read-only\)/);
    await page.goto(`${server.url}/#/policies`);
    await page.click('text=e2e-policy');
    await page.waitForSelector('#doc-body');
    assert.equal(await page.$('#new-doc'), null);
    assert.equal(await page.$('#review-btn'), null);
    assert.equal(await page.getAttribute('#doc-body', 'readonly'), '');
    assert.deepEqual(consoleErrors, []);
  });
});
