/**
 * Client of the Linux configfs-tsm report interface (Documentation/ABI/testing/configfs-tsm, Linux 6.7+), the
 * vendor-neutral way a TDX, SEV-SNP (or Arm CCA) guest gets a quote: mkdir an entry under
 * /sys/kernel/config/tsm/report, write the 64-byte report data to `inblob` (optionally `privlevel` first), read
 * `generation`, `outblob` (the quote / attestation report), `auxblob` (SNP: the certificate table, when the host
 * supplies one), `provider`, then `generation` again, and rmdir. `generation` counts writes to inblob/privlevel,
 * so a value other than the writes we made means someone else wrote to our entry: the outblob may not match our
 * report data, and we refuse it.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, rmdir, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';

export const TSM_INBLOB_MAX = 64;
export const TSM_PRIVLEVEL_MAX = 3;

/** The file operations used; the default is node:fs, tests pass a model of the kernel's configfs semantics. */
export interface TsmFs {
  mkdir(p: string): Promise<void>;
  rmdir(p: string): Promise<void>;
  writeFile(p: string, data: Buffer | string): Promise<void>;
  readFile(p: string): Promise<Buffer>;
  isDirectory(p: string): Promise<boolean>;
}

export const nodeTsmFs: TsmFs = {
  mkdir: async (p) => void (await mkdir(p)),
  rmdir: (p) => rmdir(p),
  writeFile: (p, d) => writeFile(p, d),
  readFile: (p) => readFile(p),
  isDirectory: (p) => stat(p).then((s) => s.isDirectory(), () => false),
};

export class TsmError extends Error {
  constructor(
    readonly code: 'TSM_UNAVAILABLE' | 'BAD_REPORT_DATA' | 'BAD_PRIVLEVEL' | 'TSM_RACE' | 'TSM_FAILED',
    message: string,
  ) {
    super(message);
    this.name = 'TsmError';
  }
}

export interface TsmReportResult {
  provider: string;
  generation: number;
  outblob: Buffer;
  auxblob?: Buffer;
}

const errno = (e: unknown) => (e as NodeJS.ErrnoException).code ?? '';

export class TsmReportClient {
  private seq = 0;

  constructor(
    readonly reportDir = '/sys/kernel/config/tsm/report',
    private readonly fs: TsmFs = nodeTsmFs,
  ) {}

  async available(): Promise<boolean> {
    return this.fs.isDirectory(this.reportDir);
  }

  async report(reportData: Buffer, privlevel?: number): Promise<TsmReportResult> {
    // TDX REPORTDATA and SNP REPORT_DATA are both exactly 64 bytes; a shorter inblob would be zero-padded by the
    // provider, silently binding the quote to data the caller did not send.
    if (reportData.length !== TSM_INBLOB_MAX) throw new TsmError('BAD_REPORT_DATA', `report data must be exactly ${TSM_INBLOB_MAX} bytes, got ${reportData.length}`);
    if (privlevel !== undefined && (!Number.isInteger(privlevel) || privlevel < 0 || privlevel > TSM_PRIVLEVEL_MAX)) throw new TsmError('BAD_PRIVLEVEL', `privlevel must be an integer 0..${TSM_PRIVLEVEL_MAX}`);
    if (!(await this.available())) throw new TsmError('TSM_UNAVAILABLE', `configfs-tsm report interface not found at ${this.reportDir} (needs a TDX/SNP guest kernel 6.7+ with configfs mounted)`);
    const entry = path.join(this.reportDir, `coffer-${process.pid}-${++this.seq}-${randomBytes(4).toString('hex')}`);
    try {
      await this.fs.mkdir(entry);
    } catch (e) {
      throw new TsmError('TSM_FAILED', `cannot create report entry ${entry}: ${(e as Error).message}`);
    }
    try {
      let writes = 0;
      if (privlevel !== undefined) {
        await this.write(entry, 'privlevel', String(privlevel));
        writes++;
      }
      await this.write(entry, 'inblob', reportData);
      writes++;
      const before = await this.readGeneration(entry);
      const outblob = await this.read(entry, 'outblob');
      let auxblob: Buffer | undefined;
      try {
        auxblob = await this.fs.readFile(path.join(entry, 'auxblob'));
        if (auxblob.length === 0) auxblob = undefined;
      } catch (e) {
        // Providers without auxiliary data (TDX; SNP without host certificates) have no or an empty auxblob.
        if (!['ENOENT', 'ENXIO', 'EOPNOTSUPP', 'ENOTSUP'].includes(errno(e))) throw new TsmError('TSM_FAILED', `reading auxblob failed: ${(e as Error).message}`);
      }
      const provider = (await this.read(entry, 'provider')).toString('utf8').trim();
      const after = await this.readGeneration(entry);
      if (before !== writes || after !== writes) throw new TsmError('TSM_RACE', `report entry generation is ${before}/${after}, expected ${writes}: another writer changed the request, quote discarded`);
      if (outblob.length === 0) throw new TsmError('TSM_FAILED', `provider ${provider || '(unknown)'} returned an empty outblob`);
      return { provider, generation: after, outblob, auxblob };
    } finally {
      await this.fs.rmdir(entry).catch(() => undefined);
    }
  }

  private async write(entry: string, attr: string, data: Buffer | string): Promise<void> {
    try {
      await this.fs.writeFile(path.join(entry, attr), data);
    } catch (e) {
      throw new TsmError('TSM_FAILED', `writing ${attr} failed: ${(e as Error).message}`);
    }
  }

  private async read(entry: string, attr: string): Promise<Buffer> {
    try {
      return await this.fs.readFile(path.join(entry, attr));
    } catch (e) {
      throw new TsmError('TSM_FAILED', `reading ${attr} failed: ${(e as Error).message}`);
    }
  }

  private async readGeneration(entry: string): Promise<number> {
    const text = (await this.read(entry, 'generation')).toString('utf8').trim();
    if (!/^\d+$/.test(text)) throw new TsmError('TSM_FAILED', `generation '${text}' is not a number`);
    return Number(text);
  }
}
