/**
 * Every command (except verify/eventlog, tested with their own batch semantics) with each kind of bad input: exit 2,
 * exactly one line on stderr, no stack trace, no secret echoed, no process left behind, nothing written that should
 * not be. Table-driven: one row per (command, bad input).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { generateKeyPairSync } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cli } from '../support/cli.js';
import { createTestCa } from '../support/tls.js';

const dir = mkdtempSync(join(tmpdir(), 'coffer-badinput-'));
const p = (...x: string[]) => join(dir, ...x);

/** Child processes of this test process (a swtpm or server a failed start forgot). */
function children(): number[] {
  const out: number[] = [];
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const stat = readFileSync(`/proc/${e}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      // tsx's esbuild service is the test runner's own helper (it may start lazily), not something a command left.
      if (ppid === process.pid && !readFileSync(`/proc/${e}/comm`, 'utf8').startsWith('esbuild')) out.push(Number(e));
    } catch {
      // exited meanwhile
    }
  }
  return out;
}

/** A listing of a directory tree with sizes and modes: "nothing changed on disk" is a comparison of two. */
function snapshot(root: string): string {
  if (!existsSync(root)) return '(absent)';
  const lines: string[] = [];
  const walk = (d: string) => {
    const st = statSync(d);
    lines.push(`${d} ${(st.mode & 0o7777).toString(8)}${st.isFile() ? ` ${st.size}` : ''}`);
    if (st.isDirectory()) for (const e of readdirSync(d).sort()) walk(join(d, e));
  };
  walk(root);
  return lines.join('\n');
}

const PEM_KEY = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();
const KEY_BODY = PEM_KEY.split('\n')[1];
const RSA_KEY = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();
const ALIAS_BOMB = ['a: &a ["x","x","x","x","x","x","x","x","x"]', ...Array.from({ length: 8 }, (_, i) => `${String.fromCharCode(98 + i)}: &${String.fromCharCode(98 + i)} [*${String.fromCharCode(97 + i)},*${String.fromCharCode(97 + i)},*${String.fromCharCode(97 + i)},*${String.fromCharCode(97 + i)},*${String.fromCharCode(97 + i)},*${String.fromCharCode(97 + i)},*${String.fromCharCode(97 + i)},*${String.fromCharCode(97 + i)},*${String.fromCharCode(97 + i)}]`)].join('\n');

interface Row {
  name: string;
  args: () => string[];
  /** stderr must match this (names the file or flag and the cause). */
  err: RegExp;
  /** A directory that must be byte-for-byte (names, sizes, modes) unchanged by the failed command. */
  unchanged?: string;
  /** A string that must never appear in stderr or stdout (a secret, a file's content). */
  secret?: string;
  env?: Record<string, string | undefined>;
}

let busy: Server;
/** Children that exist before any row runs (tsx's esbuild service): not leftovers. */
let baseline: number[] = [];
let busyPort = 0;
let closedPort = 0;
let rsaCert = '';

before(async () => {
  busy = createServer();
  await new Promise<void>((r) => busy.listen(0, '127.0.0.1', r));
  busyPort = (busy.address() as { port: number }).port;
  const gone = createServer();
  await new Promise<void>((r) => gone.listen(0, '127.0.0.1', r));
  closedPort = (gone.address() as { port: number }).port;
  await new Promise((r) => gone.close(r));
  writeFileSync(p('garbage.txt'), 'this is not what you think\n');
  writeFileSync(p('empty.yaml'), '');
  writeFileSync(p('blank.yaml'), '  \n\n');
  writeFileSync(p('private.pem'), PEM_KEY, { mode: 0o600 });
  writeFileSync(p('rsa.pem'), RSA_KEY, { mode: 0o600 });
  writeFileSync(p('alias-bomb.yaml'), `${ALIAS_BOMB}\n`);
  writeFileSync(p('deep.yaml'), `${'['.repeat(1000)}${']'.repeat(1000)}\n`);
  writeFileSync(p('deep-pod.json'), `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"x","annotations":${'{"a":'.repeat(10_000)}1${'}'.repeat(10_000)}}}`);
  writeFileSync(p('huge.json'), Buffer.alloc(5 * 1024 * 1024, 0x20));
  writeFileSync(p('policy.yaml'), 'apiVersion: coffer.dev/v1alpha1\nkind: IsolationPolicy\nmetadata: {name: p}\nspec: {}\n');
  writeFileSync(p('pod.yaml'), 'apiVersion: v1\nkind: Pod\nmetadata: {name: x, namespace: default}\nspec: {containers: [{name: c, image: busybox}]}\n');
  writeFileSync(p('a-file'), 'x');
  execFileSync('mkfifo', [p('fifo')]); // a FIFO nobody writes to: opening it for reading would block forever
  // A data dir whose SQLite file is garbage, and one whose KEK is empty although the store holds data.
  mkdirSync(p('corrupt-db'), { mode: 0o755 });
  chmodSync(p('corrupt-db'), 0o755);
  writeFileSync(p('corrupt-db', 'coffer.db'), 'SQLite format 3\0 but then garbage '.repeat(200));
  mkdirSync(p('empty-kek', 'keys'), { recursive: true, mode: 0o700 });
  writeFileSync(p('empty-kek', 'coffer.db'), 'something already stored', { mode: 0o600 });
  writeFileSync(p('empty-kek', 'keys', 'kek'), '');
  mkdirSync(p('garbage-admin', 'keys'), { recursive: true, mode: 0o700 });
  writeFileSync(p('garbage-admin', 'keys', 'admin.key'), `${PEM_KEY.replace(/[A-Z]/g, 'x')}`);
  writeFileSync(p('kubeconfig-garbage'), ': : not yaml [');
  writeFileSync(p('kubeconfig-nocluster'), 'apiVersion: v1\nkind: Config\nclusters: []\ncontexts: []\nusers: []\n');
  mkdirSync(p('home'));
  const ca = await createTestCa('bad-input CA');
  const leaf = await ca.issue({ cn: 'localhost' });
  writeFileSync(p('ec.crt'), leaf.certPem);
  rsaCert = p('ec.crt');
  baseline = children();
});

after(async () => {
  await new Promise((r) => busy.close(r));
  rmSync(dir, { recursive: true, force: true });
});

const up = (...a: string[]) => ['up', '--port', '0', '--swtpm', 'off', '--pcs-url', 'off', '--kds-url', 'off', ...a];

const rows: Row[] = [
  // ---- coffer up: data dirs, stores, keys, flags, ports ----
  { name: 'up: --data is a file', args: () => up('--data', p('a-file')), err: /--data '.*a-file': not a directory/, unchanged: p('a-file') },
  { name: 'up: --data under a file (not a directory)', args: () => up('--data', p('a-file', 'sub')), err: /--data '.*a-file\/sub': .*(ENOTDIR|ENOENT|not a directory)/ },
  { name: 'up: --data under /proc does not spin', args: () => up('--data', '/proc/self/nope/data'), err: /--data '\/proc\/self\/nope\/data': .*ENOENT/ },
  { name: 'up: corrupt SQLite file (dir mode kept)', args: () => up('--data', p('corrupt-db')), err: /cannot open the store .*coffer\.db: .*(not a database|SQLITE_NOTADB|malformed|corrupt)/i },
  { name: 'up: empty KEK with data in the store', args: () => up('--data', p('empty-kek')), err: /key-encryption key '.*kek' is empty but the store already holds data/, unchanged: p('empty-kek') },
  { name: 'up: --kek-file is a device', args: () => up('--data', p('d-kek-dev'), '--kek-file', '/dev/zero'), err: /--kek-file '\/dev\/zero': is not a regular file/ },
  { name: 'up: --kek-file garbage', args: () => up('--data', p('d-kek-garbage'), '--kek-file', p('private.pem')), err: /--kek-file '.*private\.pem': the key-encryption key must be/, secret: KEY_BODY },
  { name: 'up: --store with an unknown scheme', args: () => up('--data', p('d-store'), '--store', 'mysql://root:hunter2@db/x'), err: /--store: scheme 'mysql:' is not supported/, unchanged: p('d-store'), secret: 'hunter2' },
  { name: 'up: COFFER_STORE_URL PostgreSQL unreachable, password not shown', args: () => up('--data', p('d-pg')), env: { COFFER_STORE_URL: 'postgres://coffer:s3cretpw@127.0.0.1:1/coffer' }, err: /cannot open the store postgres:\/\/coffer:\*\*\*@127\.0\.0\.1:1\/coffer: /, secret: 's3cretpw' },
  { name: 'up: --public-url not http(s)', args: () => up('--data', p('d-url'), '--public-url', 'ftp://example'), err: /--public-url 'ftp:\/\/example' is not an http\(s\) URL/, unchanged: p('d-url') },
  { name: 'up: --public-url garbage', args: () => up('--data', p('d-url'), '--public-url', 'not a url'), err: /--public-url 'not a url' is not a URL/, unchanged: p('d-url') },
  { name: 'up: --pcs-url garbage', args: () => up('--data', p('d-url'), '--pcs-url', 'https://exa mple'), err: /--pcs-url/, unchanged: p('d-url') },
  { name: 'up: --trust-anchor not a certificate', args: () => up('--data', p('d-ta'), '--trust-anchor', p('private.pem')), err: /--trust-anchor '.*private\.pem' is not an X\.509 certificate/, unchanged: p('d-ta'), secret: KEY_BODY },
  { name: 'up: --trust-anchor a device', args: () => up('--data', p('d-ta'), '--trust-anchor', '/dev/urandom'), err: /--trust-anchor '\/dev\/urandom': is not a regular file/, unchanged: p('d-ta') },
  { name: 'up: --trust-anchor missing', args: () => up('--data', p('d-ta'), '--trust-anchor', p('nope.pem')), err: /--trust-anchor '.*nope\.pem': no such file/, unchanged: p('d-ta') },
  { name: 'up: --collateral-config over the size cap', args: () => up('--data', p('d-cc'), '--collateral-config', p('huge.json')), err: /--collateral-config '.*huge\.json' is larger than the \d+-byte limit/, unchanged: p('d-cc') },
  { name: 'up: --collateral-refresh-minutes beyond a timer', args: () => up('--data', p('d-t'), '--collateral-refresh-minutes', '60000'), err: /--collateral-refresh-minutes '60000' is not a number of minutes between 0 and 35791/, unchanged: p('d-t') },
  { name: 'up: --collateral-refresh-minutes negative', args: () => up('--data', p('d-t'), '--collateral-refresh-minutes', '-1'), err: /--collateral-refresh-minutes '-1'/, unchanged: p('d-t') },
  { name: 'up: --rotate-keys-hours negative', args: () => up('--data', p('d-t'), '--rotate-keys-hours', '-5'), err: /--rotate-keys-hours '-5'/, unchanged: p('d-t') },
  { name: 'up: --audit-retention-days huge', args: () => up('--data', p('d-t'), '--audit-retention-days', '1e300'), err: /--audit-retention-days '1e300'/, unchanged: p('d-t') },
  { name: 'up: --token-ttl zero', args: () => up('--data', p('d-t'), '--token-ttl', '0s'), err: /--token-ttl '0s' is not a positive duration/, unchanged: p('d-t') },
  { name: 'up: --token-ttl over a day', args: () => up('--data', p('d-t'), '--token-ttl', '25h'), err: /--token-ttl '25h' is too long \(at most 24h\)/, unchanged: p('d-t') },
  { name: 'up: --token-ttl not whole seconds', args: () => up('--data', p('d-t'), '--token-ttl', '1500ms'), err: /--token-ttl '1500ms' must be a whole number of seconds/, unchanged: p('d-t') },
  { name: 'up: --token-ttl garbage', args: () => up('--data', p('d-t'), '--token-ttl', 'forever'), err: /--token-ttl 'forever' is not a positive duration/, unchanged: p('d-t') },
  { name: 'up: --admin-keys not a key', args: () => up('--data', p('d-t'), '--admin-keys', p('huge.json')), err: /--admin-keys '.*huge\.json'/, unchanged: p('d-t') },
  { name: 'up: --node-trust-audit-key an RSA key', args: () => up('--data', p('d-t'), '--node-trust-audit-key', p('rsa.pem')), err: /--node-trust-audit-key '.*rsa\.pem': key #1 is not usable: a rsa key \(Ed25519 or P-256 only\)/, unchanged: p('d-t'), secret: RSA_KEY.split('\n')[1] },
  { name: 'up: --port not a port', args: () => up('--data', p('d-t'), '--port', '70000'), err: /--port '70000' is not a TCP port/, unchanged: p('d-t') },
  { name: 'up: port in use', args: () => ['up', '--swtpm', 'off', '--pcs-url', 'off', '--kds-url', 'off', '--data', p('d-busy'), '--port', String(busyPort)], err: /cannot listen on --host 127\.0\.0\.1 --port \d+: address already in use/ },
  { name: 'up: --host that does not resolve', args: () => up('--data', p('d-host'), '--host', 'no-such-host.invalid'), err: /cannot listen on --host no-such-host\.invalid --port 0: (host not found|EAI_AGAIN)/ },
  { name: 'up: --tls-cert/--tls-key of different algorithms', args: () => up('--data', p('d-tls'), '--tls-cert', rsaCert, '--tls-key', p('rsa.pem')), err: /cannot use --tls-cert '.*ec\.crt' \/ --tls-key '.*rsa\.pem': the certificate has a ec key but the private key is rsa/, unchanged: p('d-tls'), secret: RSA_KEY.split('\n')[1] },
  { name: 'up: --tls-cert garbage', args: () => up('--data', p('d-tls'), '--tls-cert', p('garbage.txt'), '--tls-key', p('private.pem')), err: /--tls-cert '.*garbage\.txt' is not an X\.509 certificate/, unchanged: p('d-tls'), secret: 'this is not what you think' },
  { name: 'up: --swtpm bad mode', args: () => ['up', '--port', '0', '--data', p('d-t'), '--swtpm', 'sometimes'], err: /--swtpm 'sometimes' is not auto, on or off/, unchanged: p('d-t') },
  // ---- admin-token ----
  { name: 'admin-token: no data dir', args: () => ['admin-token', '--data', p('nowhere')], err: /no admin key at .*nowhere\/keys\/admin\.key/, unchanged: p('nowhere') },
  { name: 'admin-token: garbage admin key', args: () => ['admin-token', '--data', p('garbage-admin')], err: /admin private key '.*admin\.key' is not a PEM private key/, unchanged: p('garbage-admin'), secret: 'xxxxx' },
  { name: 'admin-token: --ttl negative', args: () => ['admin-token', '--data', p('garbage-admin'), '--ttl', '-1'], err: /--ttl must be a positive number of seconds/ },
  // ---- kbs-client ----
  { name: 'kbs-client: --admin-token-file holds a private key (never printed)', args: () => ['kbs-client', '--url', 'http://127.0.0.1:1', '--admin-token-file', p('private.pem'), 'get-resource-policy'], err: /--admin-token-file '.*private\.pem' does not hold a JWT/, secret: KEY_BODY },
  { name: 'kbs-client: --admin-token garbage', args: () => ['kbs-client', '--url', 'http://127.0.0.1:1', '--admin-token', 'a b\nc', 'get-resource-policy'], err: /--admin-token does not hold a JWT/ },
  { name: 'kbs-client: --admin-token-file is a directory', args: () => ['kbs-client', '--url', 'http://127.0.0.1:1', '--admin-token-file', dir, 'get-resource-policy'], err: /--admin-token-file '.*': is a directory/ },
  { name: 'kbs-client: --auth-private-key not Ed25519', args: () => ['kbs-client', '--url', 'http://127.0.0.1:1', '--auth-private-key', p('rsa.pem'), 'get-resource-policy'], err: /admin private key '.*rsa\.pem' is a rsa key, not Ed25519/, secret: RSA_KEY.split('\n')[1] },
  { name: 'kbs-client: --auth-private-key garbage', args: () => ['kbs-client', '--url', 'http://127.0.0.1:1', '--auth-private-key', p('garbage.txt'), 'get-resource-policy'], err: /admin private key '.*garbage\.txt' is not a PEM private key/, secret: 'this is not what you think' },
  { name: 'kbs-client: --url not http(s)', args: () => ['kbs-client', '--url', 'ftp://x', 'attest'], err: /--url 'ftp:\/\/x' is not an http\(s\) URL/ },
  { name: 'kbs-client: nothing listening', args: () => ['kbs-client', '--url', `http://127.0.0.1:${closedPort}`, 'attest'], err: /cannot reach http:\/\/127\.0\.0\.1:\d+: connection refused/ },
  { name: 'kbs-client: bad host', args: () => ['kbs-client', '--url', 'http://no-such-host.invalid:8080', 'attest'], err: /cannot reach http:\/\/no-such-host\.invalid:8080: / },
  { name: 'kbs-client: invalid policy id', args: () => ['kbs-client', '--url', 'http://127.0.0.1:1', '--admin-token', 'a.b.c', 'set-attestation-policy', '--policy-file', p('policy.yaml'), '--id', 'bad id!'], err: /--id 'bad id!' is not a valid policy id/ },
  { name: 'kbs-client: empty policy file', args: () => ['kbs-client', '--url', 'http://127.0.0.1:1', '--admin-token', 'a.b.c', 'set-attestation-policy', '--policy-file', p('blank.yaml')], err: /--policy-file '.*blank\.yaml' is empty/ },
  { name: 'kbs-client: empty resource policy file', args: () => ['kbs-client', '--url', 'http://127.0.0.1:1', '--admin-token', 'a.b.c', 'set-resource-policy', '--policy-file', p('empty.yaml')], err: /--policy-file '.*empty\.yaml' is empty/ },
  { name: 'kbs-client: policy file is a device', args: () => ['kbs-client', '--url', 'http://127.0.0.1:1', '--admin-token', 'a.b.c', 'set-attestation-policy', '--policy-file', '/dev/zero'], err: /--policy-file '\/dev\/zero': is not a regular file/ },
  { name: 'kbs-client: resource over the cap', args: () => ['kbs-client', '--url', 'http://127.0.0.1:1', '--admin-token', 'a.b.c', 'set-resource', '--path', 'a/b/c', '--resource-file', p('huge.json')], err: /--resource-file '.*huge\.json' is larger than the \d+-byte limit/ },
  { name: 'kbs-client: --cert-file garbage', args: () => ['kbs-client', '--url', 'https://127.0.0.1:1', '--cert-file', p('garbage.txt'), 'attest'], err: /--cert-file '.*garbage\.txt' is not a PEM certificate/, secret: 'this is not what you think' },
  { name: 'kbs-client: --sample-key garbage', args: () => ['kbs-client', '--url', 'http://127.0.0.1:1', 'attest', '--sample-key', p('private.pem')], err: /--sample-key '.*private\.pem' is not a JSON JWK/, secret: KEY_BODY },
  // ---- admit / manifests / webhook ----
  { name: 'admit: pod missing', args: () => ['admit', p('nope.yaml'), '--policy', p('policy.yaml')], err: /cannot read pod '.*nope\.yaml': no such file/ },
  { name: 'admit: pod is a YAML alias bomb', args: () => ['admit', p('alias-bomb.yaml'), '--policy', p('policy.yaml')], err: /alias-bomb\.yaml.*(alias|Excessive)/i },
  { name: 'admit: pod nested 10,000 deep', args: () => ['admit', p('deep-pod.json'), '--policy', p('policy.yaml')], err: /deep-pod\.json: nested more than 64 levels deep/ },
  { name: 'admit: pod over the size cap', args: () => ['admit', p('huge.json'), '--policy', p('policy.yaml')], err: /pod '.*huge\.json' is larger than the \d+-byte limit/ },
  { name: 'admit: pod is a FIFO (no hang)', args: () => ['admit', p('fifo'), '--policy', p('policy.yaml')], err: /cannot read pod '.*fifo': is not a regular file/ },
  { name: 'admit: pod is a /proc file that does not exist', args: () => ['admit', '/proc/self/no-such', '--policy', p('policy.yaml')], err: /cannot read pod '\/proc\/self\/no-such': no such file/ },
  { name: 'admit: policy is a directory', args: () => ['admit', p('pod.yaml'), '--policy', dir], err: /cannot read policy '.*': is a directory/ },
  { name: 'manifests: --values alias bomb', args: () => ['manifests', '--values', p('alias-bomb.yaml')], err: /alias-bomb\.yaml: not valid YAML: .*(alias|Excessive)/i },
  { name: 'manifests: --values nested deep', args: () => ['manifests', '--values', p('deep.yaml')], err: /deep\.yaml: not valid YAML: nested more than 64 levels deep/ },
  { name: 'webhook: --cert missing', args: () => ['webhook', '--cert', p('nope.crt'), '--key', p('private.pem'), '--port', '0', '--host', '127.0.0.1'], err: /cannot read --cert '.*nope\.crt': no such file/ },
  { name: 'webhook: --policy garbage', args: () => ['webhook', '--cert', rsaCert, '--key', p('private.pem'), '--policy', p('garbage.txt')], err: /garbage\.txt/, secret: KEY_BODY },
  { name: 'webhook: --from-cluster with a garbage kubeconfig', args: () => ['webhook', '--cert', rsaCert, '--key', p('private.pem'), '--from-cluster', '--kubeconfig', p('kubeconfig-garbage')], err: /--kubeconfig '.*kubeconfig-garbage' could not be loaded/ },
  // ---- controller / agent / edgehub ----
  { name: 'controller: no kubeconfig anywhere', args: () => ['controller'], env: { KUBECONFIG: undefined, HOME: p('home'), KUBERNETES_SERVICE_HOST: undefined }, err: /no kubeconfig: pass --kubeconfig, set KUBECONFIG, create ~\/\.kube\/config, or run in a cluster/ },
  { name: 'controller: kubeconfig without a cluster', args: () => ['controller', '--kubeconfig', p('kubeconfig-nocluster')], err: /kubeconfig '.*kubeconfig-nocluster' has no current cluster/ },
  { name: 'controller: kubeconfig is a device', args: () => ['controller', '--kubeconfig', '/dev/zero'], err: /--kubeconfig '\/dev\/zero': is not a regular file/ },
  { name: 'controller: kubeconfig is an alias bomb', args: () => ['controller', '--kubeconfig', p('alias-bomb.yaml')], err: /alias-bomb\.yaml/ },
  { name: 'controller: --cert-validity beyond 10 years', args: () => ['controller', '--kubeconfig', p('kubeconfig-nocluster'), '--cert-validity', '100000h'], err: /--cert-validity '100000h' is too long/ },
  { name: 'agent: no kubeconfig anywhere', args: () => ['agent', '--node-name', 'n1'], env: { KUBECONFIG: undefined, HOME: p('home'), KUBERNETES_SERVICE_HOST: undefined }, err: /no kubeconfig/ },
  { name: 'agent: --interval beyond a timer', args: () => ['agent', '--node-name', 'n1', '--interval', '600h'], err: /--interval '600h' is too long/ },
  { name: 'agent: --interval negative', args: () => ['agent', '--node-name', 'n1', '--interval', '-1s'], err: /--interval '-1s' is not a positive duration/ },
  { name: 'agent quote-helper: unusable --socket-dir', args: () => ['agent', 'quote-helper', '--socket-dir', p('a-file'), '--tsm-dir', dir], err: /cannot listen on .*a-file\/coffer-quote\.sock \(--socket-dir\): / },
  { name: 'edgehub: --cache-dir is a file', args: () => ['edgehub', '--server', 'http://127.0.0.1:1', '--listen', '127.0.0.1:0', '--cache-dir', p('a-file')], err: /--cache-dir '.*a-file': not a directory/ },
  { name: 'edgehub: --cache-dir cannot be created', args: () => ['edgehub', '--server', 'http://127.0.0.1:1', '--listen', '127.0.0.1:0', '--cache-dir', '/proc/self/nope/cache'], err: /--cache-dir '\/proc\/self\/nope\/cache': .*ENOENT/ },
  { name: 'edgehub: --health-interval beyond a timer', args: () => ['edgehub', '--server', 'http://127.0.0.1:1', '--health-interval', '9999h'], err: /--health-interval '9999h' is too long/ },
  { name: 'edgehub: port in use', args: () => ['edgehub', '--server', 'http://127.0.0.1:1', '--listen', `127.0.0.1:${busyPort}`, '--probe-timeout', '200ms'], err: /cannot start the edge hub \(--listen 127\.0\.0\.1:\d+\): address already in use/ },
];

describe('bad input: one line, exit 2, no stack, nothing left behind', () => {
  for (const row of rows) {
    test(row.name, async () => {
      const before = row.unchanged ? snapshot(row.unchanged) : '';
      const saved: Record<string, string | undefined> = {};
      for (const [k, v] of Object.entries(row.env ?? {})) {
        saved[k] = process.env[k];
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
      }
      let r;
      try {
        r = await cli(row.args());
      } finally {
        for (const [k, v] of Object.entries(saved)) {
          if (v === undefined) delete process.env[k];
          else process.env[k] = v;
        }
      }
      if (process.env.SHOW_ERR) console.log(`${row.name}\n    ${r.err.trim()}`);
      assert.equal(r.code, 2, `exit code (stderr: ${r.err.slice(0, 500)})`);
      const lines = r.err.split('\n').filter((l) => l !== '');
      assert.equal(lines.length, 1, `exactly one line on stderr, got:\n${r.err.slice(0, 2000)}`);
      assert.doesNotMatch(r.err, /^\s+at /m, 'no stack trace');
      assert.ok(r.err.length < 600, `short message (${r.err.length} chars)`);
      assert.match(r.err, row.err);
      if (row.secret) assert.ok(!r.err.includes(row.secret) && !r.out.includes(row.secret), 'never echoes the secret / file content');
      if (row.unchanged) assert.equal(snapshot(row.unchanged), before, 'nothing changed on disk');
      assert.deepEqual(children().filter((c) => !baseline.includes(c)), [], 'no process left behind');
    });
  }
});

test('a corrupt SQLite data dir keeps its mode (0755) after the failed start', () => {
  assert.equal(statSync(p('corrupt-db')).mode & 0o777, 0o755);
});

test('--store with a password: a warning that it shows in ps, and the password never printed', async () => {
  const r = await cli(up('--data', p('d-pg2'), '--store', 'postgres://coffer:s3cretpw@127.0.0.1:1/coffer'));
  assert.equal(r.code, 2);
  const lines = r.err.trim().split('\n');
  assert.equal(lines.length, 2, r.err);
  assert.match(lines[0], /warning: --store carries a password, which every local user can read in `ps`; set COFFER_STORE_URL instead/);
  assert.match(lines[1], /cannot open the store postgres:\/\/coffer:\*\*\*@127\.0\.0\.1:1\/coffer/);
  assert.ok(!r.err.includes('s3cretpw'));
});
