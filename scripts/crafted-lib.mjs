// Runs crafted hostile cases (scripts/crafted-cases.mjs) through the command line and judges each
// run from the outside: its exit code and stderr, what it left in its folder, whether a file outside
// its folder changed, whether it wrote to $HOME or /tmp, how much memory it took, and, where strace
// is installed, every file it opened, created, renamed or removed (traced, not assumed).
// Used by scripts/fuzz.mjs (every case) and by the test suite (the quick ones).
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { isAbsolute, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('..', import.meta.url)).replace(/\/$/, '');
const CLI = join(ROOT, 'bin', 'onnxpress');

export function straceAvailable() {
  return spawnSync('strace', ['-V'], { stdio: 'ignore' }).status === 0;
}

/** Every file under `dir` with its size and modification time (symlinks not followed). */
function snapshot(dir) {
  const out = new Map();
  const walk = (d) => {
    let entries;
    try {
      entries = readdirSync(d, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      const p = join(d, e.name);
      if (e.isDirectory()) {
        out.set(p, 'dir');
        walk(p);
        continue;
      }
      try {
        const s = statSync(p, { throwIfNoEntry: false });
        out.set(p, s ? `${s.size}:${s.mtimeMs}` : 'link');
      } catch {
        out.set(p, 'other');
      }
    }
  };
  walk(dir);
  return out;
}

function changes(before, after) {
  const diff = [];
  for (const [p, v] of after) if (before.get(p) !== v) diff.push(before.has(p) ? `changed ${p}` : `created ${p}`);
  for (const p of before.keys()) if (!after.has(p)) diff.push(`removed ${p}`);
  return diff;
}

const matDebugLogs = () => new Set(readdirSync('/tmp').filter((f) => f.startsWith('mat-debug-')));

function inside(path, folder) {
  const rel = relative(folder, path);
  return rel === '' || (!rel.startsWith('..') && !isAbsolute(rel));
}

// Writes anywhere else than the case's folder are failures, but for these.
const WRITABLE = ['/dev/null', '/dev/tty', '/dev/pts', '/dev/shm', '/proc/self', '/proc/thread-self'];
const WRITE_CALLS = /^(creat|rename|renameat2?|unlink|unlinkat|mkdir|mkdirat|link|linkat|symlink|symlinkat|truncate)$/;

/** Paths a traced run touched: [{ call, path, write }] from strace's -f output. */
function tracedPaths(file, cwd) {
  const out = [];
  if (!existsSync(file)) return out;
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    const m = /^(?:\d+\s+)?(\w+)\((.*)\)\s+=\s+(-?\d+|\?)/.exec(line);
    if (!m) continue;
    const [, call, args] = m;
    const paths = [...args.matchAll(/"((?:[^"\\]|\\.)*)"/g)].map((x) => x[1]);
    if (paths.length === 0) continue;
    const write = WRITE_CALLS.test(call) || (/^open/.test(call) && /O_WRONLY|O_RDWR|O_CREAT|O_TRUNC/.test(args));
    for (const p of call.startsWith('rename') || call.startsWith('link') || call.startsWith('symlink') ? paths : paths.slice(0, 1)) {
      out.push({ call, path: resolve(cwd, p), write, failed: m[3].startsWith('-') });
    }
  }
  return out;
}

/** Peak resident memory of a process and its descendants (Linux /proc), in bytes. */
function treeRss(pid) {
  let total = 0;
  const visit = (p) => {
    try {
      const status = readFileSync(`/proc/${p}/status`, 'utf8');
      const m = /VmRSS:\s+(\d+) kB/.exec(status);
      if (m) total += Number(m[1]) * 1024;
      for (const task of readdirSync(`/proc/${p}/task`)) {
        for (const c of readFileSync(`/proc/${p}/task/${task}/children`, 'utf8').trim().split(/\s+/).filter(Boolean)) visit(c);
      }
    } catch {
      /* gone */
    }
  };
  visit(pid);
  return total;
}

function runCli(args, { cwd, env, timeoutMs, traceFile, addressSpaceKb }) {
  return new Promise((done) => {
    // An address-space limit (ulimit -v) is set by a shell that then becomes the command line.
    const base = addressSpaceKb
      ? ['bash', '-c', `ulimit -v ${addressSpaceKb}; exec "$0" "$@"`, process.execPath, CLI, ...args]
      : [process.execPath, CLI, ...args];
    const traced = traceFile
      ? [
          'strace',
          '-f',
          '-qq',
          '-o',
          traceFile,
          '-e',
          'trace=open,openat,creat,rename,renameat,renameat2,unlink,unlinkat,mkdir,mkdirat,link,linkat,symlink,symlinkat,truncate',
          ...base,
        ]
      : base;
    const [command, ...argv] = traced;
    const child = spawn(command, argv, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '',
      stderr = '',
      peak = 0,
      timedOut = false;
    child.stdout.on('data', (d) => {
      if (stdout.length < 4 << 20) stdout += d;
    });
    child.stderr.on('data', (d) => {
      if (stderr.length < 4 << 20) stderr += d;
    });
    const poll = setInterval(() => {
      peak = Math.max(peak, treeRss(child.pid));
    }, 25);
    const timer = setTimeout(() => {
      timedOut = true;
      spawnSync('pkill', ['-KILL', '-P', String(child.pid)]);
      child.kill('SIGKILL');
    }, timeoutMs);
    const started = Date.now();
    child.on('close', (code, signal) => {
      clearInterval(poll);
      clearTimeout(timer);
      done({ code, signal, stdout, stderr, timedOut, peakRss: peak, ms: Date.now() - started });
    });
  });
}

/**
 * Runs one crafted case in a fresh folder under `root`; returns the problems found (empty: passed).
 * A case: { kind, name, setup(dir, outside) → { args, exit?, stderr?, check?(dir) }, timeoutMs?, maxRssMb? }.
 */
export async function runCase(c, { root, trace = false }) {
  const outside = join(root, 'outside');
  if (!existsSync(outside)) {
    mkdirSync(join(outside, 'secrets'), { recursive: true });
    writeFileSync(join(outside, 'secrets', 'secret.txt'), '3\n');
    writeFileSync(join(outside, 'victim.onnx'), 'a file no run may touch');
  }
  const dir = mkdtempSync(join(root, 'case-'));
  const home = join(dir, 'home');
  mkdirSync(home);
  const spec = await c.setup(dir, outside);
  const before = snapshot(outside),
    logsBefore = matDebugLogs();
  const traceFile = trace ? join(root, `trace-${Date.now()}.txt`) : undefined;
  // Scratch space the tool asks the system for (os.tmpdir()) is the case's own: anything else written
  // under /tmp is a stray file.
  const tmp = join(dir, 'tmp');
  mkdirSync(tmp);
  const env = { ...process.env, HOME: home, XDG_CACHE_HOME: join(home, '.cache'), TMPDIR: tmp };
  const r = await runCli(spec.args, { cwd: dir, env, timeoutMs: c.timeoutMs ?? 60_000, traceFile, addressSpaceKb: spec.addressSpaceKb });
  const problems = [];
  const expected = [spec.exit ?? [1, 2]].flat();
  if (r.timedOut) problems.push(`hang: killed after ${c.timeoutMs ?? 60_000} ms`);
  else if (r.signal) problems.push(`crash: killed by ${r.signal}`);
  else if (!expected.includes(r.code)) problems.push(`exit ${r.code}, expected ${expected.join(' or ')}: ${r.stderr.trim().slice(0, 300)}`);
  if (!r.timedOut && r.code !== 0) {
    const lines = r.stderr.trim().split('\n');
    if (lines.length !== 1 || !lines[0].startsWith('onnxpress: '))
      problems.push(`not a one-line error: ${JSON.stringify(r.stderr.slice(0, 300))}`);
    if (/internal error/.test(r.stderr)) problems.push(`internal error: ${r.stderr.trim().slice(0, 300)}`);
    if (r.stderr.length > 1200) problems.push(`error line of ${r.stderr.length} characters`);
    if (spec.stderr && !spec.stderr.test(r.stderr))
      problems.push(`stderr ${JSON.stringify(r.stderr.trim().slice(0, 200))} does not match ${spec.stderr}`);
  }
  if (/[\u001b\u009b]/.test(r.stdout + r.stderr)) problems.push('raw terminal escape printed');
  if (c.maxRssMb && r.peakRss > c.maxRssMb * 2 ** 20)
    problems.push(`memory: peak ${(r.peakRss / 2 ** 20).toFixed(0)} MB over ${c.maxRssMb} MB`);
  const leftovers = [...snapshot(dir).keys()].filter((p) => p.includes('.tmp-'));
  if (leftovers.length) problems.push(`partial output left: ${leftovers.map((p) => relative(dir, p)).join(', ')}`);
  for (const d of changes(before, snapshot(outside))) problems.push(`outside the folder: ${d}`);
  if (readdirSync(home).length > 0 || existsSync(join(home, '.cache')))
    problems.push(`wrote to $HOME: ${readdirSync(home, { recursive: true }).slice(0, 3).join(', ')}`);
  const newLogs = [...matDebugLogs()].filter((f) => !logsBefore.has(f));
  if (newLogs.length) problems.push(`stray files in /tmp: ${newLogs.join(', ')}`);
  if (traceFile) {
    for (const t of tracedPaths(traceFile, dir)) {
      if (inside(t.path, outside) && !t.failed) problems.push(`traced: ${t.call} ${t.path} (outside the allowed folders)`);
      else if (t.write && !t.failed && !inside(t.path, dir) && !WRITABLE.some((w) => inside(t.path, w)))
        problems.push(`traced: ${t.call} ${t.path} writes outside the case's folder`);
    }
    rmSync(traceFile, { force: true });
  }
  if (!r.timedOut && spec.check) {
    const problem = await spec.check(dir, r);
    if (problem) problems.push(problem);
  }
  rmSync(dir, { recursive: true, force: true });
  return { problems: [...new Set(problems)], ms: r.ms, peakRss: r.peakRss, code: r.code, stderr: r.stderr.trim() };
}

/** Runs `cases` one after the other; `log` sees each result. */
export async function runCrafted(cases, { root, trace = false, log = () => {} }) {
  mkdirSync(root, { recursive: true });
  const results = [];
  for (const c of cases) {
    const r = await runCase(c, { root, trace });
    results.push({ kind: c.kind, name: c.name, ...r });
    log(
      `${r.problems.length ? 'FAIL' : 'ok  '} [${c.kind}] ${c.name} (${r.ms} ms, peak ${(r.peakRss / 2 ** 20).toFixed(0)} MB, exit ${r.code})${r.problems.length ? `\n       ${r.problems.join('\n       ')}` : ''}`,
    );
  }
  return results;
}
