import type { DocumentKind, StoredDocument } from './types.js';

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
