/**
 * AMD EPYC product lines that run SEV-SNP. The product decides the TCB_VERSION byte layout (Turin adds FMC and
 * moves the other fields), the KDS URL shape and which pinned AMD root signs the chain.
 */
export const PRODUCT_LINES = ['Milan', 'Genoa', 'Turin'] as const;
export type ProductLine = (typeof PRODUCT_LINES)[number];

export function isProductLine(s: unknown): s is ProductLine {
  return typeof s === 'string' && (PRODUCT_LINES as readonly string[]).includes(s);
}

/**
 * Product from the report's CPUID family/model (v3+ reports). Ranges follow virtee/sev `Generation::identify_cpu`:
 * family 0x19 models 0x00–0x0F Milan, 0x10–0x1F and 0xA0–0xAF Genoa; family 0x1A models 0x00–0x11 Turin.
 * Anything else (including Venice, whose certificates we have never seen) is undefined: the caller rejects it.
 */
export function productFromCpuid(family: number, model: number): ProductLine | undefined {
  if (family === 0x19) {
    if (model <= 0x0f) return 'Milan';
    if ((model >= 0x10 && model <= 0x1f) || (model >= 0xa0 && model <= 0xaf)) return 'Genoa';
  }
  if (family === 0x1a && model <= 0x11) return 'Turin';
  return undefined;
}

/** VCEK productName is "Milan-B0" (VCEK) or "Milan" (VLEK): the line is the part before the stepping. */
export function productFromCertName(name: string): ProductLine | undefined {
  const line = name.split('-')[0];
  return isProductLine(line) ? line : undefined;
}
