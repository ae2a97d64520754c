// Running sweep jobs in parallel worker processes: each combination is one `onnxpress compress
// --recipe` run (so a row is exactly what that command gives), and its JSON report becomes the row.
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomically } from '../io/atomic.js';
import { packagePath } from '../paths.js';
import type { Progress } from '../kernels/progress.js';
import type { Report } from '../report/report.js';
import { rowFromReport, type SweepRow } from './table.js';
import type { Job } from './grid.js';

const CLI = packagePath('bin', 'onnxpress');

function runJob(model: string, job: Job, outDir: string): Promise<SweepRow> {
  const recipePath = join(outDir, `${job.id}.recipe.json`);
  const reportPath = join(outDir, `${job.id}.json`);
  // Under the output policy's writer: a link planted at this name is replaced, never written through.
  writeFileAtomically(recipePath, Buffer.from(JSON.stringify(job.recipe, null, 2) + '\n'));
  const args = [
    CLI,
    'compress',
    model,
    '-o',
    join(outDir, `${job.id}.onnx`),
    '--force',
    '--recipe',
    recipePath,
    '--report',
    reportPath,
    '--json',
  ];
  return new Promise((resolve) => {
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    child.on('close', (code) => {
      // Exit 3 (a gate failed) still wrote the report: the row stands, with its gates.
      if ((code === 0 || code === 3) && existsSync(reportPath)) {
        const report = JSON.parse(readFileSync(reportPath, 'utf8')) as Report;
        resolve(rowFromReport(job.id, job.label, job.recipe, report));
      } else {
        resolve({
          id: job.id,
          label: job.label,
          recipe: job.recipe,
          output: { bytes: 0 },
          sizeRatio: 0,
          pareto: false,
          error: stderr.trim().split('\n').pop() || `exit code ${code}`,
        });
      }
    });
  });
}

/** Runs `jobs` with at most `parallel` at once; rows come back in job order. */
export async function runJobs(model: string, jobs: Job[], outDir: string, parallel: number, progress: Progress): Promise<SweepRow[]> {
  const rows: SweepRow[] = new Array(jobs.length);
  let next = 0;
  progress.start(jobs.length, 'sweep');
  const worker = async () => {
    while (next < jobs.length) {
      const i = next++;
      rows[i] = await runJob(model, jobs[i]!, outDir);
      progress.tick(1);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(parallel, jobs.length)) }, worker));
  progress.stop();
  return rows;
}
