/** Typed failures of the stats exporter; `code` is stable for logs and tests. */
export type StatsErrorCode = 'CRI_UNAVAILABLE' | 'CRI_BAD_ENDPOINT' | 'CGROUP_UNREADABLE' | 'BAD_INPUT' | 'LISTEN_FAILED';

export class StatsError extends Error {
  constructor(
    readonly code: StatsErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'StatsError';
  }
}
