import { watch, type FSWatcher } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { createSecureContext, type Server as TlsServer } from 'node:tls';
import { X509Certificate, createHash } from 'node:crypto';

export interface TlsMaterial {
  cert: Buffer;
  key: Buffer;
  notAfter: Date;
  fingerprint: string;
}

/** Reads cert + key and proves they load and belong together (createSecureContext checks the key matches). */
export async function loadTlsFiles(certFile: string, keyFile: string): Promise<TlsMaterial> {
  const [cert, key] = await Promise.all([readFile(certFile), readFile(keyFile)]);
  createSecureContext({ cert, key });
  const x = new X509Certificate(cert);
  return { cert, key, notAfter: new Date(x.validTo), fingerprint: createHash('sha256').update(cert).update(key).digest('hex') };
}

/**
 * Re-reads the pair and, when it changed and loads as a matching pair, makes `server` present it to new
 * connections. Returns the new material, or undefined when the files are unchanged; throws when they do not load
 * (a half-written rotation: new cert, old key), in which case the server keeps the pair it had.
 */
export async function reloadServingTls(server: TlsServer | undefined, certFile: string, keyFile: string, current: TlsMaterial | undefined): Promise<TlsMaterial | undefined> {
  const next = await loadTlsFiles(certFile, keyFile);
  if (next.fingerprint === current?.fingerprint) return undefined;
  server?.setSecureContext({ cert: next.cert, key: next.key, minVersion: 'TLSv1.2' });
  return next;
}

/**
 * Calls `onChange` when the certificate or key files change. Watches the *directories*: Kubernetes mounts
 * Secrets through a `..data` symlink that is swapped atomically, which a watch on the file itself misses. A slow
 * poll backs the watcher up (inotify can drop events); both are debounced and unref'd.
 */
export class TlsFileWatcher {
  private watchers: FSWatcher[] = [];
  private timer?: NodeJS.Timeout;
  private poll?: NodeJS.Timeout;

  private running = false;
  private again = false;

  constructor(
    private readonly files: string[],
    private readonly onChange: () => unknown | Promise<unknown>,
    private readonly opts: { debounceMs?: number; pollMs?: number } = {},
  ) {}

  start(): void {
    for (const dir of new Set(this.files.map((f) => dirname(f)))) {
      try {
        const w = watch(dir, { persistent: false }, () => this.kick());
        w.on('error', () => undefined);
        this.watchers.push(w);
      } catch {
        // Directory cannot be watched (e.g. exotic filesystem): the poll still covers it.
      }
    }
    const pollMs = this.opts.pollMs ?? 30_000;
    if (pollMs > 0) {
      this.poll = setInterval(() => this.fire(), pollMs);
      this.poll.unref();
    }
  }

  private kick(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => this.fire(), this.opts.debounceMs ?? 100);
    this.timer.unref();
  }

  /**
   * One reload at a time, and a change seen while one runs gets a run of its own afterwards: that run may have read
   * the files before the change (e.g. a temp file written, the rename still to come), so dropping the trigger would
   * lose the rotation, and overlapping runs could apply an older pair after a newer one.
   */
  private fire(): void {
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = true;
    void Promise.resolve()
      .then(() => this.onChange())
      .catch(() => undefined)
      .finally(() => {
        this.running = false;
        if (this.again) {
          this.again = false;
          this.fire();
        }
      });
  }

  stop(): void {
    for (const w of this.watchers) w.close();
    this.watchers = [];
    if (this.timer) clearTimeout(this.timer);
    if (this.poll) clearInterval(this.poll);
  }
}
