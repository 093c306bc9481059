import { createPublicKey, type KeyObject } from 'node:crypto';
import { EvidenceFormatError } from '../../common/errors.js';

/**
 * The HCL runtime data (the report's variable data): JSON with the vTPM keys as JWKs and the VM configuration,
 * e.g. `{"keys":[{"kid":"HCLAkPub","kty":"RSA","e":"AQAB","n":"…"},{"kid":"HCLEkPub",…}],
 * "vm-configuration":{…},"user-data":"<hex>"}`. Which members appear varies by HCL version (older reports carry
 * only HCLAkPub); only HCLAkPub is required.
 */
export interface RuntimeData {
  /** HCLAkPub as a minimal public JWK (kty/n/e or kty/crv/x/y): stable bytes for the AK cache. */
  akJwk: Record<string, string>;
  ak: KeyObject;
  /** HCLEkPub when present. */
  ekJwk?: Record<string, string>;
  vmConfiguration?: Record<string, unknown>;
  /** "user-data" (hex) when present: evidence v2 puts the verifier's report data there. */
  userData?: string;
  keyIds: string[];
}

const MIN_RSA_BITS = 2048;

function bad(msg: string): EvidenceFormatError {
  return new EvidenceFormatError('HCL_RUNTIME_DATA_MALFORMED', `HCL runtime data: ${msg}`);
}

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function publicJwk(k: Record<string, unknown>, kid: string): Record<string, string> {
  const pick = (names: string[]) => {
    const out: Record<string, string> = {};
    for (const n of names) {
      if (typeof k[n] !== 'string') throw bad(`${kid}.${n} is missing or not a string`);
      out[n] = k[n] as string;
    }
    return out;
  };
  if (k.kty === 'RSA') return pick(['kty', 'n', 'e']);
  if (k.kty === 'EC') return pick(['kty', 'crv', 'x', 'y']);
  throw bad(`${kid}.kty ${JSON.stringify(k.kty)} is neither RSA nor EC`);
}

export function parseRuntimeData(bytes: Uint8Array): RuntimeData {
  let doc: unknown;
  try {
    doc = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch (e) {
    throw bad(`is not UTF-8 JSON (${(e as Error).message})`);
  }
  if (!isObj(doc)) throw bad('is not a JSON object');
  if (!Array.isArray(doc.keys)) throw bad('has no "keys" array');
  const keys = doc.keys.filter(isObj);
  const find = (kid: string) => {
    const hits = keys.filter((k) => k.kid === kid);
    // Two keys with one kid would make "the bound AK" ambiguous.
    if (hits.length > 1) throw bad(`holds ${hits.length} keys with kid ${kid}`);
    return hits[0];
  };
  const akRaw = find('HCLAkPub');
  if (!akRaw) throw new EvidenceFormatError('HCL_AK_MISSING', 'HCL runtime data holds no HCLAkPub key');
  const akJwk = publicJwk(akRaw, 'HCLAkPub');
  let ak: KeyObject;
  try {
    ak = createPublicKey({ key: akJwk as never, format: 'jwk' });
  } catch (e) {
    throw bad(`HCLAkPub is not a valid public key (${(e as Error).message})`);
  }
  // A short RSA modulus would let anyone forge quotes: vTPM AKs are RSA-2048.
  const bits = ak.asymmetricKeyDetails?.modulusLength;
  if (ak.asymmetricKeyType === 'rsa' && (bits === undefined || bits < MIN_RSA_BITS)) throw bad(`HCLAkPub is a ${bits}-bit RSA key, shorter than ${MIN_RSA_BITS}`);
  const ekRaw = find('HCLEkPub');
  const userData = doc['user-data'];
  if (userData !== undefined && (typeof userData !== 'string' || !/^[0-9a-fA-F]*$/.test(userData) || userData.length % 2 !== 0)) {
    throw bad('"user-data" is not a hex string');
  }
  const vm = doc['vm-configuration'];
  return {
    akJwk,
    ak,
    ekJwk: ekRaw ? publicJwk(ekRaw, 'HCLEkPub') : undefined,
    vmConfiguration: isObj(vm) ? vm : undefined,
    userData: userData as string | undefined,
    keyIds: keys.map((k) => String(k.kid)),
  };
}
