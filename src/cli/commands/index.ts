import type { RegisterCommand } from '../context.js';

/**
 * Every `coffer` subcommand: its name, the one line `coffer --help` shows, and a loader that imports the command's
 * module only when that command is chosen. `coffer verify` thus never loads fastify, pg, better-sqlite3 or the
 * Kubernetes clients (test/cli/startup.test.ts checks), and esbuild gives each module its own chunk in dist/.
 *
 * Adding a command: write src/cli/commands/<name>.ts exporting `register<Name>(program, ctx)` (it declares the
 * command, its options and its action), then add one entry here. Keep the import dynamic (`await import(...)`):
 * a static import would pull the command's dependencies into every other command's start-up.
 */
export interface CommandEntry {
  name: string;
  summary: string;
  load: () => Promise<RegisterCommand>;
}

export const commandTable: readonly CommandEntry[] = [
  {
    name: 'verify',
    summary: 'verify TEE evidence offline: signatures, certificate chains, revocation, TCB status, policy',
    load: async () => (await import('./verify.js')).registerVerify,
  },
  {
    name: 'admit',
    summary: 'run the isolation-policy admission offline on a Pod manifest (like kyverno apply / gator test)',
    load: async () => (await import('./admit.js')).registerAdmit,
  },
  {
    name: 'webhook',
    summary: 'serve the isolation-policy admission webhook (HTTPS, AdmissionReview v1)',
    load: async () => (await import('./webhook.js')).registerWebhook,
  },
  {
    name: 'manifests',
    summary: 'print every Kubernetes object Coffer needs (CRDs, RBAC, webhook, controller, attestation, agent), validated',
    load: async () => (await import('./manifests.js')).registerManifests,
  },
  {
    name: 'eventlog',
    summary: 'parse and replay a TCG event log (binary_bios_measurements): events and PCR values per bank',
    load: async () => (await import('./eventlog.js')).registerEventlog,
  },
  {
    name: 'up',
    summary: 'run the attestation service and the key broker on localhost (SQLite under --data)',
    load: async () => (await import('./up.js')).registerUp,
  },
  {
    name: 'attestation',
    summary: 'run the attestation service: evidence in, EAR token out (JWKS, admin API)',
    load: async () => (await import('./up.js')).registerAttestation,
  },
  {
    name: 'kbs',
    summary: 'run the Trustee-compatible key broker (with the attestation service built in)',
    load: async () => (await import('./up.js')).registerKbs,
  },
  {
    name: 'admin-token',
    summary: "print an admin token (EdDSA JWT) signed by the data directory's admin key",
    load: async () => (await import('./admin-token.js')).registerAdminToken,
  },
  {
    name: 'kbs-client',
    summary: "talk to a KBS: attest, get/set resources, set policies (like Trustee's kbs-client)",
    load: async () => (await import('./kbs-client.js')).registerKbsClient,
  },
  {
    name: 'edgehub',
    summary: 'Edge hub: caching reverse proxy between node clients and the kube-apiserver; serves reads from its cache while the cloud link is down',
    load: async () => (await import('./edgehub.js')).registerEdgeHub,
  },
  {
    name: 'controller',
    summary: "Coffer's Kubernetes controllers (see coffer controller --help)",
    load: async () => (await import('./controller.js')).registerController,
  },
  {
    name: 'agent',
    summary: 'Node agent: TEE discovery → node labels (subcommands: sgx-device-plugin, tpm-device-plugin, quote-helper, stats, attest)',
    load: async () => (await import('./agent.js')).registerAgent,
  },
  {
    name: 'image',
    summary: 'verify container image signatures (cosign keyed/keyless, Sigstore bundles) against an image policy',
    load: async () => (await import('./image.js')).registerImage,
  },
  {
    name: 'status',
    summary: "the cluster's trust posture verified from outside: every node's TEE, trust state, expiry; the attestation service's identity",
    load: async () => (await import('./status.js')).registerStatus,
  },
  {
    name: 'node-trust',
    summary: 'node-trust helpers: learn reference values from a golden node',
    load: async () => (await import('./node-trust.js')).registerNodeTrust,
  },
];

export function findCommand(name: string | undefined): CommandEntry | undefined {
  return name === undefined ? undefined : commandTable.find((e) => e.name === name);
}

/** Every command's register function (tests that walk the whole command tree; never on a start-up path). */
export async function loadAllCommands(): Promise<RegisterCommand[]> {
  return Promise.all(commandTable.map((e) => e.load()));
}
