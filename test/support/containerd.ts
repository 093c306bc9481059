/**
 * A private containerd (CRI plugin on) for tests: own root/state/socket under a temp dir, an isolated CNI bridge
 * (no host IP, no masquerade: pod-to-pod only), runc plus a second handler, a busybox-static image imported as an
 * OCI layout (no registry), pods under their own cgroup parent with a no-op blkio throttle so cgroup v1 counts
 * block IO on this kernel (../shared/notes/runtime.md). `stop()` tears everything down and is safe to call twice.
 * The driver talks CRI through the descriptor containerd's own binary embeds (full API; maps as {key,value} lists).
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, closeSync, existsSync, openSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, rmdirSync, statSync, writeFileSync, copyFileSync, symlinkSync } from 'node:fs';
import { createHash, randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { connect } from 'node:net';
import path from 'node:path';
import { inflateRawSync, constants as zc } from 'node:zlib';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import descriptor from 'protobufjs/ext/descriptor/index.js';
import { waitFor } from './wait.js';

export const CONTAINERD_BIN = '/usr/bin/containerd';
const CNI_DIR = '/usr/lib/cni';

/** Why this machine cannot run the suite, or undefined when it can. */
export function containerdUnavailable(): string | undefined {
  if (process.getuid?.() !== 0) return 'needs root (containerd, cgroups, network namespaces)';
  for (const b of [CONTAINERD_BIN, '/usr/bin/ctr', '/bin/busybox', `${CNI_DIR}/bridge`, `${CNI_DIR}/host-local`, `${CNI_DIR}/loopback`]) {
    if (!existsSync(b)) return `${b} missing (apt-get install containerd runc containernetworking-plugins busybox-static)`;
  }
  if (!findRunc()) return 'runc missing (apt-get install runc)';
  return undefined;
}

function findRunc(): string | undefined {
  return ['/usr/sbin/runc', '/usr/bin/runc'].find((p) => existsSync(p));
}

/**
 * The gzipped FileDescriptorProto of package `pkg` that gogo/protobuf registers in a Go binary: scan for gzip
 * headers, inflate, keep the one that decodes to that package. Returned as a FileDescriptorSet (imports dropped:
 * the gogo options are not needed for gRPC).
 */
export function extractDescriptorSet(bin: string, pkg = 'runtime.v1'): Buffer {
  const data = readFileSync(bin);
  const magic = Buffer.from([0x1f, 0x8b, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00]);
  const want = Buffer.from(pkg);
  for (let i = data.indexOf(magic); i >= 0; i = data.indexOf(magic, i + 1)) {
    let raw: Buffer;
    try {
      raw = inflateRawSync(data.subarray(i + 10, i + 10 + 4 * 1024 * 1024), { finishFlush: zc.Z_SYNC_FLUSH });
    } catch {
      continue;
    }
    if (!raw.includes('RuntimeService') || !raw.includes(want)) continue;
    try {
      const fdp = descriptor.FileDescriptorProto.decode(raw) as unknown as { package: string; dependency: string[] };
      if (fdp.package !== pkg) continue;
      fdp.dependency = [];
      return Buffer.from(descriptor.FileDescriptorSet.encode({ file: [fdp] } as never).finish());
    } catch {
      continue;
    }
  }
  throw new Error(`no ${pkg} descriptor in ${bin}`);
}

/** Makes `ustar` bytes of a directory (regular files, dirs, symlinks), deterministic, via the system tar. */
function tarDir(dir: string, out: string): void {
  execFileSync('tar', ['--sort=name', '--owner=0', '--group=0', '--numeric-owner', '--mtime=@0', '-C', dir, '-cf', out, '.']);
}

/** OCI image layout tarball with IMAGE (busybox, Cmd sh) and PAUSE (busybox sleep as the sandbox process). */
export const IMAGE = 'localhost/coffer-test/busybox:1';
export const PAUSE = 'localhost/coffer-test/pause:1';
export function buildImageLayout(work: string): string {
  const rootfs = path.join(work, 'rootfs');
  for (const d of ['bin', 'etc', 'proc', 'sys', 'dev', 'tmp', 'root', 'www']) mkdirSync(path.join(rootfs, d), { recursive: true });
  copyFileSync('/bin/busybox', path.join(rootfs, 'bin/busybox'));
  chmodSync(path.join(rootfs, 'bin/busybox'), 0o755);
  const applets = execFileSync('/bin/busybox', ['--list'], { encoding: 'utf8' }).split('\n').filter((a) => a && a !== 'busybox');
  for (const a of applets) symlinkSync('busybox', path.join(rootfs, 'bin', a));
  writeFileSync(path.join(rootfs, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n');
  writeFileSync(path.join(rootfs, 'etc/group'), 'root:x:0:\nnogroup:x:65534:\n');
  chmodSync(path.join(rootfs, 'tmp'), 0o1777);
  const layout = path.join(work, 'layout');
  mkdirSync(path.join(layout, 'blobs/sha256'), { recursive: true });
  const blob = (bytes: Buffer) => {
    const hex = createHash('sha256').update(bytes).digest('hex');
    writeFileSync(path.join(layout, 'blobs/sha256', hex), bytes);
    return { digest: `sha256:${hex}`, size: bytes.length };
  };
  tarDir(rootfs, path.join(work, 'layer.tar'));
  const layer = blob(readFileSync(path.join(work, 'layer.tar')));
  const manifest = (entrypoint: string[] | null, cmd: string[] | null) => {
    const cfg = blob(
      Buffer.from(
        JSON.stringify({
          architecture: 'amd64',
          os: 'linux',
          created: '1970-01-01T00:00:00Z',
          config: { Env: ['PATH=/bin'], Entrypoint: entrypoint, Cmd: cmd, WorkingDir: '/' },
          rootfs: { type: 'layers', diff_ids: [layer.digest] },
        }),
      ),
    );
    return blob(
      Buffer.from(
        JSON.stringify({
          schemaVersion: 2,
          mediaType: 'application/vnd.oci.image.manifest.v1+json',
          config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...cfg },
          layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', ...layer }],
        }),
      ),
    );
  };
  const busybox = manifest(null, ['sh']);
  // sleep as pid 1 ignores SIGTERM; containerd stops sandboxes with SIGKILL anyway
  const pause = manifest(['/bin/sleep', '2147483647'], null);
  writeFileSync(path.join(layout, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
  const entry = (m: { digest: string; size: number }, name: string) => ({
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    ...m,
    platform: { architecture: 'amd64', os: 'linux' },
    annotations: { 'io.containerd.image.name': name },
  });
  writeFileSync(path.join(layout, 'index.json'), JSON.stringify({ schemaVersion: 2, manifests: [entry(busybox, IMAGE), entry(pause, PAUSE)] }));
  const out = path.join(work, 'images.oci.tar');
  tarDir(layout, out);
  return out;
}

export interface Handler {
  name: string;
  binary: string;
}

export interface Containerd {
  dir: string;
  socket: string;
  endpoint: string;
  configPath: string;
  handlers: string[];
  /** cgroup parent every test pod goes under (relative to each v1 hierarchy). */
  cgroupParent: string;
  cri: CriDriver;
  /** SIGKILL containerd (shims and pods live on), then start it again on the same config. */
  kill(): Promise<void>;
  restart(): Promise<void>;
  stop(): Promise<void>;
}

type Kv = { key: string; value: string }[];
export const kv = (o: Record<string, string>): Kv => Object.entries(o).map(([key, value]) => ({ key, value }));
export const fromKv = (l: Kv | undefined): Record<string, string> => Object.fromEntries((l ?? []).map((e) => [e.key, e.value]));

/** Full CRI client over the binary's descriptor, for driving pods (the product's client is a read-only subset). */
export class CriDriver {
  private readonly client: grpc.Client;
  constructor(socket: string, descSet: Buffer) {
    const def = protoLoader.loadFileDescriptorSetFromBuffer(descSet, { keepCase: true, longs: Number, enums: String, defaults: true, oneofs: true });
    const pkg = grpc.loadPackageDefinition(def) as unknown as { runtime: { v1: { RuntimeService: grpc.ServiceClientConstructor } } };
    this.client = new pkg.runtime.v1.RuntimeService(`unix://${socket}`, grpc.credentials.createInsecure());
  }
  call<T = Record<string, unknown>>(method: string, req: unknown, timeoutMs = 60_000): Promise<T> {
    return new Promise((resolve, reject) => {
      const fn = (this.client as unknown as Record<string, (r: unknown, o: grpc.CallOptions, cb: (e: Error | null, v: T) => void) => void>)[method]!;
      fn.call(this.client, req, { deadline: Date.now() + timeoutMs }, (e, v) => (e ? reject(e) : resolve(v)));
    });
  }
  close(): void {
    this.client.close();
  }
}

/** Killed by a signal leaves exitCode null: check both. */
const hasExited = (p: ChildProcess) => p.exitCode !== null || p.signalCode !== null;

function canConnect(sock: string): Promise<boolean> {
  return new Promise((resolve) => {
    const c = connect(sock);
    c.once('connect', () => (c.destroy(), resolve(true)));
    c.once('error', () => resolve(false));
  });
}

function devOf(p: string): string {
  const d = statSync(p).dev;
  const major = Number((BigInt(d) >> 8n) & 0xfffn) | Number((BigInt(d) >> 32n) & ~0xfffn);
  const minor = Number(BigInt(d) & 0xffn) | Number((BigInt(d) >> 12n) & ~0xffn);
  return `${major}:${minor}`;
}

const V1 = ['blkio', 'memory', 'cpu', 'cpuacct', 'pids', 'cpuset', 'devices', 'freezer'];

/** Descendant pids of `pid` (from /proc/<p>/stat ppid). */
function descendants(root: number[]): number[] {
  const parent = new Map<number, number>();
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const st = readFileSync(`/proc/${e}/stat`, 'utf8');
      parent.set(Number(e), Number(st.slice(st.lastIndexOf(')') + 2).split(' ')[1]));
    } catch {
      /* gone */
    }
  }
  const out = new Set(root);
  let grew = true;
  while (grew) {
    grew = false;
    for (const [p, pp] of parent) if (!out.has(p) && out.has(pp)) (out.add(p), (grew = true));
  }
  return [...out];
}

export async function startContainerd(opts: { secondHandler?: 'crun' | 'runc-alt' } = {}): Promise<Containerd> {
  const id = randomBytes(3).toString('hex');
  const dir = mkdtempSync(path.join(tmpdir(), 'coffer-ctd-'));
  const socket = path.join(dir, 'containerd.sock');
  const bridge = `cof${id}`;
  const subnet = `10.251.${randomBytes(1)[0]! % 250}.0/24`;
  const cgroupParent = `/coffer-test-${id}`;
  const createdRunContainerd = !existsSync('/run/containerd');
  for (const d of ['root', 'state', 'cni', 'ipam', 'logs', 'runc', 'work']) mkdirSync(path.join(dir, d), { recursive: true });
  const runc = findRunc()!;
  const handlers: Handler[] = [{ name: 'runc', binary: runc }];
  const second = opts.secondHandler ?? (existsSync('/usr/bin/crun') ? 'crun' : 'runc-alt');
  if (second === 'crun') {
    // crun 1.8 refuses hybrid cgroups when the v2 mount holds a controller: run it without that mount
    const wrap = path.join(dir, 'crun-wrap');
    writeFileSync(wrap, `#!/bin/sh\nexec unshare -m sh -c 'umount /sys/fs/cgroup/unified 2>/dev/null; exec /usr/bin/crun "$@"' crun "$@"\n`);
    chmodSync(wrap, 0o755);
    handlers.push({ name: 'crun', binary: wrap });
  } else handlers.push({ name: 'runc-alt', binary: runc });

  let proc: ChildProcess | undefined;
  let cri: CriDriver | undefined;
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    try {
      if (cri) {
        try {
          const pods = await cri.call<{ items: { id: string }[] }>('ListPodSandbox', {}, 5000);
          for (const p of pods.items) {
            await cri.call('StopPodSandbox', { pod_sandbox_id: p.id }, 10_000).catch(() => {});
            await cri.call('RemovePodSandbox', { pod_sandbox_id: p.id }, 10_000).catch(() => {});
          }
        } catch {
          /* containerd gone: the process sweep below handles it */
        }
        cri.close();
      }
    } finally {
      // shims (and their containers) carry our socket or root in argv; containerd itself is our child
      const mine: number[] = [];
      for (const e of readdirSync('/proc')) {
        if (!/^\d+$/.test(e) || Number(e) === process.pid) continue;
        try {
          const cmd = readFileSync(`/proc/${e}/cmdline`, 'utf8');
          if (cmd.includes(socket) || cmd.includes(`${dir}/`)) mine.push(Number(e));
        } catch {
          /* gone */
        }
      }
      if (proc?.pid) mine.push(proc.pid);
      for (const p of descendants(mine)) {
        try {
          process.kill(p, 'SIGKILL');
        } catch {
          /* gone */
        }
      }
      if (proc && !hasExited(proc)) await new Promise((r) => proc!.once('exit', r));
      await new Promise((r) => setTimeout(r, 200));
      const mounts = readFileSync('/proc/self/mounts', 'utf8')
        .split('\n')
        .map((l) => l.split(' ')[1] ?? '')
        .filter((m) => m.startsWith(`${dir}/`))
        .sort()
        .reverse();
      for (const m of mounts) {
        try {
          execFileSync('umount', ['-l', m], { stdio: 'ignore' });
        } catch {
          /* already gone */
        }
      }
      // runc also makes the pod cgroups in the named systemd hierarchy and the hybrid cgroup2 mount
      for (const c of [...V1, 'systemd', 'unified']) {
        const base = path.join('/sys/fs/cgroup', c, cgroupParent);
        if (!existsSync(base)) continue;
        const dirs: string[] = [];
        const walk = (d: string) => {
          for (const e of readdirSync(d, { withFileTypes: true })) if (e.isDirectory()) walk(path.join(d, e.name));
          dirs.push(d);
        };
        try {
          walk(base);
          for (const d of dirs) rmdirSync(d);
        } catch {
          /* busy: processes left */
        }
      }
      try {
        execFileSync('ip', ['link', 'del', bridge], { stdio: 'ignore' });
      } catch {
        /* never created */
      }
      if (createdRunContainerd) rmSync('/run/containerd', { recursive: true, force: true });
      rmSync(dir, { recursive: true, force: true });
    }
  };

  let configPath = '';
  const launch = async () => {
    rmSync(socket, { force: true }); // a killed containerd leaves its socket behind
    const fd = openSync(path.join(dir, 'logs/containerd.log'), 'a');
    const p = spawn(CONTAINERD_BIN, ['--config', configPath], { stdio: ['ignore', fd, fd], detached: true });
    closeSync(fd);
    proc = p;
    await waitFor(
      'containerd to listen',
      async () => {
        if (hasExited(p)) throw new Error(`containerd exited (${p.exitCode ?? p.signalCode})`);
        return existsSync(socket) && (await canConnect(socket));
      },
      20_000,
      50,
    );
  };
  const kill = async () => {
    const p = proc;
    if (!p || hasExited(p)) return;
    const exited = new Promise((r) => p.once('exit', r));
    p.kill('SIGKILL');
    await exited;
  };
  try {
    // block IO counts in cgroup v1 only once a throttle rule exists for the device (this kernel): a no-op 1 TiB/s
    const dev = devOf(dir);
    for (const c of V1) if (existsSync(path.join('/sys/fs/cgroup', c))) mkdirSync(path.join('/sys/fs/cgroup', c, cgroupParent), { recursive: true });
    const blk = path.join('/sys/fs/cgroup/blkio', cgroupParent);
    if (existsSync(blk)) {
      writeFileSync(path.join(blk, 'blkio.throttle.read_bps_device'), `${dev} 1099511627776`);
      writeFileSync(path.join(blk, 'blkio.throttle.write_bps_device'), `${dev} 1099511627776`);
    }
    const runtimes = handlers
      .map(
        (h) => `    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.${h.name}]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.${h.name}.options]
        BinaryName = "${h.binary}"
        Root = "${dir}/runc/${h.name}"`,
      )
      .join('\n');
    configPath = path.join(dir, 'config.toml');
    writeFileSync(
      configPath,
      `version = 2
root = "${dir}/root"
state = "${dir}/state"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper"]
[grpc]
  address = "${socket}"
[ttrpc]
  address = "${socket}.ttrpc"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "${PAUSE}"
  netns_mounts_under_state_dir = true
  # this machine drops CAP_SYS_RESOURCE even for root: negative oom_score_adj cannot be written
  restrict_oom_score_adj = true
  enable_cdi = false
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
${runtimes}
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "${CNI_DIR}"
    conf_dir = "${dir}/cni"
    max_conf_num = 1
`,
    );
    writeFileSync(
      path.join(dir, 'cni/10-coffer-test.conflist'),
      JSON.stringify({
        cniVersion: '1.0.0',
        name: `coffer-test-${id}`,
        plugins: [{ type: 'bridge', bridge, isGateway: false, ipMasq: false, ipam: { type: 'host-local', ranges: [[{ subnet }]], dataDir: `${dir}/ipam` } }],
      }),
    );
    await launch();
    const image = buildImageLayout(path.join(dir, 'work'));
    execFileSync('ctr', ['--address', socket, '-n', 'k8s.io', 'images', 'import', image], { stdio: 'ignore' });
    cri = new CriDriver(socket, extractDescriptorSet(CONTAINERD_BIN));
    await waitFor(
      'CRI ready',
      async () => {
        try {
          const st = await cri!.call<{ status: { conditions: { type: string; status: boolean }[] } }>('Status', {}, 2000);
          return st.status.conditions.every((c) => c.status);
        } catch {
          return false;
        }
      },
      15_000,
      100,
    );
    const restart = async () => {
      await kill();
      await launch();
    };
    return { dir, socket, endpoint: `unix://${socket}`, configPath, handlers: handlers.map((h) => h.name).sort(), cgroupParent, cri, kill, restart, stop };
  } catch (e) {
    const logText = (() => {
      try {
        return readFileSync(path.join(dir, 'logs/containerd.log'), 'utf8').slice(-2000);
      } catch {
        return '';
      }
    })();
    await stop();
    throw new Error(`containerd did not come up: ${(e as Error).message}\n${logText}`);
  }
}

/** One pod with one busybox container running `script`; returns ids, the pod IP. */
export async function runPod(
  ctd: Containerd,
  o: { name: string; namespace: string; handler: string; script: string; labels?: Record<string, string>; annotations?: Record<string, string> },
): Promise<{ podId: string; containerId: string; ip: string; config: unknown }> {
  const uid = randomBytes(8).toString('hex');
  const config = {
    metadata: { name: o.name, uid, namespace: o.namespace, attempt: 0 },
    hostname: o.name,
    log_directory: path.join(ctd.dir, 'logs/pods', uid),
    labels: kv({ 'io.kubernetes.pod.name': o.name, ...(o.labels ?? {}) }),
    annotations: kv(o.annotations ?? {}),
    linux: { cgroup_parent: `${ctd.cgroupParent}/pod${uid}`, security_context: { namespace_options: { network: 'POD', pid: 'CONTAINER', ipc: 'POD' } } },
  };
  const { pod_sandbox_id: podId } = await ctd.cri.call<{ pod_sandbox_id: string }>('RunPodSandbox', { config, runtime_handler: o.handler }, 120_000);
  const st = await ctd.cri.call<{ status: { network?: { ip?: string } } }>('PodSandboxStatus', { pod_sandbox_id: podId });
  const { container_id: containerId } = await ctd.cri.call<{ container_id: string }>('CreateContainer', {
    pod_sandbox_id: podId,
    sandbox_config: config,
    config: { metadata: { name: 'work', attempt: 0 }, image: { image: IMAGE }, command: ['sh', '-c', o.script], log_path: 'work.log', linux: { resources: { memory_limit_in_bytes: String(256 << 20) } } },
  });
  await ctd.cri.call('StartContainer', { container_id: containerId });
  return { podId, containerId, ip: st.status.network?.ip ?? '', config };
}

export async function execSync(ctd: Containerd, containerId: string, cmd: string[], timeoutS = 60): Promise<{ exit_code: number; stdout: string; stderr: string }> {
  const r = await ctd.cri.call<{ exit_code: number; stdout: Buffer; stderr: Buffer }>('ExecSync', { container_id: containerId, cmd, timeout: timeoutS }, (timeoutS + 10) * 1000);
  return { exit_code: r.exit_code, stdout: Buffer.from(r.stdout).toString(), stderr: Buffer.from(r.stderr).toString() };
}

export async function removePod(ctd: Containerd, podId: string): Promise<void> {
  await ctd.cri.call('StopPodSandbox', { pod_sandbox_id: podId });
  await ctd.cri.call('RemovePodSandbox', { pod_sandbox_id: podId });
}
