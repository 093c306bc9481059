import { createHash } from 'node:crypto';
import type { Kek } from './kek.js';
import type { DocumentKind, StoredDocument } from './types.js';

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
