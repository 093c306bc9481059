// Writes deploy/kustomize and deploy/helm/coffer from src/k8s/manifests (the drift test compares against these).
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { helmChartFiles, kustomizeFiles } from '../src/k8s/manifests/render.js';

const root = new URL('..', import.meta.url).pathname;
for (const [dir, files] of [
  [join(root, 'deploy/kustomize'), kustomizeFiles()],
  [join(root, 'deploy/helm/coffer'), helmChartFiles()],
] as const) {
  rmSync(dir, { recursive: true, force: true });
  for (const [name, text] of files) {
    const p = join(dir, name);
    mkdirSync(dirname(p), { recursive: true });
    writeFileSync(p, text);
  }
  console.log(`wrote ${files.size} files to ${dir}`);
}
