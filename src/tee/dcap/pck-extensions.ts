import { AsnArray, AsnParser, AsnProp, AsnPropTypes, AsnType, AsnTypeTypes } from '@peculiar/asn1-schema';
import { SGX_EXTENSION_OID } from './constants.js';
import { certExtension, type ParsedCert } from './pki.js';

/**
 * Intel SGX extension of PCK certificates (OID 1.2.840.113741.1.13.1): a SEQUENCE OF SEQUENCE { OID, ANY }
 * (QVL AttestationParsers/src/X509/PckCertificate.cpp, Tcb.cpp). Decorators are applied as plain calls so the
 * schema needs no experimentalDecorators compiler flag.
 */
class SgxEntry {
  id = '';
  value: ArrayBuffer = new ArrayBuffer(0);
}
AsnProp({ type: AsnPropTypes.ObjectIdentifier })(SgxEntry.prototype, 'id');
AsnProp({ type: AsnPropTypes.Any })(SgxEntry.prototype, 'value');

class SgxEntries extends AsnArray<SgxEntry> {
  constructor(items?: SgxEntry[]) {
    super(items);
    Object.setPrototypeOf(this, SgxEntries.prototype);
  }
}
AsnType({ type: AsnTypeTypes.Sequence, itemType: SgxEntry })(SgxEntries);

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
function primitive(raw: ArrayBuffer, tag: number, what: string): Uint8Array {
  const b = new Uint8Array(raw);
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

function smallInt(raw: ArrayBuffer, tag: number, what: string): number {
  const v = primitive(raw, tag, what);
  if (v.length === 0 || v.length > 3 || (v[0] & 0x80) !== 0) throw new PckExtensionError(`${what}: not a small non-negative integer`);
  let n = 0;
  for (const x of v) n = n * 256 + x;
  return n;
}

function entries(raw: ArrayBuffer | Uint8Array, what: string): Map<string, ArrayBuffer> {
  let list: SgxEntries;
  try {
    list = AsnParser.parse(raw, SgxEntries);
  } catch (e) {
    throw new PckExtensionError(`${what}: not a SEQUENCE OF {OID, value}: ${(e as Error).message}`);
  }
  const m = new Map<string, ArrayBuffer>();
  for (const e of list) {
    if (m.has(e.id)) throw new PckExtensionError(`${what}: duplicate entry ${e.id}`);
    m.set(e.id, e.value);
  }
  return m;
}

function need(m: Map<string, ArrayBuffer>, oid: string, what: string): ArrayBuffer {
  const v = m.get(oid);
  if (!v) throw new PckExtensionError(`${what} is missing (${oid})`);
  return v;
}

export function parsePckExtensions(cert: ParsedCert): PckExtensions {
  const ext = certExtension(cert, SGX_EXTENSION_OID);
  if (!ext) throw new PckExtensionError('the PCK certificate has no SGX extension');
  const O = SGX_EXTENSION_OID;
  const top = entries(ext.extnValue.buffer, 'SGX extension');
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

/** The ANY value of the TCB entry is itself a SEQUENCE: hand its full TLV to the SEQUENCE OF parser. */
function primitiveSeq(raw: ArrayBuffer): ArrayBuffer {
  const b = new Uint8Array(raw);
  if (b[0] !== 0x30) throw new PckExtensionError('SGX extension TCB is not a SEQUENCE');
  return raw;
}
