import type { RegisterCommand } from '../context.js';
import { registerVerify } from './verify.js';
import { registerEventlog } from './eventlog.js';

/** Every `coffer` subcommand, one module each. */
export const commands: RegisterCommand[] = [
  registerVerify,
  registerEventlog,
];
