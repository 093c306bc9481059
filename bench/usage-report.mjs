// Preload for bench/cli.ts: at exit, writes this process's peak RSS and CPU time (all threads) as JSON to the file
// named by $COFFER_BENCH_USAGE.
import { writeFileSync } from 'node:fs';

const out = process.env.COFFER_BENCH_USAGE;
if (out) {
  process.on('exit', () => {
    const ru = process.resourceUsage();
    writeFileSync(out, JSON.stringify({ maxRssKb: ru.maxRSS, cpuMs: (ru.userCPUTime + ru.systemCPUTime) / 1000 }));
  });
}
