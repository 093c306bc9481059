import type { RegisterCommand } from '../context.js';
import { registerVerify } from './verify.js';

/** Every `coffer` subcommand, one module each. */
export const commands: RegisterCommand[] = [
  registerVerify,
];
