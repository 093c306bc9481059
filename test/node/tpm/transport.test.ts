import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server, type Socket } from 'node:net';
import { SocketTransport, TpmTransportError, TpmClient } from '../../../src/node/tpm/index.js';

/** A loopback peer that misbehaves on purpose: the transport must fail typed, not hang or misread. */
async function peer(onData: (s: Socket, d: Buffer) => void): Promise<{ port: number; server: Server }> {
  const server = createServer((s) => s.on('data', (d) => onData(s, d)));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { port: (server.address() as { port: number }).port, server };
}

test('socket transport: silent peer times out, short/garbled responses are typed errors', async () => {
  const silent = await peer(() => undefined);
  const t = await SocketTransport.connect(silent.port, '127.0.0.1', 2000, 150);
  await assert.rejects(t.send(Uint8Array.of(0x80, 1, 0, 0, 0, 10, 0, 0, 1, 0x7b)), (e: unknown) => e instanceof TpmTransportError && /did not answer within 150 ms/.test(e.message));
  await t.close();
  silent.server.close();

  const liar = await peer((s) => s.end(Buffer.from('8001ffffffff00000000', 'hex'))); // declares 4 GiB
  const c = new TpmClient(await SocketTransport.connect(liar.port));
  await assert.rejects(c.getRandom(4), (e: unknown) => e instanceof TpmTransportError && /declares size/.test(e.message));
  await c.close();
  liar.server.close();

  const early = await peer((s) => s.end(Buffer.from('8001', 'hex')));
  const c2 = new TpmClient(await SocketTransport.connect(early.port));
  await assert.rejects(c2.getRandom(4), (e: unknown) => e instanceof TpmTransportError && /closed before a full response/.test(e.message));
  await c2.close();
  early.server.close();

  await assert.rejects(SocketTransport.connect(1, '127.0.0.1', 500), TpmTransportError);
});
