import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { CliUsageError, EXIT, type CommandContext } from '../context.js';
import { loadKubeConfig } from '../kubeconfig.js';

interface StatusFlags {
  kubeconfig?: string;
  attestationUrl?: string;
  pinJwk?: string;
  caFile?: string;
  json?: boolean;
}

async function getJson(url: string, ca: Buffer | undefined): Promise<any> {
  const https = await import('node:https');
  const http = await import('node:http');
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const req = (u.protocol === 'https:' ? https.get : http.get)(u, { timeout: 10_000, ...(ca ? { ca } : {}) }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        if (res.statusCode !== 200) return reject(new Error(`${url}: HTTP ${res.statusCode}`));
        try {
          resolve(JSON.parse(Buffer.concat(chunks).toString('utf8')));
        } catch (e) {
          reject(new Error(`${url}: ${(e as Error).message}`));
        }
      });
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`${url}: timed out`)));
    req.on('error', reject);
  });
}

const STATUS_LIMITS = { maxNodes: 10_000, maxPods: 200_000, maxRuntimeClasses: 1_000 };

export function registerStatus(program: Command, ctx: CommandContext): void {
  program
    .command('status')
    .description("The cluster's trust posture, verified from outside: every node's TEE, trust state, TCB status, advisories, last attestation and expiry, runtime classes, edge autonomy; the attestation service's token key against a pinned key. Exit 0 when every node that runs confidential pods is trusted, 1 otherwise, 2 usage")
    .option('--kubeconfig <file>', 'kubeconfig (default: KUBECONFIG, ~/.kube/config, in-cluster)')
    .option('--attestation-url <url>', "the attestation service whose identity (token keys at /.well-known/jwks.json) is checked")
    .option('--pin-jwk <file>', 'the public JWK (or a JWKS: its first key) the service must publish')
    .option('--ca-file <file>', "PEM CA bundle for the service's TLS")
    .option('--json', 'machine-readable output')
    .action(async (f: StatusFlags) => {
      const { KubeRest } = await import('../../k8s/kube-rest.js');
      const { clusterStatus, identityStatus, nodeStatuses } = await import('../../k8s/cluster-status.js');
      const { readClusterObjects } = await import('../../k8s/cluster-read.js');
      let pinned: Record<string, unknown> | undefined;
      if (f.pinJwk) {
        try {
          const doc = JSON.parse(readFileSync(f.pinJwk, 'utf8'));
          pinned = Array.isArray(doc?.keys) ? doc.keys[0] : doc;
        } catch (e) {
          throw new CliUsageError(`cannot read --pin-jwk ${f.pinJwk}: ${(e as Error).message}`);
        }
        if (!f.attestationUrl) throw new CliUsageError('--pin-jwk needs --attestation-url');
      }
      let ca: Buffer | undefined;
      if (f.caFile) {
        try {
          ca = readFileSync(f.caFile);
        } catch (e) {
          throw new CliUsageError(`cannot read --ca-file ${f.caFile}: ${(e as Error).message}`);
        }
      }
      if (f.attestationUrl && !/^https?:\/\/\S+$/.test(f.attestationUrl)) throw new CliUsageError(`--attestation-url '${f.attestationUrl}' is not an http(s) URL`);
      const kc = await loadKubeConfig(f.kubeconfig);
      const rest = await KubeRest.fromKubeConfig(kc, 'coffer-status');
      let status;
      try {
        // The same reader as the dashboard's cluster view, with caps far above it: a fleet larger than them cannot
        // be vouched for from one page of each list, so that is a failure rather than a partial "ok".
        const objs = await readClusterObjects(rest, STATUS_LIMITS);
        if (objs.truncated.nodes || objs.truncated.pods) throw new Error(`more than ${STATUS_LIMITS.maxNodes} nodes or ${STATUS_LIMITS.maxPods} pods: too large to read in one list`);
        const now = Date.now();
        let identity;
        if (f.attestationUrl) {
          const url = f.attestationUrl.replace(/\/$/, '');
          try {
            identity = identityStatus(url, await getJson(`${url}/.well-known/jwks.json`, ca), pinned);
          } catch (e) {
            identity = { url, keys: [], pinned: null, verified: false, detail: `cannot read the service's keys: ${(e as Error).message}` };
          }
        }
        status = clusterStatus(nodeStatuses(objs.nodes, objs.pods, objs.runtimeClasses, now), identity, now);
      } catch (e) {
        ctx.io.err(`coffer: status: cannot read the cluster: ${(e as Error).message}\n`);
        return ctx.setExit(EXIT.REJECTED);
      } finally {
        rest.close();
      }
      if (f.json) ctx.io.out(JSON.stringify(status, null, 2) + '\n');
      else {
        const rows = [['NODE', 'TEE', 'TRUST', 'TCB', 'ADVISORIES', 'ATTESTED', 'EXPIRES', 'RUNTIMECLASSES', 'AUTONOMY', 'CONF-PODS']];
        for (const n of status.nodes) rows.push([n.name, n.tee ?? '-', n.trust, n.tcbStatus ?? '-', n.advisories.join(',') || '-', n.lastAttestation ?? '-', n.expiresAt ?? '-', n.runtimeClasses.join(',') || '-', n.autonomy, String(n.confidentialPods)]);
        const w = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
        for (const r of rows) ctx.io.out(r.map((c, i) => c.padEnd(w[i])).join('  ').trimEnd() + '\n');
        for (const n of status.nodes) if (n.trust !== 'trusted' && n.reason) ctx.io.out(`${n.name}: ${n.reason}\n`);
        if (status.attestation) ctx.io.out(`attestation service ${status.attestation.url}: ${status.attestation.verified ? 'verified' : 'NOT verified'} (${status.attestation.detail})\n`);
        ctx.io.out(status.ok ? 'ok: every node that runs confidential pods is trusted\n' : 'NOT ok: a node that runs confidential pods is not trusted, or the service identity is not verified\n');
      }
      ctx.setExit(status.ok ? EXIT.OK : EXIT.REJECTED);
    });
}
