/**
 * The exporter's Prometheus series. Pod and container series are a snapshot: each sample replaces them all, so a
 * pod that is gone disappears from /metrics at once (label cardinality is bounded by what runs on the node now).
 * Counters carry the runtime's cumulative values, the way cAdvisor exposes container_*_total.
 *
 * The exporter's own gauges and counters live in a private prom-client Registry, which also gives the content
 * type. The ~13 series per pod are written as exposition text here, once per sample: going through prom-client
 * (a metric object per family, its values formatted by Registry.metrics()) cost a quarter of a 1,000-pod scrape,
 * more than the CRI calls. The text is the same format (version 0.0.4): HELP/TYPE per family, label values
 * escaped as prom-client escapes them, and each container's label set formatted once while it lives.
 */
import { Counter, Gauge, Registry } from 'prom-client';
import type { Snapshot } from './collector.js';

type Family = readonly [name: string, help: string, type: 'counter' | 'gauge'];

const CONTAINER_FAMILIES = {
  cpu: ['coffer_pod_container_cpu_usage_seconds_total', 'CPU time the container used (all cores), seconds', 'counter'],
  mem: ['coffer_pod_container_memory_working_set_bytes', 'Container memory working set (usage minus inactive file pages), bytes', 'gauge'],
  rb: ['coffer_pod_container_blkio_read_bytes_total', 'Bytes the container read from block devices', 'counter'],
  wb: ['coffer_pod_container_blkio_write_bytes_total', 'Bytes the container wrote to block devices', 'counter'],
  ro: ['coffer_pod_container_blkio_read_ops_total', 'Read operations the container issued to block devices', 'counter'],
  wo: ['coffer_pod_container_blkio_write_ops_total', 'Write operations the container issued to block devices', 'counter'],
  procs: ['coffer_pod_container_processes', 'Processes (tasks) in the container cgroup', 'gauge'],
} as const satisfies Record<string, Family>;
const NETWORK_FAMILIES = {
  rxb: ['coffer_pod_network_receive_bytes_total', 'Bytes the pod network namespace received, per interface', 'counter'],
  txb: ['coffer_pod_network_transmit_bytes_total', 'Bytes the pod network namespace sent, per interface', 'counter'],
  rxp: ['coffer_pod_network_receive_packets_total', 'Packets the pod network namespace received, per interface', 'counter'],
  txp: ['coffer_pod_network_transmit_packets_total', 'Packets the pod network namespace sent, per interface', 'counter'],
  rxe: ['coffer_pod_network_receive_errors_total', 'Receive errors in the pod network namespace, per interface', 'counter'],
  txe: ['coffer_pod_network_transmit_errors_total', 'Transmit errors in the pod network namespace, per interface', 'counter'],
} as const satisfies Record<string, Family>;

/** prom-client's label value escaping (backslash, double quote, newline). */
export function escapeLabelValue(v: string): string {
  return /[\\"\n]/.test(v) ? v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"') : v;
}

const header = ([name, help, type]: Family) => `# HELP ${name} ${help}\n# TYPE ${name} ${type}\n`;

/** One series' label set and its formatted `{...}` text, kept while the container / interface lives. */
interface LabelSet {
  ns: string;
  pod: string;
  name: string;
  rc: string;
  iso: string;
  text: string;
}

/** Lines of one family for one sample; unknown values are left out, never reported as zero. */
class FamilyText {
  private text = '';
  constructor(private readonly name: string) {}
  push(labels: string, v: number | undefined): void {
    if (v === undefined || !Number.isFinite(v) || v < 0) return;
    this.text += this.name + labels + ' ' + v + '\n';
  }
  take(): string {
    const s = this.text;
    this.text = '';
    return s;
  }
}

export class PodMetrics {
  readonly registry = new Registry();
  /** Label sets by container id / pod id + interface, kept while they live. */
  private labelCache = new Map<string, LabelSet>();
  /** The per-pod families of the last sample, as exposition text. */
  private podText: string;
  private readonly podCount: Gauge;
  readonly criUp: Gauge;
  readonly criErrors: Counter;
  readonly scrapeSeconds: Gauge;

  constructor() {
    const r = [this.registry];
    this.podCount = new Gauge({ name: 'coffer_stats_pods', help: 'Running pod sandboxes in the last sample', registers: r });
    this.criUp = new Gauge({ name: 'coffer_stats_cri_up', help: '1 when the last CRI sample succeeded, 0 while the runtime is unreachable (retried with backoff)', registers: r });
    this.criErrors = new Counter({ name: 'coffer_stats_cri_errors_total', help: 'CRI samples that failed (deadline, connection refused, runtime error)', registers: r });
    this.scrapeSeconds = new Gauge({ name: 'coffer_stats_sample_duration_seconds', help: 'Time the last sample took (CRI calls and file reads)', registers: r });
    this.podText = this.render({ pods: [] });
  }

  /** The whole exposition: the per-pod families of the last sample, then the registry's own metrics. */
  async text(): Promise<string> {
    return this.podText + (await this.registry.metrics());
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  /** Replace every pod series with the snapshot's. */
  update(s: Snapshot): void {
    this.podText = this.render(s);
    this.podCount.set(s.pods.length);
  }

  /** Drop every pod series (the runtime is unreachable: stale numbers would read as current). */
  clearPods(): void {
    this.update({ pods: [] });
  }

  private render(s: Snapshot): string {
    const prev = this.labelCache;
    const next = new Map<string, LabelSet>();
    // label order as prom-client wrote them: namespace, pod, container|interface, runtime_class, isolation
    const labels = (key: string, ns: string, pod: string, kind: 'container' | 'interface', name: string, rc: string, iso: string): string => {
      let l = prev.get(key);
      if (!l || l.ns !== ns || l.pod !== pod || l.name !== name || l.rc !== rc || l.iso !== iso) {
        const e = escapeLabelValue;
        l = { ns, pod, name, rc, iso, text: `{namespace="${e(ns)}",pod="${e(pod)}",${kind}="${e(name)}",runtime_class="${e(rc)}",isolation="${e(iso)}"}` };
      }
      next.set(key, l);
      return l.text;
    };
    const c = { cpu: new FamilyText(CONTAINER_FAMILIES.cpu[0]), mem: new FamilyText(CONTAINER_FAMILIES.mem[0]), rb: new FamilyText(CONTAINER_FAMILIES.rb[0]), wb: new FamilyText(CONTAINER_FAMILIES.wb[0]), ro: new FamilyText(CONTAINER_FAMILIES.ro[0]), wo: new FamilyText(CONTAINER_FAMILIES.wo[0]), procs: new FamilyText(CONTAINER_FAMILIES.procs[0]) };
    const n = { rxb: new FamilyText(NETWORK_FAMILIES.rxb[0]), txb: new FamilyText(NETWORK_FAMILIES.txb[0]), rxp: new FamilyText(NETWORK_FAMILIES.rxp[0]), txp: new FamilyText(NETWORK_FAMILIES.txp[0]), rxe: new FamilyText(NETWORK_FAMILIES.rxe[0]), txe: new FamilyText(NETWORK_FAMILIES.txe[0]) };
    for (const p of s.pods) {
      for (const x of p.containers) {
        const l = labels(x.id, p.namespace, p.name, 'container', x.name, p.runtimeClass, p.isolation);
        c.cpu.push(l, x.cpuSeconds);
        c.mem.push(l, x.memoryWorkingSetBytes);
        c.rb.push(l, x.blkioReadBytes);
        c.wb.push(l, x.blkioWriteBytes);
        c.ro.push(l, x.blkioReadOps);
        c.wo.push(l, x.blkioWriteOps);
        c.procs.push(l, x.processes);
      }
      for (const i of p.network) {
        const l = labels(`${p.id}/${i.name}`, p.namespace, p.name, 'interface', i.name, p.runtimeClass, p.isolation);
        n.rxb.push(l, i.rxBytes);
        n.txb.push(l, i.txBytes);
        n.rxp.push(l, i.rxPackets);
        n.txp.push(l, i.txPackets);
        n.rxe.push(l, i.rxErrors);
        n.txe.push(l, i.txErrors);
      }
    }
    this.labelCache = next;
    let out = '';
    for (const k of Object.keys(c) as (keyof typeof c)[]) out += header(CONTAINER_FAMILIES[k]) + c[k].take() + '\n';
    for (const k of Object.keys(n) as (keyof typeof n)[]) out += header(NETWORK_FAMILIES[k]) + n[k].take() + '\n';
    return out;
  }
}
