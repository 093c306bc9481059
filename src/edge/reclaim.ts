/**
 * Prompt reclamation of short-lived Buffers. A proxied 17 MiB LIST arrives as ~270 socket Buffers whose memory is
 * malloc'd outside the V8 heap and freed only when the scavenger collects their small JS wrappers; with the
 * default 16 MiB young generation that happens late, so the whole body is briefly resident and glibc keeps the
 * pages afterwards (measured: +35 MB RSS after one LIST). A young-generation collection every few MiB of
 * streamed bytes lets malloc reuse the same few chunks instead. Costs ~1 ms per call.
 */
import v8 from 'node:v8';
import vm from 'node:vm';

type GcFn = (opts?: { type?: 'minor' | 'major' }) => void;
let gc: GcFn | null | undefined;

export function reclaimYoung(): void {
  if (gc === undefined) {
    try {
      if (typeof (globalThis as { gc?: GcFn }).gc === 'function') gc = (globalThis as { gc?: GcFn }).gc!;
      else {
        v8.setFlagsFromString('--expose-gc');
        gc = vm.runInNewContext('gc') as GcFn;
      }
    } catch {
      gc = null;
    }
  }
  gc?.({ type: 'minor' });
}

/** Calls `reclaimYoung` once per `every` bytes seen. */
export class ReclaimEvery {
  private seen = 0;
  constructor(private readonly every: number) {}
  add(bytes: number): void {
    this.seen += bytes;
    if (this.seen >= this.every) {
      this.seen = 0;
      reclaimYoung();
    }
  }
}

/**
 * After a burst of large answers or indexing, one full collection once things are quiet (1 s after the last
 * `soon()`, off every request's path): V8 returns emptied pages and the freed Buffers go back to malloc at once
 * instead of after the memory reducer's much later pass. One per hub, stopped with it.
 */
export class Settler {
  private timer: NodeJS.Timeout | undefined;
  readonly soon = (): void => {
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      reclaimYoung();
      gc?.({ type: 'major' });
    }, 1000);
    this.timer.unref();
  };
  stop(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }
}
