/**
 * Runs a set of controllers only while this process leads (controller-runtime's manager shape): campaign on the
 * Lease, start the controllers when elected, and on losing the lease stop them and report it — `coffer
 * controller` then exits so that a restarted process campaigns afresh with empty caches (as controller-runtime
 * does). A clean stop releases the lease so a standby takes over without waiting for it to expire.
 */
import type { KubeRest } from '../kube-rest.js';
import { LeaderElector, type LeaderElectionOptions } from './leader-election.js';
import type { RunningController } from './types.js';

export interface LeaderRun {
  elector: LeaderElector;
  /** The controllers while leading, else empty. */
  running(): RunningController[];
  stop(): Promise<void>;
}

export function runLeaderElected(rest: KubeRest, o: LeaderElectionOptions, start: () => Promise<RunningController[]>, onLost: () => void): LeaderRun {
  let running: RunningController[] = [];
  let stopping = false;
  const stopAll = async () => {
    const r = running;
    running = [];
    await Promise.all(r.map((c) => c.stop()));
  };
  const elector = new LeaderElector(rest, o, {
    onStartedLeading: async () => {
      running = await start();
      if (stopping || !elector.isLeader) await stopAll(); // lost or stopped while starting
    },
    onStoppedLeading: () => {
      void stopAll().finally(() => {
        if (!stopping) onLost();
      });
    },
  });
  elector.start();
  return {
    elector,
    running: () => running,
    async stop() {
      stopping = true;
      await stopAll();
      await elector.stop(true);
    },
  };
}
