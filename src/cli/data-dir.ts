import { chmodSync, closeSync, existsSync, fsyncSync, linkSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { createPrivateKey, createPublicKey, generateKeyPairSync, randomBytes } from 'node:crypto';
import { CliUsageError } from './context.js';
import { describeFsError, FILE_CAPS, mkdirParents, readUserFileSync } from './files.js';
import { Kek } from '../store/kek.js';
import { SignJWT } from 'jose';
import { ADMIN_TOKEN_AUDIENCE, ADMIN_TOKEN_ISSUER, ROLE_CLAIM } from '../attestation/admin-auth.js';

/**
 * The local data directory of `coffer up` / `coffer attestation` / `coffer kbs`:
 *   coffer.db           SQLite store (WAL)
 *   keys/kek            key-encryption key (0600) — a separate file, never inside the database; COFFER_KEK or
 *                       --kek-file override it (production: mount it from a secret store, not beside the DB)
 *   keys/admin.key      Ed25519 admin signing key (0600), used by `coffer admin-token`
 *   keys/admin.pub      its public half: what the services check admin tokens against
 */
export interface DataDir {
  dir: string;
  dbPath: string;
  kekPath: string;
  adminKeyPath: string;
  adminPubPath: string;
  /** Dev-only key that signs Coffer's dev-form sample evidence (private JWK with kid, 0600). */
  sampleKeyPath: string;
  created: string[];
  /** With `lock: true`: this process's hold on the directory (taken before any key or database file is written). */
  lock?: { release(): void };
}

export function defaultDataDir(env: Record<string, string | undefined>): string {
  return env.COFFER_DATA ?? join(homedir(), '.coffer');
}

/**
 * Writes a file so that a crash leaves either no file or the whole file, never an empty one: temp file in the same
 * directory, fsync, rename, fsync the directory. (A crash between creating and writing `keys/kek` used to leave a
 * zero-length KEK that bricked the data dir.)
 */
export function writeFileAtomic(path: string, data: string | Uint8Array, mode: number): void {
  const tmp = `${path}.tmp-${process.pid}`;
  const fd = openSync(tmp, 'w', mode);
  try {
    writeSync(fd, typeof data === 'string' ? Buffer.from(data) : data);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
  try {
    const dfd = openSync(dirname(path), 'r');
    try {
      fsyncSync(dfd);
    } finally {
      closeSync(dfd);
    }
  } catch {
    // Directory fsync is best effort (not supported everywhere); the rename itself is atomic.
  }
}

const fsFail = (flag: string, path: string, e: unknown) => new CliUsageError(`${flag} '${path}': ${describeFsError(e)}`);

export function openDataDir(dir: string, o: { create: boolean; lock?: boolean; kekFile?: string; env: Record<string, string | undefined> }): DataDir {
  const d = resolve(dir);
  const keys = join(d, 'keys');
  const dd: DataDir = {
    dir: d, dbPath: join(d, 'coffer.db'), kekPath: o.kekFile ? resolve(o.kekFile) : join(keys, 'kek'),
    adminKeyPath: join(keys, 'admin.key'), adminPubPath: join(keys, 'admin.pub'), sampleKeyPath: join(keys, 'sample-dev.jwk'), created: [],
  };
  if (!o.create) return dd;
  try {
    const st = statSync(d, { throwIfNoEntry: false });
    if (st && !st.isDirectory()) throw new CliUsageError(`--data '${d}': not a directory`);
    // A directory the user already has keeps its mode (`--data /tmp` made /tmp 0700); only one we create is 0700.
    if (!st) mkdirParents(d);
    if (!existsSync(keys)) mkdirSync(keys, { mode: 0o700 });
    else chmodSync(keys, 0o700);
  } catch (e) {
    if (e instanceof CliUsageError) throw e;
    throw fsFail('--data', d, e);
  }
  // Two first starts at once must not both generate keys: the lock comes before any file is written.
  if (o.lock) dd.lock = lockDataDir(dd);
  try {
    // Create the database file 0600 up front: SQLite gives its -wal/-shm files the database file's mode. One made
    // by someone else (or an older version) with group/other access is tightened, and so are its -wal/-shm.
    if (!existsSync(dd.dbPath)) writeFileSync(dd.dbPath, '', { mode: 0o600, flag: 'wx' });
    for (const f of [dd.dbPath, `${dd.dbPath}-wal`, `${dd.dbPath}-shm`]) {
      const st = statSync(f, { throwIfNoEntry: false });
      if (st?.isFile() && (st.mode & 0o077) !== 0) chmodSync(f, 0o600);
    }
    if (!o.env.COFFER_KEK && !o.kekFile) ensureKek(dd);
    if (!existsSync(dd.adminKeyPath)) {
      const { privateKey, publicKey } = generateKeyPairSync('ed25519');
      writeFileAtomic(dd.adminKeyPath, privateKey.export({ format: 'pem', type: 'pkcs8' }), 0o600);
      writeFileAtomic(dd.adminPubPath, publicKey.export({ format: 'pem', type: 'spki' }), 0o644);
      dd.created.push(dd.adminKeyPath, dd.adminPubPath);
    } else if (!existsSync(dd.adminPubPath)) {
      // A crash between the two writes: the public half is derived again from the private key.
      const key = createPrivateKey(readUserFileSync(dd.adminKeyPath, 'admin key', FILE_CAPS.key));
      writeFileAtomic(dd.adminPubPath, createPublicKey(key).export({ format: 'pem', type: 'spki' }), 0o644);
    }
  } catch (e) {
    dd.lock?.release();
    if (e instanceof CliUsageError) throw e;
    throw fsFail('--data', d, e);
  }
  return dd;
}

/**
 * Creates keys/kek on first start. An empty KEK (left by a crash of an older version) is regenerated only while the
 * database is still empty (nothing can be sealed with it yet); otherwise it is refused with the way out.
 */
function ensureKek(dd: DataDir): void {
  const st = statSync(dd.kekPath, { throwIfNoEntry: false });
  if (st && st.size > 0) return;
  if (st && statSync(dd.dbPath).size > 0) {
    throw new CliUsageError(`key-encryption key '${dd.kekPath}' is empty but the store already holds data: restore the KEK from a backup (or set COFFER_KEK)`);
  }
  writeFileAtomic(dd.kekPath, `${randomBytes(32).toString('hex')}\n`, 0o600);
  dd.created.push(dd.kekPath);
}

/** Reads the KEK from COFFER_KEK or the (bounded) KEK file; a bad one names the file, never its bytes. */
export function loadKek(env: Record<string, string | undefined>, kekPath: string, flag: string): Kek {
  if (env.COFFER_KEK) {
    try {
      return Kek.parse(env.COFFER_KEK);
    } catch (e) {
      throw new CliUsageError(`COFFER_KEK: ${(e as Error).message}`);
    }
  }
  const b = readUserFileSync(kekPath, flag, FILE_CAPS.key);
  if (b.length === 0) throw new CliUsageError(`${flag} '${kekPath}' is empty`);
  try {
    return Kek.parse(new Uint8Array(b));
  } catch (e) {
    throw new CliUsageError(`${flag} '${kekPath}': ${(e as Error).message}`);
  }
}

/**
 * One server per data directory: `<data>/coffer.lock` holds the owner's PID. A lock whose process is gone (a
 * SIGKILLed `coffer up`) is stale and taken over; a live one is refused with its PID.
 */
export function lockDataDir(d: DataDir): { release(): void } {
  const lock = join(d.dir, 'coffer.lock');
  const tmp = `${lock}.${process.pid}`;
  // PID and the process's start time: a PID reused by an unrelated process later does not hold the lock.
  writeFileSync(tmp, `${process.pid} ${startTime(process.pid) ?? ''}`.trim() + '\n', { mode: 0o600 });
  try {
    for (let attempt = 0; ; attempt++) {
      try {
        linkSync(tmp, lock); // atomic: fails with EEXIST when another process holds the lock
        break;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST' || attempt > 0) throw e;
        const [pidText, started] = readFileSync(lock, 'utf8').trim().split(/\s+/);
        const pid = Number(pidText);
        const same = started === undefined || startTime(pid) === undefined || startTime(pid) === started;
        if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && processAlive(pid) && same) {
          throw new CliUsageError(`data directory '${d.dir}' is in use by PID ${pid} (${lock})`);
        }
        rmSync(lock, { force: true });
      }
    }
  } catch (e) {
    if (e instanceof CliUsageError) throw e;
    throw fsFail('--data', d.dir, e);
  } finally {
    rmSync(tmp, { force: true });
  }
  let released = false;
  return {
    release() {
      if (released) return;
      released = true;
      try {
        if (readFileSync(lock, 'utf8').trim().split(/\s+/)[0] === String(process.pid)) rmSync(lock, { force: true });
      } catch {
        // already gone
      }
    },
  };
}

/** Field 22 of /proc/PID/stat (start time in clock ticks since boot); undefined where /proc is not available. */
function startTime(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
  // A killed owner not yet reaped by its parent is a zombie: it holds nothing, so its lock is stale.
  try {
    return !/^State:\s+Z/m.test(readFileSync(`/proc/${pid}/status`, 'utf8'));
  } catch {
    return true;
  }
}

/** An EdDSA admin token (the shape of Trustee's legacy kbs-client admin JWT, plus iss/aud), valid `ttlSeconds`. */
export async function mintAdminToken(adminKeyPath: string, o: { ttlSeconds: number; subject: string; viewer?: boolean }): Promise<string> {
  let key;
  try {
    key = createPrivateKey(readUserFileSync(adminKeyPath, 'admin private key', FILE_CAPS.key));
  } catch (e) {
    if (e instanceof CliUsageError) throw e;
    // node:crypto's message never includes the key bytes, but keep it to its first line.
    throw new CliUsageError(`admin private key '${adminKeyPath}' is not a PEM private key: ${(e as Error).message.split('\n')[0]}`);
  }
  if (key.asymmetricKeyType !== 'ed25519') throw new CliUsageError(`admin private key '${adminKeyPath}' is a ${key.asymmetricKeyType} key, not Ed25519`);
  const now = Math.floor(Date.now() / 1000);
  // Viewer tokens carry `coffer.role: viewer`: the services let them read (dashboard, admin GETs), never write.
  return new SignJWT({ sub: o.subject, ...(o.viewer ? { [ROLE_CLAIM]: 'viewer' } : {}) })
    .setProtectedHeader({ alg: 'EdDSA' }).setIssuer(ADMIN_TOKEN_ISSUER).setAudience(ADMIN_TOKEN_AUDIENCE)
    .setIssuedAt(now).setExpirationTime(now + o.ttlSeconds).sign(key);
}

/** Creates (once) the dev key for signed sample evidence; returns its public JWK (with kid) for the verifier. */
export function ensureSampleDevKey(d: DataDir): Record<string, unknown> {
  if (!existsSync(d.sampleKeyPath)) {
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const jwk = { ...privateKey.export({ format: 'jwk' }), kid: `sample-dev-${randomBytes(4).toString('hex')}` };
    writeFileAtomic(d.sampleKeyPath, JSON.stringify(jwk), 0o600);
    d.created.push(d.sampleKeyPath);
  }
  let parsed: Record<string, unknown>;
  try {
    parsed = JSON.parse(readUserFileSync(d.sampleKeyPath, 'sample dev key', FILE_CAPS.key).toString('utf8')) as Record<string, unknown>;
  } catch (e) {
    if (e instanceof CliUsageError) throw e;
    throw new CliUsageError(`sample dev key '${d.sampleKeyPath}' is not a JSON JWK (delete it to make a new one)`);
  }
  const { d: _private, ...pub } = parsed;
  return pub;
}
