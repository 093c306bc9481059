/**
 * One full garbage collection once the agent is quiet after a scrape (1 s after the last one): a scrape of many
 * pods is a burst of short-lived objects over a small live heap, and without this V8 keeps the burst's pages for
 * minutes. gc is reached through --expose-gc set at run time (no node flag needed in the DaemonSet). Measured on
 * Node 20: the options form gc({ type: 'major' }) left a 50 MB garbage heap in place, plain gc() freed it.
 */
import v8 from 'node:v8';
import vm from 'node:vm';

export class QuietGc {
  private timer: NodeJS.Timeout | undefined;
  private gc: (() => void) | null | undefined;

  readonly soon = (): void => {
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.collect();
    }, 1000);
    this.timer.unref();
  };

  private collect(): void {
    if (this.gc === undefined) {
      try {
        v8.setFlagsFromString('--expose-gc');
        this.gc = vm.runInNewContext('gc') as () => void;
      } catch {
        this.gc = null;
      }
    }
    this.gc?.();
  }

  stop(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }
}
