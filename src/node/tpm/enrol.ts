import { serializePublic2b } from '../../tee/tpm/abi/public.js';
import { ByteWriter } from '../../tee/tpm/abi/writer.js';
import { akFingerprint } from '../../tee/tpm/verify/ak-trust.js';
import { publicToKeyObject } from '../../tee/tpm/abi/public.js';
import type { TpmClient } from './client.js';

/** An enrolment the service refused, or a TPM that cannot enrol (no EK certificate): `code` is stable. */
export class TpmEnrolError extends Error {
  constructor(readonly code: string, message: string, readonly status = 0) {
    super(message);
    this.name = 'TpmEnrolError';
  }
}

/** POSTs JSON to the attestation service and returns the parsed answer; throws TpmEnrolError on a problem. */
export type EnrolPost = (path: string, body: unknown) => Promise<Record<string, unknown>>;

/** The default EnrolPost: fetch against `baseUrl` (problem+json answers become TpmEnrolError with their code). */
export function httpEnrolPost(baseUrl: string, f: typeof fetch = fetch): EnrolPost {
  return async (path, body) => {
    const res = await f(new URL(path, baseUrl.endsWith('/') ? baseUrl : `${baseUrl}/`).toString(), {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body), signal: AbortSignal.timeout(30_000),
    });
    const text = await res.text();
    let j: Record<string, unknown> = {};
    try {
      j = JSON.parse(text) as Record<string, unknown>;
    } catch {
      // not JSON: reported below
    }
    if (!res.ok) throw new TpmEnrolError(String(j.code ?? j.type ?? `HTTP_${res.status}`), String(j.detail ?? (text.slice(0, 200) || res.statusText)), res.status);
    return j;
  };
}

export interface EnrolOptions {
  /** The attester's name in the registry (node name, agent id). */
  attester: string;
  /** Which EK (and EK certificate, NV 0x01C00002 / 0x01C0000A) to enrol with. */
  ek?: 'rsa' | 'ecc';
  /** The AK: the restricted signing primary in the endorsement hierarchy that Coffer's attesters quote with. */
  ak?: 'rsa' | 'ecc';
  post: EnrolPost;
}

export interface EnrolResult {
  akId: string;
  fingerprint: string;
  /** The enrolled AK's TPM2B_PUBLIC. */
  akPublic: Uint8Array;
}

const b64 = (b: Uint8Array) => Buffer.from(b).toString('base64');

/**
 * Enrols this TPM's AK with the attestation service (the agent side of Keylime's registrar protocol): sends the
 * EK certificate from NV, the EK and AK public areas; answers the credential challenge with
 * TPM2_ActivateCredential, which only this TPM can do for this AK; returns the registered AK id. The AK is the
 * deterministic endorsement-hierarchy primary (`TpmClient.createAk`), so later quotes use the same key without
 * persisting anything.
 */
export async function enrolAk(client: TpmClient, o: EnrolOptions): Promise<EnrolResult> {
  const ekKind = o.ek ?? 'rsa';
  const ekCert = await client.readEkCertificate(ekKind);
  if (!ekCert) throw new TpmEnrolError('TPM_EK_CERT_MISSING', `this TPM has no ${ekKind.toUpperCase()} EK certificate in NV ${ekKind === 'rsa' ? '0x01C00002' : '0x01C0000A'}`);
  const ek = await client.createEk(ekKind);
  try {
    const ak = await client.createAk(o.ak ?? 'ecc');
    try {
      const akPublic = serializePublic2b(ak.public);
      const ch = await o.post('v1/tpm/enrol', {
        attester: o.attester,
        ekCert: b64(ekCert),
        ekPublic: b64(new ByteWriter().tpm2b(ek.publicBytes).finish()),
        akPublic: b64(akPublic),
      });
      if (typeof ch.challengeId !== 'string' || typeof ch.credentialBlob !== 'string' || typeof ch.encryptedSecret !== 'string') {
        throw new TpmEnrolError('TPM_ENROL_PROTOCOL', 'the enrolment answer lacks challengeId / credentialBlob / encryptedSecret');
      }
      const secret = await client.activateCredential(ak.handle, ek.handle, new Uint8Array(Buffer.from(ch.credentialBlob, 'base64')), new Uint8Array(Buffer.from(ch.encryptedSecret, 'base64')));
      const done = await o.post('v1/tpm/activate', { challengeId: ch.challengeId, secret: b64(secret) });
      if (typeof done.akId !== 'string') throw new TpmEnrolError('TPM_ENROL_PROTOCOL', 'the activation answer lacks akId');
      return { akId: done.akId, fingerprint: akFingerprint(publicToKeyObject(ak.public)), akPublic };
    } finally {
      await client.flush(ak.handle);
    }
  } finally {
    await client.flush(ek.handle);
  }
}
