// Summarize a V8 .cpuprofile: top functions by self time.
// Usage: node bench/cpuprofile-top.cjs FILE.cpuprofile [N]
const fs = require('node:fs');
const p = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
const n = Number(process.argv[3] ?? 15);
const nodes = new Map(p.nodes.map((x) => [x.id, x]));
const self = new Map();
for (let i = 0; i < p.samples.length; i++) self.set(p.samples[i], (self.get(p.samples[i]) ?? 0) + (p.timeDeltas[i] ?? 0));
const byFn = new Map();
for (const [id, t] of self) {
  const cf = nodes.get(id).callFrame;
  const where = cf.url ? ` ${cf.url.split('/').slice(-2).join('/')}:${cf.lineNumber + 1}` : ' (native)';
  const k = `${cf.functionName || '(anonymous)'}${where}`;
  byFn.set(k, (byFn.get(k) ?? 0) + t);
}
const total = [...byFn.values()].reduce((a, b) => a + b, 0);
console.log(`profile span ${((p.endTime - p.startTime) / 1000).toFixed(0)} ms, sampled ${(total / 1000).toFixed(0)} ms`);
console.log('| self ms | % | function |\n|---:|---:|---|');
for (const [k, t] of [...byFn].sort((a, b) => b[1] - a[1]).slice(0, n)) {
  console.log(`| ${(t / 1000).toFixed(1)} | ${((100 * t) / total).toFixed(1)} | \`${k}\` |`);
}
