import { constants, verify as cryptoVerify } from 'node:crypto';
import { crlParts } from '../../common/der.js';
import { CollateralError, VerificationError } from '../../common/errors.js';
import { AMD_PSS_PARAMS, OID_RSASSA_PSS, sha256Hex, type SnpCert } from '../certs/parse.js';

/** An AMD CRL (signed by the ARK, lists revoked ASK/ASVK serials: go-sev-guest verifyCRL). */
export interface ParsedCrl {
  der: Uint8Array;
  hash: string;
  issuerDer: string;
  tbs: Uint8Array;
  signature: Uint8Array;
  sigAlgOid: string;
  sigAlgParams: string;
  thisUpdate: Date;
  nextUpdate?: Date;
  revoked: Set<string>;
}

const normSerial = (b: Uint8Array) => Buffer.from(b).toString('hex').replace(/^0+(?=.)/, '');

export function parseCrl(der: Uint8Array, where = 'CRL'): ParsedCrl {
  try {
    const crl = crlParts(der);
    return {
      der,
      hash: sha256Hex(der),
      issuerDer: Buffer.from(crl.issuer.raw).toString('hex'),
      tbs: crl.tbs,
      signature: crl.signature,
      sigAlgOid: crl.sigAlg,
      sigAlgParams: crl.sigAlgParamsDer ? Buffer.from(crl.sigAlgParamsDer).toString('hex') : '',
      thisUpdate: crl.thisUpdate,
      nextUpdate: crl.nextUpdate,
      revoked: new Set(crl.revoked.map((r) => normSerial(r.serial))),
    };
  } catch (e) {
    throw new CollateralError('CRL_INVALID', `${where} is not a valid X.509 CRL: ${(e as Error).message}`);
  }
}

export function subjectDerHex(c: SnpCert): string {
  return c.subjectDer;
}

/** The CRLs issued by this ARK (by issuer name); each must carry a valid RSASSA-PSS signature by it. */
export function crlsForArk(crls: ParsedCrl[], ark: SnpCert): ParsedCrl[] {
  const name = subjectDerHex(ark);
  const mine = crls.filter((c) => c.issuerDer === name);
  for (const c of mine) {
    const pss = c.sigAlgOid === OID_RSASSA_PSS && AMD_PSS_PARAMS.has(c.sigAlgParams);
    let ok = false;
    try {
      ok = pss && cryptoVerify('sha384', c.tbs, { key: ark.publicKey, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 48 }, c.signature);
    } catch {
      ok = false;
    }
    if (!ok) throw new VerificationError('CRL_INVALID', `the CRL naming ${ark.cn} as issuer is not signed by it (RSASSA-PSS SHA-384)`);
  }
  return mine;
}

/** Window and revocation checks; `at` is the verification time. */
export function checkCrl(crl: ParsedCrl, at: Date, revokable: SnpCert[]): void {
  if (at < crl.thisUpdate || (crl.nextUpdate && at > crl.nextUpdate)) {
    throw new VerificationError(
      'CRL_EXPIRED',
      `the ARK CRL is valid ${crl.thisUpdate.toISOString()}..${crl.nextUpdate?.toISOString() ?? '(open)'}, not at ${at.toISOString()}`,
    );
  }
  for (const c of revokable) {
    if (crl.revoked.has(c.serial)) {
      throw new VerificationError('CERT_REVOKED', `${c.cn} (serial ${c.serial}) is revoked by the ARK CRL`);
    }
  }
}
