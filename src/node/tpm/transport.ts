import { connect, type Socket } from 'node:net';
import { open, type FileHandle } from 'node:fs/promises';
import { TpmTransportError } from './rc.js';

/** Moves one marshaled command to the TPM and returns its whole response. Calls are serialized. */
export interface TpmTransport {
  send(command: Uint8Array): Promise<Uint8Array>;
  close(): Promise<void>;
}

const MAX_RESPONSE = 64 * 1024;

function responseSize(b: Buffer): number {
  const n = b.readUInt32BE(2);
  if (n < 10 || n > MAX_RESPONSE) throw new TpmTransportError(`TPM response declares size ${n}`);
  return n;
}

/** Serializes sends so one command's response is never interleaved with the next. */
class Queue {
  private tail: Promise<unknown> = Promise.resolve();
  run<T>(f: () => Promise<T>): Promise<T> {
    const p = this.tail.then(f, f);
    this.tail = p.catch(() => undefined);
    return p;
  }
}

/** A TPM reached over TCP with no framing: swtpm's `--server type=tcp` data channel (raw command bytes). */
export class SocketTransport implements TpmTransport {
  private readonly queue = new Queue();
  private constructor(
    private readonly sock: Socket,
    /** Longest wait for one response; RSA key generation on a slow TPM can take seconds. */
    private readonly commandTimeoutMs: number,
  ) {}

  static connect(port: number, host = '127.0.0.1', timeoutMs = 5000, commandTimeoutMs = 60000): Promise<SocketTransport> {
    return new Promise((resolve, reject) => {
      const s = connect({ port, host });
      const t = setTimeout(() => {
        s.destroy();
        reject(new TpmTransportError(`connecting to the TPM at ${host}:${port} timed out`));
      }, timeoutMs);
      s.once('connect', () => {
        clearTimeout(t);
        s.setNoDelay(true);
        resolve(new SocketTransport(s, commandTimeoutMs));
      });
      s.once('error', (e) => {
        clearTimeout(t);
        reject(new TpmTransportError(`cannot connect to the TPM at ${host}:${port}: ${e.message}`, { cause: e }));
      });
    });
  }

  send(command: Uint8Array): Promise<Uint8Array> {
    return this.queue.run(
      () =>
        new Promise<Uint8Array>((resolve, reject) => {
          let buf = Buffer.alloc(0);
          const timer = setTimeout(() => {
            cleanup();
            // The stream is out of step now: drop the connection rather than read a stale response later.
            this.sock.destroy();
            reject(new TpmTransportError(`the TPM did not answer within ${this.commandTimeoutMs} ms`));
          }, this.commandTimeoutMs);
          const cleanup = () => {
            clearTimeout(timer);
            this.sock.off('data', onData);
            this.sock.off('error', onError);
            this.sock.off('close', onClose);
          };
          const onData = (d: Buffer) => {
            buf = Buffer.concat([buf, d]);
            try {
              if (buf.length >= 10 && buf.length >= responseSize(buf)) {
                cleanup();
                const n = responseSize(buf);
                if (buf.length > n) return reject(new TpmTransportError(`TPM sent ${buf.length - n} bytes past its response`));
                resolve(new Uint8Array(buf));
              }
            } catch (e) {
              cleanup();
              reject(e);
            }
          };
          const onError = (e: Error) => {
            cleanup();
            reject(new TpmTransportError(`TPM connection failed: ${e.message}`, { cause: e }));
          };
          const onClose = () => {
            cleanup();
            reject(new TpmTransportError('TPM connection closed before a full response arrived'));
          };
          this.sock.on('data', onData);
          this.sock.once('error', onError);
          this.sock.once('close', onClose);
          this.sock.write(command);
        }),
    );
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      if (this.sock.destroyed) return resolve();
      this.sock.end(() => resolve());
      this.sock.destroy();
    });
  }
}

/** The kernel's TPM character device; /dev/tpmrm0 (resource-managed) by default. One write, one read. */
export class DeviceTransport implements TpmTransport {
  private readonly queue = new Queue();
  private constructor(private readonly fh: FileHandle) {}

  static async open(path = '/dev/tpmrm0'): Promise<DeviceTransport> {
    try {
      return new DeviceTransport(await open(path, 'r+'));
    } catch (e) {
      throw new TpmTransportError(`cannot open ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, { cause: e });
    }
  }

  send(command: Uint8Array): Promise<Uint8Array> {
    return this.queue.run(async () => {
      await this.fh.write(command);
      const out = Buffer.alloc(MAX_RESPONSE);
      const { bytesRead } = await this.fh.read(out, 0, out.length, null);
      if (bytesRead < 10 || responseSize(out) !== bytesRead) throw new TpmTransportError(`short TPM response (${bytesRead} bytes)`);
      return new Uint8Array(out.subarray(0, bytesRead));
    });
  }

  close(): Promise<void> {
    return this.fh.close();
  }
}

/**
 * swtpm's control channel (`--ctrl type=tcp`): u32 BE command, BE payload; reply starts with u32 ptm_res.
 * Used by tests and `coffer up` to power the TPM on (CMD_INIT) and to stop it (CMD_SHUTDOWN). Codes from
 * swtpm's include/tpm_ioctl.h.
 */
export const SWTPM_CTRL = { GET_CAPABILITY: 1, INIT: 2, SHUTDOWN: 3, STOP: 0x0e } as const;

export async function swtpmControl(port: number, cmd: number, payload: Uint8Array = new Uint8Array(0), host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = connect({ port, host });
    let buf = Buffer.alloc(0);
    s.once('connect', () => {
      const head = Buffer.alloc(4);
      head.writeUInt32BE(cmd);
      s.write(Buffer.concat([head, payload]));
    });
    s.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      if (buf.length >= 4) {
        s.destroy();
        resolve(buf.readUInt32BE(0));
      }
    });
    s.once('error', (e) => reject(new TpmTransportError(`swtpm control channel at ${host}:${port}: ${e.message}`, { cause: e })));
    s.once('close', () => {
      if (buf.length < 4) reject(new TpmTransportError('swtpm control channel closed without an answer'));
    });
  });
}
