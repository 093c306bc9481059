import type { LabelSelector } from '../crds/types.js';

/**
 * metav1.LabelSelector semantics (apimachinery/pkg/apis/meta/v1/helpers.go LabelSelectorAsSelector): all
 * matchLabels and all matchExpressions must hold; an empty selector matches everything. NotIn and DoesNotExist
 * match objects that lack the key.
 */
export function matchesSelector(selector: LabelSelector | undefined, labels: Record<string, string> | undefined): boolean {
  if (!selector) return true;
  const l = labels ?? {};
  for (const [k, v] of Object.entries(selector.matchLabels ?? {})) {
    if (!Object.hasOwn(l, k) || l[k] !== v) return false;
  }
  for (const e of selector.matchExpressions ?? []) {
    const has = Object.hasOwn(l, e.key);
    switch (e.operator) {
      case 'In':
        if (!has || !(e.values ?? []).includes(l[e.key])) return false;
        break;
      case 'NotIn':
        if (has && (e.values ?? []).includes(l[e.key])) return false;
        break;
      case 'Exists':
        if (!has) return false;
        break;
      case 'DoesNotExist':
        if (has) return false;
        break;
      default:
        // Unknown operators never match (fail closed for selection; the loader already rejects them).
        return false;
    }
  }
  return true;
}
