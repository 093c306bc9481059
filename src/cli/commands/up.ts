import type { Command } from 'commander';
import type { FastifyInstance } from 'fastify';
import { CliUsageError, type CommandContext } from '../context.js';
import { defaultDataDir, ensureSampleDevKey, loadKek, openDataDir } from '../data-dir.js';
import { openStore } from '../../store/index.js';
import { describeFsError, FILE_CAPS, oneLine, readUserFileSync } from '../files.js';
import { parseHttpUrl, redactUrl } from '../flags.js';
import { MAX_TIMER_MS, parseDuration } from '../duration.js';
import { X509Certificate, createPrivateKey, createPublicKey } from 'node:crypto';
import type { Store } from '../../store/types.js';
import { createAttestationService } from '../../attestation/index.js';
import { loadTpmCaDir } from '../../attestation/tpm-enrol.js';
import { createHttpApp } from '../../attestation/http.js';
import { attestationRoutes } from '../../attestation/routes.js';
import { DashboardSessions } from '../../attestation/dashboard/session.js';
import { dashboardRoutes } from '../../attestation/dashboard/routes.js';
import { loadUiAssets } from '../../attestation/dashboard/assets.js';
import { kbsRoutes } from '../../kbs/routes.js';
import { NODE_TRUST_AUDIT_PATH, nodeTrustAuditAuth, nodeTrustAuditRoutes } from '../../attestation/node-trust-audit.js';
import { TEE_TYPES } from '../../tee/common/claims.js';
import type { CollateralConfig } from '../../attestation/collateral.js';
import type { AttestationService } from '../../attestation/service.js';
import type { Server as HttpsServer } from 'node:https';
import { loadTlsFiles, reloadServingTls, TlsFileWatcher, type TlsMaterial } from '../../k8s/admission/tls-files.js';
import { devAkPublic, startDevSwtpm, swtpmOnPath, type DevSwtpm } from '../../node/tpm/dev.js';
import { join } from 'node:path';
import { existsSync, writeFileSync } from 'node:fs';

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
  kubeconfig?: string;
  tokenTtl?: string;
  adminKeys?: string[];
  nodeTrustAuditKey?: string[];
}

/** The longest `--token-ttl`: an EAR token is a bearer credential; a day bounds what a stolen one is worth. */
export const MAX_TOKEN_TTL_MS = 24 * 3_600_000;

/** `--token-ttl`: a positive whole number of seconds (JWT `exp` has second resolution), at most a day. */
export function parseTokenTtl(v: string): number {
  const ms = parseDuration('--token-ttl', v, MAX_TOKEN_TTL_MS);
  if (ms % 1000 !== 0) throw new CliUsageError(`--token-ttl '${oneLine(v, 40)}' must be a whole number of seconds (JWT exp has second resolution)`);
  return ms / 1000;
}

/**
 * A PEM file of one or more public keys (`--admin-keys`, `--node-trust-audit-key`). A private key is accepted
 * too and only its public half is kept (in-cluster one Secret then serves the signer and the verifier).
 */
export function loadPublicKeyBundle(file: string, flag: string): string[] {
  const text = readUserFileSync(file, flag, FILE_CAPS.key).toString('utf8');
  const blocks = text.match(/-----BEGIN ([A-Z ]+)-----[\s\S]*?-----END \1-----/g) ?? [];
  if (blocks.length === 0) throw new CliUsageError(`${flag} '${file}' holds no PEM key`);
  if (blocks.length > 16) throw new CliUsageError(`${flag} '${file}' holds ${blocks.length} keys (at most 16)`);
  return blocks.map((b, i) => {
    try {
      const key = /PRIVATE KEY/.test(b) ? createPublicKey(createPrivateKey(b)) : createPublicKey(b);
      if (key.asymmetricKeyType !== 'ed25519' && !(key.asymmetricKeyType === 'ec' && key.asymmetricKeyDetails?.namedCurve === 'prime256v1')) {
        throw new Error(`a ${key.asymmetricKeyType} key (Ed25519 or P-256 only)`);
      }
      return key.export({ format: 'pem', type: 'spki' }).toString();
    } catch (e) {
      throw new CliUsageError(`${flag} '${file}': key #${i + 1} is not usable: ${oneLine((e as Error).message, 120)}`);
    }
  });
}

/** `--pcs-url` / `--kds-url`: an http(s) base URL, or `off`. */
function upstreamUrl(v: string | undefined, flag: string): string | false | undefined {
  if (v === undefined) return undefined;
  if (v === 'off') return false;
  if (!/^https?:\/\/[^\s]+$/.test(v)) throw new CliUsageError(`${flag} '${oneLine(v, 100)}' is not an http(s) URL or 'off'`);
  parseHttpUrl(flag, v);
  return v;
}

/** Upstream collateral for real TEEs: Intel PCS and AMD KDS by default, refreshed every N minutes. */
function upstreamOptions(flags: ServeFlags) {
  const minutes = Number(flags.collateralRefreshMinutes ?? 60);
  // A timer above 2^31-1 ms fires after 1 ms in Node (a busy loop): refuse it rather than hammer the upstream.
  if (!Number.isFinite(minutes) || minutes < 0 || minutes * 60_000 > MAX_TIMER_MS) throw new CliUsageError(`--collateral-refresh-minutes '${flags.collateralRefreshMinutes}' is not a number of minutes between 0 and ${Math.floor(MAX_TIMER_MS / 60_000)}`);
  if (flags.rootCaCrlUrl !== undefined) parseHttpUrl('--root-ca-crl-url', flags.rootCaCrlUrl);
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
  const text = readUserFileSync(path, '--collateral-config', FILE_CAPS.document).toString('utf8');
  try {
    doc = JSON.parse(text);
  } catch {
    throw new CliUsageError(`--collateral-config '${path}' is not JSON`);
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
  if (flags.publicUrl !== undefined) parseHttpUrl('--public-url', flags.publicUrl, { noQuery: true });
  const tokenTtlSeconds = parseTokenTtl(flags.tokenTtl ?? '5m');
  // Replicas share one admin key set (a ConfigMap in the cluster) instead of each trusting its own data dir's key.
  const sharedAdminKeys = flags.adminKeys?.flatMap((f) => loadPublicKeyBundle(f, '--admin-keys'));
  const auditWriterKeys = flags.nodeTrustAuditKey?.flatMap((f) => loadPublicKeyBundle(f, '--node-trust-audit-key'));
  if (auditWriterKeys && mount === 'kbs') throw new CliUsageError('--node-trust-audit-key belongs to the attestation service (`coffer up` or `coffer attestation`)');
  const rotateHours = Number(flags.rotateKeysHours ?? 24);
  if (!Number.isFinite(rotateHours) || rotateHours < 0 || rotateHours > 24 * 365 * 10) throw new CliUsageError(`--rotate-keys-hours '${flags.rotateKeysHours}' is not a number of hours between 0 and ${24 * 365 * 10}`);
  const trustAnchors = (flags.trustAnchor ?? []).map((f) => {
    const b = readUserFileSync(f, '--trust-anchor', FILE_CAPS.certificate);
    try {
      new X509Certificate(b);
    } catch {
      throw new CliUsageError(`--trust-anchor '${f}' is not an X.509 certificate (PEM or DER)`);
    }
    return new Uint8Array(b);
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
    checkTlsPair(tlsFiles.cert, tlsFiles.key);
    try {
      tls = await loadTlsFiles(tlsFiles.cert, tlsFiles.key);
    } catch (e) {
      throw new CliUsageError(`cannot use --tls-cert '${flags.tlsCert}' / --tls-key '${flags.tlsKey}': ${oneLine((e as Error).message, 200)}`);
    }
  }
  const scheme = tls ? 'https' : 'http';
  const retentionDays = Number(flags.auditRetentionDays ?? 90);
  if (!Number.isFinite(retentionDays) || retentionDays < 0 || retentionDays > 36_500) throw new CliUsageError(`--audit-retention-days '${flags.auditRetentionDays}' is not a number of days`);
  const swtpmMode = flags.swtpm ?? 'auto';
  if (!['auto', 'on', 'off'].includes(swtpmMode)) throw new CliUsageError(`--swtpm '${flags.swtpm}' is not auto, on or off`);
  if (swtpmMode === 'on' && !flags.dev) throw new CliUsageError('--swtpm on needs --dev (the local swtpm AK is pinned, a dev-only trust decision)');
  if (swtpmMode === 'on' && !swtpmOnPath()) throw new CliUsageError('--swtpm on: swtpm is not on PATH (apt-get install swtpm)');
  const storeUrl = flags.store ?? (env.COFFER_STORE_URL || undefined);
  if (storeUrl !== undefined) checkStoreUrl(flags.store !== undefined ? '--store' : 'COFFER_STORE_URL', storeUrl);
  // --dev writes dev reference values and enables the sample TEE: never into a shared (PostgreSQL) store.
  if (flags.dev && storeUrl && /^postgres(ql)?:/i.test(storeUrl)) {
    throw new CliUsageError(`--dev never writes into a PostgreSQL store (${flags.store ? '--store' : '$COFFER_STORE_URL'}): use the SQLite store of --data for dev mode`);
  }
  if (flags.store !== undefined && redactUrl(flags.store) !== flags.store) ctx.io.err('coffer: warning: --store carries a password, which every local user can read in `ps`; set COFFER_STORE_URL instead\n');
  const collateral = flags.collateralConfig ? loadCollateralConfig(flags.collateralConfig) : undefined;
  if (flags.kubeconfig !== undefined && mount === 'kbs') throw new CliUsageError('--kubeconfig feeds the dashboard, which `coffer kbs` does not serve (use `coffer up` or `coffer attestation`)');
  const cluster = flags.kubeconfig !== undefined ? await openClusterSource(flags.kubeconfig, env) : undefined;
  const data = openDataDir(flags.data ?? defaultDataDir(env), { create: true, lock: true, kekFile: flags.kekFile, env });
  const lock = data.lock!;
  let swtpm: DevSwtpm | undefined;
  let store: Store | undefined;
  try {
    const kek = loadKek(env, data.kekPath, flags.kekFile ? '--kek-file' : 'key-encryption key');
    // COFFER_STORE_URL: how the cluster manifests hand over a PostgreSQL URL (from a Secret) without putting it in argv.
    // The data dir's own database is used by this process alone (the data-dir lock above): its store may vouch
    // for the nonces it issued without a read. A --store file may be shared, so it is always asked.
    store = await openStoreOrExplain(storeUrl ?? data.dbPath, kek, storeUrl === undefined);
    // Dev mode on a laptop with no TEE: a live swtpm whose AK the service pins (an operator pin: the claims say
    // akTrust 'pinned'), for `coffer kbs-client --tee tpm --swtpm <data>/swtpm.json`. Other AKs need enrolment.
    const tpmPins: Uint8Array[] = [];
    if (flags.dev && (swtpmMode === 'on' || (swtpmMode === 'auto' && swtpmOnPath()))) {
      try {
        swtpm = await startDevSwtpm(join(data.dir, 'swtpm'));
        tpmPins.push(await devAkPublic(swtpm.port));
        writeFileSync(join(data.dir, 'swtpm.json'), `${JSON.stringify({ host: '127.0.0.1', port: swtpm.port })}\n`, { mode: 0o600 });
      } catch (e) {
        await swtpm?.stop();
        swtpm = undefined;
        tpmPins.length = 0;
        const why = oneLine((e as Error).message, 200);
        // `auto` falls back to the sample TEE alone; `on` was an explicit request, so it is an error.
        if (swtpmMode === 'on') throw new CliUsageError(`--swtpm on: swtpm did not start: ${why}`);
        ctx.io.err(`coffer: swtpm did not start (${why}); continuing without the dev TPM\n`);
      }
    }
    const now = Date.now();
    if (flags.dev && !(await store.getDocument('reference-values', 'default'))) {
      // Dev mode names `sample` explicitly (it is never trusted implicitly), next to every real TEE.
      // Marked dev: a service started without --dev on this data dir refuses to appraise with them.
      await store.putDocument('reference-values', 'default', JSON.stringify({ dev: true, tees: [...TEE_TYPES] }), 'coffer up --dev', now);
    }
    const openedStore = store;
    const { service, admin } = await createAttestationService({
      store, adminKeys: sharedAdminKeys ?? [readUserFileSync(data.adminPubPath, 'admin public key', FILE_CAPS.key).toString('utf8')], dev: flags.dev ?? false, publicUrl: flags.publicUrl,
      issuer: flags.publicUrl ?? `${scheme}://${flags.host}:${port}`,
      ...(collateral ? { collateral } : {}),
      upstream,
      verifyOptions: {
        // Dev mode trusts the data dir's sample dev key for Coffer's signed sample evidence (Trustee's unsigned form
        // stays accepted too, for guest-components' sample attester).
        ...(flags.dev ? { sample: { devKeys: [ensureSampleDevKey(data)] } } : {}),
        // Replaces the pinned Intel / AMD roots: only for private PKIs and tests.
        ...(trustAnchors.length ? { trustAnchors } : {}),
      },
      tpmCaCerts, tpmPins, tokenTtlSeconds,
    });
    const logRefresh = (results: { key: string; ok: boolean; error?: string }[]) => {
      for (const r of results.filter((x) => !x.ok)) ctx.io.err(`coffer: collateral ${r.key} not refreshed (cached copy kept): ${r.error}\n`);
    };
    service.collateral?.start(logRefresh);
    service.upstream?.start(logRefresh);
    const app = createHttpApp({ bodyLimit: 2 * 1024 * 1024, ...(tls ? { https: { cert: tls.cert, key: tls.key } } : {}) });
    // The dashboard rides on the attestation service: its page at /, sessions, and the read API it uses.
    const sessions = mount !== 'kbs' ? new DashboardSessions({ store, admin, clock: () => service.now(), secureCookies: tls !== undefined }) : undefined;
    if (mount !== 'kbs') await app.register(attestationRoutes, { service, admin, publicUrl: flags.publicUrl, sessions });
    if (sessions) await app.register(dashboardRoutes, { service, sessions, assets: await loadUiAssets(), ...(cluster ? { cluster: cluster.source } : {}) });
    if (auditWriterKeys && mount !== 'kbs') await app.register(nodeTrustAuditRoutes, { store, auth: await nodeTrustAuditAuth(auditWriterKeys), now: () => service.now() });
    if (mount !== 'attestation') await app.register(kbsRoutes, { prefix: '/kbs', service, admin });
    app.get('/healthz', async () => ({ ok: true }));
    service.metrics.install(app);
    const housekeeping = startHousekeeping(store, service, { retentionDays, rotateMs: rotateHours * 3_600_000 }, ctx);
    try {
      await app.listen({ port, host: flags.host });
    } catch (e) {
      housekeeping.stop();
      service.collateral?.stop();
      await service.upstream?.stop();
      await app.close().catch(() => undefined);
      const err = e as NodeJS.ErrnoException;
      const why = err.code === 'EADDRINUSE' ? 'address already in use' : err.code === 'ENOTFOUND' || err.code === 'EAI_AGAIN' ? 'host not found' : err.code === 'EADDRNOTAVAIL' ? 'address not available on this machine' : describeFsError(e);
      throw new CliUsageError(`cannot listen on --host ${flags.host} --port ${port}: ${why}`);
    }
    const watcher = tls && tlsFiles ? watchServingCert(app.server as HttpsServer, tlsFiles.cert, tlsFiles.key, tls, ctx) : undefined;
    const addr = app.server.address() as { port: number };
    const url = `${scheme}://${flags.host}:${addr.port}`;
    // `--port 0` picks the port at listen time: the default issuer names the real one.
    if (!flags.publicUrl) service.tokens.setIssuer(url);
    if (flags.dev) ctx.io.err(DEV_WARNING);
    if (mount !== 'kbs') ctx.io.out(`coffer: attestation service  ${url}/v1/challenge, ${url}/v1/attest  (JWKS ${url}/.well-known/jwks.json)\n`);
    if (mount !== 'kbs') ctx.io.out(`coffer: dashboard            ${url}/  (sign in with coffer admin-token, or --viewer for read-only)\n`);
    if (mount !== 'kbs') ctx.io.out(`coffer: cluster view         ${cluster ? `${cluster.server} (read-only, cached ${CLUSTER_TTL_MS / 1000} s)` : 'off (no --kubeconfig)'}\n`);
    if (mount !== 'attestation') ctx.io.out(`coffer: key broker (KBS)     ${url}/kbs/v0  (Trustee protocol ${'0.4.0'})\n`);
    ctx.io.out(`coffer: data                 ${data.dir} (store ${flags.store ? `from --store ${redactUrl(flags.store)}` : env.COFFER_STORE_URL ? 'from $COFFER_STORE_URL' : data.dbPath})\n`);
    ctx.io.out(`coffer: audit                kept ${retentionDays > 0 ? `${retentionDays} days` : 'forever'} (GET /v1/admin/audit)\n`);
    if (sharedAdminKeys) ctx.io.out(`coffer: admin credential     ${sharedAdminKeys.length} admin public key(s) from --admin-keys (this data dir's own admin key is not trusted)\n`);
    else ctx.io.out(`coffer: admin credential     coffer admin-token --data ${data.dir}   (signs with ${data.adminKeyPath})\n`);
    ctx.io.out(`coffer: EAR tokens           valid ${tokenTtlSeconds} s (--token-ttl)\n`);
    if (mount !== 'kbs') ctx.io.out(`coffer: node-trust audit     ${auditWriterKeys ? `${url}${NODE_TRUST_AUDIT_PATH} (controller key(s) from --node-trust-audit-key)` : 'off (no --node-trust-audit-key)'}\n`);
    ctx.io.out(`coffer: TEEs                 ${service.supportedTees().join(', ') || '(none)'}\n`);
    const pcs = upstream.pcsUrl === false ? 'off' : (upstream.pcsUrl ?? 'Intel PCS');
    const kds = upstream.kdsUrl === false ? 'off' : (upstream.kdsUrl ?? 'AMD KDS');
    ctx.io.out(`coffer: collateral           PCS ${pcs}, KDS ${kds}, cached in the store, refresh every ${upstream.refreshIntervalMs / 60_000} min\n`);
    if (mount !== 'kbs') ctx.io.out(`coffer: TPM AK enrolment     ${tpmCaCerts.length ? `${url}/v1/tpm/enrol (EK certificates to ${tpmCaCerts.length} CA certificate(s) from --tpm-ca-dir)` : 'off (no --tpm-ca-dir): only enrolled or pinned AKs are trusted'}\n`);
    if (swtpm) ctx.io.out(`coffer: dev TPM (swtpm)       127.0.0.1:${swtpm.port}, AK pinned; coffer kbs-client attest --tee tpm --swtpm ${join(data.dir, 'swtpm.json')}\n`);
    // The PID to signal: under `npx`, a SIGTERM sent to npm's own process is not passed on (npm runs the command
    // through `sh -c`, which does not forward it), so a supervisor must signal this process.
    ctx.io.out(`coffer: process              PID ${process.pid} (SIGTERM or SIGINT stops it cleanly)\n`);
    ctx.io.out(`coffer: ready on ${url}\n`);
    return {
      app, store, url,
      async stop() {
        housekeeping.stop();
        watcher?.stop();
        service.collateral?.stop();
        await service.upstream?.stop();
        await app.close();
        await openedStore.close();
        await swtpm?.stop();
        cluster?.close();
        lock.release();
      },
    };
  } catch (e) {
    await store?.close().catch(() => undefined);
    await swtpm?.stop();
    cluster?.close();
    lock.release();
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
    .option('--store <url>', 'postgres://... to use PostgreSQL instead of the SQLite file in the data dir (default $COFFER_STORE_URL; prefer the variable: a password in argv is visible to every user in `ps`)')
    .option('--kek-file <file>', 'key-encryption key file (default <data>/keys/kek; COFFER_KEK overrides)')
    .option('--public-url <url>', 'external base URL used as token issuer and in discovery')
    .option('--token-ttl <duration>', 'lifetime of the EAR tokens the service issues (whole seconds, at most 24h); node agents must attest more often than this', '5m')
    .option('--admin-keys <file...>', "PEM file(s) of admin public keys (Ed25519 or P-256) replacing the data dir's own admin key: replicas share one admin key set")
    .option('--node-trust-audit-key <file...>', "PEM file(s) of the node-trust controller's audit key (public, or the private key whose public half is used): enables POST /v1/node-trust/audit")
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
    .option('--kubeconfig <file>', "read the cluster's trust posture (nodes, pods, runtime classes; read-only) for the dashboard's Cluster page and node counts; 'in-cluster' = this pod's service account")
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

const CLUSTER_TTL_MS = 5_000;

/**
 * `--kubeconfig FILE` (or `in-cluster`: the pod's service account) for the dashboard's cluster view. Read-only
 * GETs with a 5 s deadline and a 32 MiB cap per answer, lists capped (cluster-read.ts), one read per 5 s at most.
 */
async function openClusterSource(flag: string, env: Record<string, string | undefined>) {
  const { loadKubeConfig } = await import('../kubeconfig.js');
  const { KubeRest } = await import('../../k8s/kube-rest.js');
  const { ClusterViewSource, restClusterReader } = await import('../../k8s/cluster-view.js');
  let kc;
  if (flag === 'in-cluster') {
    if (env.KUBERNETES_SERVICE_HOST === undefined) throw new CliUsageError('--kubeconfig in-cluster: not running in a Kubernetes pod (no KUBERNETES_SERVICE_HOST)');
    // Without the token the default chain would fall back to ~/.kube/config: in-cluster means the service account only.
    if (!existsSync('/var/run/secrets/kubernetes.io/serviceaccount/token')) throw new CliUsageError('--kubeconfig in-cluster: no service account token is mounted (automountServiceAccountToken)');
    kc = await loadKubeConfig(undefined, { ...env, KUBECONFIG: undefined });
  } else kc = await loadKubeConfig(flag, env);
  const rest = await KubeRest.fromKubeConfig(kc, 'coffer-dashboard', { timeoutMs: 5_000, maxBytes: 32 * 1024 * 1024 });
  const server = kc.getCurrentCluster()!.server;
  return { server, source: new ClusterViewSource({ read: restClusterReader(rest), source: server, ttlMs: CLUSTER_TTL_MS }), close: () => rest.close() };
}

/** `--store` / COFFER_STORE_URL: PostgreSQL URL, `sqlite:PATH` or a file path; any other scheme is refused. */
function checkStoreUrl(flag: string, v: string): void {
  const m = /^([A-Za-z][A-Za-z0-9+.-]*):/.exec(v);
  if (!m || /^[A-Za-z]$/.test(m[1])) return; // a plain path (or a Windows drive letter)
  const scheme = m[1].toLowerCase();
  if (scheme === 'sqlite') return;
  if (scheme !== 'postgres' && scheme !== 'postgresql') throw new CliUsageError(`${flag}: scheme '${oneLine(scheme, 40)}:' is not supported (postgres://…, sqlite:PATH or a file path)`);
  try {
    new URL(v);
  } catch {
    throw new CliUsageError(`${flag} is not a valid PostgreSQL URL (${redactUrl(v)})`);
  }
}

/** Opens the store; a corrupt SQLite file or an unreachable database is one line that never shows a password. */
async function openStoreOrExplain(url: string, kek: Parameters<typeof openStore>[0]['kek'], exclusive: boolean): Promise<Store> {
  try {
    return await openStore({ url, kek, exclusive });
  } catch (e) {
    const err = e as Error & { code?: string };
    const code = typeof err.code === 'string' ? `${err.code}: ` : '';
    throw new CliUsageError(`cannot open the store ${redactUrl(url)}: ${code}${oneLine(err.message, 200).replaceAll(url, redactUrl(url))}`);
  }
}

/**
 * --tls-cert / --tls-key: both must parse and be of the same algorithm (an RSA certificate with an EC key is
 * caught here, at start, with a clear line instead of an OpenSSL error or a failing handshake later).
 */
function checkTlsPair(certFile: string, keyFile: string): void {
  const certPem = readUserFileSync(certFile, '--tls-cert', FILE_CAPS.certificate);
  const keyPem = readUserFileSync(keyFile, '--tls-key', FILE_CAPS.key);
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(certPem);
  } catch {
    throw new CliUsageError(`--tls-cert '${certFile}' is not an X.509 certificate (PEM)`);
  }
  let keyType: string | undefined;
  try {
    const k = createPrivateKey(keyPem);
    keyType = k.asymmetricKeyType;
  } catch {
    throw new CliUsageError(`--tls-key '${keyFile}' is not a private key (PEM)`);
  }
  const certType = cert.publicKey.asymmetricKeyType;
  if (certType !== keyType) throw new CliUsageError(`cannot use --tls-cert '${certFile}' / --tls-key '${keyFile}': the certificate has a ${certType} key but the private key is ${keyType}`);
}
