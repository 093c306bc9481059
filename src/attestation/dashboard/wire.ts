/** Wire shapes of the dashboard API shared with the browser bundle (src/ui): types only, no imports. */

export interface UiAuditRecord {
  id: number;
  at: string;
  actor: string;
  action: string;
  target: string;
  result: string;
  details: Record<string, unknown>;
}
