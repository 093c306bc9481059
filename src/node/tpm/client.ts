import { readFile } from 'node:fs/promises';
import { ByteReader } from '../../tee/common/reader.js';
import { TPM_ALG, TPM_ST, hashAlgById } from '../../tee/tpm/abi/constants.js';
import { ByteWriter } from '../../tee/tpm/abi/writer.js';
import { readPcrSelection, writePcrSelection, readDigestList, type PcrSelection, type PcrValues } from '../../tee/tpm/abi/pcrs.js';
import { readPublic, serializePublic, type TpmtPublic } from '../../tee/tpm/abi/public.js';
import { readSignature, type TpmtSignature } from '../../tee/tpm/abi/signature.js';
import { TpmResponseError, TpmTransportError } from './rc.js';
import type { TpmTransport } from './transport.js';
import { akTemplate, ekTemplate } from './templates.js';

export const TPM_CC = {
  EvictControl: 0x120,
  CreatePrimary: 0x131,
  Certify: 0x148,
  Startup: 0x144,
  Shutdown: 0x145,
  Create: 0x153,
  ActivateCredential: 0x147,
  NV_DefineSpace: 0x12a,
  NV_UndefineSpace: 0x122,
  NV_Write: 0x137,
  NV_Read: 0x14e,
  NV_ReadPublic: 0x169,
  PolicySecret: 0x151,
  StartAuthSession: 0x176,
  Load: 0x157,
  Quote: 0x158,
  FlushContext: 0x165,
  ReadPublic: 0x173,
  GetRandom: 0x17b,
  PCR_Read: 0x17e,
  PCR_Extend: 0x182,
} as const;

export const TPM_RH = { OWNER: 0x40000001, NULL: 0x40000007, PW: 0x40000009, ENDORSEMENT: 0x4000000b, PLATFORM: 0x4000000c } as const;

const RC_INITIALIZE = 0x100;
const RETRYABLE = new Set([0x922, 0x908, 0x90a]);

export interface LoadedKey {
  handle: number;
  public: TpmtPublic;
  /** Marshaled TPMT_PUBLIC exactly as the TPM returned it. */
  publicBytes: Uint8Array;
  name: Uint8Array;
}

export interface QuoteResult {
  /** TPMS_ATTEST bytes as signed (what tpm2_quote -m writes). */
  attest: Uint8Array;
  signature: TpmtSignature;
  /** Marshaled TPMT_SIGNATURE bytes (what tpm2_quote -s writes). */
  signatureBytes: Uint8Array;
}

/** The empty-password session (TPM_RS_PW) every authorized command here uses: 9 bytes. */
function pwAuth(): Uint8Array {
  return new ByteWriter().u32(TPM_RH.PW).u16(0).u8(0).u16(0).finish();
}

/**
 * A TPM 2.0 client speaking the command protocol itself (Part 3 marshaling, big-endian): no tpm2-tools or TSS
 * needed at run time. Transient objects it creates must be flushed by the caller (`flush`), as with any TPM
 * without a resource manager (swtpm's socket has none; /dev/tpmrm0 does).
 */
export class TpmClient {
  constructor(private readonly transport: TpmTransport) {}

  /** Sends one command and returns a reader positioned after the header (and out-handles are the caller's). */
  /** `auth`: how many empty-password authorizations, or the marshaled TPMS_AUTH_COMMANDs themselves. */
  private async run(name: string, cc: number, handles: number[], params: Uint8Array, auth: number | Uint8Array[]): Promise<{ r: ByteReader; tag: number }> {
    const auths = typeof auth === 'number' ? Array.from({ length: auth }, pwAuth) : auth;
    const tag = auths.length > 0 ? TPM_ST.SESSIONS : TPM_ST.NO_SESSIONS;
    const body = new ByteWriter();
    for (const h of handles) body.u32(h);
    if (auths.length > 0) {
      const a = new ByteWriter();
      for (const x of auths) a.bytes(x);
      const ab = a.finish();
      body.u32(ab.length).bytes(ab);
    }
    body.bytes(params);
    const b = body.finish();
    const cmd = new ByteWriter().u16(tag).u32(10 + b.length).u32(cc).bytes(b).finish();
    let resp: Uint8Array;
    let r: ByteReader;
    let rtag: number;
    let size: number;
    let rc: number;
    // TPM_RC_RETRY / YIELDED / TESTING are "try again" warnings (swtpm answers RETRY to the first ECC signing).
    for (let attempt = 0; ; attempt++) {
      resp = await this.transport.send(cmd);
      r = new ByteReader(resp, `${name} response`);
      rtag = r.u16be('tag');
      size = r.u32be('responseSize');
      rc = r.u32be('responseCode');
      if (!RETRYABLE.has(rc) || attempt >= 8) break;
      await new Promise((res) => setTimeout(res, 5 * (attempt + 1)));
    }
    if (size !== resp.length) throw new TpmTransportError(`${name}: response size field ${size} but ${resp.length} bytes arrived`);
    if (rc !== 0) throw new TpmResponseError(`TPM2_${name}`, rc);
    if (rtag !== tag) throw new TpmTransportError(`${name}: response tag 0x${rtag.toString(16)} does not match the command's`);
    return { r, tag: rtag };
  }

  /** With sessions, parameters are preceded by parameterSize and followed by the auth area: bound them. */
  private params(r: ByteReader, tag: number, name: string): ByteReader {
    if (tag !== TPM_ST.SESSIONS) return r;
    const n = r.u32be('parameterSize');
    return new ByteReader(r.bytes(n, 'parameters'), `${name} parameters`);
  }

  async startup(clear = true): Promise<void> {
    try {
      await this.run('Startup', TPM_CC.Startup, [], new ByteWriter().u16(clear ? 0 : 1).finish(), 0);
    } catch (e) {
      // Already started (swtpm --flags startup-clear, or the firmware did it): not an error for us.
      if (e instanceof TpmResponseError && e.rc === RC_INITIALIZE) return;
      throw e;
    }
  }

  async getRandom(n: number): Promise<Uint8Array> {
    const { r } = await this.run('GetRandom', TPM_CC.GetRandom, [], new ByteWriter().u16(n).finish(), 0);
    const len = r.u16be('randomBytes.size');
    return r.bytes(len, 'randomBytes').slice();
  }

  /** Reads every selected PCR, looping because the TPM returns at most 8 digests per call. */
  async pcrRead(sel: PcrSelection[]): Promise<PcrValues> {
    const out: PcrValues = new Map(sel.map((s) => [s.hash, new Map<number, Uint8Array>()]));
    let pending = sel.map((s) => ({ ...s, pcrs: [...s.pcrs] })).filter((s) => s.pcrs.length > 0);
    for (let round = 0; pending.length > 0; round++) {
      if (round > 64) throw new TpmTransportError('PCR_Read made no progress');
      const { r } = await this.run('PCR_Read', TPM_CC.PCR_Read, [], writePcrSelection(new ByteWriter(), pending).finish(), 0);
      r.u32be('pcrUpdateCounter');
      const got = readPcrSelection(r);
      const digests = readDigestList(r);
      let k = 0;
      let progressed = false;
      for (const s of got) {
        for (const p of s.pcrs) {
          const d = digests[k++];
          if (!d) throw new TpmTransportError('PCR_Read returned fewer digests than its selection');
          out.get(s.hash)?.set(p, d.slice());
          const ps = pending.find((x) => x.hash === s.hash);
          if (ps) {
            ps.pcrs = ps.pcrs.filter((x) => x !== p);
            progressed = true;
          }
        }
      }
      if (!progressed) {
        const missing = pending.map((s) => `${hashAlgById(s.hash)?.name}:${s.pcrs.join(',')}`).join(' ');
        throw new TpmTransportError(`PCR_Read did not return ${missing} (bank not allocated?)`);
      }
      pending = pending.filter((s) => s.pcrs.length > 0);
    }
    return out;
  }

  async pcrExtend(pcr: number, digests: { alg: number; digest: Uint8Array }[]): Promise<void> {
    const w = new ByteWriter().u32(digests.length);
    for (const d of digests) w.u16(d.alg).bytes(d.digest);
    await this.run('PCR_Extend', TPM_CC.PCR_Extend, [pcr], w.finish(), 1);
  }

  private readCreated(r: ByteReader, tag: number, name: string): { handle: number; pub: TpmtPublic; bytes: Uint8Array; name: Uint8Array } {
    const handle = r.u32be('objectHandle');
    const p = this.params(r, tag, name);
    const pubLen = p.u16be('outPublic.size');
    const bytes = p.bytes(pubLen, 'outPublic').slice();
    const pub = readPublic(new ByteReader(bytes, 'outPublic'));
    p.bytes(p.u16be('creationData.size'), 'creationData');
    p.bytes(p.u16be('creationHash.size'), 'creationHash');
    p.u16be('creationTicket.tag');
    p.u32be('creationTicket.hierarchy');
    p.bytes(p.u16be('creationTicket.digest.size'), 'creationTicket.digest');
    const n = p.bytes(p.u16be('name.size'), 'name').slice();
    return { handle, pub, bytes, name: n };
  }

  async createPrimary(hierarchy: number, template: TpmtPublic): Promise<LoadedKey> {
    const params = new ByteWriter()
      .tpm2b(new ByteWriter().tpm2b(new Uint8Array(0)).tpm2b(new Uint8Array(0)).finish()) // inSensitive: empty auth, no data
      .tpm2b(serializePublic(template))
      .tpm2b(new Uint8Array(0)) // outsideInfo
      .u32(0) // creationPCR: none
      .finish();
    const { r, tag } = await this.run('CreatePrimary', TPM_CC.CreatePrimary, [hierarchy], params, 1);
    const c = this.readCreated(r, tag, 'CreatePrimary');
    return { handle: c.handle, public: c.pub, publicBytes: c.bytes, name: c.name };
  }

  /** The TCG EK (template L-1 RSA-2048 or L-2 ECC P-256) in the endorsement hierarchy. */
  createEk(kind: 'rsa' | 'ecc' = 'rsa'): Promise<LoadedKey> {
    return this.createPrimary(TPM_RH.ENDORSEMENT, ekTemplate(kind));
  }

  /**
   * An AK: a restricted signing key created as a primary in the endorsement hierarchy (as go-tpm-tools does for
   * GCE). Deterministic for a given TPM seed, needs no policy session, and lives in the same hierarchy whose EK
   * certificate vouches for the TPM. `createAkUnderEk` makes the tpm2_createak-style child of the EK instead.
   */
  createAk(kind: 'rsa' | 'ecc' = 'rsa'): Promise<LoadedKey> {
    return this.createPrimary(TPM_RH.ENDORSEMENT, akTemplate(kind));
  }

  /** A policy session satisfied by PolicySecret(TPM_RH_ENDORSEMENT): what the TCG EK's authPolicy demands. */
  private async endorsementPolicySession(): Promise<number> {
    const start = new ByteWriter()
      .tpm2b(await this.getRandom(16)) // nonceCaller
      .tpm2b(new Uint8Array(0)) // encryptedSalt: unsalted
      .u8(1) // TPM_SE_POLICY
      .u16(TPM_ALG.NULL) // symmetric: none
      .u16(TPM_ALG.SHA256) // authHash
      .finish();
    const { r } = await this.run('StartAuthSession', TPM_CC.StartAuthSession, [TPM_RH.NULL, TPM_RH.NULL], start, 0);
    const session = r.u32be('sessionHandle');
    try {
      const params = new ByteWriter().tpm2b(new Uint8Array(0)).tpm2b(new Uint8Array(0)).tpm2b(new Uint8Array(0)).u32(0).finish();
      await this.run('PolicySecret', TPM_CC.PolicySecret, [TPM_RH.ENDORSEMENT, session], params, 1);
    } catch (e) {
      await this.flush(session).catch(() => undefined);
      throw e;
    }
    return session;
  }

  /** Authorizes one command with a policy session (no HMAC: the policy needs no auth value); the TPM ends it. */
  private static policyAuth(session: number): Uint8Array {
    return new ByteWriter().u32(session).u16(0).u8(0).u16(0).finish();
  }

  /**
   * An AK created under the EK and loaded, as `tpm2_createak` does: Create and Load each need the EK's policy,
   * PolicySecret(TPM_RH_ENDORSEMENT), in a fresh policy session (a session without continueSession closes after
   * the command it authorizes).
   */
  async createAkUnderEk(ek: number, kind: 'rsa' | 'ecc' = 'rsa'): Promise<LoadedKey> {
    const params = new ByteWriter()
      .tpm2b(new ByteWriter().tpm2b(new Uint8Array(0)).tpm2b(new Uint8Array(0)).finish())
      .tpm2b(serializePublic(akTemplate(kind)))
      .tpm2b(new Uint8Array(0))
      .u32(0)
      .finish();
    const s1 = await this.endorsementPolicySession();
    const created = await this.run('Create', TPM_CC.Create, [ek], params, [TpmClient.policyAuth(s1)]).catch(async (e: unknown) => {
      await this.flush(s1).catch(() => undefined); // a failed command leaves its session open
      throw e;
    });
    const p = this.params(created.r, created.tag, 'Create');
    const priv = p.bytes(p.u16be('outPrivate.size'), 'outPrivate').slice();
    const pubBytes = p.bytes(p.u16be('outPublic.size'), 'outPublic').slice();
    const s2 = await this.endorsementPolicySession();
    const loadParams = new ByteWriter().tpm2b(priv).tpm2b(pubBytes).finish();
    const loaded = await this.run('Load', TPM_CC.Load, [ek], loadParams, [TpmClient.policyAuth(s2)]).catch(async (e: unknown) => {
      await this.flush(s2).catch(() => undefined);
      throw e;
    });
    const handle = loaded.r.u32be('objectHandle');
    const lp = this.params(loaded.r, loaded.tag, 'Load');
    const name = lp.bytes(lp.u16be('name.size'), 'name').slice();
    return { handle, public: readPublic(new ByteReader(pubBytes, 'outPublic')), publicBytes: pubBytes, name };
  }

  /**
   * TPM2_ActivateCredential: recovers a credential made for `ak` (by its Name) under `ek`. The AK is authorized
   * with its (empty) password, the EK with its PolicySecret(TPM_RH_ENDORSEMENT) policy.
   * `credentialBlob` and `secret` are the marshaled TPM2B_ID_OBJECT and TPM2B_ENCRYPTED_SECRET.
   */
  async activateCredential(ak: number, ek: number, credentialBlob: Uint8Array, secret: Uint8Array): Promise<Uint8Array> {
    const session = await this.endorsementPolicySession();
    const { r, tag } = await this.run('ActivateCredential', TPM_CC.ActivateCredential, [ak, ek], new ByteWriter().bytes(credentialBlob).bytes(secret).finish(), [
      pwAuth(),
      TpmClient.policyAuth(session),
    ]).catch(async (e: unknown) => {
      await this.flush(session).catch(() => undefined);
      throw e;
    });
    const p = this.params(r, tag, 'ActivateCredential');
    return p.bytes(p.u16be('certInfo.size'), 'certInfo').slice();
  }

  async readPublic(handle: number): Promise<{ public: TpmtPublic; publicBytes: Uint8Array; name: Uint8Array; qualifiedName: Uint8Array }> {
    const { r } = await this.run('ReadPublic', TPM_CC.ReadPublic, [handle], new Uint8Array(0), 0);
    const bytes = r.bytes(r.u16be('outPublic.size'), 'outPublic').slice();
    const pub = readPublic(new ByteReader(bytes, 'outPublic'));
    const name = r.bytes(r.u16be('name.size'), 'name').slice();
    const qualifiedName = r.bytes(r.u16be('qualifiedName.size'), 'qualifiedName').slice();
    return { public: pub, publicBytes: bytes, name, qualifiedName };
  }

  /** TPM2_Quote with the key's own scheme (inScheme NULL). */
  async quote(handle: number, nonce: Uint8Array, sel: PcrSelection[]): Promise<QuoteResult> {
    const params = writePcrSelection(new ByteWriter().tpm2b(nonce).u16(TPM_ALG.NULL), sel).finish();
    const { r, tag } = await this.run('Quote', TPM_CC.Quote, [handle], params, 1);
    return this.readSigned(this.params(r, tag, 'Quote'));
  }

  /** TPM2_Certify: `signer` attests that `object` is loaded in this TPM (TPMS_ATTEST type CERTIFY). */
  async certify(object: number, signer: number, qualifyingData: Uint8Array): Promise<QuoteResult> {
    const params = new ByteWriter().tpm2b(qualifyingData).u16(TPM_ALG.NULL).finish();
    const { r, tag } = await this.run('Certify', TPM_CC.Certify, [object, signer], params, 2);
    return this.readSigned(this.params(r, tag, 'Certify'));
  }

  private readSigned(p: ByteReader): QuoteResult {
    const attest = p.bytes(p.u16be('quoted.size'), 'quoted').slice();
    const start = p.offset;
    const signature = readSignature(p);
    const signatureBytes = p.buf.slice(start, p.offset);
    return { attest, signature, signatureBytes };
  }

  async nvReadPublic(index: number): Promise<{ index: number; nameAlg: number; attributes: number; dataSize: number; name: Uint8Array }> {
    const { r } = await this.run('NV_ReadPublic', TPM_CC.NV_ReadPublic, [index], new Uint8Array(0), 0);
    const pub = new ByteReader(r.bytes(r.u16be('nvPublic.size'), 'nvPublic'), 'TPMS_NV_PUBLIC');
    const out = {
      index: pub.u32be('nvIndex'),
      nameAlg: pub.u16be('nameAlg'),
      attributes: pub.u32be('attributes'),
      authPolicy: pub.bytes(pub.u16be('authPolicy.size'), 'authPolicy'),
      dataSize: pub.u16be('dataSize'),
    };
    const name = r.bytes(r.u16be('nvName.size'), 'nvName').slice();
    return { index: out.index, nameAlg: out.nameAlg, attributes: out.attributes, dataSize: out.dataSize, name };
  }

  /** Reads a whole NV index in chunks; authorized by `authHandle` (default owner) with an empty password. */
  async nvRead(index: number, authHandle: number = TPM_RH.OWNER, chunk = 512): Promise<Uint8Array> {
    const { dataSize } = await this.nvReadPublic(index);
    const out = new Uint8Array(dataSize);
    for (let off = 0; off < dataSize; ) {
      const n = Math.min(chunk, dataSize - off);
      const { r, tag } = await this.run('NV_Read', TPM_CC.NV_Read, [authHandle, index], new ByteWriter().u16(n).u16(off).finish(), 1);
      const p = this.params(r, tag, 'NV_Read');
      const data = p.bytes(p.u16be('data.size'), 'data');
      if (data.length !== n) throw new TpmTransportError(`NV_Read returned ${data.length} bytes, asked for ${n}`);
      out.set(data, off);
      off += n;
    }
    return out;
  }

  /**
   * The EK certificate the manufacturer (or swtpm_setup) stored in NV, DER: RSA-2048 at 0x01C00002, ECC P-256 at
   * 0x01C0000A (TCG EK Credential Profile); undefined when the index is not defined. Trailing NV padding is cut
   * to the DER length.
   */
  async readEkCertificate(kind: 'rsa' | 'ecc' = 'rsa'): Promise<Uint8Array | undefined> {
    const index = kind === 'rsa' ? 0x01c00002 : 0x01c0000a;
    let raw: Uint8Array;
    try {
      raw = await this.nvRead(index);
    } catch (e) {
      if (e instanceof TpmResponseError && (e.rcName === 'TPM_RC_HANDLE' || e.rcName === 'TPM_RC_NV_DEFINED' || e.rcName === 'TPM_RC_VALUE')) return undefined;
      throw e;
    }
    if (raw.length >= 4 && raw[0] === 0x30 && raw[1] === 0x82) return raw.subarray(0, 4 + ((raw[2] << 8) | raw[3]));
    return raw;
  }

  /**
   * TPM2_NV_DefineSpace under the owner hierarchy with an empty auth value. Default attributes: owner and auth may
   * read and write (OWNERWRITE|AUTHWRITE|OWNERREAD|AUTHREAD|NO_DA), as the Azure HCL's report index allows reads.
   */
  async nvDefineSpace(index: number, size: number, attributes = 0x02060006): Promise<void> {
    const nvPublic = new ByteWriter().u32(index).u16(TPM_ALG.SHA256).u32(attributes).tpm2b(new Uint8Array(0)).u16(size).finish();
    await this.run('NV_DefineSpace', TPM_CC.NV_DefineSpace, [TPM_RH.OWNER], new ByteWriter().tpm2b(new Uint8Array(0)).tpm2b(nvPublic).finish(), 1);
  }

  async nvUndefineSpace(index: number): Promise<void> {
    await this.run('NV_UndefineSpace', TPM_CC.NV_UndefineSpace, [TPM_RH.OWNER, index], new Uint8Array(0), 1);
  }

  /** Writes `data` at offset 0 in chunks (TPM2B_MAX_NV_BUFFER is 1024 on libtpms), authorized by the owner. */
  async nvWrite(index: number, data: Uint8Array, authHandle: number = TPM_RH.OWNER, chunk = 512): Promise<void> {
    for (let off = 0; off < data.length; off += chunk) {
      const part = data.subarray(off, Math.min(data.length, off + chunk));
      await this.run('NV_Write', TPM_CC.NV_Write, [authHandle, index], new ByteWriter().tpm2b(part).u16(off).finish(), 1);
    }
  }

  /** TPM2_EvictControl (owner): makes a loaded object persistent at `persistent`, or evicts a persistent one. */
  async evictControl(object: number, persistent: number): Promise<void> {
    await this.run('EvictControl', TPM_CC.EvictControl, [TPM_RH.OWNER, object], new ByteWriter().u32(persistent).finish(), 1);
  }

  async flush(handle: number): Promise<void> {
    await this.run('FlushContext', TPM_CC.FlushContext, [], new ByteWriter().u32(handle).finish(), 0);
  }

  async close(): Promise<void> {
    await this.transport.close();
  }
}

/** The firmware event log Linux exposes, when present (needs root); undefined when there is none. */
export async function readEventLog(path = '/sys/kernel/security/tpm0/binary_bios_measurements'): Promise<Uint8Array | undefined> {
  try {
    return new Uint8Array(await readFile(path));
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    throw new TpmTransportError(`cannot read the event log ${path}: ${code ?? (e as Error).message}`, { cause: e });
  }
}
