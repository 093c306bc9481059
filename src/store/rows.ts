import type { DocumentKind, StoredDocument, TpmAkRecord, TpmChallengeRecord } from './types.js';
import { createHash } from 'node:crypto';
import type { Kek } from './kek.js';

export type Row = Record<string, unknown>;

/** AADs: a sealed value only opens under the record it was written for (no row swapping between paths). */
export const resourceAad = (path: string): string => path;
export const keyAad = (kid: string): string => `coffer:signing-key:${kid}`;

/**
 * Sessions hold bearer credentials (the KBS session id is the cookie, the attestation token is a Bearer token):
 * the row key is SHA-256 of the id and the data is sealed under the KEK, AAD = that key, so a copy of the
 * sessions table yields neither. A row in any other form (an older plaintext row) reads as absent: re-attest.
 */
export const sessionKey = (id: string): string => createHash('sha256').update(`coffer:session:${id}`).digest('hex');
const SEALED = 'sealed:v1:';

export function sealSession(kek: Kek, key: string, data: Record<string, unknown>): string {
  const { nonce, ciphertext } = kek.seal(Buffer.from(JSON.stringify(data), 'utf8'), `coffer:session:${key}`);
  return `${SEALED}${nonce.toString('base64')}.${ciphertext.toString('base64')}`;
}

export function openSession(kek: Kek, key: string, text: string): Record<string, unknown> | undefined {
  if (!text.startsWith(SEALED)) return undefined;
  const [n, c] = text.slice(SEALED.length).split('.');
  if (!n || !c) return undefined;
  const plain = kek.open(Buffer.from(n, 'base64'), Buffer.from(c, 'base64'), `coffer:session:${key}`);
  return JSON.parse(Buffer.from(plain).toString('utf8')) as Record<string, unknown>;
}

export function docRow(r: Row): StoredDocument {
  return {
    kind: String(r.kind) as DocumentKind, id: String(r.id), version: Number(r.version), body: String(r.body),
    createdAt: Number(r.created_at), actor: String(r.actor), deleted: Number(r.deleted) === 1,
  };
}

export function tpmAkRow(r: Row): TpmAkRecord {
  return {
    id: String(r.id), fingerprint: String(r.fingerprint), attester: String(r.attester), akPublic: new Uint8Array(r.ak_public as Buffer),
    akName: String(r.ak_name), ekFingerprint: String(r.ek_fingerprint), ekCertSubject: String(r.ek_cert_subject),
    ekCertIssuer: String(r.ek_cert_issuer), enrolledAt: Number(r.enrolled_at),
    revokedAt: r.revoked_at === null ? null : Number(r.revoked_at), revokedBy: r.revoked_by === null ? null : String(r.revoked_by),
  };
}

export function tpmChallengeRow(r: Row): TpmChallengeRecord {
  return { id: String(r.id), data: JSON.parse(String(r.data)), secretHash: String(r.secret_hash), expiresAt: Number(r.expires_at) };
}

export const TPM_AK_COLUMNS = 'id,fingerprint,attester,ak_public,ak_name,ek_fingerprint,ek_cert_subject,ek_cert_issuer,enrolled_at,revoked_at,revoked_by';

export function tpmAkValues(r: TpmAkRecord): unknown[] {
  return [r.id, r.fingerprint, r.attester, Buffer.from(r.akPublic), r.akName, r.ekFingerprint, r.ekCertSubject, r.ekCertIssuer, r.enrolledAt, r.revokedAt, r.revokedBy];
}
