import type { Command } from 'commander';
import type { FastifyInstance } from 'fastify';
import { readFileSync } from 'node:fs';
import { CliUsageError, type CommandContext } from '../context.js';
import { defaultDataDir, ensureSampleDevKey, openDataDir } from '../data-dir.js';
import { Kek, openStore } from '../../store/index.js';
import type { Store } from '../../store/types.js';
import { createAttestationService } from '../../attestation/index.js';
import { loadTpmCaDir } from '../../attestation/tpm-enrol.js';
import { createHttpApp } from '../../attestation/http.js';
import { attestationRoutes } from '../../attestation/routes.js';
import { kbsRoutes } from '../../kbs/routes.js';
import { TEE_TYPES } from '../../tee/common/claims.js';
import type { CollateralConfig } from '../../attestation/collateral.js';
import type { AttestationService } from '../../attestation/service.js';
import type { Server as HttpsServer } from 'node:https';
import { loadTlsFiles, reloadServingTls, TlsFileWatcher, type TlsMaterial } from '../../k8s/admission/tls-files.js';
import { devAkPublic, startDevSwtpm, swtpmOnPath, type DevSwtpm } from '../../node/tpm/dev.js';
import { join } from 'node:path';
import { writeFileSync } from 'node:fs';

interface ServeFlags {
  port: string;
  host: string;
  data?: string;
  dev?: boolean;
  store?: string;
  kekFile?: string;
  publicUrl?: string;
  collateralConfig?: string;
  rotateKeysHours?: string;
  pcsUrl?: string;
  kdsUrl?: string;
  rootCaCrlUrl?: string;
  collateralRefreshMinutes?: string;
  trustAnchor?: string[];
  tpmCaDir?: string;
  swtpm?: string;
  tlsCert?: string;
  tlsKey?: string;
  auditRetentionDays?: string;
}

/** `--pcs-url` / `--kds-url`: an http(s) base URL, or `off`. */
function upstreamUrl(v: string | undefined, flag: string): string | false | undefined {
  if (v === undefined) return undefined;
  if (v === 'off') return false;
  if (!/^https?:\/\/[^\s]+$/.test(v)) throw new CliUsageError(`${flag} '${v}' is not an http(s) URL or 'off'`);
  return v;
}

/** Upstream collateral for real TEEs: Intel PCS and AMD KDS by default, refreshed every N minutes. */
function upstreamOptions(flags: ServeFlags) {
  const minutes = Number(flags.collateralRefreshMinutes ?? 60);
  if (!Number.isFinite(minutes) || minutes < 0) throw new CliUsageError(`--collateral-refresh-minutes '${flags.collateralRefreshMinutes}' is not a number of minutes`);
  if (flags.rootCaCrlUrl !== undefined && !/^https?:\/\//.test(flags.rootCaCrlUrl)) throw new CliUsageError(`--root-ca-crl-url '${flags.rootCaCrlUrl}' is not an http(s) URL`);
  return {
    pcsUrl: upstreamUrl(flags.pcsUrl, '--pcs-url'),
    kdsUrl: upstreamUrl(flags.kdsUrl, '--kds-url'),
    rootCaCrlUrl: flags.rootCaCrlUrl,
    refreshIntervalMs: minutes * 60_000,
  };
}

/** `--collateral-config FILE`: {"upstreams": {name: baseUrl}, "items": [{key, tee, upstream, path}], "refreshIntervalMs"}. */
function loadCollateralConfig(path: string): CollateralConfig {
  let doc: unknown;
  try {
    doc = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new CliUsageError(`cannot read collateral config ${path}: ${(e as Error).message}`);
  }
  const o = doc as Partial<CollateralConfig>;
  const okItems = Array.isArray(o.items) && o.items.every((i) => i && typeof i.key === 'string' && typeof i.tee === 'string' && typeof i.upstream === 'string' && typeof i.path === 'string');
  const okUp = typeof o.upstreams === 'object' && o.upstreams !== null && Object.values(o.upstreams).every((u) => typeof u === 'string' && /^https?:\/\//.test(u));
  if (!okItems || !okUp || (o.refreshIntervalMs !== undefined && typeof o.refreshIntervalMs !== 'number')) {
    throw new CliUsageError(`collateral config ${path} must be {"upstreams": {name: "https://..."}, "items": [{key, tee, upstream, path}], "refreshIntervalMs"?}`);
  }
  return { upstreams: o.upstreams!, items: o.items!, refreshIntervalMs: o.refreshIntervalMs ?? 3_600_000 };
}

type Mount = 'up' | 'attestation' | 'kbs';

const DEV_WARNING = `
  ************************************************************************************
  *  DEV MODE: the 'sample' TEE is enabled. Sample evidence proves NOTHING about      *
  *  hardware; anyone can produce it. Never use --dev for real secrets.               *
  ************************************************************************************
`;

/** Starts the services on one port; resolves once listening. Shared by `up`, `attestation` and `kbs`. */
export async function startServices(mount: Mount, flags: ServeFlags, ctx: CommandContext, env: Record<string, string | undefined>): Promise<{ app: FastifyInstance; store: Store; url: string; stop(): Promise<void> }> {
  const port = Number(flags.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new CliUsageError(`--port '${flags.port}' is not a TCP port`);
  const upstream = upstreamOptions(flags);
  const trustAnchors = (flags.trustAnchor ?? []).map((f) => {
    try {
      return new Uint8Array(readFileSync(f));
    } catch (e) {
      throw new CliUsageError(`cannot read --trust-anchor ${f}: ${(e as Error).message}`);
    }
  });
  let tpmCaCerts: Uint8Array[] = [];
  if (flags.tpmCaDir !== undefined) {
    try {
      tpmCaCerts = loadTpmCaDir(flags.tpmCaDir);
    } catch (e) {
      throw new CliUsageError(`cannot use --tpm-ca-dir ${flags.tpmCaDir}: ${(e as Error).message}`);
    }
    if (tpmCaCerts.length === 0) throw new CliUsageError(`--tpm-ca-dir ${flags.tpmCaDir} holds no certificate (*.pem, *.crt, *.cer, *.der)`);
  }
  if ((flags.tlsCert === undefined) !== (flags.tlsKey === undefined)) throw new CliUsageError('--tls-cert and --tls-key go together');
  const tlsFiles = flags.tlsCert && flags.tlsKey ? { cert: flags.tlsCert, key: flags.tlsKey } : undefined;
  let tls: TlsMaterial | undefined;
  if (tlsFiles) {
    try {
      tls = await loadTlsFiles(tlsFiles.cert, tlsFiles.key);
    } catch (e) {
      throw new CliUsageError(`cannot use --tls-cert ${flags.tlsCert} / --tls-key ${flags.tlsKey}: ${(e as Error).message}`);
    }
  }
  const scheme = tls ? 'https' : 'http';
  const retentionDays = Number(flags.auditRetentionDays ?? 90);
  if (!Number.isFinite(retentionDays) || retentionDays < 0) throw new CliUsageError(`--audit-retention-days '${flags.auditRetentionDays}' is not a number of days`);
  const swtpmMode = flags.swtpm ?? 'auto';
  if (!['auto', 'on', 'off'].includes(swtpmMode)) throw new CliUsageError(`--swtpm '${flags.swtpm}' is not auto, on or off`);
  if (swtpmMode === 'on' && !flags.dev) throw new CliUsageError('--swtpm on needs --dev (the local swtpm AK is pinned, a dev-only trust decision)');
  if (swtpmMode === 'on' && !swtpmOnPath()) throw new CliUsageError('--swtpm on: swtpm is not on PATH (apt-get install swtpm)');
  const data = openDataDir(flags.data ?? defaultDataDir(env), { create: true, kekFile: flags.kekFile, env });
  const kek = Kek.fromEnvOrFile(env, data.kekPath);
  // COFFER_STORE_URL: how the cluster manifests hand over a PostgreSQL URL (from a Secret) without putting it in argv.
  const store = await openStore({ url: flags.store ?? (env.COFFER_STORE_URL || data.dbPath), kek });
  let swtpm: DevSwtpm | undefined;
  try {
    // Dev mode on a laptop with no TEE: a live swtpm whose AK the service pins (an operator pin: the claims say
    // akTrust 'pinned'), for `coffer kbs-client --tee tpm --swtpm <data>/swtpm.json`. Other AKs need enrolment.
    const tpmPins: Uint8Array[] = [];
    if (flags.dev && (swtpmMode === 'on' || (swtpmMode === 'auto' && swtpmOnPath()))) {
      swtpm = await startDevSwtpm(join(data.dir, 'swtpm'));
      tpmPins.push(await devAkPublic(swtpm.port));
      writeFileSync(join(data.dir, 'swtpm.json'), `${JSON.stringify({ host: '127.0.0.1', port: swtpm.port })}\n`, { mode: 0o600 });
    }
    const now = Date.now();
    if (flags.dev && !(await store.getDocument('reference-values', 'default'))) {
      // Dev mode names `sample` explicitly (it is never trusted implicitly), next to every real TEE.
      await store.putDocument('reference-values', 'default', JSON.stringify({ tees: [...TEE_TYPES] }), 'coffer up --dev', now);
    }
    const { service, admin } = await createAttestationService({
      store, adminKeys: [readFileSync(data.adminPubPath, 'utf8')], dev: flags.dev ?? false, publicUrl: flags.publicUrl,
      issuer: flags.publicUrl ?? `${scheme}://${flags.host}:${port}`,
      ...(flags.collateralConfig ? { collateral: loadCollateralConfig(flags.collateralConfig) } : {}),
      upstream,
      verifyOptions: {
        // Dev mode trusts the data dir's sample dev key for Coffer's signed sample evidence (Trustee's unsigned form
        // stays accepted too, for guest-components' sample attester).
        ...(flags.dev ? { sample: { devKeys: [ensureSampleDevKey(data)] } } : {}),
        // Replaces the pinned Intel / AMD roots: only for private PKIs and tests.
        ...(trustAnchors.length ? { trustAnchors } : {}),
      },
      tpmCaCerts, tpmPins,
    });
    const logRefresh = (results: { key: string; ok: boolean; error?: string }[]) => {
      for (const r of results.filter((x) => !x.ok)) ctx.io.err(`coffer: collateral ${r.key} not refreshed (cached copy kept): ${r.error}\n`);
    };
    service.collateral?.start(logRefresh);
    service.upstream?.start(logRefresh);
    const app = createHttpApp({ bodyLimit: 2 * 1024 * 1024, ...(tls ? { https: { cert: tls.cert, key: tls.key } } : {}) });
    if (mount !== 'kbs') await app.register(attestationRoutes, { service, admin, publicUrl: flags.publicUrl });
    if (mount !== 'attestation') await app.register(kbsRoutes, { prefix: '/kbs', service, admin });
    app.get('/healthz', async () => ({ ok: true }));
    service.metrics.install(app);
    const housekeeping = startHousekeeping(store, service, { retentionDays, rotateMs: Number(flags.rotateKeysHours ?? 24) * 3_600_000 }, ctx);
    await app.listen({ port, host: flags.host });
    const watcher = tls && tlsFiles ? watchServingCert(app.server as HttpsServer, tlsFiles.cert, tlsFiles.key, tls, ctx) : undefined;
    const addr = app.server.address() as { port: number };
    const url = `${scheme}://${flags.host}:${addr.port}`;
    // `--port 0` picks the port at listen time: the default issuer names the real one.
    if (!flags.publicUrl) service.tokens.setIssuer(url);
    if (flags.dev) ctx.io.err(DEV_WARNING);
    if (mount !== 'kbs') ctx.io.out(`coffer: attestation service  ${url}/v1/challenge, ${url}/v1/attest  (JWKS ${url}/.well-known/jwks.json)\n`);
    if (mount !== 'attestation') ctx.io.out(`coffer: key broker (KBS)     ${url}/kbs/v0  (Trustee protocol ${'0.4.0'})\n`);
    ctx.io.out(`coffer: data                 ${data.dir} (store ${flags.store ? 'from --store' : env.COFFER_STORE_URL ? 'from $COFFER_STORE_URL' : data.dbPath})\n`);
    ctx.io.out(`coffer: audit                kept ${retentionDays > 0 ? `${retentionDays} days` : 'forever'} (GET /v1/admin/audit)\n`);
    ctx.io.out(`coffer: admin credential     coffer admin-token --data ${data.dir}   (signs with ${data.adminKeyPath})\n`);
    ctx.io.out(`coffer: TEEs                 ${service.supportedTees().join(', ') || '(none)'}\n`);
    const pcs = upstream.pcsUrl === false ? 'off' : (upstream.pcsUrl ?? 'Intel PCS');
    const kds = upstream.kdsUrl === false ? 'off' : (upstream.kdsUrl ?? 'AMD KDS');
    ctx.io.out(`coffer: collateral           PCS ${pcs}, KDS ${kds}, cached in the store, refresh every ${upstream.refreshIntervalMs / 60_000} min\n`);
    if (mount !== 'kbs') ctx.io.out(`coffer: TPM AK enrolment     ${tpmCaCerts.length ? `${url}/v1/tpm/enrol (EK certificates to ${tpmCaCerts.length} CA certificate(s) from --tpm-ca-dir)` : 'off (no --tpm-ca-dir): only enrolled or pinned AKs are trusted'}\n`);
    if (swtpm) ctx.io.out(`coffer: dev TPM (swtpm)       127.0.0.1:${swtpm.port}, AK pinned; coffer kbs-client attest --tee tpm --swtpm ${join(data.dir, 'swtpm.json')}\n`);
    ctx.io.out(`coffer: ready on ${url}\n`);
    return {
      app, store, url,
      async stop() {
        housekeeping.stop();
        watcher?.stop();
        service.collateral?.stop();
        await service.upstream?.stop();
        await app.close();
        await store.close();
        await swtpm?.stop();
      },
    };
  } catch (e) {
    await store.close();
    await swtpm?.stop();
    throw e;
  }
}

/**
 * Every minute, and once at start (a restart after a long stop catches up at once): expired nonces and sessions,
 * audit retention, the signing keys (replicas' rotations, scheduled rotation).
 */
function startHousekeeping(store: Store, service: AttestationService, o: { retentionDays: number; rotateMs: number }, ctx: CommandContext): { stop(): void } {
  let stopped = false;
  let purging = false;
  const purgeAudit = async (cutoff: number) => {
    if (purging) return;
    purging = true;
    try {
      // Chunks with a turn of the event loop between them: a large backlog never stalls requests.
      while (!stopped && (await store.purgeAudit(cutoff, 10_000)) === 10_000) await new Promise((r) => setImmediate(r));
    } finally {
      purging = false;
    }
  };
  const tick = () => {
    if (stopped) return;
    const now = Date.now();
    if (o.retentionDays > 0) void purgeAudit(now - o.retentionDays * 86_400_000).catch((e: Error) => ctx.io.err(`coffer: audit retention purge failed: ${e.message}\n`));
    void store.purgeNonces(now).catch(() => {});
    void store.purgeSessions(now).catch(() => {});
    void service.tpm?.purge(now).catch(() => {});
    void service.tokens.refresh(now).then(() => (o.rotateMs > 0 ? service.tokens.rotateIfOlderThan(o.rotateMs, now) : false)).catch(() => {});
  };
  const timer = setInterval(tick, 60_000);
  timer.unref();
  setImmediate(tick);
  return {
    stop() {
      stopped = true;
      clearInterval(timer);
    },
  };
}

/**
 * Rotated certificate files (cert-manager, a Secret update) are served without a restart; a half-written pair
 * (new cert, old key) does not load and the previous pair keeps serving.
 */
function watchServingCert(server: HttpsServer, certFile: string, keyFile: string, initial: TlsMaterial, ctx: CommandContext): TlsFileWatcher {
  let current = initial;
  const watcher = new TlsFileWatcher([certFile, keyFile], () =>
    reloadServingTls(server, certFile, keyFile, current).then(
      (next) => {
        if (!next) return;
        current = next;
        ctx.io.err(`coffer: serving certificate reloaded (valid until ${next.notAfter.toISOString()})\n`);
      },
      (e: Error) => ctx.io.err(`coffer: serving certificate reload failed, keeping the previous one: ${e.message}\n`),
    ),
  );
  watcher.start();
  return watcher;
}

function registerServe(program: Command, ctx: CommandContext, mount: Mount, description: string): void {
  program
    .command(mount)
    .description(description)
    .option('--port <n>', 'TCP port', '8080')
    .option('--host <addr>', 'listen address', '127.0.0.1')
    .option('--data <dir>', 'data directory (default $COFFER_DATA or ~/.coffer)')
    .option('--dev', 'enable the dev-only sample TEE (loud warning; never for real secrets)')
    .option('--store <url>', 'postgres://... to use PostgreSQL instead of the SQLite file in the data dir (default $COFFER_STORE_URL)')
    .option('--kek-file <file>', 'key-encryption key file (default <data>/keys/kek; COFFER_KEK overrides)')
    .option('--public-url <url>', 'external base URL used as token issuer and in discovery')
    .option('--rotate-keys-hours <h>', 'rotate the token signing key when older than this (0 = never)', '24')
    .option('--pcs-url <url>', "Intel PCS or PCCS base URL for SGX/TDX collateral, or 'off' (default https://api.trustedservices.intel.com)")
    .option('--root-ca-crl-url <url>', 'Intel SGX Root CA CRL URL (default: Intel\'s distribution point, or <pcs-url>/sgx/certification/v4/rootcacrl for a PCCS)')
    .option('--kds-url <url>', "AMD KDS base URL for SEV-SNP certificates and CRLs, or 'off' (default https://kdsintf.amd.com)")
    .option('--collateral-refresh-minutes <n>', 'refresh cached PCS/KDS collateral this often (0 = only on demand)', '60')
    .option('--swtpm <mode>', 'with --dev: start a live swtpm for the local TPM attester (auto = when swtpm is on PATH, on, off)', 'auto')
    .option('--tpm-ca-dir <dir>', 'TPM manufacturer CA certificates (PEM/DER files) that EK certificates must chain to for AK enrolment (none = enrolment refused)')
    .option('--trust-anchor <file...>', 'root certificate(s) replacing the pinned Intel/AMD roots (private PKIs, tests)')
    .option('--collateral-config <file>', 'collateral upstreams (Intel PCS / AMD KDS base URLs), items and refresh schedule (JSON)')
    .option('--audit-retention-days <n>', 'remove audit records older than this many days (0 = keep forever)', '90')
    .option('--tls-cert <file>', 'serve HTTPS with this certificate (PEM, chain allowed); reloaded when the file changes')
    .option('--tls-key <file>', 'private key for --tls-cert (PEM)')
    .action(async (flags: ServeFlags) => {
      const s = await startServices(mount, flags, ctx, process.env);
      ctx.keepRunning();
      const shutdown = (sig: string) => {
        ctx.io.err(`coffer: ${sig}, shutting down\n`);
        void s.stop().then(() => process.exit(0), () => process.exit(1));
      };
      process.once('SIGTERM', () => shutdown('SIGTERM'));
      process.once('SIGINT', () => shutdown('SIGINT'));
    });
}

export function registerUp(program: Command, ctx: CommandContext): void {
  registerServe(program, ctx, 'up', 'run the attestation service and the key broker on localhost (SQLite under --data)');
}
export function registerAttestation(program: Command, ctx: CommandContext): void {
  registerServe(program, ctx, 'attestation', 'run the attestation service: evidence in, EAR token out (JWKS, admin API)');
}
export function registerKbs(program: Command, ctx: CommandContext): void {
  registerServe(program, ctx, 'kbs', 'run the Trustee-compatible key broker (with the attestation service built in)');
}
