/** TPM 2.0 constants (TCG TPM 2.0 Library Part 2) used by the quote, public-key and event-log code. */

export const TPM_GENERATED_VALUE = 0xff544347;

export const TPM_ST = {
  ATTEST_CERTIFY: 0x8017,
  ATTEST_QUOTE: 0x8018,
  ATTEST_CREATION: 0x801a,
  NO_SESSIONS: 0x8001,
  SESSIONS: 0x8002,
} as const;

export const TPM_ALG = {
  RSA: 0x0001,
  SHA1: 0x0004,
  AES: 0x0006,
  SHA256: 0x000b,
  SHA384: 0x000c,
  SHA512: 0x000d,
  NULL: 0x0010,
  SM3_256: 0x0012,
  RSASSA: 0x0014,
  RSAPSS: 0x0016,
  ECDSA: 0x0018,
  ECC: 0x0023,
  CFB: 0x0043,
} as const;

export const TPM_ECC_CURVE = { NIST_P256: 0x0003, NIST_P384: 0x0004, NIST_P521: 0x0005 } as const;

export interface HashAlg {
  id: number;
  /** tpm2-tools / YAML name (sha1, sha256...). */
  name: string;
  /** node:crypto digest name. */
  node: string;
  size: number;
}

export const HASH_ALGS: readonly HashAlg[] = [
  { id: TPM_ALG.SHA1, name: 'sha1', node: 'sha1', size: 20 },
  { id: TPM_ALG.SHA256, name: 'sha256', node: 'sha256', size: 32 },
  { id: TPM_ALG.SHA384, name: 'sha384', node: 'sha384', size: 48 },
  { id: TPM_ALG.SHA512, name: 'sha512', node: 'sha512', size: 64 },
];

const HASH_BY_ID = new Map(HASH_ALGS.map((h) => [h.id, h]));
export function hashAlgById(id: number): HashAlg | undefined {
  return HASH_BY_ID.get(id);
}
export function hashAlgByName(name: string): HashAlg | undefined {
  return HASH_ALGS.find((h) => h.name === name.toLowerCase());
}

const ALG_NAMES = new Map<number, string>(Object.entries(TPM_ALG).map(([k, v]) => [v, k]));

export function algName(id: number): string {
  return ALG_NAMES.get(id) ?? `0x${id.toString(16).padStart(4, '0')}`;
}

/** Object attribute bits (TPMA_OBJECT). */
export const TPMA_OBJECT = {
  fixedTPM: 0x2,
  stClear: 0x4,
  fixedParent: 0x10,
  sensitiveDataOrigin: 0x20,
  userWithAuth: 0x40,
  adminWithPolicy: 0x80,
  noDA: 0x400,
  encryptedDuplication: 0x800,
  restricted: 0x10000,
  decrypt: 0x20000,
  sign: 0x40000,
} as const;

export function attributeNames(bits: number): string[] {
  return Object.entries(TPMA_OBJECT)
    .filter(([, v]) => (bits & v) !== 0)
    .map(([k]) => k);
}
