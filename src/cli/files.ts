import { accessSync, closeSync, constants, existsSync, fstatSync, mkdirSync, openSync, readSync, rmSync, statSync, writeFileSync, type Stats } from 'node:fs';
import { dirname, join } from 'node:path';
import { open, stat } from 'node:fs/promises';
import { CliUsageError } from './context.js';
import { readFileCapped } from '../tee/common/read-capped.js';
import { UsageError } from '../tee/common/errors.js';

/**
 * Size caps for files a user names on the command line. Everything is read whole, so without a cap a 200 MB
 * collateral file exhausted the heap; the caps are far above any real input of each kind.
 */
export const FILE_CAPS = {
  /** Policies, reference values, isolation policies, pods, Helm-style values, collateral configs. */
  document: 4 * 1024 * 1024,
  /** Keys, tokens, small JSON endpoint files. */
  key: 64 * 1024,
  /** PEM certificates and chains, trust anchors. */
  certificate: 1024 * 1024,
  kubeconfig: 4 * 1024 * 1024,
  /** Collateral and evidence blobs. */
  evidence: 16 * 1024 * 1024,
  /** KBS resources (secrets) uploaded with kbs-client set-resource: the KBS's own body limit. */
  resource: 2 * 1024 * 1024,
} as const;

export const DEFAULT_FILE_CAP = FILE_CAPS.document;

/** Short, content-free text for a file-system error (never the file's bytes). */
export function describeFsError(e: unknown): string {
  const code = (e as NodeJS.ErrnoException)?.code;
  const known: Record<string, string> = {
    ENOENT: 'no such file or directory', EACCES: 'permission denied', EPERM: 'operation not permitted', EISDIR: 'is a directory',
    ENOTDIR: 'a path component is not a directory', ELOOP: 'too many symbolic links', EAGAIN: 'would block (not a regular file)',
    EROFS: 'read-only file system', ENOSPC: 'no space left on device', EDQUOT: 'disk quota exceeded', ENAMETOOLONG: 'name too long',
    EMFILE: 'too many open files', EIO: 'I/O error', EEXIST: 'already exists', ENXIO: 'no such device or address',
  };
  if (code && known[code]) return `${known[code]} (${code})`;
  return code ?? oneLine((e as Error)?.message ?? String(e));
}

/** First line of a message, at most `max` characters: error text never floods stderr. */
export function oneLine(s: string, max = 300): string {
  const first = s.split(/\r?\n/, 1)[0] ?? '';
  return first.length > max ? `${first.slice(0, max)}…` : first;
}

function kindError(st: Stats): string | undefined {
  if (st.isDirectory()) return 'is a directory';
  if (!st.isFile()) return 'is not a regular file (device, FIFO or socket)';
  return undefined;
}

// O_NONBLOCK: opening a FIFO does not wait for a writer, and /proc files that block (kmsg) return EAGAIN at once.
const OPEN_FLAGS = constants.O_RDONLY | (constants.O_NONBLOCK ?? 0) | (constants.O_NOCTTY ?? 0);

const tooLarge = (what: string, path: string, max: number) => new CliUsageError(`${what} '${path}' is larger than the ${max}-byte limit`);

/**
 * Reads a file the user named, bounded: regular files only, at most `maxBytes` (read in chunks, since /proc files
 * report size 0). A missing, unreadable, oversized or special file is a usage/I-O error (exit 2) that names the file
 * and the cause, never its content.
 */
export async function readUserFile(path: string, what: string, maxBytes: number = DEFAULT_FILE_CAP): Promise<Uint8Array> {
  let fh;
  try {
    fh = await open(path, OPEN_FLAGS);
  } catch (e) {
    throw new CliUsageError(`cannot read ${what} '${path}': ${describeFsError(e)}`);
  }
  try {
    const st = await fh.stat();
    const bad = kindError(st);
    if (bad) throw new CliUsageError(`cannot read ${what} '${path}': ${bad}`);
    if (st.size > maxBytes) throw tooLarge(what, path, maxBytes);
    const chunks: Buffer[] = [];
    let total = 0;
    for (;;) {
      const b = Buffer.allocUnsafe(Math.min(Math.max(st.size + 1, 64 * 1024), maxBytes + 1 - total));
      const { bytesRead } = await fh.read(b, 0, b.length, null);
      if (bytesRead === 0) break;
      chunks.push(b.subarray(0, bytesRead));
      total += bytesRead;
      if (total > maxBytes) throw tooLarge(what, path, maxBytes);
    }
    return new Uint8Array(chunks.length === 1 ? chunks[0] : Buffer.concat(chunks));
  } catch (e) {
    if (e instanceof CliUsageError) throw e;
    throw new CliUsageError(`cannot read ${what} '${path}': ${describeFsError(e)}`);
  } finally {
    await fh.close().catch(() => undefined);
  }
}

/** readUserFile for start-up code that is synchronous. */
export function readUserFileSync(path: string, what: string, maxBytes: number = DEFAULT_FILE_CAP): Buffer {
  let fd: number;
  try {
    fd = openSync(path, OPEN_FLAGS);
  } catch (e) {
    throw new CliUsageError(`cannot read ${what} '${path}': ${describeFsError(e)}`);
  }
  try {
    const st = fstatSync(fd);
    const bad = kindError(st);
    if (bad) throw new CliUsageError(`cannot read ${what} '${path}': ${bad}`);
    if (st.size > maxBytes) throw tooLarge(what, path, maxBytes);
    const chunks: Buffer[] = [];
    let total = 0;
    for (;;) {
      const b = Buffer.allocUnsafe(Math.min(64 * 1024, maxBytes + 1 - total));
      const n = readSync(fd, b, 0, b.length, null);
      if (n === 0) break;
      chunks.push(b.subarray(0, n));
      total += n;
      if (total > maxBytes) throw tooLarge(what, path, maxBytes);
    }
    return Buffer.concat(chunks);
  } catch (e) {
    if (e instanceof CliUsageError) throw e;
    throw new CliUsageError(`cannot read ${what} '${path}': ${describeFsError(e)}`);
  } finally {
    closeSync(fd);
  }
}

/** Reads a user-named text file (UTF-8), bounded like readUserFile. */
export async function readUserText(path: string, what: string, maxBytes: number = DEFAULT_FILE_CAP): Promise<string> {
  return Buffer.from(await readUserFile(path, what, maxBytes)).toString('utf8');
}

/** Checks that a user-named path exists (file or directory) before a verifier opens it. */
export async function statUserPath(path: string, what: string): Promise<void> {
  try {
    await stat(path);
  } catch (e) {
    throw new CliUsageError(`cannot read ${what} '${path}': ${describeFsError(e)}`);
  }
}

/**
 * mkdir -p, one level at a time: Node's recursive mkdir spins forever on some paths (`--data /proc/self/x` burned
 * CPU in a loop instead of failing). Created directories are 0700.
 */
export function mkdirParents(d: string): void {
  const missing: string[] = [];
  for (let p = d; !existsSync(p); p = dirname(p)) {
    missing.unshift(p);
    if (dirname(p) === p) break;
  }
  for (const p of missing) mkdirSync(p, { mode: 0o700 });
}


/**
 * A directory the command will write to (a cache, a state dir): created if missing, else it must be a directory
 * this process can create files in (checked by writing a probe file, which catches read-only mounts too).
 */
export function ensureWritableDir(flag: string, dir: string): void {
  try {
    const st = statSync(dir, { throwIfNoEntry: false });
    if (st && !st.isDirectory()) throw new CliUsageError(`${flag} '${dir}': not a directory`);
    if (!st) mkdirParents(dir);
    accessSync(dir, constants.W_OK | constants.X_OK);
    const probe = join(dir, `.coffer-probe-${process.pid}`);
    writeFileSync(probe, '');
    rmSync(probe, { force: true });
  } catch (e) {
    if (e instanceof CliUsageError) throw e;
    throw new CliUsageError(`${flag} '${dir}': ${describeFsError(e)}`);
  }
}

/**
 * Reads a file the user named, refusing one over `maxBytes` (one line naming the file and the cap, exit 2)
 * before it is read: every input file of a one-shot command is bounded.
 */
export async function readCappedUserFile(path: string, what: string, maxBytes: number): Promise<Uint8Array> {
  try {
    return await readFileCapped(path, maxBytes, what);
  } catch (e) {
    if (e instanceof UsageError) throw new CliUsageError(e.message);
    throw new CliUsageError(`cannot read ${what} '${path}': ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
}
