import { EvidenceFormatError } from '../../common/errors.js';
import { ByteReader } from '../../common/reader.js';

/**
 * The certificate table returned with an extended report (SNP_GET_EXT_REPORT; GHCB spec 56421 "Certificate
 * table"): 24-byte entries {GUID[16], offset u32 LE, length u32 LE} closed by an all-zero entry, followed by the
 * certificates. Offsets count from the start of the buffer and must point past the table. GUID bytes are stored in
 * RFC 4122 text order (go-sev-guest ParseSnpCertTableHeader, virtee CertType).
 */
export const CERT_GUIDS = {
  vcek: '63da758d-e664-4564-adc5-f4b93be8accd',
  vlek: 'a8074bc2-a25a-483e-aae6-39c045a0b8a1',
  ask: '4ab7b379-bbac-4fe4-a02f-05aef327c782',
  ark: 'c0b406a4-a803-4952-9743-3fb6014cd0ae',
  crl: '92f81bc3-5811-4d3d-97ff-d19f88dc67ea',
} as const;
export type CertTableKind = keyof typeof CERT_GUIDS | 'other';

export interface CertTableEntry {
  guid: string;
  kind: CertTableKind;
  data: Uint8Array;
}

const ENTRY = 24;
const MAX_ENTRIES = 64;

function guidText(b: Uint8Array): string {
  const h = Buffer.from(b).toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

function guidBytes(g: string): Uint8Array {
  return new Uint8Array(Buffer.from(g.replace(/-/g, ''), 'hex'));
}

function bad(msg: string): EvidenceFormatError {
  return new EvidenceFormatError('CERT_TABLE_INVALID', `SEV-SNP certificate table ${msg}`);
}

export function parseCertTable(buf: Uint8Array): CertTableEntry[] {
  const r = new ByteReader(buf, 'SEV-SNP certificate table');
  const heads: { guid: string; offset: number; length: number }[] = [];
  for (;;) {
    if (heads.length > MAX_ENTRIES) throw bad(`has more than ${MAX_ENTRIES} entries or no terminating zero entry`);
    const g = r.bytes(16, 'entry GUID');
    const offset = r.u32le('entry offset');
    const length = r.u32le('entry length');
    if (g.every((x) => x === 0) && offset === 0 && length === 0) break;
    heads.push({ guid: guidText(g), offset, length });
  }
  const tableEnd = r.offset;
  const seen = new Set<string>();
  return heads.map(({ guid, offset, length }) => {
    if (seen.has(guid)) throw bad(`lists GUID ${guid} twice`);
    seen.add(guid);
    if (length === 0) throw bad(`entry ${guid} has length 0`);
    if (offset < tableEnd) throw bad(`entry ${guid} offset ${offset} points into the table (which ends at ${tableEnd})`);
    if (offset + length > buf.length) throw bad(`entry ${guid} (offset ${offset}, length ${length}) runs past the end (${buf.length} bytes)`);
    const kind = (Object.entries(CERT_GUIDS).find(([, v]) => v === guid)?.[0] ?? 'other') as CertTableKind;
    return { guid, kind, data: buf.subarray(offset, offset + length) };
  });
}

/** Builds a table (tests, and tools that repackage collateral). */
export function serializeCertTable(entries: { guid: string; data: Uint8Array }[]): Uint8Array {
  const header = (entries.length + 1) * ENTRY;
  const total = header + entries.reduce((n, e) => n + e.data.length, 0);
  const out = new Uint8Array(total);
  const dv = new DataView(out.buffer);
  let off = header;
  entries.forEach((e, i) => {
    out.set(guidBytes(e.guid), i * ENTRY);
    dv.setUint32(i * ENTRY + 16, off, true);
    dv.setUint32(i * ENTRY + 20, e.data.length, true);
    out.set(e.data, off);
    off += e.data.length;
  });
  return out;
}

/** Cheap sniff used when a collateral directory holds an unnamed binary file. */
export function looksLikeCertTable(buf: Uint8Array): boolean {
  if (buf.length < 2 * ENTRY) return false;
  const g = guidText(buf.subarray(0, 16));
  return (Object.values(CERT_GUIDS) as string[]).includes(g);
}
