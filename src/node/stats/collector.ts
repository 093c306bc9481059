/**
 * One sample of every running pod on the node: CRI for the inventory (pods, containers, names, runtime handler) and
 * for CPU and memory; cgroup files for block IO and process counts (CRI v1 has neither), and for CPU and memory
 * when the runtime does not report them; /proc/<sandbox pid>/net/dev for the pod network (packets too, which CRI
 * lacks), falling back to CRI's pod network stats.
 *
 * Per-sandbox and per-container facts that never change (sandbox pid, cgroup path, a container's pod) are asked once with a verbose
 * *Status call and cached; the caches keep only ids the runtime still lists, so they stay bounded.
 */
import path from 'node:path';
import { ISOLATION_LEVELS } from '../../k8s/crds/types.js';
import { cgroupFiles, cgroupsPathToRel, CgroupFileReader, readCgroupFiles, type CgroupCounters, type CgroupFiles, type CgroupVersion } from './cgroup.js';
import { GRPC_UNIMPLEMENTED, grpcCode, type ContainerStats, type CriClient, type NetworkInterfaceUsage, type PodSandbox, type PodSandboxStatus } from './cri-client.js';
import { parseNetDev, type InterfaceCounters } from './netdev.js';

/** A container's cgroup counters, named. */
export interface ContainerSample extends CgroupCounters {
  id: string;
  name: string;
}

export interface PodSample {
  id: string;
  namespace: string;
  name: string;
  runtimeClass: string;
  isolation: string;
  containers: ContainerSample[];
  /** Interfaces of the pod netns; packets are undefined when only CRI's numbers were available. */
  network: (Omit<InterfaceCounters, 'rxPackets' | 'txPackets'> & { rxPackets?: number; txPackets?: number })[];
}

export interface Snapshot {
  pods: PodSample[];
}

export interface CollectorOptions {
  cri: CriClient;
  cgroupRoot: string;
  cgroupVersion: CgroupVersion;
  /** The host's /proc (the DaemonSet mounts it; hostPID is not needed). */
  procRoot: string;
  /** Concurrent verbose *Status calls when many new pods appear at once. */
  statusConcurrency?: number;
}

interface SandboxFacts {
  pid?: number;
  /** /proc/<pid>/net/dev, joined once */
  netDev?: string;
  /** from PodSandboxStatus once: a sandbox's labels, annotations and handler never change */
  labels?: { runtimeClass: string; isolation: string };
}
interface RunningContainer {
  id: string;
  podId: string;
  name: string;
}
interface ContainerFacts {
  files?: CgroupFiles;
  /** pod and name (from ListContainers), kept so a sample needs only ListContainerStats */
  running?: RunningContainer;
}

const ISOLATION_KEY = 'coffer.dev/isolation';
const DECISION_KEY = 'coffer.dev/decision';
/** containerd puts the handler in the sandbox's annotations too (older runtimes leave runtime_handler empty). */
const HANDLER_ANNOTATION = 'io.kubernetes.cri.runtime-handler';
const MAX_INFO = 1024 * 1024;
/**
 * Interfaces exported per pod: a pod with CAP_NET_ADMIN in its own netns can create any number of them, and each
 * would be six more series; the default interface (eth0) comes first.
 */
export const MAX_POD_INTERFACES = 8;

function capInterfaces<T extends { name: string }>(ifs: T[]): T[] {
  if (ifs.length <= MAX_POD_INTERFACES) return ifs;
  return [...ifs].sort((a, b) => (a.name === 'eth0' ? -1 : b.name === 'eth0' ? 1 : a.name < b.name ? -1 : 1)).slice(0, MAX_POD_INTERFACES);
}

/** Coffer's isolation level of the pod: label or annotation coffer.dev/isolation, else the admission decision; only known levels (bounded label values). */
export function podIsolation(p: Pick<PodSandboxStatus, 'labels' | 'annotations'>): string {
  const known = (v: unknown) => (typeof v === 'string' && (ISOLATION_LEVELS as readonly string[]).includes(v) ? v : undefined);
  const direct = known(p.labels?.[ISOLATION_KEY]) ?? known(p.annotations?.[ISOLATION_KEY]);
  if (direct) return direct;
  const decision = p.annotations?.[DECISION_KEY];
  if (decision && decision.length <= 64 * 1024) {
    try {
      return known((JSON.parse(decision) as { isolation?: unknown }).isolation) ?? '';
    } catch {
      return '';
    }
  }
  return '';
}

/** The pod's runtime class as the node sees it: its CRI runtime handler ("" = the runtime's default). */
export function podRuntimeClass(p: Pick<PodSandboxStatus, 'runtime_handler' | 'annotations'>): string {
  return p.runtime_handler || p.annotations?.[HANDLER_ANNOTATION] || 'default';
}

function parseInfo(info: Record<string, string> | undefined): Record<string, unknown> | undefined {
  const raw = info?.info;
  if (!raw || raw.length > MAX_INFO) return undefined;
  try {
    const v = JSON.parse(raw) as unknown;
    return v && typeof v === 'object' ? (v as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

function specCgroup(info: Record<string, unknown> | undefined): string | undefined {
  const p = (info?.runtimeSpec as { linux?: { cgroupsPath?: unknown } } | undefined)?.linux?.cgroupsPath;
  return typeof p === 'string' ? cgroupsPathToRel(p) : undefined;
}

const u64 = (v: { value?: number } | undefined) => (typeof v?.value === 'number' ? v.value : undefined);

async function pool<T>(items: T[], n: number, fn: (t: T) => Promise<void>): Promise<void> {
  let i = 0;
  await Promise.all(
    Array.from({ length: Math.min(n, items.length) }, async () => {
      while (i < items.length) await fn(items[i++]!);
    }),
  );
}

export class StatsCollector {
  private readonly sandboxes = new Map<string, SandboxFacts>();
  private readonly containers = new Map<string, ContainerFacts>();
  private readonly reader = new CgroupFileReader();
  private containerStatsUnimplemented = false;
  private podStatsUnimplemented = false;

  constructor(private readonly opts: CollectorOptions) {}

  /** cgroup and proc files read so far (for the benchmark's raw-read baseline). */
  get filesRead(): number {
    return this.reader.reads;
  }

  /** Throws the CRI error when the runtime cannot list pods or containers (the caller backs off). */
  async collect(): Promise<Snapshot> {
    const { cri } = this.opts;
    const [podsRes, statsRes] = await Promise.all([
      cri.call('ListPodSandbox', { filter: { state: { state: 'SANDBOX_READY' } } }),
      this.containerStatsUnimplemented ? Promise.resolve(undefined) : cri.call('ListContainerStats', { filter: {} }).catch((e) => this.optional(e, 'container')),
    ]);
    const pods = podsRes.items ?? [];
    const ctrs = await this.runningContainers(statsRes?.stats);
    await this.learn(pods, ctrs);

    const cpuMem = new Map<string, { cpu?: number; mem?: number }>();
    for (const s of statsRes?.stats ?? []) {
      const id = s.attributes?.id;
      if (!id) continue;
      const ns = u64(s.cpu?.usage_core_nano_seconds);
      cpuMem.set(id, { cpu: ns === undefined ? undefined : ns / 1e9, mem: u64(s.memory?.working_set_bytes) });
    }
    const byPod = new Map<string, ContainerSample[]>();
    for (const c of ctrs) {
      const facts = this.containers.get(c.id);
      const crs = cpuMem.get(c.id);
      const needCpuMem = crs?.cpu === undefined || crs.mem === undefined;
      const cg = facts?.files ? readCgroupFiles(this.reader, facts.files, { cpuMemory: needCpuMem }) : {};
      const sample: ContainerSample = {
        id: c.id,
        name: c.name,
        ...cg,
        cpuSeconds: crs?.cpu ?? cg.cpuSeconds,
        memoryWorkingSetBytes: crs?.mem ?? cg.memoryWorkingSetBytes,
      };
      let list = byPod.get(c.podId);
      if (!list) byPod.set(c.podId, (list = []));
      list.push(sample);
    }

    const out: PodSample[] = [];
    const needCriNet: PodSample[] = [];
    for (const p of pods) {
      const facts = this.sandboxes.get(p.id);
      const text = facts?.netDev ? this.reader.read(facts.netDev) : undefined;
      // a sandbox whose status could not be had (asked again next sample) has no isolation label yet
      const labels = facts?.labels ?? { runtimeClass: podRuntimeClass(p), isolation: '' };
      const sample: PodSample = {
        id: p.id,
        namespace: p.metadata?.namespace ?? '',
        name: p.metadata?.name ?? '',
        ...labels,
        containers: byPod.get(p.id) ?? [],
        network: text === undefined ? [] : capInterfaces(parseNetDev(text)),
      };
      if (text === undefined) needCriNet.push(sample);
      out.push(sample);
    }
    if (needCriNet.length > 0 && !this.podStatsUnimplemented) await this.criNetwork(needCriNet);
    return { pods: out };
  }

  /**
   * The running containers and their pods. ListContainerStats lists the running containers with their stats, but
   * not their pod: the pod and name of each container id are kept from ListContainers, which is asked only when
   * the stats name an id not seen before (a container's pod never changes). A runtime without ListContainerStats
   * is asked ListContainers every sample. An id the runtime's running list lacks is not remembered, so a runtime
   * whose stats also list stopped containers costs the list call every sample but never exports them.
   */
  private async runningContainers(stats: ContainerStats[] | undefined): Promise<RunningContainer[]> {
    const list = async () => {
      const res = await this.opts.cri.call('ListContainers', { filter: { state: { state: 'CONTAINER_RUNNING' } } });
      return (res.containers ?? []).map((c) => ({ id: c.id, podId: c.pod_sandbox_id, name: c.metadata?.name ?? '' }));
    };
    if (!stats) return list();
    const out: RunningContainer[] = [];
    let listed: Map<string, RunningContainer> | undefined;
    for (const s of stats) {
      const id = s.attributes?.id;
      if (!id) continue;
      let known = this.containers.get(id)?.running;
      if (!known) {
        listed ??= new Map((await list()).map((c) => [c.id, c]));
        known = listed.get(id);
        if (!known) continue;
      }
      out.push(known);
    }
    return out;
  }

  /** Pod network from CRI (bytes and errors; CRI v1 has no packet counts) for pods whose netns could not be read. */
  private async criNetwork(pods: PodSample[]): Promise<void> {
    const res = await this.opts.cri.call('ListPodSandboxStats', { filter: {} }).catch((e) => this.optional(e, 'pod'));
    const byId = new Map((res?.stats ?? []).map((s) => [s.attributes?.id ?? '', s]));
    const conv = (i: NetworkInterfaceUsage) => ({
      name: i.name ?? '',
      rxBytes: u64(i.rx_bytes) ?? 0,
      rxErrors: u64(i.rx_errors) ?? 0,
      txBytes: u64(i.tx_bytes) ?? 0,
      txErrors: u64(i.tx_errors) ?? 0,
    });
    for (const p of pods) {
      const n = byId.get(p.id)?.linux?.network;
      if (!n) continue;
      const ifs = n.interfaces?.length ? n.interfaces : n.default_interface ? [n.default_interface] : [];
      p.network = capInterfaces(ifs.filter((i) => i.name).map(conv));
    }
  }

  /** A stats call the runtime does not implement is remembered and not asked again; other errors propagate. */
  private optional(e: unknown, which: 'container' | 'pod'): undefined {
    if (grpcCode(e) !== GRPC_UNIMPLEMENTED) throw e;
    if (which === 'container') this.containerStatsUnimplemented = true;
    else this.podStatsUnimplemented = true;
    return undefined;
  }

  /** Verbose status once per new sandbox/container; forget ids the runtime no longer lists. */
  private async learn(pods: PodSandbox[], ctrs: RunningContainer[]): Promise<void> {
    const podIds = pods.map((p) => p.id);
    const ctrIds = ctrs.map((c) => c.id);
    const { cri } = this.opts;
    const livePods = new Set(podIds);
    const liveCtrs = new Set(ctrIds);
    for (const id of this.sandboxes.keys()) if (!livePods.has(id)) this.sandboxes.delete(id);
    for (const id of this.containers.keys()) if (!liveCtrs.has(id)) this.containers.delete(id);
    const n = this.opts.statusConcurrency ?? 16;
    await pool(
      pods.filter((p) => !this.sandboxes.has(p.id)),
      n,
      async (p) => {
        const id = p.id;
        try {
          const res = await cri.call('PodSandboxStatus', { pod_sandbox_id: id, verbose: true });
          const info = parseInfo(res.info);
          const pid = info?.pid;
          const ok = typeof pid === 'number' && Number.isInteger(pid) && pid > 0;
          const st = res.status ?? {};
          const labels = { runtimeClass: podRuntimeClass({ runtime_handler: p.runtime_handler || st.runtime_handler, annotations: st.annotations }), isolation: podIsolation(st) };
          this.sandboxes.set(id, ok ? { pid, netDev: path.join(this.opts.procRoot, String(pid), 'net/dev'), labels } : { labels });
        } catch {
          // gone between the list and this call, or the runtime is struggling: asked again next scrape
        }
      },
    );
    await pool(
      ctrs.filter((c) => !this.containers.has(c.id)),
      n,
      async (c) => {
        const id = c.id;
        try {
          const info = parseInfo((await cri.call('ContainerStatus', { container_id: id, verbose: true })).info);
          const rel = specCgroup(info);
          this.containers.set(id, rel ? { files: cgroupFiles(this.opts.cgroupRoot, this.opts.cgroupVersion, rel), running: c } : { running: c });
        } catch {
          // as above
        }
      },
    );
  }
}
