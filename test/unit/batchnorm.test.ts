// A BatchNormalization that cannot be folded (spec section 3; here it reads the input directly, as
// DenseNet's follow a Concat): under `batchNorm: pass` (the default) its input gets its output's
// relevance unchanged; under `affine` the shift absorbs its share, R_x = x*s / (x*s + t) * R_y with
// s = scale / sqrt(var + eps), t = bias - mean * s. Both checked against values computed here in
// float64 from the same network (epsilon rule on the Gemm, spec section 2).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { A, f32 } from '../../src/engine/graph/graph';
import { parseRulesConfig, ConfigError } from '../../src/engine/config';
import { Explainer } from '../../src/explain/explainer';
import { floatInput, makeTmpDir, maxRelErr, node, rng, writeTinyModel, type TinyModel } from '../helpers';

let tmp: { dir: string; cleanup: () => void };
before(() => (tmp = makeTmpDir('lrp-lens-bn-')));
after(() => tmp?.cleanup());

const C = 3;
const HW = 4; // 2x2
const K = 2;
const r = rng(7);
const scale = [1.5, -0.7, 2.0];
const bias = [0.3, -0.2, 0.8];
const mean = [0.1, -0.4, 0.25];
const variance = [0.5, 2.0, 0.09];
const EPS = 1e-3;
const W = Array.from({ length: K }, () => Array.from({ length: C * HW }, () => r() * 2 - 1)); // [K, C*HW]
const x = Array.from({ length: C * HW }, () => r() * 2 - 1);

const model: TinyModel = {
  input: floatInput('x', [1, C, 2, 2]),
  output: floatInput('logits', [1, K]),
  nodes: [
    node('bn', 'BatchNormalization', ['x', 'scale', 'bias', 'mean', 'var'], ['bn'], { epsilon: A.float(EPS) }),
    node('relu', 'Relu', ['bn']),
    node('flat', 'Flatten', ['relu']),
    node('fc', 'Gemm', ['flat', 'W'], ['logits'], { transB: A.int(1) }),
  ],
  initializers: {
    scale: f32([C], scale),
    bias: f32([C], bias),
    mean: f32([C], mean),
    var: f32([C], variance),
    W: f32([K, C * HW], W.flat()),
  },
};

/** float64: the BatchNorm output, the Relu, the logits, and the relevance at the Relu output for `target` (epsilon rule, no bias). */
function reference(target: number, mode: 'pass' | 'affine'): number[] {
  const s = scale.map((g, c) => g / Math.sqrt(variance[c] + EPS));
  const y = x.map((v, i) => {
    const c = Math.floor(i / HW);
    return (v - mean[c]) * s[c] + bias[c];
  });
  const a = y.map((v) => Math.max(0, v));
  const z = W[target].reduce((acc, w, j) => acc + w * a[j], 0);
  const eps = 1e-6;
  const Ra = a.map((v, j) => ((v * W[target][j]) / (z + (z >= 0 ? eps : -eps))) * z);
  if (mode === 'pass') return Ra;
  return Ra.map((R, i) => {
    const c = Math.floor(i / HW);
    return y[i] === 0 ? 0 : ((x[i] * s[c]) / y[i]) * R;
  });
}

async function explain(mode?: string): Promise<{ rel: number[]; target: number }> {
  const file = writeTinyModel(tmp.dir, `bn-${mode ?? 'default'}`, model);
  const ex = await Explainer.load(file, { backend: 'onnxruntime' });
  try {
    assert.ok(ex.graph.nodes.some((n) => n.opType === 'BatchNormalization'), 'the BatchNormalization is not folded');
    const e = await ex.explain({ dims: [1, C, 2, 2], dtype: 'float32', data: Float32Array.from(x) } as never, {
      target: 0,
      rules: parseRulesConfig({ composite: 'epsilon', ...(mode ? { batchNorm: mode } : {}) }),
    });
    return { rel: Array.from(e.relevance.data as Float32Array), target: 0 };
  } finally {
    await ex.dispose();
  }
}

test('an unfolded BatchNormalization passes relevance unchanged by default (spec section 3)', async () => {
  const { rel, target } = await explain();
  const want = reference(target, 'pass');
  assert.ok(maxRelErr(rel, want) < 1e-5, `got [${rel}] want [${want}]`);
});

test('batchNorm: affine — the shift absorbs its share, R_x = x*s/y * R_y', async () => {
  const { rel, target } = await explain('affine');
  const want = reference(target, 'affine');
  assert.ok(maxRelErr(rel, want) < 1e-5, `got [${rel}] want [${want}]`);
  // the two modes differ wherever the shift is not zero
  const pass = reference(target, 'pass');
  assert.ok(maxRelErr(pass, want) > 1e-2);
});

test('batchNorm accepts only pass or affine', () => {
  assert.throws(() => parseRulesConfig({ batchNorm: 'fold' }, 'cfg'), (e: Error) => e instanceof ConfigError && /'batchNorm' must be one of "pass", "affine"/.test(e.message));
});
