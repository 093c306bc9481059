/**
 * Runtime handlers from the CRI runtime itself: `Status` lists them in `runtime_handlers` (cri-api 1.30+, e.g.
 * containerd 2.x); containerd 1.6 leaves that empty but its verbose Status carries the CRI config as JSON
 * (`info.config.containerd.runtimes`), which names the same handlers.
 */
import type { CriClient } from '../stats/cri-client.js';

export async function criRuntimeHandlers(cri: CriClient): Promise<string[]> {
  const res = await cri.call('Status', { verbose: true });
  const names = new Set<string>();
  for (const h of res.runtime_handlers ?? []) if (h.name) names.add(h.name);
  if (names.size === 0) {
    const raw = res.info?.config;
    if (!raw || raw.length > 4 * 1024 * 1024) throw new Error('CRI Status lists no runtime handlers and carries no config');
    const cfg = JSON.parse(raw) as { containerd?: { runtimes?: Record<string, unknown>; defaultRuntimeName?: string } };
    for (const h of Object.keys(cfg.containerd?.runtimes ?? {})) names.add(h);
    if (cfg.containerd?.defaultRuntimeName) names.add(cfg.containerd.defaultRuntimeName);
    if (names.size === 0) throw new Error('CRI Status config names no runtime handlers');
  }
  return [...names].sort();
}
