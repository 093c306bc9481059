import { createHash, createPublicKey, type KeyObject } from 'node:crypto';
import { ImageError } from './errors.js';
import { Glob } from './glob.js';
import { parsePlatform, type Platform } from './oci.js';
import { SafeRegExp } from './safe-regexp.js';

/**
 * `IsolationPolicy.spec.images` (also the document `coffer image verify --policy` reads):
 *
 * ```yaml
 * images:
 *   repositories: ["registry.example.com/team/**"]   # globs over registry/path; absent = any repository
 *   platform: linux/amd64                            # picked from image indexes
 *   signers:                                         # a signature from ANY of them admits the image
 *     - name: release-key
 *       publicKey: |                                 # cosign keyed: ECDSA P-256, Ed25519 or RSA, PEM SPKI
 *         -----BEGIN PUBLIC KEY-----...
 *     - name: ci
 *       keyless:                                     # Fulcio certificate + Rekor entry, checked against the
 *         issuer: https://token.actions.githubusercontent.com   # trusted root given to the verifier
 *         subjectRegExp: "https://github.com/example/.*"
 * ```
 */
export interface ImageSignerSpec {
  name: string;
  publicKey?: string;
  keyless?: {
    issuer?: string;
    issuerRegExp?: string;
    subject?: string;
    subjectRegExp?: string;
    /** SCTs from the trusted root's CT logs required on the certificate (default 1, as cosign). */
    ctlogThreshold?: number;
  };
}

export interface ImagePolicySpec {
  repositories?: string[];
  platform?: string;
  signers: ImageSignerSpec[];
}

export const IMAGE_LIMITS = { signers: 16, repositories: 64, nameLength: 63, pemLength: 16 * 1024, urlLength: 1024 } as const;

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

function bad(where: string, msg: string): never {
  throw new ImageError('POLICY_INVALID', `${where}: ${msg}`);
}

function onlyKeys(o: Obj, keys: string[], where: string): void {
  for (const k of Object.keys(o)) if (!keys.includes(k)) bad(where, `unknown field "${k}" (allowed: ${keys.join(', ')})`);
}

function str(v: unknown, where: string, max: number): string {
  if (typeof v !== 'string' || v.length === 0 || v.length > max) bad(where, `must be a string of 1..${max} characters`);
  return v;
}

/** Checks the shape and compiles nothing yet beyond validating (compilePolicy does the work once per policy). */
export function checkImagePolicy(v: unknown, where: string): ImagePolicySpec {
  if (!isObj(v)) bad(where, 'must be an object');
  onlyKeys(v, ['repositories', 'platform', 'signers'], where);
  const out: ImagePolicySpec = { signers: [] };
  if (v.repositories !== undefined) {
    if (!Array.isArray(v.repositories) || v.repositories.length === 0 || v.repositories.length > IMAGE_LIMITS.repositories) bad(`${where}.repositories`, `must be a list of 1..${IMAGE_LIMITS.repositories} globs`);
    out.repositories = v.repositories.map((g, i) => str(g, `${where}.repositories[${i}]`, 256));
  }
  if (v.platform !== undefined) out.platform = str(v.platform, `${where}.platform`, 64);
  if (!Array.isArray(v.signers) || v.signers.length === 0 || v.signers.length > IMAGE_LIMITS.signers) bad(`${where}.signers`, `must be a list of 1..${IMAGE_LIMITS.signers} signers`);
  const names = new Set<string>();
  out.signers = v.signers.map((s, i) => {
    const w = `${where}.signers[${i}]`;
    if (!isObj(s)) bad(w, 'must be an object');
    onlyKeys(s, ['name', 'publicKey', 'keyless'], w);
    const name = str(s.name, `${w}.name`, IMAGE_LIMITS.nameLength);
    if (names.has(name)) bad(`${w}.name`, `"${name}" is used twice`);
    names.add(name);
    if ((s.publicKey === undefined) === (s.keyless === undefined)) bad(w, 'needs exactly one of publicKey or keyless');
    if (s.publicKey !== undefined) return { name, publicKey: str(s.publicKey, `${w}.publicKey`, IMAGE_LIMITS.pemLength) };
    const k = s.keyless;
    if (!isObj(k)) bad(`${w}.keyless`, 'must be an object');
    onlyKeys(k, ['issuer', 'issuerRegExp', 'subject', 'subjectRegExp', 'ctlogThreshold'], `${w}.keyless`);
    const keyless: NonNullable<ImageSignerSpec['keyless']> = {};
    for (const f of ['issuer', 'issuerRegExp', 'subject', 'subjectRegExp'] as const) if (k[f] !== undefined) keyless[f] = str(k[f], `${w}.keyless.${f}`, IMAGE_LIMITS.urlLength);
    if ((keyless.issuer === undefined) === (keyless.issuerRegExp === undefined)) bad(`${w}.keyless`, 'needs exactly one of issuer or issuerRegExp');
    if ((keyless.subject === undefined) === (keyless.subjectRegExp === undefined)) bad(`${w}.keyless`, 'needs exactly one of subject or subjectRegExp');
    if (k.ctlogThreshold !== undefined) {
      if (typeof k.ctlogThreshold !== 'number' || !Number.isInteger(k.ctlogThreshold) || k.ctlogThreshold < 0 || k.ctlogThreshold > 4) bad(`${w}.keyless.ctlogThreshold`, 'must be an integer 0..4');
      keyless.ctlogThreshold = k.ctlogThreshold;
    }
    return { name, keyless };
  });
  // Compile once here too, so a bad glob, key or pattern is a policy error at load time, not at admission.
  compileImagePolicy(out, where);
  return out;
}

export type CompiledSigner =
  | { name: string; kind: 'key'; key: KeyObject; keyType: 'ecdsa-p256' | 'ed25519' | 'rsa' }
  | { name: string; kind: 'keyless'; issuer: (s: string) => boolean; subject: (s: string) => boolean; issuerText: string; subjectText: string; ctlogThreshold: number };

export interface CompiledImagePolicy {
  /** Stable identity of the policy content: part of the verification cache key. */
  id: string;
  repositories?: Glob[];
  platform: Platform;
  signers: CompiledSigner[];
  needsTrustRoot: boolean;
}

export const DEFAULT_PLATFORM = 'linux/amd64';

export function compileImagePolicy(spec: ImagePolicySpec, where = 'images'): CompiledImagePolicy {
  const signers = spec.signers.map((s, i): CompiledSigner => {
    const w = `${where}.signers[${i}]`;
    if (s.publicKey !== undefined) {
      let key: KeyObject;
      try {
        key = createPublicKey(s.publicKey);
      } catch (e) {
        bad(`${w}.publicKey`, `not a PEM public key: ${(e as Error).message}`);
      }
      const t = key.asymmetricKeyType;
      if (t === 'ec' && key.asymmetricKeyDetails?.namedCurve === 'prime256v1') return { name: s.name, kind: 'key', key, keyType: 'ecdsa-p256' };
      if (t === 'ed25519') return { name: s.name, kind: 'key', key, keyType: 'ed25519' };
      if (t === 'rsa' && (key.asymmetricKeyDetails?.modulusLength ?? 0) >= 2048) return { name: s.name, kind: 'key', key, keyType: 'rsa' };
      bad(`${w}.publicKey`, `key type ${t}${key.asymmetricKeyDetails?.namedCurve ? ` (${key.asymmetricKeyDetails.namedCurve})` : ''} is not accepted (ECDSA P-256, Ed25519, RSA ≥ 2048)`);
    }
    const k = s.keyless!;
    const matcher = (exact: string | undefined, pattern: string | undefined, f: string) => {
      if (exact !== undefined) return (x: string) => x === exact;
      try {
        const re = new SafeRegExp(pattern!);
        return (x: string) => re.test(x);
      } catch (e) {
        bad(`${w}.keyless.${f}`, (e as Error).message);
      }
    };
    return {
      name: s.name,
      kind: 'keyless',
      issuer: matcher(k.issuer, k.issuerRegExp, 'issuerRegExp'),
      subject: matcher(k.subject, k.subjectRegExp, 'subjectRegExp'),
      issuerText: k.issuer ?? `/${k.issuerRegExp}/`,
      subjectText: k.subject ?? `/${k.subjectRegExp}/`,
      ctlogThreshold: k.ctlogThreshold ?? 1,
    };
  });
  let repositories: Glob[] | undefined;
  try {
    repositories = spec.repositories?.map((g) => new Glob(g));
  } catch (e) {
    bad(`${where}.repositories`, (e as Error).message);
  }
  let platform: Platform;
  try {
    platform = parsePlatform(spec.platform ?? DEFAULT_PLATFORM);
  } catch (e) {
    bad(`${where}.platform`, (e as Error).message);
  }
  const id = createHash('sha256').update(JSON.stringify(spec)).digest('hex').slice(0, 32);
  return { id, repositories, platform, signers, needsTrustRoot: signers.some((s) => s.kind === 'keyless') };
}

/** Loads a standalone image policy file: an IsolationPolicy (its spec.images) or a bare {images: …} / images object. */
export function imagePolicyFromDocument(doc: unknown, where: string): ImagePolicySpec {
  if (isObj(doc) && doc.kind === 'IsolationPolicy') {
    const spec = doc.spec;
    if (!isObj(spec) || spec.images === undefined) bad(where, 'this IsolationPolicy has no spec.images');
    return checkImagePolicy(spec.images, `${where}.spec.images`);
  }
  if (isObj(doc) && doc.images !== undefined) return checkImagePolicy(doc.images, `${where}.images`);
  return checkImagePolicy(doc, where);
}
