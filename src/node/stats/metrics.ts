/**
 * The exporter's Prometheus series in a private prom-client Registry. Pod and container series are a snapshot:
 * each sample replaces them all, so a pod that is gone disappears from /metrics at once (label cardinality is
 * bounded by what runs on the node now). Counters carry the runtime's cumulative values, the way cAdvisor exposes
 * container_*_total.
 *
 * Why not prom-client's Counter/Gauge for the pod series: set() hashes every label set on every sample, which for
 * 1,000 pods (~13,000 series) cost more than reading the cgroup files. Instead each series family is a metric
 * object registered with the Registry (its documented get() shape: name, help, type, values), and every
 * container's label set is one object kept while the container lives, passed as `sharedLabels`, whose flattened
 * text prom-client caches per object — so a scrape formats only numbers. prom-client still writes the exposition.
 */
import { Counter, Gauge, Registry } from 'prom-client';
import type { Snapshot } from './collector.js';

type Labels = Record<string, string>;
interface Value {
  value: number;
  labels: Labels;
  sharedLabels: Labels;
}

const NO_LABELS: Labels = Object.freeze({}) as Labels;

/** One family of pod/container series, set wholesale from a snapshot. */
class SnapshotMetric {
  /** Reused from sample to sample (rewritten in place, then cut to length): no garbage per series per scrape. */
  values: Value[] = [];
  private n = 0;
  readonly aggregator = 'sum';
  constructor(
    readonly name: string,
    readonly help: string,
    readonly type: 'counter' | 'gauge',
  ) {}
  get() {
    return { name: this.name, help: this.help, type: this.type, values: this.values, aggregator: this.aggregator };
  }
  begin(): void {
    this.n = 0;
  }
  push(labels: Labels, v: number | undefined): void {
    if (v === undefined || !Number.isFinite(v) || v < 0) return; // unknown is left out, never reported as zero
    const slot = this.values[this.n];
    if (slot) {
      slot.value = v;
      slot.sharedLabels = labels;
    } else this.values.push({ value: v, labels: NO_LABELS, sharedLabels: labels });
    this.n++;
  }
  end(): void {
    this.values.length = this.n;
  }
}

export class PodMetrics {
  readonly registry = new Registry();
  private readonly ctr: Record<'cpu' | 'mem' | 'rb' | 'wb' | 'ro' | 'wo' | 'procs', SnapshotMetric>;
  private readonly net: Record<'rxb' | 'txb' | 'rxp' | 'txp' | 'rxe' | 'txe', SnapshotMetric>;
  /** Label objects by container id / pod id + interface, kept while they live (prom-client's format cache key). */
  private labelCache = new Map<string, Labels>();
  private readonly podCount: Gauge;
  readonly criUp: Gauge;
  readonly criErrors: Counter;
  readonly scrapeSeconds: Gauge;

  constructor() {
    const m = (name: string, help: string, type: 'counter' | 'gauge') => {
      const x = new SnapshotMetric(name, help, type);
      this.registry.registerMetric(x as never);
      return x;
    };
    this.ctr = {
      cpu: m('coffer_pod_container_cpu_usage_seconds_total', 'CPU time the container used (all cores), seconds', 'counter'),
      mem: m('coffer_pod_container_memory_working_set_bytes', 'Container memory working set (usage minus inactive file pages), bytes', 'gauge'),
      rb: m('coffer_pod_container_blkio_read_bytes_total', 'Bytes the container read from block devices', 'counter'),
      wb: m('coffer_pod_container_blkio_write_bytes_total', 'Bytes the container wrote to block devices', 'counter'),
      ro: m('coffer_pod_container_blkio_read_ops_total', 'Read operations the container issued to block devices', 'counter'),
      wo: m('coffer_pod_container_blkio_write_ops_total', 'Write operations the container issued to block devices', 'counter'),
      procs: m('coffer_pod_container_processes', 'Processes (tasks) in the container cgroup', 'gauge'),
    };
    this.net = {
      rxb: m('coffer_pod_network_receive_bytes_total', 'Bytes the pod network namespace received, per interface', 'counter'),
      txb: m('coffer_pod_network_transmit_bytes_total', 'Bytes the pod network namespace sent, per interface', 'counter'),
      rxp: m('coffer_pod_network_receive_packets_total', 'Packets the pod network namespace received, per interface', 'counter'),
      txp: m('coffer_pod_network_transmit_packets_total', 'Packets the pod network namespace sent, per interface', 'counter'),
      rxe: m('coffer_pod_network_receive_errors_total', 'Receive errors in the pod network namespace, per interface', 'counter'),
      txe: m('coffer_pod_network_transmit_errors_total', 'Transmit errors in the pod network namespace, per interface', 'counter'),
    };
    const r = [this.registry];
    this.podCount = new Gauge({ name: 'coffer_stats_pods', help: 'Running pod sandboxes in the last sample', registers: r });
    this.criUp = new Gauge({ name: 'coffer_stats_cri_up', help: '1 when the last CRI sample succeeded, 0 while the runtime is unreachable (retried with backoff)', registers: r });
    this.criErrors = new Counter({ name: 'coffer_stats_cri_errors_total', help: 'CRI samples that failed (deadline, connection refused, runtime error)', registers: r });
    this.scrapeSeconds = new Gauge({ name: 'coffer_stats_sample_duration_seconds', help: 'Time the last sample took (CRI calls and file reads)', registers: r });
  }

  /** Replace every pod series with the snapshot's. */
  update(s: Snapshot): void {
    const families = [...Object.values(this.ctr), ...Object.values(this.net)];
    for (const x of families) x.begin();
    const prev = this.labelCache;
    const next = new Map<string, Labels>();
    // label order as prom-client writes a Counter's: namespace, pod, container|interface, runtime_class, isolation
    // no allocation for a series that is already known: compare the cached object's values in place
    const labels = (key: string, ns: string, pod: string, kind: 'container' | 'interface', name: string, rc: string, iso: string): Labels => {
      const old = prev.get(key);
      const l =
        old && old.namespace === ns && old.pod === pod && old[kind] === name && old.runtime_class === rc && old.isolation === iso
          ? old
          : { namespace: ns, pod, [kind]: name, runtime_class: rc, isolation: iso };
      next.set(key, l);
      return l;
    };
    for (const p of s.pods) {
      for (const c of p.containers) {
        const l = labels(c.id, p.namespace, p.name, 'container', c.name, p.runtimeClass, p.isolation);
        this.ctr.cpu.push(l, c.cpuSeconds);
        this.ctr.mem.push(l, c.memoryWorkingSetBytes);
        this.ctr.rb.push(l, c.blkioReadBytes);
        this.ctr.wb.push(l, c.blkioWriteBytes);
        this.ctr.ro.push(l, c.blkioReadOps);
        this.ctr.wo.push(l, c.blkioWriteOps);
        this.ctr.procs.push(l, c.processes);
      }
      for (const i of p.network) {
        const l = labels(`${p.id}/${i.name}`, p.namespace, p.name, 'interface', i.name, p.runtimeClass, p.isolation);
        this.net.rxb.push(l, i.rxBytes);
        this.net.txb.push(l, i.txBytes);
        this.net.rxp.push(l, i.rxPackets);
        this.net.txp.push(l, i.txPackets);
        this.net.rxe.push(l, i.rxErrors);
        this.net.txe.push(l, i.txErrors);
      }
    }
    for (const x of families) x.end();
    this.labelCache = next;
    this.podCount.set(s.pods.length);
  }

  /** Drop every pod series (the runtime is unreachable: stale numbers would read as current). */
  clearPods(): void {
    this.update({ pods: [] });
  }
}
