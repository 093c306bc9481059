/**
 * /proc/<pid>/net/dev of a pod sandbox's process: the pod network namespace's interface counters (the kernel's
 * net/core/net-procfs.c format: two header lines, then "iface: rx_bytes rx_packets rx_errs rx_drop ... tx_bytes
 * tx_packets tx_errs ..."). CRI v1 carries rx/tx bytes and errors but no packet counts, so this is the source for
 * all of them when the agent sees the host's /proc.
 */
export interface InterfaceCounters {
  name: string;
  rxBytes: number;
  rxPackets: number;
  rxErrors: number;
  txBytes: number;
  txPackets: number;
  txErrors: number;
}

/** Every interface but loopback (traffic inside the pod is not the pod's network use). */
export function parseNetDev(text: string): InterfaceCounters[] {
  const out: InterfaceCounters[] = [];
  for (const line of text.split('\n')) {
    const colon = line.indexOf(':');
    if (colon < 0) continue;
    const name = line.slice(0, colon).trim();
    if (!name || name === 'lo' || name.includes('|')) continue;
    const f = line.slice(colon + 1).trim().split(/\s+/);
    if (f.length < 16 || !f.every((x) => /^\d+$/.test(x))) continue;
    const n = f.map(Number);
    out.push({ name, rxBytes: n[0]!, rxPackets: n[1]!, rxErrors: n[2]!, txBytes: n[8]!, txPackets: n[9]!, txErrors: n[10]! });
  }
  return out;
}
