/**
 * Leader election on a coordination.k8s.io/v1 Lease, the way client-go's leaderelection (and so
 * controller-runtime) does it:
 * - the Lease's spec carries holderIdentity, leaseDurationSeconds, acquireTime, renewTime (MicroTime) and
 *   leaseTransitions; every write is a PUT with the resourceVersion last read, so two candidates racing for an
 *   expired lease cannot both win (one gets 409 Conflict);
 * - a candidate judges expiry by its OWN clock since it last saw the record change (client-go's observedTime), not
 *   by comparing renewTime with its clock: the holder's clock may be skewed;
 * - the leader renews every retryPeriod; if it cannot renew within renewDeadline it stops leading (and
 *   `coffer controller` exits, as controller-runtime does, so a restarted process starts clean);
 * - on a clean stop the leader releases the lease (holderIdentity cleared, leaseDurationSeconds 1) so a standby
 *   takes over at once.
 */
import { KubeApiError, type KubeRest } from '../kube-rest.js';

export interface LeaderElectionOptions {
  namespace: string;
  name: string;
  identity: string;
  leaseDurationMs?: number; // default 15 s (client-go / controller-runtime defaults)
  renewDeadlineMs?: number; // default 10 s
  retryPeriodMs?: number; // default 2 s
  clock?: () => number;
  log?: (event: string, detail: Record<string, unknown>) => void;
}

export interface LeaderCallbacks {
  onStartedLeading(): void | Promise<void>;
  onStoppedLeading(): void;
  onNewLeader?(identity: string): void;
}

type Lease = Record<string, any>;

/** MicroTime: RFC 3339 with microseconds, as the API server serialises metav1.MicroTime. */
export function microTime(ms: number): string {
  return new Date(ms).toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
}

export class LeaderElector {
  private readonly leaseDurationMs: number;
  private readonly renewDeadlineMs: number;
  private readonly retryPeriodMs: number;
  private readonly clock: () => number;
  private observed?: { rv: string; holder: string; renew: string; at: number };
  private leading = false;
  private stopped = false;
  private timer?: NodeJS.Timeout;
  private lastRenew = 0;
  private lastLeader = '';

  constructor(
    private readonly rest: KubeRest,
    private readonly o: LeaderElectionOptions,
    private readonly cb: LeaderCallbacks,
  ) {
    this.leaseDurationMs = o.leaseDurationMs ?? 15_000;
    this.renewDeadlineMs = o.renewDeadlineMs ?? 10_000;
    this.retryPeriodMs = o.retryPeriodMs ?? 2_000;
    this.clock = o.clock ?? Date.now;
    if (!(this.leaseDurationMs > this.renewDeadlineMs && this.renewDeadlineMs > this.retryPeriodMs)) {
      throw new RangeError('leader election needs leaseDuration > renewDeadline > retryPeriod');
    }
  }

  get isLeader(): boolean {
    return this.leading;
  }

  private get path(): string {
    return `/apis/coordination.k8s.io/v1/namespaces/${encodeURIComponent(this.o.namespace)}/leases/${encodeURIComponent(this.o.name)}`;
  }

  start(): void {
    this.stopped = false;
    const tick = async () => {
      if (this.stopped) return;
      try {
        await this.tryAcquireOrRenew();
      } catch (e) {
        this.o.log?.('leader_election_error', { lease: this.o.name, error: String((e as Error)?.message ?? e) });
      }
      if (this.leading && this.clock() - this.lastRenew > this.renewDeadlineMs) {
        this.leading = false;
        this.o.log?.('leader_lost', { lease: this.o.name, identity: this.o.identity });
        this.cb.onStoppedLeading();
      }
      if (!this.stopped) this.timer = setTimeout(tick, this.jittered());
    };
    void tick();
  }

  /** client-go waits retryPeriod * (1 + jitter) between attempts while not leading; the leader renews on the period. */
  private jittered(): number {
    return this.leading ? this.retryPeriodMs : this.retryPeriodMs * (1 + Math.random() * 0.2);
  }

  private async get(): Promise<Lease | undefined> {
    try {
      return await this.rest.request<Lease>('GET', this.path);
    } catch (e) {
      if (e instanceof KubeApiError && e.code === 404) return undefined;
      throw e;
    }
  }

  /** One round: create, take over an expired lease, renew ours, or observe someone else's. */
  async tryAcquireOrRenew(): Promise<boolean> {
    const now = this.clock();
    const spec = (acquire: number, transitions: number) => ({
      holderIdentity: this.o.identity,
      leaseDurationSeconds: Math.ceil(this.leaseDurationMs / 1000),
      acquireTime: microTime(acquire),
      renewTime: microTime(now),
      leaseTransitions: transitions,
    });
    const cur = await this.get();
    if (!cur) {
      try {
        const created = await this.rest.request<Lease>('POST', `/apis/coordination.k8s.io/v1/namespaces/${encodeURIComponent(this.o.namespace)}/leases`, {
          apiVersion: 'coordination.k8s.io/v1',
          kind: 'Lease',
          metadata: { name: this.o.name, namespace: this.o.namespace },
          spec: spec(now, 0),
        });
        return this.becameHolder(created, now);
      } catch (e) {
        if (e instanceof KubeApiError && e.code === 409) return false; // someone else created it first
        throw e;
      }
    }
    const s = cur.spec ?? {};
    const holder: string = s.holderIdentity ?? '';
    const renew: string = s.renewTime ?? '';
    if (!this.observed || this.observed.rv !== cur.metadata?.resourceVersion) {
      // Changed since we last looked: restart the expiry clock (by our own clock).
      if (!this.observed || this.observed.holder !== holder || this.observed.renew !== renew) this.observed = { rv: cur.metadata?.resourceVersion, holder, renew, at: now };
      else this.observed.rv = cur.metadata?.resourceVersion;
    }
    if (holder !== this.lastLeader) {
      this.lastLeader = holder;
      if (holder) this.cb.onNewLeader?.(holder);
    }
    const durationMs = (Number(s.leaseDurationSeconds) || 0) * 1000;
    const mine = holder === this.o.identity;
    if (!mine && this.leading) {
      // Someone else holds it now (our renewals did not land in time): stop at once, never two leaders by our doing.
      this.leading = false;
      this.o.log?.('leader_lost', { lease: this.o.name, identity: this.o.identity, holder });
      this.cb.onStoppedLeading();
    }
    if (!mine && holder !== '' && this.observed.at + durationMs > now) return false; // held and not expired
    const transitions = (Number(s.leaseTransitions) || 0) + (mine ? 0 : 1);
    const acquire = mine && s.acquireTime ? Date.parse(s.acquireTime) : now;
    try {
      const updated = await this.rest.request<Lease>('PUT', this.path, {
        apiVersion: 'coordination.k8s.io/v1',
        kind: 'Lease',
        metadata: { ...cur.metadata, resourceVersion: cur.metadata?.resourceVersion },
        spec: spec(acquire, transitions),
      });
      return this.becameHolder(updated, now);
    } catch (e) {
      if (e instanceof KubeApiError && e.code === 409) return false; // lost the race; look again next round
      throw e;
    }
  }

  private async becameHolder(lease: Lease, now: number): Promise<boolean> {
    this.lastRenew = now;
    this.observed = { rv: lease.metadata?.resourceVersion, holder: this.o.identity, renew: lease.spec?.renewTime, at: now };
    if (this.lastLeader !== this.o.identity) {
      this.lastLeader = this.o.identity;
      this.cb.onNewLeader?.(this.o.identity);
    }
    if (!this.leading && !this.stopped) {
      this.leading = true;
      this.o.log?.('leader_acquired', { lease: this.o.name, identity: this.o.identity, transitions: lease.spec?.leaseTransitions });
      await this.cb.onStartedLeading();
    }
    return true;
  }

  /** Stops campaigning; a leader releases the lease so a standby need not wait for it to expire. */
  async stop(release = true): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    const wasLeading = this.leading;
    this.leading = false;
    if (!wasLeading || !release) return;
    try {
      const cur = await this.get();
      if (cur?.spec?.holderIdentity === this.o.identity) {
        await this.rest.request('PUT', this.path, { ...cur, spec: { ...cur.spec, holderIdentity: null, leaseDurationSeconds: 1, renewTime: microTime(this.clock()) } });
        this.o.log?.('leader_released', { lease: this.o.name, identity: this.o.identity });
      }
    } catch (e) {
      this.o.log?.('leader_election_error', { lease: this.o.name, error: String((e as Error)?.message ?? e) });
    }
  }
}
