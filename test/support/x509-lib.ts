// @peculiar/x509 for the tests' certificate factories (the verifiers use node:crypto and tee/common/der.ts). 2.x resolves
// its services through tsyringe, which needs the Reflect metadata API loaded first.
import 'reflect-metadata';
export * as px509 from '@peculiar/x509';
