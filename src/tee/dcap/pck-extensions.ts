import { SGX_EXTENSION_OID } from './constants.js';
import { certExtension, type ParsedCert } from './pki.js';
import { children, oid, single } from '../common/der.js';

/**
 * Intel SGX extension of PCK certificates (OID 1.2.840.113741.1.13.1): a SEQUENCE OF SEQUENCE { OID, ANY }
 * (QVL AttestationParsers/src/X509/PckCertificate.cpp, Tcb.cpp), read with the strict DER reader of der.ts.
 */
export interface PckExtensions {
  ppid: Uint8Array;
  /** SGX TCB comp01..16 SVNs. */
  cpuSvnComponents: number[];
  pceSvn: number;
  cpuSvn: Uint8Array;
  pceId: string;
  fmspc: string;
  sgxType: number;
  platformInstanceId?: Uint8Array;
}

export class PckExtensionError extends Error {}

/** Value of a primitive DER TLV with the expected tag (INTEGER 0x02, OCTET STRING 0x04, ENUMERATED 0x0a...). */
function primitive(b: Uint8Array, tag: number, what: string): Uint8Array {
  if (b.length < 2 || b[0] !== tag) throw new PckExtensionError(`${what}: expected ASN.1 tag 0x${tag.toString(16)}`);
  let len = b[1];
  let off = 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n === 0 || n > 3 || b.length < 2 + n) throw new PckExtensionError(`${what}: bad length`);
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + b[2 + i];
    off = 2 + n;
  }
  if (off + len !== b.length) throw new PckExtensionError(`${what}: length mismatch`);
  return b.subarray(off);
}

function smallInt(raw: Uint8Array, tag: number, what: string): number {
  const v = primitive(raw, tag, what);
  if (v.length === 0 || v.length > 3 || (v[0] & 0x80) !== 0) throw new PckExtensionError(`${what}: not a small non-negative integer`);
  let n = 0;
  for (const x of v) n = n * 256 + x;
  return n;
}

function entries(raw: Uint8Array, what: string): Map<string, Uint8Array> {
  const m = new Map<string, Uint8Array>();
  try {
    for (const e of children(single(raw, 0x30, what).value)) {
      const kv = e.tag === 0x30 ? children(e.value) : [];
      if (kv.length !== 2) throw new Error('an entry is not a SEQUENCE { OID, value }');
      const id = oid(kv[0], what);
      if (m.has(id)) throw new PckExtensionError(`${what}: duplicate entry ${id}`);
      m.set(id, kv[1].raw);
    }
  } catch (e) {
    if (e instanceof PckExtensionError) throw e;
    throw new PckExtensionError(`${what}: not a SEQUENCE OF {OID, value}: ${(e as Error).message}`);
  }
  return m;
}

function need(m: Map<string, Uint8Array>, id: string, what: string): Uint8Array {
  const v = m.get(id);
  if (!v) throw new PckExtensionError(`${what} is missing (${id})`);
  return v;
}

export function parsePckExtensions(cert: ParsedCert): PckExtensions {
  const ext = certExtension(cert, SGX_EXTENSION_OID);
  if (!ext) throw new PckExtensionError('the PCK certificate has no SGX extension');
  const O = SGX_EXTENSION_OID;
  const top = entries(ext.value, 'SGX extension');
  const tcb = entries(primitiveSeq(need(top, `${O}.2`, 'SGX extension TCB')), 'SGX extension TCB');
  const comps: number[] = [];
  for (let i = 1; i <= 16; i++) comps.push(smallInt(need(tcb, `${O}.2.${i}`, `TCB comp${i}`), 0x02, `TCB comp${i}`));
  const cpuSvn = primitive(need(tcb, `${O}.2.18`, 'CPUSVN'), 0x04, 'CPUSVN');
  if (cpuSvn.length !== 16) throw new PckExtensionError('CPUSVN is not 16 bytes');
  const fmspc = primitive(need(top, `${O}.4`, 'FMSPC'), 0x04, 'FMSPC');
  if (fmspc.length !== 6) throw new PckExtensionError('FMSPC is not 6 bytes');
  const pceId = primitive(need(top, `${O}.3`, 'PCE-ID'), 0x04, 'PCE-ID');
  if (pceId.length !== 2) throw new PckExtensionError('PCE-ID is not 2 bytes');
  const out: PckExtensions = {
    ppid: primitive(need(top, `${O}.1`, 'PPID'), 0x04, 'PPID'),
    cpuSvnComponents: comps,
    pceSvn: smallInt(need(tcb, `${O}.2.17`, 'PCESVN'), 0x02, 'PCESVN'),
    cpuSvn,
    pceId: Buffer.from(pceId).toString('hex').toUpperCase(),
    fmspc: Buffer.from(fmspc).toString('hex').toUpperCase(),
    sgxType: smallInt(need(top, `${O}.5`, 'SGX Type'), 0x0a, 'SGX Type'),
  };
  const pi = top.get(`${O}.6`);
  if (pi) out.platformInstanceId = primitive(pi, 0x04, 'Platform Instance ID');
  return out;
}

/** The ANY value of the TCB entry is itself a SEQUENCE: hand its full TLV to the SEQUENCE OF reader. */
function primitiveSeq(raw: Uint8Array): Uint8Array {
  if (raw[0] !== 0x30) throw new PckExtensionError('SGX extension TCB is not a SEQUENCE');
  return raw;
}
