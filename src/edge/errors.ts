/** Typed errors of the edge hub (stable `code`, a sentence naming what failed). */
export class EdgeHubError extends Error {
  constructor(readonly code: string, message: string) {
    super(message);
    this.name = 'EdgeHubError';
  }
}
