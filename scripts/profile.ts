// Where the LRP program spends its time: onnxruntime's own profile of one configuration, op time
// by type, and the CPU-time ratio LRP / forward on one thread (steadier than wall time on a busy
// machine). A tool for the performance work, not a test.
//
//   npx tsx scripts/profile.ts MODEL.onnx [COMPOSITE ...] [--attention cp|attnlrp] [--no-layers] [--top N] [--floor]
//
// --floor measures a lower bound instead: the program with every element-wise op of the relevance
// pass bypassed (the forward, the transposed convolutions, the sums at forks and MaxPool's
// scatter stay), i.e. what LRP would cost if the rules' divisions and products were free. (A
// modified forward pass that only feeds a denominator, like z+'s, vanishes with the division, so
// the bound is exact for epsilon and too low for other composites.)
import * as ort from 'onnxruntime-node';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { parseRulesConfig } from '../src/engine/config';
import { Explainer } from '../src/explain/explainer';
import { Graph, pruneDead } from '../src/engine/graph/graph';
import { inferShapes } from '../src/engine/graph/shapes';
import { LRP_TARGET, compileLrp } from '../src/engine/compile/lrp';
import { exportOnnx } from '../src/engine/import/onnx';

interface ProfileEvent {
  cat: string;
  name: string;
  dur: number;
  args?: { op_name?: string };
}

const RUNS = 5;

async function session(g: Graph, profileDir?: string): Promise<ort.InferenceSession> {
  return ort.InferenceSession.create(exportOnnx(g), {
    intraOpNumThreads: 1,
    graphOptimizationLevel: 'all',
    ...(profileDir ? { enableProfiling: true, profileFilePrefix: join(profileDir, 'p') } : {}),
  });
}

/** Replace each element-wise op of the relevance pass by its relevance operand (same shape only). */
function bypassElementwise(g: Graph, model: Graph): void {
  const forward = new Set<string>(model.inputs.map((i) => i.name));
  for (const n of model.nodes) for (const o of n.outputs) forward.add(o);
  const shapes = inferShapes(g, 1);
  const relevance = (t: string) => !forward.has(t) && !g.initializers.has(t);
  const dims = (t: string) => shapes.get(t)?.dims.join();
  for (const n of g.nodes) {
    if (!n.name.startsWith('lrp/')) continue;
    const rel = n.inputs.filter(relevance);
    const elementwise = ['Mul', 'Div', 'Abs', 'Sub'].includes(n.opType) || (n.opType === 'Add' && rel.length === 1);
    if (!elementwise || !rel.length || dims(rel[0]) !== dims(n.outputs[0])) continue;
    n.opType = 'Identity';
    n.inputs = [rel[0]];
    n.attrs = {};
  }
  pruneDead(g);
}

async function cpuMsPerRun(s: ort.InferenceSession, feeds: Record<string, ort.Tensor>): Promise<number> {
  await s.run(feeds);
  const t = process.cpuUsage();
  for (let i = 0; i < RUNS; i++) await s.run(feeds);
  const d = process.cpuUsage(t);
  return (d.user + d.system) / 1000 / RUNS;
}

(async () => {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: { 'no-layers': { type: 'boolean' }, top: { type: 'string' }, floor: { type: 'boolean' }, attention: { type: 'string' } },
  });
  const [model, ...composites] = positionals;
  if (!model) throw new Error('usage: npx tsx scripts/profile.ts MODEL.onnx [COMPOSITE ...] [--no-layers] [--top N] [--floor]');
  const ex = await Explainer.load(model);
  const n = ex.input.dims.reduce((a, b) => a * b, 1);
  const x = new ort.Tensor('float32', Float32Array.from({ length: n }, (_, i) => Math.sin(i * 0.37) * 2), ex.input.dims);
  const fwd = await session({ ...ex.graph, outputs: [ex.graph.outputs[0]] });
  const fwdMs = await cpuMsPerRun(fwd, { [ex.input.name]: x });
  const c = ex.input.channels || 1;
  for (const composite of composites.length ? composites : ['epsilon', 'epsilon-plus-flat']) {
    const rules = parseRulesConfig({ composite, ...(values.attention ? { attention: values.attention } : {}), inputBounds: { low: new Array(c).fill(-2.2), high: new Array(c).fill(2.7) } });
    const program = compileLrp(ex.graph, ex.shapes, rules, { maps: false, stats: !values['no-layers'] && !values.floor });
    if (values.floor) bypassElementwise(program.graph, ex.graph);
    const dir = mkdtempSync(join(tmpdir(), 'lrp-profile-'));
    const s = await session(program.graph, dir);
    const feeds = { [ex.input.name]: x, [LRP_TARGET]: new ort.Tensor('int64', BigInt64Array.from([-1n]), [1]) };
    const lrpMs = await cpuMsPerRun(s, feeds);
    s.endProfiling();
    const events = JSON.parse(readFileSync(join(dir, readdirSync(dir)[0]), 'utf8')) as ProfileEvent[];
    rmSync(dir, { recursive: true, force: true });
    const byOp = new Map<string, number>();
    for (const e of events)
      if (e.cat === 'Node' && e.name.endsWith('_kernel_time'))
        byOp.set(e.args?.op_name ?? '?', (byOp.get(e.args?.op_name ?? '?') ?? 0) + e.dur / 1000 / (RUNS + 1));
    const top = [...byOp.entries()].sort((a, b) => b[1] - a[1]).slice(0, Number(values.top ?? 12));
    console.log(
      JSON.stringify({
        composite,
        ...(values.attention ? { attention: values.attention } : {}),
        ...(values.floor ? { floor: true } : {}),
        layers: !values['no-layers'] && !values.floor,
        forwardCpuMs: +fwdMs.toFixed(1),
        lrpCpuMs: +lrpMs.toFixed(1),
        ratio: +(lrpMs / fwdMs).toFixed(2),
        opMs: Object.fromEntries(top.map(([k, v]) => [k, +v.toFixed(1)])),
      }),
    );
    await s.release();
  }
  await fwd.release();
  await ex.dispose();
})().catch((e) => {
  console.error((e as Error).message);
  process.exit(1);
});
