// An in-memory model of the configfs-tsm report interface (Documentation/ABI/testing/configfs-tsm): entries are
// created by mkdir under report/, `inblob` takes at most 64 bytes, `privlevel` 0..3 (at least privlevel_floor),
// each write to either bumps `generation`, `outblob` needs an inblob, `provider` names the TSM driver, attributes
// other than inblob/privlevel are read-only, rmdir releases the entry. Errors carry the errno the kernel returns.
import { createHash } from 'node:crypto';
import path from 'node:path';
import type { TsmFs } from '../../../src/node/quote/tsm-report.js';

interface Entry {
  inblob?: Buffer;
  privlevel: number;
  generation: number;
}

const err = (code: string, msg: string) => Object.assign(new Error(`${code}: ${msg}`), { code });

export class FakeConfigfsTsm implements TsmFs {
  readonly entries = new Map<string, Entry>();
  /** Played by a concurrent writer: called after outblob is read. */
  afterOutblob?: (entryPath: string) => void;
  quotes = 0;

  constructor(
    readonly reportDir: string,
    readonly provider: 'tdx_guest' | 'sev_guest' = 'tdx_guest',
    readonly privlevelFloor = 0,
    /** SNP: the host-provided certificate table surfaced as auxblob; TDX has none. */
    readonly auxblob: Buffer = Buffer.alloc(0),
  ) {}

  private entry(p: string): { e: Entry; attr: string } {
    const attr = path.basename(p);
    const e = this.entries.get(path.dirname(p));
    if (!e) throw err('ENOENT', `no such entry ${path.dirname(p)}`);
    return { e, attr };
  }

  async isDirectory(p: string): Promise<boolean> {
    return p === this.reportDir || this.entries.has(p);
  }

  async mkdir(p: string): Promise<void> {
    if (path.dirname(p) !== this.reportDir) throw err('ENOENT', p);
    if (this.entries.has(p)) throw err('EEXIST', p);
    this.entries.set(p, { privlevel: this.privlevelFloor, generation: 0 });
  }

  async rmdir(p: string): Promise<void> {
    if (!this.entries.delete(p)) throw err('ENOENT', p);
  }

  async writeFile(p: string, data: Buffer | string): Promise<void> {
    const { e, attr } = this.entry(p);
    const buf = Buffer.from(data);
    if (attr === 'inblob') {
      if (buf.length > 64) throw err('EINVAL', 'inblob over TSM_INBLOB_MAX');
      e.inblob = buf;
    } else if (attr === 'privlevel') {
      const v = Number(buf.toString().trim());
      if (!Number.isInteger(v) || v > 3 || v < this.privlevelFloor) throw err('EINVAL', 'privlevel');
      e.privlevel = v;
    } else {
      throw err('EACCES', `${attr} is read-only`);
    }
    e.generation++;
  }

  async readFile(p: string): Promise<Buffer> {
    const { e, attr } = this.entry(p);
    switch (attr) {
      case 'generation':
        return Buffer.from(`${e.generation}\n`);
      case 'provider':
        return Buffer.from(`${this.provider}\n`);
      case 'privlevel_floor':
        return Buffer.from(`${this.privlevelFloor}\n`);
      case 'outblob': {
        if (!e.inblob) throw err('EINVAL', 'no inblob written');
        this.quotes++;
        // A stand-in quote that binds the report data (as TDX REPORTDATA / SNP REPORT_DATA do) and the privlevel.
        const body = Buffer.concat([Buffer.from(`${this.provider}:vmpl${e.privlevel}:`), e.inblob]);
        const out = Buffer.concat([body, createHash('sha256').update(body).digest()]);
        this.afterOutblob?.(path.dirname(p));
        return out;
      }
      case 'auxblob':
        return this.auxblob;
      default:
        throw err('ENOENT', attr);
    }
  }
}
