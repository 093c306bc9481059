/**
 * A ready-made DCAP scenario on the test PKI: SGX (processor-CA PCK) and TDX (platform-CA PCK) platforms, their
 * TCB info / QE identity / CRLs, and quote builders. Tests tweak one piece to hit one failure path.
 */
import { createTestPki, buildQuote, qeIdentityJson, signP1363, tcbInfoJson, QE_MRSIGNER, TDX_MODULE_MRSIGNER, T0 } from './dcap-pki.js';
import type { CrlOptions, Party, QeIdentitySpec, QuoteSpec, TcbInfoSpec, TestPki, PkiOptions } from './dcap-pki.js';
import type { DcapCollateral } from '../../src/tee/dcap/collateral.js';
import type { webcrypto } from 'node:crypto';

export const SGX_FMSPC = '00A067110000';
export const TDX_FMSPC = 'B0C06F000000';
export const PCK_COMPS = [3, 3, 2, 2, 3, 1, 0, 3, 0, 0, 0, 0, 0, 0, 0, 0];
export const PCK_PCESVN = 13;
export const TDX_COMPS = [3, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];

export interface CollateralTweaks {
  tcbInfo?: (s: TcbInfoSpec) => void;
  qeIdentity?: (s: QeIdentitySpec) => void;
  /** Who signs TCB info / QE identity (default: the TCB signing cert). */
  signer?: Party;
  /** Issuer chain shipped for the TCB info (default: signer + root). */
  tcbChain?: Party[];
  pckCrl?: CrlOptions & { signer?: Party };
  rootCrl?: CrlOptions;
  /** Corrupt the TCB info JSON bytes after signing. */
  tamperTcbInfo?: boolean;
  tamperQeIdentity?: boolean;
}

export interface DcapWorld {
  pki: TestPki;
  /** A verification time inside every default window. */
  at: Date;
  trustAnchors: Uint8Array[];
  sgxPck: Party;
  tdxPck: Party;
  attKey: webcrypto.CryptoKeyPair;
  tcbInfoSpec(tee: 'sgx' | 'tdx'): TcbInfoSpec;
  qeIdentitySpec(tee: 'sgx' | 'tdx'): QeIdentitySpec;
  collateral(tee: 'sgx' | 'tdx', t?: CollateralTweaks): Promise<DcapCollateral>;
  /** PCS-shaped directory content: file name → bytes (names say nothing; content decides). */
  pcsFiles(tee: 'sgx' | 'tdx', t?: CollateralTweaks): Promise<Record<string, Uint8Array>>;
  quote(spec: Partial<QuoteSpec> & { version: 3 | 4 | 5; tee: 'sgx' | 'tdx' }): Promise<Uint8Array>;
}

export async function createDcapWorld(o: PkiOptions = {}): Promise<DcapWorld> {
  const pki = await createTestPki(o);
  const from = pki.from;
  const at = new Date(from.getTime() + 86_400_000);
  const sgxPck = await pki.issuePck('processor', { comps: PCK_COMPS, pceSvn: PCK_PCESVN, fmspc: SGX_FMSPC });
  const tdxPck = await pki.issuePck('platform', { comps: PCK_COMPS, pceSvn: PCK_PCESVN, fmspc: TDX_FMSPC });
  const { webcrypto: wc } = await import('node:crypto');
  const attKey = (await wc.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;

  const tcbInfoSpec = (tee: 'sgx' | 'tdx'): TcbInfoSpec => {
    const tdx = tee === 'tdx';
    const lower = PCK_COMPS.map((c, i) => (i < 2 ? c - 1 : c));
    return {
      id: tdx ? 'TDX' : 'SGX',
      fmspc: tdx ? TDX_FMSPC : SGX_FMSPC,
      issueDate: from,
      nextUpdate: pki.to,
      levels: [
        { sgx: [...PCK_COMPS], pceSvn: PCK_PCESVN, tdx: tdx ? [...TDX_COMPS] : undefined, status: 'UpToDate' },
        { sgx: lower, pceSvn: PCK_PCESVN, tdx: tdx ? TDX_COMPS.map((c) => (c > 0 ? c - 1 : 0)) : undefined, status: 'SWHardeningNeeded', advisories: ['INTEL-SA-00615'] },
        { sgx: PCK_COMPS.map(() => 1), pceSvn: 5, tdx: tdx ? TDX_COMPS.map(() => 0) : undefined, status: 'OutOfDate', advisories: ['INTEL-SA-00289', 'INTEL-SA-00615'] },
      ],
      ...(tdx
        ? {
            tdxModule: { mrsigner: TDX_MODULE_MRSIGNER, attributes: '0000000000000000', attributesMask: 'FFFFFFFFFFFFFFFF' },
            tdxModuleIdentities: [
              { id: 'TDX_01', mrsigner: TDX_MODULE_MRSIGNER, attributes: '0000000000000000', attributesMask: 'FFFFFFFFFFFFFFFF', levels: [{ isvsvn: 3, status: 'UpToDate' }, { isvsvn: 1, status: 'OutOfDate', advisories: ['INTEL-SA-01036'] }] },
              { id: 'TDX_03', mrsigner: TDX_MODULE_MRSIGNER, attributes: '0000000000000000', attributesMask: 'FFFFFFFFFFFFFFFF', levels: [{ isvsvn: 5, status: 'UpToDate' }, { isvsvn: 2, status: 'OutOfDate' }, { isvsvn: 0, status: 'Revoked' }] },
            ],
          }
        : {}),
    };
  };
  const qeIdentitySpec = (tee: 'sgx' | 'tdx'): QeIdentitySpec => ({
    id: tee === 'sgx' ? 'QE' : 'TD_QE',
    issueDate: from,
    nextUpdate: pki.to,
    mrsigner: QE_MRSIGNER,
    isvprodid: tee === 'sgx' ? 1 : 2,
    levels: [
      { isvsvn: 8, status: 'UpToDate' },
      { isvsvn: 6, status: 'OutOfDate', advisories: ['INTEL-SA-00477'] },
      { isvsvn: 2, status: 'Revoked' },
    ],
  });

  const collateral = async (tee: 'sgx' | 'tdx', t: CollateralTweaks = {}): Promise<DcapCollateral> => {
    const ti = tcbInfoSpec(tee);
    t.tcbInfo?.(ti);
    const qi = qeIdentitySpec(tee);
    t.qeIdentity?.(qi);
    const signer = t.signer ?? pki.tcbSigner;
    const tiBody = Buffer.from(tcbInfoJson(ti));
    const qiBody = Buffer.from(qeIdentityJson(qi));
    const tiSig = signP1363(signer.priv, tiBody);
    const qiSig = signP1363(signer.priv, qiBody);
    if (t.tamperTcbInfo) tiBody[tiBody.indexOf('UpToDate')] = 0x75; // 'u'
    if (t.tamperQeIdentity) qiBody[qiBody.indexOf('UpToDate')] = 0x75;
    const pckCa = tee === 'sgx' ? pki.processorCa : pki.platformCa;
    const pckCrl = await pki.crl(t.pckCrl?.signer ?? pckCa, t.pckCrl);
    const rootCrl = await pki.crl(pki.root, t.rootCrl);
    const chain = t.tcbChain ?? [signer, pki.root];
    return {
      tcbInfo: { body: new Uint8Array(tiBody), signature: tiSig },
      qeIdentity: { body: new Uint8Array(qiBody), signature: qiSig },
      certs: [...chain.map((p) => p.der), pckCa.der, pki.root.der],
      crls: [rootCrl, pckCrl],
    };
  };

  const pcsFiles = async (tee: 'sgx' | 'tdx', t: CollateralTweaks = {}) => {
    const c = await collateral(tee, t);
    const pcsJson = (key: string, item: { body: Uint8Array; signature: Uint8Array }) =>
      new Uint8Array(Buffer.from(`{"${key}":${Buffer.from(item.body).toString('utf8')},"signature":"${Buffer.from(item.signature).toString('hex')}"}`));
    const pem = (label: string, der: Uint8Array) =>
      `-----BEGIN ${label}-----\n${Buffer.from(der).toString('base64').replace(/(.{64})/g, '$1\n').replace(/\n$/, '')}\n-----END ${label}-----\n`;
    return {
      'a.json': pcsJson('tcbInfo', c.tcbInfo),
      'b.json': pcsJson('enclaveIdentity', c.qeIdentity),
      'c.der': c.crls[0],
      'd.pem': new Uint8Array(Buffer.from(pem('X509 CRL', c.crls[1]))),
      'e.pem': new Uint8Array(Buffer.from(c.certs.slice(0, 2).map((d) => pem('CERTIFICATE', d)).join(''))),
      'f.cer': c.certs[2],
    };
  };

  const quote: DcapWorld['quote'] = (spec) => {
    const pck = spec.tee === 'sgx' ? sgxPck : tdxPck;
    const pckChain = [spec.tee === 'sgx' ? pki.processorCa : pki.platformCa, pki.root];
    return buildQuote({ pck, pckChain, attKey, ...spec });
  };

  return { pki, at, trustAnchors: [pki.root.der], sgxPck, tdxPck, attKey, tcbInfoSpec, qeIdentitySpec, collateral, pcsFiles, quote };
}

export { T0 };
