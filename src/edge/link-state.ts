/**
 * The cloud-link state machine: `failureThreshold` consecutive failed probes take the hub offline, the first
 * successful probe brings it back online (the rule; YurtHub waits for 2 successes, we favour fresh data).
 * Pure: the prober feeds it outcomes, it answers whether the state changed.
 */
export type LinkState = 'online' | 'offline';

export interface LinkTransition {
  state: LinkState;
  changed: boolean;
  at: number;
}

export class LinkStateMachine {
  private failures = 0;
  private current: LinkState;
  private since: number;

  constructor(
    private readonly failureThreshold = 3,
    initial: LinkState = 'offline',
    now = 0,
  ) {
    if (!Number.isInteger(failureThreshold) || failureThreshold < 1) throw new RangeError('failureThreshold must be a positive integer');
    this.current = initial;
    this.since = now;
  }

  get state(): LinkState {
    return this.current;
  }

  get changedAt(): number {
    return this.since;
  }

  get consecutiveFailures(): number {
    return this.failures;
  }

  observe(ok: boolean, now: number): LinkTransition {
    if (ok) {
      this.failures = 0;
      if (this.current === 'offline') return this.move('online', now);
    } else {
      this.failures++;
      if (this.current === 'online' && this.failures >= this.failureThreshold) return this.move('offline', now);
    }
    return { state: this.current, changed: false, at: this.since };
  }

  private move(to: LinkState, now: number): LinkTransition {
    this.current = to;
    this.since = now;
    return { state: to, changed: true, at: now };
  }
}
