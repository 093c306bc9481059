import { Kek } from './kek.js';
import { PostgresStore } from './postgres.js';
import { SqliteStore } from './sqlite.js';
import type { Store } from './types.js';

export interface OpenStoreOptions {
  /** `postgres://...` / `postgresql://...` selects PostgreSQL; anything else is a SQLite file path. */
  url: string;
  kek: Kek;
  /** SQLite only: no other process uses the file (see SqliteStoreOptions.exclusive). Ignored for PostgreSQL. */
  exclusive?: boolean;
}

export async function openStore(o: OpenStoreOptions): Promise<Store> {
  if (/^postgres(ql)?:\/\//.test(o.url)) return PostgresStore.open({ connectionString: o.url, kek: o.kek });
  return SqliteStore.open({ path: o.url.replace(/^sqlite:/, ''), kek: o.kek, exclusive: o.exclusive });
}

export { Kek, StoreError } from './kek.js';
export { SqliteStore } from './sqlite.js';
export { PostgresStore } from './postgres.js';
export type * from './types.js';
