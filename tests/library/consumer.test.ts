// The library as a user gets it: the built package imported by its name ('onnxpress', resolved through
// package.json's exports to dist/), its types checked by the repository's tsc in a project of its
// own, the README's library example (tests/library/example/) run on the digits fixture and held to
// what the CLI reports, and a user's mistakes answered with the CLI's errors.
import { spawnSync } from 'node:child_process';
import { copyFileSync, cpSync, existsSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { cli, fixture, ROOT, scratch } from '../helpers.js';

const dir = scratch();
const EXAMPLE = join(ROOT, 'tests', 'library', 'example');

/** A folder with `onnxpress` installed as a user's npm would: node_modules/onnxpress is the package (this repository). */
function project(name: string, extra: Record<string, string> = {}): string {
  const root = join(dir, name);
  mkdirSync(join(root, 'node_modules'), { recursive: true });
  symlinkSync(ROOT, join(root, 'node_modules', 'onnxpress'), 'dir');
  writeFileSync(join(root, 'package.json'), JSON.stringify({ name, private: true, type: 'module' }));
  for (const [file, text] of Object.entries(extra)) writeFileSync(join(root, file), text);
  return root;
}

/** Everything the README names in one import, used so that each name's type is checked. */
const CONSUMER = `import {
  PASSES, findPass, parseStep, makeStep, runPipeline, loadRecipe, compress, compressMany, convertOpset, readModel, writeModel,
  evaluate, buildReport, renderTerminal, renderMarkdown, renderHtml, renderInspect, inspectModel, reportJson, InputError, UsageError,
  type Pass, type PassSummary, type PipelineStep, type Recipe, type Report, type CompressOptions, type CompressResult,
  type EvaluateOptions, type Evaluation, type InspectReport,
} from 'onnxpress';

const pass: Pass | undefined = findPass('quantize', 'int8');
const steps: PipelineStep[] = [parseStep('prune', 'magnitude:sparsity=0.3'), makeStep('quantize', 'int8', { granularity: 'tensor' }, 'here')];
const recipe: Recipe = loadRecipe('recipe.yaml');
const model = readModel('model.onnx');
const summaries: PassSummary[] = await runPipeline(model, [...steps, ...recipe.passes], { seed: recipe.seed });
const written: string = writeModel(model, 'out.onnx').model.path;
const options: CompressOptions = { steps, seed: 1 };
const result: CompressResult = await compress('model.onnx', 'out2.onnx', options);
const many = await compressMany(['a.onnx', 'b.onnx'], 'out', { steps });
const evalOptions: EvaluateOptions = { data: 'test_data_set_0', labels: 'labels.txt', runs: 0 };
const evaluation: Evaluation = await evaluate('model.onnx', written, evalOptions);
const cosine: number = Object.values(evaluation.accuracy.fidelity)[0]?.cosine ?? 0;
const report: Report = await buildReport({ command: 'compress', reference: model, referenceFiles: result.input.files, candidatePath: written, candidateFiles: result.output.files, passes: summaries });
const texts: string[] = [renderTerminal(report), renderMarkdown(report), renderHtml(report), reportJson(report)];
const inspected: InspectReport = inspectModel(model);
const converted = convertOpset(model, 13);
const known = (e: unknown): number | undefined => (e instanceof InputError || e instanceof UsageError ? e.exitCode : undefined);
console.log(PASSES.length, pass?.method, cosine, texts.length, renderInspect(inspected), converted, many.models.length, known(null));
`;

function typeCheck(root: string, types: string[], args: string[] = []): { code: number; output: string } {
  writeFileSync(
    join(root, 'tsconfig.json'),
    JSON.stringify({
      compilerOptions: {
        target: 'es2022',
        module: 'nodenext',
        moduleResolution: 'nodenext',
        strict: true,
        skipLibCheck: false,
        noEmit: true,
        types,
      },
      files: ['consumer.ts'],
    }),
  );
  const r = spawnSync(join(ROOT, 'node_modules', '.bin', 'tsc'), ['-p', join(root, 'tsconfig.json'), ...args], {
    cwd: root,
    encoding: 'utf8',
    timeout: 120_000,
  });
  return { code: r.status ?? -1, output: `${r.stdout}${r.stderr}` };
}

describe('the library from a consumer project', () => {
  it('dist/index.d.ts type-checks (strict, skipLibCheck false) with types [] and with types ["node"]', () => {
    expect(existsSync(join(ROOT, 'dist', 'index.d.ts')), 'npm run build first').toBe(true);
    const bare = project('bare', { 'consumer.ts': CONSUMER });
    expect(typeCheck(bare, [])).toEqual({ code: 0, output: '' });
    // Nothing but the consumer, dist/ and TypeScript's own lib files: no type package (@types/node
    // through a '/// <reference types>' of a dependency) that this repository has and a user may not.
    const files = typeCheck(bare, [], ['--listFiles']).output.trim().split('\n');
    expect(files).toContain(join(ROOT, 'dist', 'index.d.ts'));
    expect(
      files.filter((f) => !f.endsWith('/consumer.ts') && !f.startsWith(join(ROOT, 'dist') + '/') && !/\/lib\.[\w.]+\.d\.ts$/.test(f)),
    ).toEqual([]);
    const withNode = project('with-node', { 'consumer.ts': CONSUMER });
    mkdirSync(join(withNode, 'node_modules', '@types'));
    symlinkSync(join(ROOT, 'node_modules', '@types', 'node'), join(withNode, 'node_modules', '@types', 'node'), 'dir');
    expect(typeCheck(withNode, ['node'])).toEqual({ code: 0, output: '' });
  });

  it("the README's example runs: its outputs match the reference (cosine > 0.99) and its passes are the CLI's", () => {
    const root = project('example');
    // The README shows these two files verbatim: the example a user reads is the one that runs here.
    const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
    for (const file of ['example.mjs', 'recipe.yaml']) expect(readme).toContain(readFileSync(join(EXAMPLE, file), 'utf8'));
    for (const file of ['example.mjs', 'recipe.yaml']) copyFileSync(join(EXAMPLE, file), join(root, file));
    for (const file of ['model.onnx', 'labels.txt']) copyFileSync(fixture('digits', file), join(root, file));
    cpSync(fixture('digits', 'test_data_set_0'), join(root, 'test_data_set_0'), { recursive: true });
    const run = spawnSync(process.execPath, ['example.mjs'], { cwd: root, encoding: 'utf8', timeout: 120_000 });
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    const lines = run.stdout.trim().split('\n');

    // The pass summaries, as the example prints them.
    const passes = (name: string) =>
      lines.flatMap((l) => {
        const m = new RegExp(`^${name}: (\\S+) (\\S+), (\\d+) tensors, (\\d+) → (\\d+) bytes$`).exec(l);
        return m ? [{ pass: m[1], method: m[2], tensorsChanged: Number(m[3]), bytesBefore: Number(m[4]), bytesAfter: Number(m[5]) }] : [];
      });
    // The same pipelines through the CLI: the steps' specs as flags, and the recipe file.
    const source = readFileSync(join(root, 'example.mjs'), 'utf8');
    const flags = [...source.matchAll(/parseStep\('(\w+)', '([^']+)'\)/g)].flatMap(([, family, spec]) => [`--${family}`, spec!]);
    expect(flags.length).toBeGreaterThan(0);
    const viaCli = (output: string, args: string[]) => {
      const r = cli(['compress', join(root, 'model.onnx'), '-o', join(root, output), ...args, '--json']);
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      return (JSON.parse(r.stdout) as { passes: Record<string, unknown>[] }).passes.map((p) => ({
        pass: p.pass,
        method: p.method,
        tensorsChanged: p.tensorsChanged,
        bytesBefore: p.bytesBefore,
        bytesAfter: p.bytesAfter,
      }));
    };
    const fromSteps = passes('steps');
    const fromRecipe = passes('recipe');
    expect(fromSteps.length).toBeGreaterThan(0);
    expect(fromSteps.every((p) => p.tensorsChanged > 0)).toBe(true);
    expect(fromRecipe.every((p) => p.tensorsChanged > 0)).toBe(true);
    expect(fromSteps).toEqual(viaCli('cli-steps.onnx', flags));
    expect(fromRecipe).toEqual(viaCli('cli-recipe.onnx', ['--recipe', join(root, 'recipe.yaml')]));
    // And the very same bytes.
    expect(readFileSync(join(root, 'steps.onnx')).equals(readFileSync(join(root, 'cli-steps.onnx')))).toBe(true);
    expect(readFileSync(join(root, 'recipe.onnx')).equals(readFileSync(join(root, 'cli-recipe.onnx')))).toBe(true);

    // evaluate's verdict on each output.
    for (const output of ['steps.onnx', 'recipe.onnx']) {
      const line = lines.find((l) => l.startsWith(`${output}: `));
      expect(line, run.stdout).toBeDefined();
      const cosines = /cosine ([\d., ]+),/.exec(line!)![1]!.split(', ').map(Number);
      expect(cosines.length).toBeGreaterThan(0);
      for (const c of cosines) expect(c).toBeGreaterThan(0.99);
    }
  });
});

describe("a library user's mistakes get the CLI's errors", () => {
  const library = () => import(pathToFileURL(join(ROOT, 'dist', 'index.js')).href) as Promise<typeof import('../../src/index.js')>;
  const model = fixture('digits', 'model.onnx');

  it('a bad pass spec or recipe: UsageError (exit code 2), word for word what the CLI says', async () => {
    const { parseStep, loadRecipe, UsageError } = await library();
    const spec = (): unknown => parseStep('quantize', 'int8:granularity=row');
    expect(spec).toThrow(UsageError);
    const cases: [() => unknown, string[]][] = [[spec, ['--quantize', 'int8:granularity=row']]];
    const recipe = join(dir, 'bad-recipe.yaml');
    writeFileSync(recipe, 'passes:\n  - prune: {method: magnitude, sparsity: 1.5}\n');
    cases.push([() => loadRecipe(recipe), ['--recipe', recipe]]);
    cases.push([() => parseStep('prune', 'random'), ['--prune', 'random']]);
    for (const [call, args] of cases) {
      let error: unknown;
      try {
        call();
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(UsageError);
      const r = cli(['compress', model, '-o', join(dir, 'never.onnx'), ...args]);
      expect(r.code).toBe((error as InstanceType<typeof UsageError>).exitCode);
      expect(r.stderr).toBe(`onnxpress: ${(error as Error).message}\n`);
    }
  });

  it('a bad model: InputError (exit code 1), word for word what the CLI says', async () => {
    const { readModel, compress, parseStep, InputError } = await library();
    const cases: string[] = [join(dir, 'not-a-model.onnx'), join(dir, 'missing.onnx')];
    writeFileSync(cases[0]!, 'not a model');
    for (const path of cases) {
      let error: unknown;
      try {
        readModel(path);
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(InputError);
      await expect(compress(path, join(dir, 'never.onnx'), { steps: [parseStep('quantize', 'int8')] })).rejects.toThrow(InputError);
      const r = cli(['compress', path, '-o', join(dir, 'never.onnx'), '--quantize', 'int8']);
      expect(r.code).toBe((error as InstanceType<typeof InputError>).exitCode);
      expect(r.stderr).toBe(`onnxpress: ${(error as Error).message}\n`);
    }
    expect(existsSync(join(dir, 'never.onnx'))).toBe(false);
  });
});
