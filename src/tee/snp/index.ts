export { SnpVerifier } from './verifier.js';
export { parseReport, serializeReport, REPORT_SIZE, type SnpReport } from './abi/report.js';
export { parseCertTable, serializeCertTable, CERT_GUIDS } from './abi/cert-table.js';
export { decodeTcb, encodeTcb, type TcbVersion } from './abi/tcb.js';
export { PRODUCT_LINES, type ProductLine } from './abi/product.js';
export { KdsProvider, MemoryKdsCache, KDS_BASE_URL, vcekPath, chainPath, crlPath, type SnpCollateralProvider } from './collateral/kds.js';
export { DirKdsCache } from './collateral/dir-cache.js';
export { openSnpCollateral } from './collateral/open.js';
export type { SnpOptions } from './options.js';
