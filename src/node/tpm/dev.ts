import { spawnSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { freePort, launchSwtpm } from './swtpm-process.js';
import { TpmClient } from './client.js';
import { SocketTransport } from './transport.js';
import { TPM_ALG } from '../../tee/tpm/abi/constants.js';
import { selection, serializePcrsSerialized } from '../../tee/tpm/abi/pcrs.js';
import { serializePublic2b } from '../../tee/tpm/abi/public.js';

/**
 * A live software TPM for `coffer up --dev` on a laptop with no TEE: swtpm on loopback with its state under the
 * data dir, and the local attester side (`coffer kbs-client --tee tpm`) that quotes with it. The AK is an ECC
 * restricted signing primary in the endorsement hierarchy: deterministic for the swtpm's seed, so the server and
 * the client derive the same key independently and the server can pin it.
 */
export function swtpmOnPath(): boolean {
  return spawnSync('swtpm', ['--version']).status === 0;
}

export interface DevSwtpm {
  port: number;
  stop(): Promise<void>;
}

/** Starts swtpm (TPM 2.0, self-started with Startup(CLEAR)) on spare loopback ports, state kept in `stateDir`. */
export async function startDevSwtpm(stateDir: string): Promise<DevSwtpm> {
  mkdirSync(stateDir, { recursive: true, mode: 0o700 });
  const p = await launchSwtpm({ stateDir, port: await freePort(), ctrlPort: await freePort() });
  return { port: p.port, stop: p.stop };
}

async function withAk<T>(port: number, host: string, f: (c: TpmClient, ak: Awaited<ReturnType<TpmClient['createAk']>>) => Promise<T>): Promise<T> {
  const client = new TpmClient(await SocketTransport.connect(port, host));
  try {
    const ak = await client.createAk('ecc');
    try {
      return await f(client, ak);
    } finally {
      await client.flush(ak.handle);
    }
  } finally {
    await client.close();
  }
}

/** The AK's TPM2B_PUBLIC: what the server pins. */
export function devAkPublic(port: number, host = '127.0.0.1'): Promise<Uint8Array> {
  return withAk(port, host, async (_c, ak) => serializePublic2b(ak.public));
}

/** PCRs the dev attester quotes (SHA-256 bank, the firmware/boot range). */
export const DEV_QUOTE_PCRS = [0, 1, 2, 3, 4, 5, 6, 7];

/**
 * Coffer's TPM primary evidence for the KBS (`tee: tpm`): TPMS_ATTEST of a quote whose extraData is the report
 * data, its TPMT_SIGNATURE, the AK (TPM2B_PUBLIC) and the quoted PCR values (tpm2_quote -F serialized), base64.
 */
export function devTpmEvidence(port: number, reportData: Uint8Array, host = '127.0.0.1'): Promise<{ quote: string; signature: string; ak: string; pcrs: string }> {
  const sel = selection([[TPM_ALG.SHA256, DEV_QUOTE_PCRS]]);
  return withAk(port, host, async (c, ak) => {
    const q = await c.quote(ak.handle, reportData, sel);
    const values = await c.pcrRead(sel);
    const b64 = (b: Uint8Array) => Buffer.from(b).toString('base64');
    return { quote: b64(q.attest), signature: b64(q.signatureBytes), ak: b64(serializePublic2b(ak.public)), pcrs: b64(serializePcrsSerialized(sel, values)) };
  });
}
