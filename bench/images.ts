// Admission p99 for a pod with 3 signed images (2 cosign keyed, 1 keyless with a local Sigstore), against the
// webhook's empty-handler floor, same certificate, same run. Debian's docker-registry on loopback serves the images.
//   warm: the verification cache holds the 3 images (a scale-up: every replica after the first);
//   cold: cache TTL 0 and no Sigstore memo, so every admission resolves tags, fetches .sig manifests and payloads
//         and verifies from scratch (a fresh cache per request against the same registry content); what persists
//         is what a running webhook keeps by design: keep-alive connections, bearer tokens, parsed policy keys and
//         trusted root, and "this registry has no referrers API".
// Load average is printed with the figures: on a shared machine the same-run ratios are what compare.
// Each server runs in its own child process so the load generator does not share its event loop.
// Usage: npm run bench:images [-- --seconds 5 --rate 200 --cold 200 --cpu-prof DIR]
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer, request, Agent } from 'node:https';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { WebhookServer } from '../src/k8s/admission/server.js';
import { StaticSources } from '../src/k8s/admission/static-sources.js';
import { loadProfiles } from '../src/k8s/admission/inputs.js';
import { RegistryClient } from '../src/images/registry.js';
import { ImageVerifier } from '../src/images/verifier.js';
import { parseTrustedRoot } from '../src/images/trust-root.js';
import type { IsolationPolicy } from '../src/k8s/crds/types.js';
import { createTestCa } from '../test/support/tls.js';
import { haveRegistry, startRegistry, pushImage } from '../test/support/registry.js';
import { generateSigningKey, keyedLayer, pushSignatureImage, LocalSigstore } from '../test/support/cosign.js';

const { values: args } = parseArgs({
  options: {
    serve: { type: 'string' },
    dir: { type: 'string' },
    seconds: { type: 'string', default: '5' },
    rate: { type: 'string', default: '200' },
    connections: { type: 'string', default: '10' },
    cold: { type: 'string', default: '200' },
    // Write a V8 CPU profile of the cold server (node --cpu-prof) into this directory.
    'cpu-prof': { type: 'string' },
  },
});

interface Setup {
  registry: string;
  publicPem: string;
  trustedRoot: object;
  images: string[];
}

function reviewFor(images: string[]): string {
  return JSON.stringify({
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: {
      uid: '705ab4f5-6393-11e8-b7cc-42010a800002',
      kind: { group: '', version: 'v1', kind: 'Pod' },
      resource: { group: '', version: 'v1', resource: 'pods' },
      namespace: 'team',
      operation: 'CREATE',
      object: {
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: { generateName: 'shop-7d9f8-', namespace: 'team', labels: { app: 'shop' } },
        spec: {
          initContainers: [{ name: 'migrate', image: images[0] }],
          containers: [
            { name: 'web', image: images[1], resources: { limits: { cpu: '1', memory: '512Mi' } } },
            { name: 'sidecar', image: images[2], resources: { limits: { cpu: '500m', memory: '128Mi' } } },
          ],
        },
      },
    },
  });
}

async function serve(kind: string, dir: string): Promise<void> {
  const certFile = join(dir, 'tls.crt');
  const keyFile = join(dir, 'tls.key');
  let port: number;
  if (kind === 'floor') {
    // Same TLS and keep-alive, reads the body, answers a fixed AdmissionReview without deciding anything.
    const body = JSON.stringify({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', response: { uid: 'x', allowed: true } });
    const s = createServer({ cert: readFileSync(certFile), key: readFileSync(keyFile) }, (req, res) => {
      req.on('data', () => undefined);
      req.on('end', () => {
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
        res.end(body);
      });
    });
    s.keepAliveTimeout = 30_000;
    await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
    port = (s.address() as { port: number }).port;
  } else {
    const setup = JSON.parse(readFileSync(join(dir, 'setup.json'), 'utf8')) as Setup;
    const policies: IsolationPolicy[] = [
      {
        apiVersion: 'coffer.dev/v1alpha1',
        kind: 'IsolationPolicy',
        metadata: { name: 'signed-only' },
        spec: {
          namespaceSelector: { matchLabels: { tenant: 'yes' } },
          isolation: 'sandbox',
          enforce: 'mutate',
          sizing: 'none',
          autonomy: false,
          // plain: the same webhook and policy without spec.images (isolates the image step's cost).
          images: kind === 'plain' ? undefined : {
            repositories: [`${setup.registry}/shop/*`],
            signers: [
              { name: 'release', publicKey: setup.publicPem },
              { name: 'ci', keyless: { issuer: 'https://issuer.coffer.test', subjectRegExp: 'https://ci\\.coffer\\.test/.*' } },
            ],
          },
        },
      },
    ];
    const client = new RegistryClient({ plainHttp: (h) => h === setup.registry, timeoutMs: 2000 });
    // cold: nothing cached but connections; recheck: image cache expired (TTL 0) but Sigstore outcomes memoized.
    const verifier = new ImageVerifier({
      source: client,
      trustRoot: parseTrustedRoot(Buffer.from(JSON.stringify(setup.trustedRoot))),
      cache: { ttlMs: kind === 'warm' ? 300_000 : 0 },
      sigstoreMemoEntries: kind === 'cold' ? 0 : 1024,
    });
    const server = new WebhookServer({
      certFile,
      keyFile,
      host: '127.0.0.1',
      port: 0,
      sources: new StaticSources(policies, loadProfiles([]), [{ metadata: { name: 'team', labels: { tenant: 'yes' } } }]),
      tlsPollMs: 0,
      images: verifier,
    });
    ({ port } = await server.start());
  }
  // A clean exit on SIGTERM, so that --cpu-prof writes its profile.
  process.once('SIGTERM', () => process.exit(0));
  process.stdout.write(`PORT ${port}\n`);
}

function startChild(kind: string, dir: string, profileDir?: string): Promise<{ child: ChildProcess; port: number }> {
  const prof = profileDir ? ['--cpu-prof', '--cpu-prof-dir', profileDir] : [];
  const child = spawn(process.execPath, [...prof, '--import', 'tsx', new URL(import.meta.url).pathname, '--serve', kind, '--dir', dir], { stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    let buf = '';
    child.stdout!.on('data', (c) => {
      buf += c;
      const m = /PORT (\d+)/.exec(buf);
      if (m) resolve({ child, port: Number(m[1]) });
    });
    child.once('exit', (code) => reject(new Error(`${kind} server exited with ${code}`)));
  });
}

interface Figures {
  lat: number[];
  n: number;
  p50: number;
  p99: number;
  errors: number;
}

function figures(lat: number[], errors: number): Figures {
  lat.sort((a, b) => a - b);
  const q = (p: number) => lat[Math.min(lat.length - 1, Math.floor(p * lat.length))];
  return { lat, n: lat.length, p50: q(0.5), p99: q(0.99), errors };
}

/** One POST; resolves with the latency (ms) from `due` and whether the pod was admitted with a patch. */
function post(agent: Agent, port: number, path: string, body: Buffer, due: bigint): Promise<{ ms: number; ok: boolean }> {
  return new Promise((resolve) => {
    const req = request({ host: '127.0.0.1', port, path, method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': body.length } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        let ok = res.statusCode === 200;
        if (ok && path !== '/') ok = JSON.parse(Buffer.concat(chunks).toString()).response?.allowed === true;
        resolve({ ms: Number(process.hrtime.bigint() - due) / 1e6, ok });
      });
    });
    req.on('error', () => resolve({ ms: Number(process.hrtime.bigint() - due) / 1e6, ok: false }));
    req.end(body);
  });
}

/** Open-loop paced load: latency from each request's due time (no coordinated omission), µs resolution. */
async function paced(port: number, path: string, body: Buffer, seconds: number, rate: number, connections: number, ca: string): Promise<Figures> {
  const agent = new Agent({ keepAlive: true, maxSockets: connections, ca, servername: 'localhost' });
  const total = Math.round(seconds * rate);
  const pending: Promise<{ ms: number; ok: boolean }>[] = [];
  const start = process.hrtime.bigint();
  await new Promise<void>((resolve) => {
    const tick = () => {
      const due = Math.min(total, Math.floor((Number(process.hrtime.bigint() - start) / 1e9) * rate) + 1);
      while (pending.length < due) pending.push(post(agent, port, path, body, start + BigInt(Math.round((pending.length / rate) * 1e9))));
      if (pending.length < total) setTimeout(tick, 1);
      else resolve();
    };
    tick();
  });
  const rs = await Promise.all(pending);
  agent.destroy();
  return figures(rs.map((r) => r.ms), rs.filter((r) => !r.ok).length);
}

/** Closed loop, one request at a time (each cold admission's own latency, not queueing). */
async function sequential(agent: Agent, port: number, path: string, body: Buffer, n: number): Promise<Figures> {
  const lat: number[] = [];
  let errors = 0;
  for (let i = 0; i < n; i++) {
    const r = await post(agent, port, path, body, process.hrtime.bigint());
    lat.push(r.ms);
    if (!r.ok) errors++;
  }
  return figures(lat, errors);
}

async function main(): Promise<void> {
  if (args.serve) return serve(args.serve, args.dir!);
  if (!haveRegistry) {
    console.log('bench:images needs docker-registry (apt-get install docker-registry)');
    process.exitCode = 2;
    return;
  }
  const seconds = Number(args.seconds);
  const rate = Number(args.rate);
  const connections = Number(args.connections);
  const coldN = Number(args.cold);
  const load0 = loadavg().map((l) => l.toFixed(2)).join(' ');
  const dir = mkdtempSync(join(tmpdir(), 'coffer-bench-images-'));
  const ca = await createTestCa();
  const leaf = await ca.issue();
  writeFileSync(join(dir, 'tls.crt'), leaf.certPem);
  writeFileSync(join(dir, 'tls.key'), leaf.keyPem);
  const reg = await startRegistry();
  const children: ChildProcess[] = [];
  try {
    const key = generateSigningKey('ecdsa');
    const sigstore = await LocalSigstore.create();
    const images: string[] = [];
    for (const [i, name] of ['migrate', 'web', 'sidecar'].entries()) {
      const t = { registry: reg, repo: `shop/${name}` };
      const { digest } = await pushImage(t, 'v1');
      const layer = i === 2
        ? await sigstore.keylessLayer(`${reg.host}/shop/${name}`, digest, { identity: { uri: 'https://ci.coffer.test/release' }, issuer: 'https://issuer.coffer.test' })
        : keyedLayer(key, `${reg.host}/shop/${name}`, digest);
      await pushSignatureImage(t, digest, [layer]);
      images.push(`${reg.host}/shop/${name}:v1`);
    }
    writeFileSync(join(dir, 'setup.json'), JSON.stringify({ registry: reg.host, publicPem: key.publicPem, trustedRoot: sigstore.trustedRoot(), images } satisfies Setup));
    const body = Buffer.from(reviewFor(images));
    const floor = await startChild('floor', dir);
    const warm = await startChild('warm', dir);
    const cold = await startChild('cold', dir, args['cpu-prof']);
    const recheck = await startChild('recheck', dir);
    const plain = await startChild('plain', dir);
    children.push(floor.child, warm.child, cold.child, recheck.child, plain.child);
    // One keep-alive connection per server for the one-at-a-time measurements.
    const one = () => new Agent({ keepAlive: true, maxSockets: 1, ca: ca.certPem, servername: 'localhost' });
    const agents = { floor: one(), warm: one(), cold: one(), recheck: one() };
    // Warm-up: JIT, TLS sessions, and the warm server's cache (its first admission verifies the 3 images).
    await sequential(agents.floor, floor.port, '/', body, 20);
    await sequential(agents.warm, warm.port, '/mutate-v1-pod', body, 20);
    await sequential(agents.cold, cold.port, '/mutate-v1-pod', body, 20);
    await sequential(agents.recheck, recheck.port, '/mutate-v1-pod', body, 20);
    await paced(floor.port, '/', body, 1, rate, connections, ca.certPem);
    await paced(warm.port, '/mutate-v1-pod', body, 1, rate, connections, ca.certPem);
    await paced(plain.port, '/mutate-v1-pod', body, 1, rate, connections, ca.certPem);
    // Interleaved slices (floor, subject, floor, subject…) so that load from other processes on a shared machine
    // falls on both sides of each ratio alike.
    const slices = 10;
    const merge = (fs: Figures[]) => figures(fs.flatMap((f) => f.lat), fs.reduce((a, f) => a + f.errors, 0));
    const flParts: Figures[] = [];
    const wmParts: Figures[] = [];
    const plParts: Figures[] = [];
    for (let i = 0; i < slices; i++) {
      flParts.push(await paced(floor.port, '/', body, seconds / slices, rate, connections, ca.certPem));
      wmParts.push(await paced(warm.port, '/mutate-v1-pod', body, seconds / slices, rate, connections, ca.certPem));
      plParts.push(await paced(plain.port, '/mutate-v1-pod', body, seconds / slices, rate, connections, ca.certPem));
    }
    const pl = merge(plParts);
    const seqParts: Record<'fl' | 'wm' | 'cd' | 'rc', Figures[]> = { fl: [], wm: [], cd: [], rc: [] };
    for (let i = 0; i < coldN; i++) {
      seqParts.fl.push(await sequential(agents.floor, floor.port, '/', body, 1));
      seqParts.wm.push(await sequential(agents.warm, warm.port, '/mutate-v1-pod', body, 1));
      seqParts.cd.push(await sequential(agents.cold, cold.port, '/mutate-v1-pod', body, 1));
      seqParts.rc.push(await sequential(agents.recheck, recheck.port, '/mutate-v1-pod', body, 1));
    }
    for (const a of Object.values(agents)) a.destroy();
    const [fl, wm, flSeq, wmSeq, cd, rc] = [merge(flParts), merge(wmParts), merge(seqParts.fl), merge(seqParts.wm), merge(seqParts.cd), merge(seqParts.rc)];
    console.log(`images bench: pod with 3 images (2 cosign keyed ECDSA, 1 keyless Fulcio/Rekor/SCT), docker-registry on loopback, HTTPS keep-alive`);
    console.log(`load average at start ${load0}, at end ${loadavg().map((l) => l.toFixed(2)).join(' ')} (${availableParallelism()} CPUs)`);
    const row = (name: string, f: Figures) => console.log(`${name.padEnd(38)} n=${String(f.n).padStart(5)}   p50 ${f.p50.toFixed(2)} ms   p99 ${f.p99.toFixed(2)} ms   errors ${f.errors}`);
    row(`floor (empty handler) @${rate}/s`, fl);
    row(`warm (cached) @${rate}/s`, wm);
    row(`same webhook, no spec.images @${rate}/s`, pl);
    row('floor (empty handler) sequential', flSeq);
    row('warm (cached) sequential', wmSeq);
    row('cold (registry + verify) sequential', cd);
    row('recheck (registry, memo) sequential', rc);
    console.log(`ratio warm/floor at ${rate}/s: p50 ${(wm.p50 / Math.max(fl.p50, 0.001)).toFixed(2)}x  p99 ${(wm.p99 / Math.max(fl.p99, 0.001)).toFixed(2)}x`);
    console.log(`ratio warm/no-images at ${rate}/s (the image step alone): p50 ${(wm.p50 / Math.max(pl.p50, 0.001)).toFixed(2)}x  p99 ${(wm.p99 / Math.max(pl.p99, 0.001)).toFixed(2)}x`);
    console.log(`ratio warm/floor sequential: p50 ${(wmSeq.p50 / Math.max(flSeq.p50, 0.001)).toFixed(2)}x  p99 ${(wmSeq.p99 / Math.max(flSeq.p99, 0.001)).toFixed(2)}x`);
    console.log(`ratio cold/floor sequential: p50 ${(cd.p50 / Math.max(flSeq.p50, 0.001)).toFixed(1)}x  p99 ${(cd.p99 / Math.max(flSeq.p99, 0.001)).toFixed(1)}x`);
    console.log(`target warm p99 <= 1.3x the floor: ${wm.p99 <= 1.3 * fl.p99 ? 'met' : 'NOT met'} (${wm.p99.toFixed(2)} vs ${fl.p99.toFixed(2)} ms)`);
    console.log(`target cold p99 <= 50 ms: ${cd.p99 <= 50 ? 'met' : 'NOT met'} (${cd.p99.toFixed(2)} ms; after TTL expiry with Sigstore outcomes memoized: ${rc.p99.toFixed(2)} ms)`);
    if (wm.errors + cd.errors + rc.errors > 0) console.log(`WARNING: ${wm.errors + cd.errors + rc.errors} admissions were not allowed (the figures are not valid)`);
  } finally {
    for (const c of children) c.kill('SIGTERM');
    await reg.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
