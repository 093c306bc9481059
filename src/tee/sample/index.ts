export { SampleVerifier, sampleClaims, type SampleVerifyOptions } from './verify.js';
export { parseSampleEvidence, type SampleEvidence } from './abi.js';
export { makeSampleEvidence } from './attester.js';
