/**
 * Runtime handlers from a containerd config, read the way containerd reads it: TOML (smol-toml, so dotted keys,
 * quoted keys and inline tables all count), `imports` followed (globs and paths relative to the importing file,
 * recursively, each file once), imported files merged over the importer table by table.
 *
 * Where the CRI runtimes live, by config `version`:
 *   1 (or absent): plugins.cri.containerd.runtimes.<h>                                  (containerd 1.0–1.4)
 *   2:             plugins."io.containerd.grpc.v1.cri".containerd.runtimes.<h>          (containerd 1.5–1.7)
 *   3:             plugins."io.containerd.cri.v1.runtime".containerd.runtimes.<h>       (containerd 2.x)
 * containerd's defaults always carry the default runtime (`default_runtime_name`, "runc" unless set), so it is a
 * handler even when the file does not spell out its table.
 */
import { readFile, readdir } from 'node:fs/promises';
import path from 'node:path';
import { parse, TomlError } from 'smol-toml';

export class ContainerdConfigError extends Error {
  readonly code = 'CONTAINERD_CONFIG';
  constructor(message: string) {
    super(message);
    this.name = 'ContainerdConfigError';
  }
}

type Table = Record<string, unknown>;
const MAX_FILES = 32;
const MAX_BYTES = 1024 * 1024;

const isTable = (v: unknown): v is Table => typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Date);

/** Deep merge, `over` wins for scalars and arrays (containerd merges imported plugin tables over the importer's). */
function merge(base: Table, over: Table): Table {
  const out: Table = { ...base };
  for (const [k, v] of Object.entries(over)) out[k] = isTable(v) && isTable(out[k]) ? merge(out[k] as Table, v) : v;
  return out;
}

/** filepath.Glob's subset containerd configs use: `*` and `?` in the last path element. */
async function expand(pattern: string): Promise<string[]> {
  const base = path.basename(pattern);
  if (!/[*?[]/.test(base)) return [pattern];
  if (/[*?[]/.test(path.dirname(pattern))) throw new ContainerdConfigError(`import '${pattern}': wildcards are supported in the file name only`);
  const re = new RegExp('^' + base.replace(/[.+^${}()|\\]/g, '\\$&').replace(/\*/g, '[^/]*').replace(/\?/g, '[^/]') + '$');
  let names: string[];
  try {
    names = await readdir(path.dirname(pattern));
  } catch {
    return []; // a glob that matches nothing is not an error for containerd either
  }
  return names.filter((n) => re.test(n)).sort().map((n) => path.join(path.dirname(pattern), n));
}

/** The merged config of `file` and everything it imports. Unreadable or invalid TOML fails (never "no runtimes"). */
export async function loadContainerdConfig(file: string): Promise<Table> {
  const seen = new Set<string>();
  const load = async (f: string): Promise<Table> => {
    const abs = path.resolve(f);
    if (seen.has(abs)) return {};
    if (seen.size >= MAX_FILES) throw new ContainerdConfigError(`more than ${MAX_FILES} config files through imports (from ${file})`);
    seen.add(abs);
    let text: string;
    try {
      text = await readFile(abs, 'utf8');
    } catch (e) {
      throw new ContainerdConfigError(`containerd config ${abs} could not be read: ${(e as Error).message}`);
    }
    if (text.length > MAX_BYTES) throw new ContainerdConfigError(`containerd config ${abs} is larger than ${MAX_BYTES} bytes`);
    let doc: Table;
    try {
      doc = parse(text) as Table;
    } catch (e) {
      throw new ContainerdConfigError(`containerd config ${abs} is not valid TOML: ${e instanceof TomlError ? e.message.split('\n')[0] : (e as Error).message}`);
    }
    let merged = doc;
    const imports = doc.imports;
    if (imports !== undefined) {
      if (!Array.isArray(imports) || !imports.every((i) => typeof i === 'string')) throw new ContainerdConfigError(`${abs}: imports must be an array of strings`);
      for (const imp of imports as string[]) {
        for (const f2 of await expand(path.isAbsolute(imp) ? imp : path.join(path.dirname(abs), imp))) {
          const sub = await load(f2);
          // the importer's own version decides the layout; the imported file's plugins merge over it
          const { version: _v, imports: _i, ...rest } = sub;
          merged = merge(merged, rest);
        }
      }
    }
    return merged;
  };
  return load(file);
}

const CRI_PLUGIN: Record<number, string[]> = {
  1: ['plugins', 'cri'],
  2: ['plugins', 'io.containerd.grpc.v1.cri'],
  3: ['plugins', 'io.containerd.cri.v1.runtime'],
};

/** Handler names of a merged config (sorted, unique). */
export function runtimeHandlersOf(config: Table): string[] {
  const version = config.version ?? 1;
  if (typeof version !== 'number' || !(version in CRI_PLUGIN)) throw new ContainerdConfigError(`containerd config version ${String(version)} is not 1, 2 or 3`);
  let cri: unknown = config;
  for (const k of CRI_PLUGIN[version]!) cri = isTable(cri) ? cri[k] : undefined;
  const ctd = isTable(cri) ? cri.containerd : undefined;
  const runtimes = isTable(ctd) ? ctd.runtimes : undefined;
  const out = new Set(isTable(runtimes) ? Object.keys(runtimes) : []);
  const dflt = isTable(ctd) && typeof ctd.default_runtime_name === 'string' && ctd.default_runtime_name ? ctd.default_runtime_name : 'runc';
  out.add(dflt);
  return [...out].sort();
}

export async function containerdConfigHandlers(file: string): Promise<string[]> {
  return runtimeHandlersOf(await loadContainerdConfig(file));
}
