import type { Command } from 'commander';
import { readFile } from 'node:fs/promises';
import { CliUsageError, EXIT, type CommandContext } from '../context.js';
import { KbsClient, KbsClientError, sampleEvidenceProvider, type EvidenceProvider } from '../../kbs/client.js';
import { devTpmEvidence } from '../../node/tpm/dev.js';
import { enrolAk, httpEnrolPost, TpmEnrolError } from '../../node/tpm/enrol.js';
import { TpmClient } from '../../node/tpm/client.js';
import { SocketTransport } from '../../node/tpm/transport.js';
import { hostname } from 'node:os';
import { AFFIRMING, ALLOW_ALL, DENY_ALL } from '../../kbs/resource-policy.js';
import { mintAdminToken } from '../data-dir.js';

interface Global {
  url: string;
  adminToken?: string;
  adminTokenFile?: string;
  authPrivateKey?: string;
  certFile?: string;
}

async function readArg(path: string, what: string): Promise<Buffer> {
  try {
    return await readFile(path);
  } catch (e) {
    throw new CliUsageError(`cannot read ${what} ${path}: ${(e as Error).message}`);
  }
}

async function adminToken(g: Global): Promise<string | undefined> {
  if (g.adminToken) return g.adminToken;
  if (g.adminTokenFile) return (await readArg(g.adminTokenFile, 'admin token file')).toString('utf8').trim();
  if (g.authPrivateKey) {
    await readArg(g.authPrivateKey, 'admin private key');
    // Like Trustee's kbs-client --auth-private-key: sign a short-lived EdDSA admin token locally.
    return mintAdminToken(g.authPrivateKey, { ttlSeconds: 7200, subject: 'kbs-client' });
  }
  return process.env.COFFER_ADMIN_TOKEN;
}

/** fetch() that trusts only the given PEM certificate(s) for HTTPS (a private CA or a self-signed KBS). */
async function fetchTrusting(certFile: string): Promise<typeof fetch> {
  const ca = (await readArg(certFile, '--cert-file')).toString('utf8');
  const { Agent, fetch: undiciFetch } = await import('undici');
  const dispatcher = new Agent({ connect: { ca } });
  return ((url: string, init?: RequestInit) => undiciFetch(url, { ...(init as object), dispatcher })) as unknown as typeof fetch;
}

/**
 * `coffer kbs-client`: Trustee kbs-client's verbs against any Trustee-protocol KBS. Evidence comes from the
 * sample attester (dev mode servers only) — hardware attesters plug in as further EvidenceProviders.
 */
export function registerKbsClient(program: Command, ctx: CommandContext): void {
  const cmd = program
    .command('kbs-client')
    .description('talk to a KBS: attest, get/set resources, set policies (like Trustee\'s kbs-client)')
    .option('--url <url>', 'KBS base URL', 'http://127.0.0.1:8080')
    .option('--admin-token <jwt>', 'admin token (default: --admin-token-file or $COFFER_ADMIN_TOKEN)')
    .option('--admin-token-file <file>', 'file holding the admin token')
    .option('--auth-private-key <file>', 'Ed25519 admin private key (PEM) to sign an admin token with, like Trustee\'s kbs-client')
    .option('--cert-file <file>', 'trust this CA / server certificate (PEM) for an https KBS URL, like Trustee\'s kbs-client');
  const g = (): Global => cmd.opts() as Global;
  const client = async (admin: boolean) => {
    const tok = admin ? await adminToken(g()) : undefined;
    if (admin && !tok) throw new CliUsageError('admin operations need --admin-token, --admin-token-file, --auth-private-key or COFFER_ADMIN_TOKEN (see `coffer admin-token`)');
    return new KbsClient(g().url, { adminToken: tok, ...(g().certFile ? { fetch: await fetchTrusting(g().certFile!) } : {}) });
  };
  const run = (fn: () => Promise<void>) => async () => {
    try {
      await fn();
      ctx.setExit(EXIT.OK);
    } catch (e) {
      if (e instanceof KbsClientError && e.status > 0) {
        ctx.io.err(`coffer kbs-client: ${e.message} (${e.type.split('/').pop()})\n`);
        ctx.setExit(EXIT.REJECTED);
        return;
      }
      if (e instanceof TypeError && /fetch failed/.test(e.message)) throw new CliUsageError(`cannot reach ${g().url}: ${(e.cause as Error)?.message ?? e.message}`);
      throw e;
    }
  };
  /** `--swtpm FILE`: JSON {host?, port} of a swtpm's command port (what `coffer up --dev` writes). */
  const swtpmEndpoint = async (file: string): Promise<{ port: number; host?: string }> => {
    let ep: { host?: unknown; port?: unknown };
    try {
      ep = JSON.parse((await readArg(file, 'swtpm endpoint')).toString('utf8'));
    } catch (e) {
      if (e instanceof CliUsageError) throw e;
      throw new CliUsageError(`${file} is not JSON {host, port}`);
    }
    if (typeof ep.port !== 'number' || (ep.host !== undefined && typeof ep.host !== 'string')) throw new CliUsageError(`${file} is not JSON {host, port}`);
    return ep as { port: number; host?: string };
  };
  const teeOpt = (c: Command) => c
    .option('--tee <tee>', 'TEE whose evidence to send: sample (dev-mode attester) or tpm (a live swtpm/TPM via --swtpm)', 'sample')
    .option('--sample-key <file>', 'sign the sample evidence with this dev key (<data>/keys/sample-dev.jwk of `coffer up --dev`)')
    .option('--swtpm <file>', 'with --tee tpm: the swtpm endpoint file <data>/swtpm.json that `coffer up --dev` writes');
  type TeeFlags = { tee: string; sampleKey?: string; swtpm?: string };
  /** The attester for --tee: the sample one, or TPM quotes from the swtpm of `coffer up --dev`. */
  const provider = async (f: TeeFlags): Promise<{ tee: string; provider: EvidenceProvider }> => {
    if (f.tee === 'sample') {
      return { tee: 'sample', provider: sampleEvidenceProvider(f.sampleKey ? JSON.parse((await readArg(f.sampleKey, 'sample key')).toString('utf8')) : undefined) };
    }
    if (f.tee === 'tpm') {
      if (!f.swtpm) throw new CliUsageError('--tee tpm needs --swtpm <data>/swtpm.json (written by `coffer up --dev` when swtpm is installed)');
      const { port, host } = await swtpmEndpoint(f.swtpm);
      return { tee: 'tpm', provider: (rd) => devTpmEvidence(port, rd, host ?? '127.0.0.1') };
    }
    throw new CliUsageError(`no ${f.tee} attester in this client: --tee sample (dev mode) or --tee tpm (--swtpm) are built in`);
  };

  cmd.command('tpm-enrol').description('enrol the TPM\'s attestation key with the attestation service (EK certificate + credential activation)')
    .requiredOption('--swtpm <file>', 'the TPM: a swtpm endpoint file {host, port} (e.g. <data>/swtpm.json)')
    .option('--ek <kind>', 'EK (and NV EK certificate) to enrol with: rsa (0x01C00002) or ecc (0x01C0000A)', 'rsa')
    .option('--attester <name>', 'attester name recorded with the AK (default: this host name)')
    .option('--attestation-url <url>', 'attestation service base URL (default: --url; `coffer up` serves both)')
    .action(async (f: { swtpm: string; ek: string; attester?: string; attestationUrl?: string }) => {
      if (f.ek !== 'rsa' && f.ek !== 'ecc') throw new CliUsageError(`--ek '${f.ek}' is not rsa or ecc`);
      const { port, host } = await swtpmEndpoint(f.swtpm);
      const base = f.attestationUrl ?? g().url;
      const fetchFn = g().certFile ? await fetchTrusting(g().certFile!) : fetch;
      let tpm: TpmClient;
      try {
        tpm = new TpmClient(await SocketTransport.connect(port, host ?? '127.0.0.1'));
      } catch (e) {
        throw new CliUsageError(`cannot reach the TPM at ${host ?? '127.0.0.1'}:${port}: ${(e as Error).message}`);
      }
      try {
        const r = await enrolAk(tpm, { attester: f.attester ?? hostname(), ek: f.ek, post: httpEnrolPost(base, fetchFn) });
        ctx.io.out(`enrolled AK ${r.akId} (fingerprint ${r.fingerprint})\n`);
        ctx.setExit(EXIT.OK);
      } catch (e) {
        if (e instanceof TpmEnrolError) {
          ctx.io.err(`coffer kbs-client: TPM enrolment refused: ${e.code}: ${e.message}\n`);
          ctx.setExit(EXIT.REJECTED);
          return;
        }
        if (e instanceof TypeError && /fetch failed/.test(e.message)) throw new CliUsageError(`cannot reach ${base}: ${(e.cause as Error)?.message ?? e.message}`);
        throw e;
      } finally {
        await tpm.close();
      }
    });

  teeOpt(cmd.command('attest').description('run the RCAR handshake and print the attestation token'))
    .action(async (f: TeeFlags) => run(async () => {
      const p = await provider(f);
      ctx.io.out(`${await (await client(false)).attest(p.tee, p.provider)}\n`);
    })());

  teeOpt(cmd.command('get-resource').description('attest, fetch a resource, print it (standard base64, like Trustee\'s)'))
    .requiredOption('--path <repo/type/tag>', 'resource path')
    .option('--raw', 'print the raw bytes instead of base64')
    .action(async (f: TeeFlags & { path: string; raw?: boolean }) => run(async () => {
      const p = await provider(f);
      const c = await client(false);
      await c.attest(p.tee, p.provider);
      const v = await c.getResource(f.path);
      ctx.io.out(f.raw ? Buffer.from(v).toString('utf8') : `${Buffer.from(v).toString('base64')}\n`);
    })());

  cmd.command('set-resource').description('store a resource (admin)')
    .requiredOption('--path <repo/type/tag>', 'resource path')
    .requiredOption('--resource-file <file>', 'file with the secret bytes')
    .action(async (f: { path: string; resourceFile: string }) => run(async () => {
      await (await client(true)).setResource(f.path, await readArg(f.resourceFile, 'resource file'));
      ctx.io.out(`stored ${f.path}\n`);
    })());

  cmd.command('delete-resource').description('delete a resource (admin)')
    .requiredOption('--path <repo/type/tag>', 'resource path')
    .action(async (f: { path: string }) => run(async () => {
      await (await client(true)).deleteResource(f.path);
      ctx.io.out(`deleted ${f.path}\n`);
    })());

  cmd.command('get-resource-policy').description('print the resource policy (admin)')
    .action(async () => run(async () => {
      const p = await (await client(true)).getResourcePolicy();
      ctx.io.out(p.policy === null ? 'no resource policy (default deny)\n' : `${p.policy}\n`);
    })());

  cmd.command('set-resource-policy').description('set the resource policy (admin); Coffer JSON policy')
    .option('--policy-file <file>', 'policy file ({"rules":[...]})')
    .option('--allow-all', 'any valid attestation token may read any resource')
    .option('--deny-all', 'nobody may read any resource')
    .option('--affirming', 'tokens with ear.status affirming may read any resource')
    .action(async (f: { policyFile?: string; allowAll?: boolean; denyAll?: boolean; affirming?: boolean }) => run(async () => {
      const chosen = [f.policyFile, f.allowAll, f.denyAll, f.affirming].filter(Boolean).length;
      if (chosen !== 1) throw new CliUsageError('give exactly one of --policy-file, --allow-all, --deny-all, --affirming');
      const text = f.policyFile ? (await readArg(f.policyFile, 'policy file')).toString('utf8')
        : JSON.stringify(f.allowAll ? ALLOW_ALL : f.denyAll ? DENY_ALL : AFFIRMING);
      await (await client(true)).setResourcePolicy(text);
      ctx.io.out('resource policy set\n');
    })());

  cmd.command('set-attestation-policy').description('set an attestation policy (admin); Coffer YAML/JSON policy')
    .requiredOption('--policy-file <file>', 'policy file')
    .option('--id <id>', 'policy id', 'default_cpu')
    .option('--type <type>', 'policy type (coffer; rego is refused by Coffer)', 'coffer')
    .action(async (f: { policyFile: string; id: string; type: string }) => run(async () => {
      await (await client(true)).setAttestationPolicy((await readArg(f.policyFile, 'policy file')).toString('utf8'), f.id, f.type);
      ctx.io.out(`attestation policy ${f.id} set\n`);
    })());
}
