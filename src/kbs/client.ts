import { createHash, generateKeyPairSync, type JsonWebKey, type KeyObject } from 'node:crypto';
import { flattenedDecrypt } from 'jose';
import { canonicalJson } from '../tee/common/jcs.js';
import { makeSampleEvidence } from '../tee/sample/attester.js';
import { KBS_PROTOCOL_VERSION, KBS_SESSION_COOKIE } from './protocol.js';
import type { KbsJweResponse } from './jwe.js';

export class KbsClientError extends Error {
  constructor(readonly status: number, readonly type: string, detail: string) {
    super(detail);
  }
}

/** Produces the TEE's primary evidence over the report data the KBS expects. */
export type EvidenceProvider = (reportData: Uint8Array) => Promise<unknown> | unknown;

/** Sample attester (dev only): Trustee's unsigned form, or Coffer's dev-key-signed form. */
export const sampleEvidenceProvider = (devKey?: JsonWebKey & { kid: string }): EvidenceProvider => (rd) => makeSampleEvidence(rd, { devKey });

/**
 * A Trustee-protocol KBS client (the attestation-agent side of RCAR): auth → attest → resource, with an
 * ephemeral EC P-256 key (ECDH-ES+A256KW, guest-components' default) that the KBS encrypts resources to.
 */
export class KbsClient {
  private cookie?: string;
  private token?: string;
  private readonly key: { priv: KeyObject; pubJwk: Record<string, string> };

  /** `imageDigests`: the images this workload runs, claimed in the runtime data (bound into the evidence). */
  constructor(private readonly url: string, private readonly o: { adminToken?: string; fetch?: typeof fetch; imageDigests?: string[] } = {}) {
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const j = publicKey.export({ format: 'jwk' }) as Record<string, string>;
    this.key = { priv: privateKey, pubJwk: { kty: 'EC', crv: 'P-256', alg: 'ECDH-ES+A256KW', x: j.x, y: j.y } };
  }

  get teePubKey(): Record<string, string> {
    return this.key.pubJwk;
  }

  private async call(method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<Response> {
    const h: Record<string, string> = { ...headers };
    if (this.cookie) h.cookie = `${KBS_SESSION_COOKIE}=${this.cookie}`;
    let payload: Uint8Array | string | undefined;
    if (body instanceof Uint8Array) {
      payload = body;
      h['content-type'] = 'application/octet-stream';
    } else if (body !== undefined) {
      payload = JSON.stringify(body);
      h['content-type'] = 'application/json';
    }
    const res = await (this.o.fetch ?? fetch)(`${this.url.replace(/\/$/, '')}${path}`, { method, headers: h, body: payload });
    const set = res.headers.get('set-cookie');
    const m = set ? new RegExp(`${KBS_SESSION_COOKIE}=([^;]+)`).exec(set) : null;
    if (m) this.cookie = m[1];
    if (!res.ok) {
      let type = 'unknown';
      let detail = `HTTP ${res.status}`;
      try {
        const j = (await res.json()) as { type?: string; detail?: string };
        type = j.type ?? type;
        detail = j.detail ?? detail;
      } catch {
        // non-JSON error body
      }
      throw new KbsClientError(res.status, type, `${method} ${path}: ${detail}`);
    }
    return res;
  }

  private admin(): Record<string, string> {
    if (!this.o.adminToken) throw new KbsClientError(0, 'usage', 'this operation needs an admin token');
    return { authorization: `Bearer ${this.o.adminToken}` };
  }

  /** RCAR: auth + attest. Returns the attestation token. */
  async attest(tee: string, provider: EvidenceProvider): Promise<string> {
    const ch = (await (await this.call('POST', '/kbs/v0/auth', { version: KBS_PROTOCOL_VERSION, tee, 'extra-params': '' })).json()) as { nonce: string; 'extra-params': unknown };
    const additional = '';
    const images = this.o.imageDigests && this.o.imageDigests.length > 0 ? { 'image-digests': this.o.imageDigests } : {};
    const runtime = { 'tee-pubkey': this.key.pubJwk, nonce: ch.nonce, 'additional-evidence': additional, ...images };
    const hashAlg = (ch['extra-params'] as { 'selected-hash-algorithm'?: string } | null)?.['selected-hash-algorithm'] === 'sha512' ? 'sha512' : 'sha384';
    const reportData = createHash(hashAlg).update(canonicalJson(runtime)).digest();
    const body = {
      'runtime-data': { nonce: ch.nonce, 'tee-pubkey': this.key.pubJwk, ...images },
      'tee-evidence': { primary_evidence: await provider(new Uint8Array(reportData)), additional_evidence: additional },
    };
    const r = (await (await this.call('POST', '/kbs/v0/attest', body)).json()) as { token: string };
    this.token = r.token;
    return r.token;
  }

  /** GET a resource and decrypt the JWE with the TEE key; uses the session cookie, else `bearer`. */
  async getResource(path: string, bearer?: string): Promise<Uint8Array> {
    const res = await this.call('GET', `/kbs/v0/resource/${path}`, undefined, bearer ? { authorization: `Bearer ${bearer}` } : {});
    const jwe = (await res.json()) as KbsJweResponse;
    const { plaintext } = await flattenedDecrypt(jwe, this.key.priv, { keyManagementAlgorithms: ['ECDH-ES+A256KW'], contentEncryptionAlgorithms: ['A256GCM'] });
    return plaintext;
  }

  async setResource(path: string, value: Uint8Array): Promise<void> {
    await this.call('POST', `/kbs/v0/resource/${path}`, value, this.admin());
  }

  async deleteResource(path: string): Promise<void> {
    await this.call('DELETE', `/kbs/v0/resource/${path}`, undefined, this.admin());
  }

  async getResourcePolicy(): Promise<{ policy: string | null; version: number | null }> {
    const r = (await (await this.call('GET', '/kbs/v0/resource-policy', undefined, this.admin())).json()) as { policy: string | null; version: number | null };
    return { policy: r.policy === null ? null : Buffer.from(r.policy, 'base64url').toString('utf8'), version: r.version };
  }

  async setResourcePolicy(policy: string): Promise<void> {
    await this.call('POST', '/kbs/v0/resource-policy', { policy: Buffer.from(policy).toString('base64url') }, this.admin());
  }

  async setAttestationPolicy(policy: string, id = 'default_cpu', type = 'coffer'): Promise<void> {
    await this.call('POST', '/kbs/v0/attestation-policy', { type, policy_id: id, policy: Buffer.from(policy).toString('base64url') }, this.admin());
  }

  get lastToken(): string | undefined {
    return this.token;
  }
}
