import type { Command } from 'commander';
import { existsSync } from 'node:fs';
import { CliUsageError, EXIT, type CommandContext } from '../context.js';
import { defaultDataDir, mintAdminToken, openDataDir } from '../data-dir.js';

/** `coffer admin-token`: mints an admin JWT from the data dir's admin key (created by `coffer up`). */
export function registerAdminToken(program: Command, ctx: CommandContext): void {
  program
    .command('admin-token')
    .description('print an admin token, or with --viewer a read-only one (EdDSA JWT signed by the data directory\'s admin key)')
    .option('--data <dir>', 'data directory (default $COFFER_DATA or ~/.coffer)')
    .option('--ttl <seconds>', 'validity in seconds', '7200')
    .option('--subject <name>', 'admin identity recorded in the audit log (default: admin, or viewer with --viewer)')
    .option('--viewer', 'a read-only token: reads the dashboard and admin API, can never write')
    .option('--key <file>', "sign with this Ed25519 private key (PEM) instead of the data directory's: the key whose public half the services get with --admin-keys (in-cluster: the admin-keys ConfigMap)")
    .action(async (flags: { data?: string; ttl: string; subject?: string; viewer?: boolean; key?: string }) => {
      if (flags.key !== undefined && flags.data !== undefined) throw new CliUsageError('--key and --data are alternatives: give one');
      let keyPath = flags.key;
      if (keyPath === undefined) {
        const d = openDataDir(flags.data ?? defaultDataDir(process.env), { create: false, env: process.env });
        if (!existsSync(d.adminKeyPath)) throw new CliUsageError(`no admin key at ${d.adminKeyPath}: run 'coffer up --data ${d.dir}' first`);
        keyPath = d.adminKeyPath;
      }
      const ttl = Number(flags.ttl);
      if (!Number.isInteger(ttl) || ttl <= 0 || ttl > 30 * 86400) throw new CliUsageError('--ttl must be a positive number of seconds (at most 30 days)');
      ctx.io.out(`${await mintAdminToken(keyPath, { ttlSeconds: ttl, subject: flags.subject ?? (flags.viewer ? 'viewer' : 'admin'), viewer: flags.viewer ?? false })}\n`);
      ctx.setExit(EXIT.OK);
    });
}
