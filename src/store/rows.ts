import type { DocumentKind, StoredDocument, TpmAkRecord, TpmChallengeRecord } from './types.js';

export type Row = Record<string, unknown>;

/** AADs: a sealed value only opens under the record it was written for (no row swapping between paths). */
export const resourceAad = (path: string): string => path;
export const keyAad = (kid: string): string => `coffer:signing-key:${kid}`;

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
