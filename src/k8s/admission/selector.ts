import type { LabelSelector } from '../crds/types.js';
import { matchLabels, type LabelRequirement } from '../selectors.js';

const OPS: Record<string, LabelRequirement['op']> = { In: 'in', NotIn: 'notin', Exists: 'exists', DoesNotExist: '!' };

/**
 * metav1.LabelSelector semantics (apimachinery/pkg/apis/meta/v1/helpers.go LabelSelectorAsSelector): the
 * structured selector becomes the same requirements the string grammar parses to, so one matcher serves the
 * webhook, the controllers and the edge hub. An empty selector matches everything; NotIn and DoesNotExist match
 * objects that lack the key; an unknown operator never matches (fail closed; the loader already rejects it).
 */
export function matchesSelector(selector: LabelSelector | undefined, labels: Record<string, string> | undefined): boolean {
  if (!selector) return true;
  const reqs: LabelRequirement[] = Object.entries(selector.matchLabels ?? {}).map(([key, v]) => ({ key, op: 'in', values: [v] }));
  for (const e of selector.matchExpressions ?? []) {
    const op = OPS[e.operator];
    if (!op) return false;
    reqs.push(op === 'in' || op === 'notin' ? { key: e.key, op, values: e.values ?? [] } : { key: e.key, op });
  }
  return matchLabels(reqs, labels);
}
