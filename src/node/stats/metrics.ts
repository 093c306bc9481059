/**
 * The exporter's Prometheus series, in a private prom-client Registry. Each scrape resets every pod series and sets
 * it again from one snapshot, so a pod that is gone disappears from /metrics at once (label cardinality is bounded
 * by what runs on the node now). Counters are set from the runtime's cumulative values (reset, then inc by the
 * value), the way cAdvisor exposes container_*_total.
 */
import { Counter, Gauge, Registry } from 'prom-client';
import type { Snapshot } from './collector.js';

const POD_LABELS = ['namespace', 'pod', 'runtime_class', 'isolation'] as const;
const CTR_LABELS = ['namespace', 'pod', 'container', 'runtime_class', 'isolation'] as const;
const NET_LABELS = [...POD_LABELS, 'interface'] as const;

type CtrLabel = (typeof CTR_LABELS)[number];
type NetLabel = (typeof NET_LABELS)[number];

export class PodMetrics {
  readonly registry = new Registry();
  private readonly cpu: Counter<CtrLabel>;
  private readonly mem: Gauge<CtrLabel>;
  private readonly blk: Record<'rb' | 'wb' | 'ro' | 'wo', Counter<CtrLabel>>;
  private readonly procs: Gauge<CtrLabel>;
  private readonly net: Record<'rxb' | 'txb' | 'rxp' | 'txp' | 'rxe' | 'txe', Counter<NetLabel>>;
  private readonly podCount: Gauge;
  readonly criUp: Gauge;
  readonly criErrors: Counter;
  readonly scrapeSeconds: Gauge;

  constructor() {
    const r = [this.registry];
    const ctrCounter = (name: string, help: string) => new Counter({ name, help, labelNames: CTR_LABELS, registers: r });
    const netCounter = (name: string, help: string) => new Counter({ name, help, labelNames: NET_LABELS, registers: r });
    this.cpu = ctrCounter('coffer_pod_container_cpu_usage_seconds_total', 'CPU time the container used (all cores), seconds');
    this.mem = new Gauge({ name: 'coffer_pod_container_memory_working_set_bytes', help: 'Container memory working set (usage minus inactive file pages), bytes', labelNames: CTR_LABELS, registers: r });
    this.blk = {
      rb: ctrCounter('coffer_pod_container_blkio_read_bytes_total', 'Bytes the container read from block devices'),
      wb: ctrCounter('coffer_pod_container_blkio_write_bytes_total', 'Bytes the container wrote to block devices'),
      ro: ctrCounter('coffer_pod_container_blkio_read_ops_total', 'Read operations the container issued to block devices'),
      wo: ctrCounter('coffer_pod_container_blkio_write_ops_total', 'Write operations the container issued to block devices'),
    };
    this.procs = new Gauge({ name: 'coffer_pod_container_processes', help: 'Processes (tasks) in the container cgroup', labelNames: CTR_LABELS, registers: r });
    this.net = {
      rxb: netCounter('coffer_pod_network_receive_bytes_total', 'Bytes the pod network namespace received, per interface'),
      txb: netCounter('coffer_pod_network_transmit_bytes_total', 'Bytes the pod network namespace sent, per interface'),
      rxp: netCounter('coffer_pod_network_receive_packets_total', 'Packets the pod network namespace received, per interface'),
      txp: netCounter('coffer_pod_network_transmit_packets_total', 'Packets the pod network namespace sent, per interface'),
      rxe: netCounter('coffer_pod_network_receive_errors_total', 'Receive errors in the pod network namespace, per interface'),
      txe: netCounter('coffer_pod_network_transmit_errors_total', 'Transmit errors in the pod network namespace, per interface'),
    };
    this.podCount = new Gauge({ name: 'coffer_stats_pods', help: 'Running pod sandboxes in the last sample', registers: r });
    this.criUp = new Gauge({ name: 'coffer_stats_cri_up', help: '1 when the last CRI sample succeeded, 0 while the runtime is unreachable (retried with backoff)', registers: r });
    this.criErrors = new Counter({ name: 'coffer_stats_cri_errors_total', help: 'CRI samples that failed (deadline, connection refused, runtime error)', registers: r });
    this.scrapeSeconds = new Gauge({ name: 'coffer_stats_sample_duration_seconds', help: 'Time the last sample took (CRI calls and file reads)', registers: r });
  }

  /** Replace every pod series with the snapshot's (undefined values are left out: unknown, not zero). */
  update(s: Snapshot): void {
    for (const m of [this.cpu, this.mem, this.procs, ...Object.values(this.blk), ...Object.values(this.net)]) m.reset();
    const set = (m: Counter<string> | Gauge<string>, labels: Record<string, string>, v: number | undefined) => {
      if (v === undefined || !Number.isFinite(v) || v < 0) return;
      if (m instanceof Counter) m.inc(labels, v);
      else m.set(labels, v);
    };
    for (const p of s.pods) {
      const base = { namespace: p.namespace, pod: p.name, runtime_class: p.runtimeClass, isolation: p.isolation };
      for (const c of p.containers) {
        const l = { ...base, container: c.name };
        set(this.cpu, l, c.cpuSeconds);
        set(this.mem, l, c.memoryWorkingSetBytes);
        set(this.blk.rb, l, c.blkioReadBytes);
        set(this.blk.wb, l, c.blkioWriteBytes);
        set(this.blk.ro, l, c.blkioReadOps);
        set(this.blk.wo, l, c.blkioWriteOps);
        set(this.procs, l, c.processes);
      }
      for (const i of p.network) {
        const l = { ...base, interface: i.name };
        set(this.net.rxb, l, i.rxBytes);
        set(this.net.txb, l, i.txBytes);
        set(this.net.rxp, l, i.rxPackets);
        set(this.net.txp, l, i.txPackets);
        set(this.net.rxe, l, i.rxErrors);
        set(this.net.txe, l, i.txErrors);
      }
    }
    this.podCount.set(s.pods.length);
  }

  /** Drop every pod series (the runtime is unreachable: stale numbers would read as current). */
  clearPods(): void {
    this.update({ pods: [] });
  }
}
