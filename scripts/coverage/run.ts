// The torchvision coverage table (README, "Model coverage"): every model that
// scripts/coverage/export.py wrote is explained with three composites under both attention modes;
// for each it checks that the relevance is finite, that its sum is finite and non-zero, and that
// the engine's target logit equals torch's within 1e-4 * max(1, |logit|) (issue 9, acceptance 2);
// it reports the largest difference over all 1000 logits too, and times the LRP pass.
//
//   node --import tsx scripts/coverage/run.ts [--dir .cache/torchvision] [--only a,b] [--readme]
//
// One model at a time, in this process (a model is loaded once for all six configurations).
// Progress goes to stderr; each model's result to DIR/results/<model>.json; the table of every
// model with a result (this run's and earlier runs') to stdout and DIR/coverage.json; with
// --readme it replaces the table between the `coverage:start` and `coverage:end` markers of README.md.
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { Explainer } from '../../src/explain/explainer';
import { RulesConfig, parseRulesConfig } from '../../src/engine/config';
import { readNpy } from '../../src/engine/io/npy';

export const COMPOSITES = ['epsilon', 'epsilon-plus-flat', 'epsilon-gamma-box'] as const;
export const ATTENTION = ['cp', 'attnlrp'] as const;
/** Logit agreement with torch: |engine - torch| <= LOGIT_TOL * max(1, |torch|). */
export const LOGIT_TOL = 1e-4;

interface CaseResult {
  composite: string;
  attention: string;
  ok: boolean;
  error?: string;
  lrpMs?: number;
  relevanceSum?: number;
  logitErr?: number;
  targetErr?: number;
}

interface ModelResult {
  family: string;
  opset: number;
  file: string;
  loadError?: string;
  /** Largest |engine - torch| / max(1, |torch|) over all logits, over all cases. */
  maxLogitErr?: number;
  /** The same for the target logit (the acceptance bound). */
  maxTargetErr?: number;
  cases: CaseResult[];
}

/** What to check of one explanation, as a list of failures (empty: fine). */
export function checkExplanation(
  relevance: Float32Array,
  logits: Float32Array,
  torchLogits: Float32Array,
  target: number,
): { failures: string[]; sum: number; logitErr: number; targetErr: number } {
  const failures: string[] = [];
  let bad = 0;
  let sum = 0;
  for (const v of relevance) {
    if (!Number.isFinite(v)) bad++;
    else sum += v;
  }
  if (bad) failures.push(`${bad} relevance values are NaN or Inf`);
  if (!Number.isFinite(sum) || sum === 0) failures.push(`relevance sum is ${sum}`);
  const err = (i: number): number => Math.abs(logits[i] - torchLogits[i]) / Math.max(1, Math.abs(torchLogits[i]));
  let logitErr = 0;
  for (let i = 0; i < torchLogits.length; i++) logitErr = Math.max(logitErr, err(i));
  const targetErr = err(target);
  if (!(targetErr <= LOGIT_TOL)) failures.push(`target logit differs from torch's by ${targetErr.toExponential(2)} (relative)`);
  if (!Number.isFinite(logits[target])) failures.push(`target logit is ${logits[target]}`);
  return { failures, sum, logitErr, targetErr };
}

/** The rules of one coverage case; zbox's bounds are the input's own range (a random normal input, not a photo). */
export function coverageRules(composite: string, attention: string, x: Float32Array): RulesConfig {
  let low = Infinity;
  let high = -Infinity;
  for (const v of x) {
    low = Math.min(low, v);
    high = Math.max(high, v);
  }
  return parseRulesConfig({ composite, attention, inputBounds: { low: [low], high: [high] } }, 'coverage');
}

function argmax(v: Float32Array): number {
  let k = 0;
  for (let i = 1; i < v.length; i++) if (v[i] > v[k]) k = i;
  return k;
}

function fmtErr(e: unknown): string {
  const m = e instanceof Error ? e.message : String(e);
  return m.split('\n')[0].slice(0, 300);
}

async function runModel(dir: string, file: string): Promise<ModelResult> {
  const m = /^(.*)-op(\d+)\.onnx$/.exec(file) as RegExpExecArray;
  const family = m[1];
  const res: ModelResult = { family, opset: Number(m[2]), file, cases: [] };
  const x = readNpy(readFileSync(path.join(dir, `${family}-input.npy`)), `${family}-input.npy`);
  const want = readNpy(readFileSync(path.join(dir, `${family}-logits.npy`)), `${family}-logits.npy`).data as Float32Array;
  const target = argmax(want);
  let ex: Explainer;
  try {
    ex = await Explainer.load(path.join(dir, file));
  } catch (e) {
    res.loadError = fmtErr(e);
    return res;
  }
  let maxErr = 0;
  let maxTarget = 0;
  for (const composite of COMPOSITES)
    for (const attention of ATTENTION) {
      const c: CaseResult = { composite, attention, ok: false };
      try {
        const rules = coverageRules(composite, attention, x.data as Float32Array);
        const opts = { rules, target, layers: false };
        await ex.explain(x, opts); // compiles and warms up
        const e = await ex.explain(x, opts);
        const chk = checkExplanation(e.relevance.data as Float32Array, e.logits, want, target);
        c.lrpMs = Math.round(e.timings.lrpMs);
        c.relevanceSum = e.relevanceSum;
        c.logitErr = chk.logitErr;
        c.targetErr = chk.targetErr;
        maxErr = Math.max(maxErr, chk.logitErr);
        maxTarget = Math.max(maxTarget, chk.targetErr);
        c.ok = chk.failures.length === 0;
        if (!c.ok) c.error = chk.failures.join('; ');
        // a BatchNormalization left unfolded passes relevance (spec section 3); say what the
        // `affine` reading of it (Zennit's and Captum's) gives, for the README's notes
        if (!c.ok && ex.graph.nodes.some((n) => n.opType === 'BatchNormalization')) {
          const alt = await ex.explain(x, { ...opts, rules: { ...rules, batchNorm: 'affine' } });
          const altChk = checkExplanation(alt.relevance.data as Float32Array, alt.logits, want, target);
          c.error += altChk.failures.length
            ? `; with batchNorm affine too: ${altChk.failures.join('; ')}`
            : `; with batchNorm affine: OK (relevance sum ${alt.relevanceSum.toPrecision(3)}, logit ${alt.logit.toPrecision(3)})`;
        }
      } catch (e) {
        c.error = fmtErr(e);
      }
      res.cases.push(c);
      process.stderr.write(
        `coverage: ${family} op${res.opset} ${composite}/${attention}: ${c.ok ? `ok, ${c.lrpMs} ms, sum ${c.relevanceSum?.toPrecision(4)}, target logit err ${c.targetErr?.toExponential(1)}, all logits ${c.logitErr?.toExponential(1)}` : `FAILED: ${c.error}`}\n`,
      );
    }
  if (res.cases.some((c) => c.logitErr !== undefined)) {
    res.maxLogitErr = maxErr;
    res.maxTargetErr = maxTarget;
  }
  await ex.dispose();
  return res;
}

export function tableOf(results: ModelResult[]): string {
  const head = [
    '| family | opset | ' + COMPOSITES.map((c) => ATTENTION.map((a) => `${c} ${a}`).join(' | ')).join(' | ') + ' | target logit error | max logit error (all 1000) | LRP ms (epsilon, cp) |',
    '|---|---:|' + COMPOSITES.map(() => ATTENTION.map(() => ':---:').join('|')).join('|') + '|---:|---:|---:|',
  ];
  const rows = results.map((r) => {
    const cells = COMPOSITES.flatMap((c) =>
      ATTENTION.map((a) => {
        if (r.loadError) return 'error';
        const k = r.cases.find((x) => x.composite === c && x.attention === a);
        return k?.ok ? 'OK' : 'error';
      }),
    );
    const err = r.maxLogitErr === undefined ? 'n/a' : r.maxLogitErr.toExponential(1);
    const terr = r.maxTargetErr === undefined ? 'n/a' : r.maxTargetErr.toExponential(1);
    const eps = r.cases.find((x) => x.composite === 'epsilon' && x.attention === 'cp');
    const ms = eps?.lrpMs === undefined ? 'n/a' : String(eps.lrpMs);
    return `| ${r.family} | ${r.opset} | ${cells.join(' | ')} | ${terr} | ${err} | ${ms} |`;
  });
  return [...head, ...rows].join('\n');
}

function errorsOf(results: ModelResult[]): string[] {
  const out: string[] = [];
  for (const r of results) {
    if (r.loadError) out.push(`${r.family} (opset ${r.opset}): ${r.loadError}`);
    for (const c of r.cases) if (!c.ok) out.push(`${r.family} (opset ${r.opset}) ${c.composite}/${c.attention}: ${c.error}`);
  }
  return out;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { dir: { type: 'string', default: '.cache/torchvision' }, only: { type: 'string' }, readme: { type: 'boolean' } },
  });
  const dir = values.dir as string;
  if (!existsSync(dir)) throw new Error(`${dir} is missing: run /usr/bin/python3 scripts/coverage/export.py first`);
  const only = values.only ? new Set(values.only.split(',').map((s) => s.trim())) : null;
  const files = readdirSync(dir)
    .filter((f) => /-op\d+\.onnx$/.test(f))
    .filter((f) => !only || only.has(f.replace(/-op\d+\.onnx$/, '')) || only.has(f.replace(/\.onnx$/, '')));
  const order = (f: string) => {
    const fam = f.replace(/-op\d+\.onnx$/, '');
    const i = FAMILY_ORDER.indexOf(fam);
    return (i < 0 ? 99 : i) * 100 - Number(/-op(\d+)/.exec(f)?.[1] ?? 0);
  };
  files.sort((a, b) => order(a) - order(b));
  // each model's result is kept in DIR/results/<file>.json as soon as it is done, so runs of
  // different models (--only) add up, and one that stops early keeps what it did
  const resultsDir = path.join(dir, 'results');
  mkdirSync(resultsDir, { recursive: true });
  for (const f of files) {
    const t0 = performance.now();
    const r = await runModel(dir, f);
    writeFileSync(path.join(resultsDir, `${f}.json`), JSON.stringify(r, null, 2));
    process.stderr.write(`coverage: ${f} done in ${((performance.now() - t0) / 1000).toFixed(1)} s\n`);
  }
  const results: ModelResult[] = readdirSync(resultsDir)
    .filter((f) => f.endsWith('.onnx.json') && existsSync(path.join(dir, f.slice(0, -'.json'.length))))
    .map((f) => JSON.parse(readFileSync(path.join(resultsDir, f), 'utf8')) as ModelResult);
  // results written by an older run.ts (one coverage.json only) for models with no result file
  const jsonPath = path.join(dir, 'coverage.json');
  if (existsSync(jsonPath))
    for (const r of (JSON.parse(readFileSync(jsonPath, 'utf8')) as { results: ModelResult[] }).results)
      if (!results.some((x) => x.file === r.file) && existsSync(path.join(dir, r.file))) results.push(r);
  results.sort((a, b) => order(a.file) - order(b.file));
  const table = tableOf(results);
  process.stdout.write(table + '\n');
  const errors = errorsOf(results);
  for (const e of errors) process.stdout.write(`- ${e}\n`);
  writeFileSync(jsonPath, JSON.stringify({ date: new Date().toISOString(), results }, null, 2));
  if (values.readme) {
    const readme = readFileSync('README.md', 'utf8');
    const start = '<!-- coverage:start -->';
    const end = '<!-- coverage:end -->';
    const a = readme.indexOf(start);
    const b = readme.indexOf(end);
    if (a < 0 || b < a) throw new Error(`README.md has no ${start} ... ${end} section`);
    const body = `${start}\n${table}\n${errors.length ? '\n' + errors.map((e) => `- ${e}`).join('\n') + '\n' : ''}${end}`;
    writeFileSync('README.md', readme.slice(0, a) + body + readme.slice(b + end.length));
  }
  if (errors.length) process.exitCode = 1;
}

/** The README's row order (export.py's). */
const FAMILY_ORDER = [
  'alexnet',
  'vgg11_bn',
  'resnet18',
  'resnext50_32x4d',
  'wide_resnet50_2',
  'squeezenet1_1',
  'densenet121',
  'googlenet',
  'inception_v3',
  'shufflenet_v2_x1_0',
  'mobilenet_v2',
  'mobilenet_v3_small',
  'mnasnet0_5',
  'efficientnet_b0',
  'efficientnet_v2_s',
  'regnet_x_400mf',
  'regnet_y_400mf',
  'convnext_tiny',
  'vit_b_16',
  'swin_t',
];

if (require.main === module)
  main().catch((e: Error) => {
    process.stderr.write(`coverage: ${e.message}\n`);
    process.exitCode = 1;
  });
