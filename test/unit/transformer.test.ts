// Issue 9 (spec section 7): the LayerNorm identity rule, attention under `cp` and `attnlrp`, constant
// Adds that absorb, the structural ops of transformers, the pattern passes (LayerNorm and GELU written
// out), conservation on the fixture ViT and the gradient methods on it. Expected values are computed
// here in float64 straight from the formulas (explicit matrices and loops), independent of the engine.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseRulesConfig } from '../../src/engine/config';
import { Explainer } from '../../src/explain/explainer';
import { A, Graph, Tensor, f32, i64 } from '../../src/engine/graph/graph';
import { canonize } from '../../src/engine/graph/canonize';
import { inferShapes } from '../../src/engine/graph/shapes';
import { importOnnx } from '../../src/engine/import/onnx';
import { Explanation } from '../../src/engine/types';
import { FIXTURES_DIR, TinyModel, floatInput, makeTmpDir, node, readNpyFile, relL2, rng, tinyGraph, assertClose, explainTiny as explainTinyIn, relOf, sumOf } from '../helpers';
import { runOrt } from './tfjs-util';

const MODERN = path.join(FIXTURES_DIR, 'lrp-reference-modern');
const VIT = path.join(MODERN, 'shapes-vit/model.onnx');
const VIT14 = path.join(MODERN, 'shapes-vit/model-opset14.onnx');
const VIT_INPUT = path.join(MODERN, 'shapes-vit/inputs/sample0.npy');

let tmp: { dir: string; cleanup: () => void };
before(() => {
  tmp = makeTmpDir('lrp-lens-transformer-');
});
after(() => tmp?.cleanup());

const explainTiny = (m: TinyModel, x: Tensor, rules: unknown, target?: number): Promise<Explanation> => explainTinyIn(tmp.dir, m, x, rules, target);
const rel = relOf;
const sum = sumOf;

/** Random values rounded to float32 (what the model sees), in float64 arrays. */
function values(n: number, r: () => number, scale = 1, offset = 0): number[] {
  return Array.from({ length: n }, () => Math.fround(offset + scale * (2 * r() - 1)));
}

// ---------- float64 matrices ----------

type M = number[][];
const mat = (v: number[], rows: number, cols: number): M => Array.from({ length: rows }, (_, i) => v.slice(i * cols, (i + 1) * cols));
const mm = (a: M, b: M): M => a.map((row) => b[0].map((_, j) => row.reduce((s, v, k) => s + v * b[k][j], 0)));
const tr = (a: M): M => a[0].map((_, j) => a.map((row) => row[j]));
const ew = (a: M, b: M, f: (x: number, y: number) => number): M => a.map((row, i) => row.map((v, j) => f(v, b[i][j])));
const scale = (a: M, k: number): M => a.map((row) => row.map((v) => v * k));
const flat = (a: M): number[] => a.flat();

describe('LayerNorm: identity rule with frozen sigma (spec section 7)', () => {
  // x [1, 3, 4] -> LayerNormalization -> Reshape [1, 12] -> Gemm (no bias) -> logits [1, 2]
  const r = rng(3);
  const T = 3;
  const D = 4;
  const eps = 1e-5;
  const x = values(T * D, r, 1.5, 0.2);
  const gamma = values(D, r, 1, 0.3);
  const beta = values(D, r, 0.5);
  const W = values(2 * T * D, r);
  const model: TinyModel = {
    input: floatInput('x', [1, T, D]),
    output: floatInput('y', [1, 2]),
    nodes: [
      node('ln', 'LayerNormalization', ['x', 'g', 'b'], ['ln'], { axis: A.int(-1), epsilon: A.float(eps) }),
      node('flat', 'Reshape', ['ln', 'shape']),
      node('fc', 'Gemm', ['flat', 'w'], ['y'], { transB: A.int(1) }),
    ],
    initializers: { g: f32([D], gamma), b: f32([D], beta), w: f32([2, T * D], W), shape: i64([2], [1, T * D]) },
  };

  it('R_x = x * (J^T (R / y)) with J = diag(gamma / sigma) (I - 11^T / D), sigma frozen', async () => {
    const e = await explainTiny(model, f32([1, T, D], x), { composite: 'epsilon', epsilon: 0 }, 0);
    const want: number[] = [];
    for (let t = 0; t < T; t++) {
      const xt = x.slice(t * D, (t + 1) * D);
      const mu = sum(xt) / D;
      const sigma = Math.sqrt(xt.reduce((s, v) => s + (v - mu) ** 2, 0) / D + eps);
      const y = xt.map((v, j) => ((v - mu) * gamma[j]) / sigma + beta[j]);
      // LRP-0 at the Gemm with the target's logit as its relevance: R_y = y * w_target
      const Ry = y.map((v, j) => v * W[t * D + j]);
      // the Jacobian of y w.r.t. x with sigma a constant, as an explicit matrix
      const J: M = Array.from({ length: D }, (_, j) => Array.from({ length: D }, (_, k) => (gamma[j] / sigma) * ((j === k ? 1 : 0) - 1 / D)));
      const c = Ry.map((v, j) => v / y[j]);
      const JTc = flat(mm(tr(J), c.map((v) => [v])));
      want.push(...xt.map((v, k) => v * JTc[k]));
    }
    assertClose(rel(e), want, 2e-5, 'input relevance');
    // beta absorbs: the sum equals the logit minus the share of beta, sum_j beta_j * R_j / y_j
    assert.ok(Math.abs(sum(rel(e)) - e.logit) > 1e-3, 'beta absorbs some relevance');
  });

  it('without beta the rule conserves: the input relevance sums to the logit', async () => {
    const m = { ...model, initializers: { ...model.initializers, b: f32([D], new Array(D).fill(0)) } };
    const e = await explainTiny(m, f32([1, T, D], x), { composite: 'epsilon', epsilon: 0 }, 0);
    assert.ok(Math.abs(sum(rel(e)) - e.logit) < 1e-5 * Math.abs(e.logit), `sum ${sum(rel(e))} vs logit ${e.logit}`);
  });
});

describe('RMS-style norm written out: only the frozen scale (spec section 7)', () => {
  it('x / sqrt(mean(x^2) + eps) * gamma passes the relevance unchanged to x', async () => {
    const r = rng(21);
    const x = values(8, r, 1, 0.2);
    const gamma = values(4, r, 1, 0.5);
    const W = values(16, r);
    const m: TinyModel = {
      input: floatInput('x', [1, 2, 4]),
      output: floatInput('y', [1, 2]),
      nodes: [
        node('sq', 'Pow', ['x', 'two']),
        node('ms', 'ReduceMean', ['sq'], ['ms'], { axes: A.ints([-1]) }),
        node('ve', 'Add', ['ms', 'eps']),
        node('rms', 'Sqrt', ['ve']),
        node('n', 'Div', ['x', 'rms']),
        node('g', 'Mul', ['n', 'gamma']),
        node('flat', 'Reshape', ['g', 'shape']),
        node('fc', 'Gemm', ['flat', 'w'], ['y'], { transB: A.int(1) }),
      ],
      initializers: { two: f32([], [2]), eps: f32([], [1e-6]), gamma: f32([4], gamma), shape: i64([2], [1, 8]), w: f32([2, 8], W) },
    };
    const e = await explainTiny(m, f32([1, 2, 4], x), { composite: 'epsilon', epsilon: 0 }, 0);
    const want = x.map((v, i) => {
      const t = Math.floor(i / 4);
      const rms = Math.sqrt(x.slice(t * 4, t * 4 + 4).reduce((s, u) => s + u * u, 0) / 4 + 1e-6);
      return ((v / rms) * gamma[i % 4]) * W[i];
    });
    assertClose(rel(e), want, 1e-5, 'rms norm');
    assert.ok(e.layers.some((l) => l.name === 'n' && l.rule === 'frozen-scale'));
  });

  it('a global response norm (x * Gx / mean(Gx)) freezes its statistic too', async () => {
    const r = rng(22);
    const m: TinyModel = {
      input: floatInput('x', [1, 2, 2, 3]),
      output: floatInput('y', [1, 2]),
      nodes: [
        node('sq', 'Mul', ['x', 'x']),
        node('ss', 'ReduceSum', ['sq', 'hw'], ['ss']),
        node('gx', 'Sqrt', ['ss']),
        node('mg', 'ReduceMean', ['gx'], ['mg'], { axes: A.ints([-1]) }),
        node('me', 'Add', ['mg', 'eps']),
        node('nx', 'Div', ['gx', 'me']),
        node('xn', 'Mul', ['x', 'nx']),
        node('res', 'Add', ['xn', 'x']),
        node('flat', 'Reshape', ['res', 'shape']),
        node('fc', 'Gemm', ['flat', 'w'], ['y'], { transB: A.int(1) }),
      ],
      initializers: { hw: i64([2], [1, 2]), eps: f32([], [1e-6]), shape: i64([2], [1, 12]), w: f32([2, 12], values(24, r)) },
    };
    const x = values(12, r, 1, 0.3);
    const e = await explainTiny(m, f32([1, 2, 2, 3], x), { composite: 'epsilon', epsilon: 0 }, 0);
    assert.ok(e.layers.some((l) => l.name === 'xn' && l.rule === 'frozen-scale'), e.layers.map((l) => `${l.name}:${l.rule}`).join(' '));
    // no bias anywhere: the residual norm rule (stabiliser 1e-6) and LRP-0 conserve
    assert.ok(Math.abs(sum(rel(e)) - e.logit) < 1e-4 * Math.abs(e.logit));
  });
});

describe('Attention: cp and attnlrp on one head (spec section 7)', () => {
  // X [1, 3, 2]; Q, K, V = X Wq, X Wk, X Wv; S = Q K^T * s; A = softmax(S); O = A V; logits = Gemm(flat(O))
  const r = rng(11);
  const T = 3;
  const d = 2;
  const s = 1 / Math.sqrt(d);
  const X = values(T * d, r, 1, 0.1);
  const [Wq, Wk, Wv] = [0, 1, 2].map(() => values(d * d, r, 1));
  const Wo = values(2 * T * d, r, 1);
  const model: TinyModel = {
    input: floatInput('x', [1, T, d]),
    output: floatInput('y', [1, 2]),
    nodes: [
      node('q', 'MatMul', ['x', 'wq']),
      node('k', 'MatMul', ['x', 'wk']),
      node('v', 'MatMul', ['x', 'wv']),
      node('kt', 'Transpose', ['k'], ['kt'], { perm: A.ints([0, 2, 1]) }),
      node('p', 'MatMul', ['q', 'kt']),
      node('sc', 'Mul', ['p', 'scale']),
      node('a', 'Softmax', ['sc'], ['a'], { axis: A.int(-1) }),
      node('o', 'MatMul', ['a', 'v']),
      node('flat', 'Reshape', ['o', 'shape']),
      node('fc', 'Gemm', ['flat', 'wo'], ['y'], { transB: A.int(1) }),
    ],
    initializers: {
      wq: f32([d, d], Wq),
      wk: f32([d, d], Wk),
      wv: f32([d, d], Wv),
      wo: f32([2, T * d], Wo),
      scale: f32([], [s]),
      shape: i64([2], [1, T * d]),
    },
  };

  // the forward pass and the relevance at O in float64
  const Xm = mat(X, T, d);
  const Q = mm(Xm, mat(Wq, d, d));
  const K = mm(Xm, mat(Wk, d, d));
  const V = mm(Xm, mat(Wv, d, d));
  const P = mm(Q, tr(K));
  const S = scale(P, s);
  const Am = S.map((row) => {
    const m = Math.max(...row);
    const e = row.map((v) => Math.exp(v - m));
    const z = sum(e);
    return e.map((v) => v / z);
  });
  const O = mm(Am, V);
  const RO = ew(O, mat(Wo.slice(0, T * d), T, d), (o, w) => o * w); // LRP-0 at the Gemm, target 0
  const G = ew(RO, O, (a, b) => a / b);
  /** LRP-0 through X W: R_X = X * ((R / Z) W^T) */
  const back = (R: M, Z: M, W: number[]): M => ew(Xm, mm(ew(R, Z, (a, b) => a / b), tr(mat(W, d, d))), (a, b) => a * b);

  it('cp: the softmax output is a constant, V takes all, Q and K nothing', async () => {
    const e = await explainTiny(model, f32([1, T, d], X), { composite: 'epsilon', epsilon: 0, attention: 'cp' }, 0);
    const RV = ew(V, mm(tr(Am), G), (a, b) => a * b);
    const want = flat(back(RV, V, Wv));
    assertClose(rel(e), want, 1e-4, 'cp input relevance');
    // conservation: no biases, LRP-0 everywhere
    assert.ok(Math.abs(sum(rel(e)) - e.logit) < 1e-4 * Math.abs(e.logit));
  });

  it('attnlrp: softmax by gradient x input, each operand of Q K^T and A V takes half', async () => {
    const e = await explainTiny(model, f32([1, T, d], X), { composite: 'epsilon', epsilon: 0, attention: 'attnlrp' }, 0);
    // O = A V: uniform rule
    const RA = scale(ew(Am, mm(G, tr(V)), (a, b) => a * b), 0.5);
    const RV = scale(ew(V, mm(tr(Am), G), (a, b) => a * b), 0.5);
    // softmax: R_S = S * (R_A - A * sum_j R_A_j)
    const RS = S.map((row, i) => {
      const tot = sum(RA[i]);
      return row.map((v, j) => v * (RA[i][j] - Am[i][j] * tot));
    });
    // the scale passes: R_P = R_S; P = Q K^T: uniform rule
    const G2 = ew(RS, P, (a, b) => a / b);
    const RQ = scale(ew(Q, mm(G2, K), (a, b) => a * b), 0.5);
    const RK = scale(ew(K, mm(tr(G2), Q), (a, b) => a * b), 0.5);
    const want = flat(back(RQ, Q, Wq)).map((v, i) => v + flat(back(RK, K, Wk))[i] + flat(back(RV, V, Wv))[i]);
    assertClose(rel(e), want, 1e-4, 'attnlrp input relevance');
    // Q and K together receive what A received
    assert.ok(Math.abs(sum(flat(RQ)) + sum(flat(RK)) - sum(flat(RS))) < 1e-9);
    const layers = e.layers.map((l) => `${l.name}:${l.rule}`);
    assert.ok(layers.includes('o:uniform') && layers.includes('p:uniform'), layers.join(' '));
  });

  it('the attention key is validated', () => {
    assert.equal(parseRulesConfig({}).attention, 'cp');
    assert.equal(parseRulesConfig({ attention: 'attnlrp' }).attention, 'attnlrp');
    assert.throws(() => parseRulesConfig({ attention: 'rollout' }, 'r.json'), /r\.json: 'attention' must be one of "cp", "attnlrp" \(got "rollout"\)/);
  });
});

describe('Constant Adds absorb; structural ops route by their gradient', () => {
  // x [1, n] -> op -> Gemm (no bias, 2 outputs); with LRP-0 and the logit as relevance,
  // R_x[j] = x[j] * sum of w_target[k] over the outputs k read from j
  async function routed(n: number, op: (x: string) => TinyModel['nodes'], outLen: number, inits: Record<string, Tensor>, src: number[]): Promise<void> {
    const r = rng(5 + n);
    const x = values(n, r, 1, 0.5);
    const w = values(2 * outLen, r, 1);
    const nodes = [...op('x'), node('fc', 'Gemm', ['s', 'w'], ['y'], { transB: A.int(1) })];
    const m: TinyModel = { input: floatInput('x', [1, n]), output: floatInput('y', [1, 2]), nodes, initializers: { ...inits, w: f32([2, outLen], w) } };
    const e = await explainTiny(m, f32([1, n], x), { composite: 'epsilon', epsilon: 0 }, 0);
    const want = new Array<number>(n).fill(0);
    src.forEach((j, k) => (want[j] += x[j] * w[k]));
    assertClose(rel(e), want, 1e-5, 'routed relevance');
  }

  it('Add of a constant (position embedding): R_x = x / (x + c) * R', async () => {
    const r = rng(8);
    const x = values(4, r, 1, 0.5);
    const c = values(4, r, 0.5);
    const w = values(8, r);
    const m: TinyModel = {
      input: floatInput('x', [1, 4]),
      output: floatInput('y', [1, 2]),
      nodes: [node('pos', 'Relu', ['x']), node('add', 'Add', ['pos', 'c'], ['s']), node('fc', 'Gemm', ['s', 'w'], ['y'], { transB: A.int(1) })],
      initializers: { c: f32([1, 4], c), w: f32([2, 4], w) },
    };
    const e = await explainTiny(m, f32([1, 4], x), { composite: 'epsilon', epsilon: 0 }, 0);
    const want = x.map((v, j) => {
      const xr = Math.max(v, 0);
      const y = xr + c[j];
      return (xr / y) * (y * w[j]);
    });
    assertClose(rel(e), want, 1e-5, 'absorbing Add');
  });

  it('Slice with a step of 2 and a step of -3', async () => {
    await routed(8, (x) => [node('sl', 'Slice', [x, 'st', 'en', 'ax', 'sp'], ['s'])], 4, { st: i64([1], [1]), en: i64([1], [8]), ax: i64([1], [1]), sp: i64([1], [2]) }, [1, 3, 5, 7]);
    await routed(8, (x) => [node('sl', 'Slice', [x, 'st', 'en', 'ax', 'sp'], ['s'])], 3, { st: i64([1], [-1]), en: i64([1], [-(2 ** 62)]), ax: i64([1], [1]), sp: i64([1], [-3]) }, [7, 4, 1]);
  });

  it('Gather with repeated and negative indices sums what reaches one source', async () => {
    await routed(5, (x) => [node('ga', 'Gather', [x, 'i'], ['s'], { axis: A.int(1) })], 4, { i: i64([4], [0, 3, -1, 3]) }, [0, 3, 4, 3]);
    // the class token x[:, 0] of a [1, T, D] tensor
    await routed(6, (x) => [node('rs', 'Reshape', [x, 'sh']), node('ga', 'Gather', ['rs', 'i'], ['s'], { axis: A.int(1) })], 2, { sh: i64([3], [1, 3, 2]), i: i64([], [1]) }, [2, 3]);
  });

  it('GatherElements, Tile and Where with a constant condition', async () => {
    await routed(4, (x) => [node('ge', 'GatherElements', [x, 'i'], ['s'], { axis: A.int(1) })], 3, { i: i64([1, 3], [2, 0, 2]) }, [2, 0, 2]);
    await routed(3, (x) => [node('ti', 'Tile', [x, 'k'], ['s'])], 6, { k: i64([2], [1, 2]) }, [0, 1, 2, 0, 1, 2]);
    // Where(cond, x, x reversed): each output reads one of the two
    const cond = [1, 0, 0, 1];
    await routed(
      4,
      (x) => [
        node('rev', 'Slice', [x, 'st', 'en', 'ax', 'sp']),
        node('wh', 'Where', ['cond', x, 'rev'], ['s']),
      ],
      4,
      { cond: { dtype: 'bool', dims: [1, 4], data: Uint8Array.from(cond) }, st: i64([1], [-1]), en: i64([1], [-(2 ** 62)]), ax: i64([1], [1]), sp: i64([1], [-1]) },
      [0, 2, 1, 3],
    );
  });

  it('Concat with a constant operand (class token) drops what reaches the constant', async () => {
    const r = rng(2);
    const x = values(3, r, 1, 0.5);
    const w = values(10, r);
    const m: TinyModel = {
      input: floatInput('x', [1, 3]),
      output: floatInput('y', [1, 2]),
      nodes: [node('cat', 'Concat', ['tok', 'x'], ['s'], { axis: A.int(1) }), node('fc', 'Gemm', ['s', 'w'], ['y'], { transB: A.int(1) })],
      initializers: { tok: f32([1, 2], [0.7, -0.3]), w: f32([2, 5], w) },
    };
    const e = await explainTiny(m, f32([1, 3], x), { composite: 'epsilon', epsilon: 0 }, 0);
    assertClose(rel(e), x.map((v, j) => v * w[2 + j]), 1e-5, 'concat');
  });

  it('errors name the file, the node and the reason', async () => {
    const m: TinyModel = {
      input: floatInput('x', [1, 4]),
      output: floatInput('y', [1, 2]),
      nodes: [node('sq', 'Sqrt', ['x'], ['q']), node('odd', 'Div', ['x', 'q'], ['s']), node('fc', 'Gemm', ['s', 'w'], ['y'], { transB: A.int(1) })],
      initializers: { w: f32([2, 4], [1, 2, 3, 4, 5, 6, 7, 8]) },
    };
    await assert.rejects(explainTiny(m, f32([1, 4], [1, 2, 3, 4]), { composite: 'epsilon' }), /model\d+\.onnx: node 'odd' \(Div\): division of two activations is not supported \(only by a statistic of the numerator/);
  });
});

describe('Pattern passes: LayerNorm and GELU written out become one node', () => {
  it('the opset-14 ViT: every written-out LayerNorm is a LayerNormalization, GELU a Gelu, logits unchanged', async () => {
    const g = importOnnx(fs.readFileSync(VIT14), VIT14);
    const x = readNpyFile(VIT_INPUT);
    const before = (await runOrt(g, { input: x })).logits;
    const shapes = inferShapes(g, 1);
    canonize(g, (t) => shapes.get(t)?.dims);
    const ops = g.nodes.map((n) => n.opType);
    assert.equal(ops.filter((o) => o === 'LayerNormalization').length, 9);
    assert.equal(ops.filter((o) => o === 'Gelu').length, 4);
    for (const gone of ['ReduceMean', 'Sqrt', 'Pow', 'Erf', 'Shape', 'ConstantOfShape', 'Equal', 'Where', 'Expand'])
      assert.ok(!ops.includes(gone), `${gone} left after canonisation`);
    const after = (await runOrt(g, { input: x })).logits;
    assertClose(after.data as Float32Array, before.data as Float32Array, 1e-4, 'logits');
  });

  it('the tanh GELU in another arrangement (0.5 x) (1 + tanh(k (x + c x^3))) becomes Gelu(approximate tanh)', async () => {
    const k = Math.sqrt(2 / Math.PI);
    const g: Graph = tinyGraph({
      input: floatInput('x', [1, 6]),
      output: floatInput('y', [1, 6]),
      nodes: [
        node('cube', 'Pow', ['x', 'three']),
        node('cx', 'Mul', ['c', 'cube']),
        node('inner', 'Add', ['x', 'cx']),
        node('kin', 'Mul', ['inner', 'k']),
        node('t', 'Tanh', ['kin']),
        node('p', 'Add', ['one', 't']),
        node('hx', 'Mul', ['x', 'half']),
        node('y', 'Mul', ['hx', 'p']),
      ],
      initializers: { three: f32([], [3]), c: f32([], [0.044715]), k: f32([], [k]), one: f32([], [1]), half: f32([], [0.5]) },
    });
    const x = f32([1, 6], [-3, -1, -0.2, 0.1, 0.8, 2.5]);
    const before = (await runOrt(g, { x })).y;
    const shapes = inferShapes(g, 1);
    canonize(g, (t) => shapes.get(t)?.dims);
    assert.deepEqual(g.nodes.map((n) => n.opType), ['Gelu']);
    assert.equal(g.nodes[0].attrs.approximate?.value, 'tanh');
    assertClose((await runOrt(g, { x })).y.data as Float32Array, before.data as Float32Array, 1e-5, 'tanh gelu');
  });

  it('two written-out LayerNorms in one scope get their own names and constants', async () => {
    const r = rng(6);
    const ln = (x: string, k: number): TinyModel['nodes'] => [
      node(`/blocks/ReduceMean_${k}`, 'ReduceMean', [x], [`m${k}`], { axes: A.ints([-1]) }),
      node(`/blocks/Sub_${k}`, 'Sub', [x, `m${k}`], [`d${k}`]),
      node(`/blocks/Pow_${k}`, 'Pow', [`d${k}`, 'two'], [`p${k}`]),
      node(`/blocks/ReduceMean_v${k}`, 'ReduceMean', [`p${k}`], [`v${k}`], { axes: A.ints([-1]) }),
      node(`/blocks/Add_${k}`, 'Add', [`v${k}`, 'eps'], [`ve${k}`]),
      node(`/blocks/Sqrt_${k}`, 'Sqrt', [`ve${k}`], [`s${k}`]),
      node(`/blocks/Div_${k}`, 'Div', [`d${k}`, `s${k}`], [`n${k}`]),
      node(`/blocks/Mul_${k}`, 'Mul', [`n${k}`, `g${k}`], [`o${k}`]),
    ];
    const g: Graph = tinyGraph({
      input: floatInput('x', [1, 2, 4]),
      output: floatInput('o1', [1, 2, 4]),
      nodes: [...ln('x', 0), ...ln('o0', 1)],
      initializers: { two: f32([], [2]), eps: f32([], [1e-5]), g0: f32([4], values(4, r, 1, 0.5)), g1: f32([4], values(4, r, 1, 0.5)) },
    });
    const x = f32([1, 2, 4], values(8, r, 2));
    const before = (await runOrt(g, { x })).o1;
    const shapes = inferShapes(g, 1);
    canonize(g, (t) => shapes.get(t)?.dims);
    assert.deepEqual(g.nodes.map((n) => n.opType), ['LayerNormalization', 'LayerNormalization']);
    assert.notEqual(g.nodes[0].name, g.nodes[1].name);
    assert.notEqual(g.nodes[0].inputs[1], g.nodes[1].inputs[1]);
    assertClose((await runOrt(g, { x })).o1.data as Float32Array, before.data as Float32Array, 1e-5, 'two layernorms');
  });

  it('a channels-first LayerNorm over axis 1 (ConvNeXt style) becomes Transpose, LayerNormalization, Transpose', async () => {
    const r = rng(4);
    const C = 3;
    const g: Graph = tinyGraph({
      input: floatInput('x', [1, C, 2, 2]),
      output: floatInput('y', [1, C, 2, 2]),
      nodes: [
        node('u', 'ReduceMean', ['x'], ['u'], { axes: A.ints([1]) }),
        node('d', 'Sub', ['x', 'u']),
        node('sq', 'Mul', ['d', 'd']),
        node('v', 'ReduceMean', ['sq'], ['v'], { axes: A.ints([1]) }),
        node('ve', 'Add', ['v', 'eps']),
        node('sd', 'Sqrt', ['ve']),
        node('n', 'Div', ['d', 'sd']),
        node('gn', 'Mul', ['gamma', 'n']),
        node('y', 'Add', ['gn', 'beta']),
      ],
      initializers: { eps: f32([], [1e-6]), gamma: f32([C, 1, 1], values(C, r, 1, 0.5)), beta: f32([C, 1, 1], values(C, r)) },
    });
    const x = f32([1, C, 2, 2], values(C * 4, r, 2));
    const before = (await runOrt(g, { x })).y;
    const shapes = inferShapes(g, 1);
    canonize(g, (t) => shapes.get(t)?.dims);
    assert.deepEqual(g.nodes.map((n) => n.opType), ['Transpose', 'LayerNormalization', 'Transpose']);
    assertClose((await runOrt(g, { x })).y.data as Float32Array, before.data as Float32Array, 1e-5, 'channels-first layernorm');
  });
});

describe('The fixture ViT', () => {
  it('conserves under epsilon 1e-9 and cp once biases, LayerNorm betas, position embeddings and the class token are zero', async () => {
    for (const file of [VIT, VIT14]) {
      const ex = await Explainer.load(file, { backend: 'onnxruntime' });
      try {
        const g = ex.graph;
        const zero = (name: string) => {
          const t = g.initializers.get(name) as Tensor;
          g.initializers.set(name, f32(t.dims, new Float32Array(t.data.length)));
        };
        let zeroed = 0;
        for (const n of g.nodes) {
          const consts = n.inputs.filter((i) => i && g.initializers.has(i));
          if ((n.opType === 'Conv' || n.opType === 'Gemm' || n.opType === 'LayerNormalization') && n.inputs[2]) zero(n.inputs[2]);
          else if ((n.opType === 'Add' || n.opType === 'Concat') && consts.length === 1) zero(consts[0]);
          else continue;
          zeroed++;
        }
        assert.ok(zeroed >= 4 * 6 + 4, `${zeroed} constants zeroed`);
        const x = readNpyFile(VIT_INPUT);
        const e = await ex.explain(x, { rules: parseRulesConfig({ composite: 'epsilon', epsilon: 1e-9, attention: 'cp' }) });
        const s = sum(e.relevance.data as Float32Array);
        assert.ok(Math.abs(s - e.logit) <= 1e-4 * Math.abs(e.logit), `${path.basename(file)}: relevance sum ${s} vs logit ${e.logit}`);
      } finally {
        await ex.dispose();
      }
    }
  });

  it('layers on token tensors report the relevance per token (for the panel\'s token maps)', async () => {
    const ex = await Explainer.load(VIT, { backend: 'onnxruntime' });
    try {
      const e = await ex.explain(readNpyFile(VIT_INPUT), { rules: parseRulesConfig({ composite: 'epsilon', attention: 'cp' }), maps: true });
      const ln = e.layers.filter((l) => l.opType === 'LayerNormalization');
      assert.equal(ln.length, 9);
      for (const l of ln) {
        assert.equal(l.tokenSums?.length, 65, l.name);
        assert.ok(Math.abs(sum(l.tokenSums as Float32Array) - l.relevanceSum) <= 1e-4 * Math.max(1, Math.abs(l.relevanceSum)), l.name);
      }
      // the final LayerNorm: only the class token reaches the head
      const last = ln[0].tokenSums as Float32Array;
      assert.ok(Array.from(last.subarray(1)).every((v) => v === 0) && last[0] !== 0);
    } finally {
      await ex.dispose();
    }
  });

  it('gradcam uses the last block\'s patch tokens (its first LayerNorm) on the 8x8 patch grid', async () => {
    const ex = await Explainer.load(VIT, { backend: 'onnxruntime' });
    try {
      const a = await ex.attribute(readNpyFile(VIT_INPUT), { method: 'gradcam', target: 2 });
      assert.equal(a.layer, '/encoder/layers/encoder_layer_3/ln_1/LayerNormalization');
      assert.deepEqual([a.map.width, a.map.height], [64, 64]);
      assert.ok(a.map.data.some((v) => v > 0) && a.map.data.every((v) => v >= 0));
      // an explicit token layer works too; a tensor that is neither a map nor tokens is refused
      const b = await ex.attribute(readNpyFile(VIT_INPUT), { method: 'gradcam', target: 2, layer: '/encoder/layers/encoder_layer_1/ln_1/LayerNormalization' });
      assert.ok(b.map.data.some((v) => v > 0));
      await assert.rejects(ex.attribute(readNpyFile(VIT_INPUT), { method: 'gradcam', layer: '/heads/head/Gemm' }), /Grad-CAM needs a spatial feature map \[N, C, H, W\] or patch tokens \[1, T, D\]/);
    } finally {
      await ex.dispose();
    }
  });

  it('gradcam on the ConvNeXt uses the last stage output (its residual Add), not the depthwise Conv before it', async () => {
    const ex = await Explainer.load(path.join(MODERN, 'shapes-convnext/model.onnx'), { backend: 'onnxruntime' });
    try {
      const a = await ex.attribute(readNpyFile(path.join(MODERN, 'shapes-convnext/inputs/sample0.npy')), { method: 'gradcam' });
      assert.equal(a.layer, '/features/features.3/features.3.1/Add');
    } finally {
      await ex.dispose();
    }
  });

  it('the tf.js backend computes the same gradient', async () => {
    const [a, b] = await Promise.all([Explainer.load(VIT, { backend: 'onnxruntime' }), Explainer.load(VIT, { backend: 'tfjs' })]);
    try {
      const x = readNpyFile(VIT_INPUT);
      const ga = await a.attribute(x, { method: 'gradient', target: 2 });
      const gb = await b.attribute(x, { method: 'gradient', target: 2 });
      const d = relL2(ga.relevance.data as Float32Array, gb.relevance.data as Float32Array);
      assert.ok(d < 1e-4, `relL2 ${d}`);
    } finally {
      await Promise.all([a.dispose(), b.dispose()]);
    }
  });

  it('gradient and gradient-input work and match finite differences of the logit', async () => {
    const ex = await Explainer.load(VIT, { backend: 'onnxruntime' });
    try {
      const x = readNpyFile(VIT_INPUT);
      const g = await ex.attribute(x, { method: 'gradient', target: 2 });
      const gi = await ex.attribute(x, { method: 'gradient-input', target: 2 });
      const gd = g.relevance.data as Float32Array;
      const xd = x.data as Float32Array;
      assertClose(gi.relevance.data as Float32Array, Array.from(gd, (v, i) => v * xd[i]), 1e-6, 'gradient-input = gradient * x');
      // central differences on the pixels with the largest gradients
      const idx = Array.from(gd.keys()).sort((a, b) => Math.abs(gd[b]) - Math.abs(gd[a])).slice(0, 8);
      const h = 1e-2;
      const fd: number[] = [];
      for (const i of idx) {
        const at = async (dv: number) => {
          const y = f32(x.dims, xd);
          (y.data as Float32Array)[i] += dv;
          return (await ex.forward(y))[2];
        };
        fd.push(((await at(h)) - (await at(-h))) / (2 * h));
      }
      const an = idx.map((i) => gd[i]);
      assert.ok(relL2(Float32Array.from(an), Float32Array.from(fd)) < 2e-2, `gradient [${an}] vs finite differences [${fd}]`);
    } finally {
      await ex.dispose();
    }
  });
});
