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

/**
 * The whitespace-separated decimal fields of s from index `from`, or undefined when any field is not all digits.
 * A hand-written scan: a scrape parses one net/dev per pod, and split + regex per field was most of that cost.
 */
function decimalFields(s: string, from: number, to: number): number[] | undefined {
  const out: number[] = [];
  let i = from;
  while (i < to) {
    let c = s.charCodeAt(i);
    if (c === 32 || c === 9) {
      i++;
      continue;
    }
    const start = i;
    let v = 0;
    while (i < to && (c = s.charCodeAt(i)) >= 48 && c <= 57) {
      v = v * 10 + (c - 48);
      i++;
    }
    if (i === start || (i < to && c !== 32 && c !== 9)) return undefined;
    // beyond 2^53 the running sum can differ from Number()'s rounding: parse those few exactly as before
    out.push(v <= Number.MAX_SAFE_INTEGER ? v : Number(s.slice(start, i)));
  }
  return out;
}

/** Every interface but loopback (traffic inside the pod is not the pod's network use). */
export function parseNetDev(text: string): InterfaceCounters[] {
  const out: InterfaceCounters[] = [];
  let at = 0;
  while (at < text.length) {
    let end = text.indexOf('\n', at);
    if (end < 0) end = text.length;
    const colon = text.indexOf(':', at);
    const lineStart = at;
    at = end + 1;
    if (colon < 0 || colon > end) continue;
    const name = text.slice(lineStart, colon).trim();
    if (!name || name === 'lo' || name.includes('|')) continue;
    const n = decimalFields(text, colon + 1, end);
    if (!n || n.length < 16) continue;
    out.push({ name, rxBytes: n[0]!, rxPackets: n[1]!, rxErrors: n[2]!, txBytes: n[8]!, txPackets: n[9]!, txErrors: n[10]! });
  }
  return out;
}
