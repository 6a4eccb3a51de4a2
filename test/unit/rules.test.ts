// Acceptance 2: the rules against hand-computed values, on tiny ONNX models built here and run
// through the Explainer (import, canonisation, LRP compiler, onnxruntime backend).
// The expected values are computed in float64 straight from the formulas of lrp-spec.md section 2.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { type RuleParams } from '../../src/engine/config';
import { A, Tensor, f32, i64 } from '../../src/engine/graph/graph';
import { Explanation } from '../../src/engine/types';
import { TinyModel, floatInput, makeTmpDir, node, rng, assertClose, explainTiny as explainTinyIn, relOf, sumOf } from '../helpers';

let tmp: { dir: string; cleanup: () => void };
before(() => {
  tmp = makeTmpDir('lrp-lens-rules-');
});
after(() => tmp?.cleanup());

const explainTiny = (m: TinyModel, x: Tensor, rules: unknown, target?: number): Promise<Explanation> => explainTinyIn(tmp.dir, m, x, rules, target);
const rel = relOf;
const sum = sumOf;

function layerRule(e: Explanation, name: string): string {
  const l = e.layers.find((x) => x.name === name);
  assert.ok(l, `no layer '${name}' in the explanation (layers: ${e.layers.map((x) => x.name).join(', ')})`);
  return l.rule;
}

// ---------------- float64 reference (spec section 2) ----------------

type Vec = number[];
/** W[j][k]: weight from input j to output k (K x N). */
type Mat = number[][];

interface RefRule extends RuleParams {
  rule: 'epsilon' | 'z' | 'zplus' | 'alpha-beta' | 'gamma' | 'zbox' | 'flat' | 'wsquare';
}

const pos = (v: number): number => (v > 0 ? v : 0);
const neg = (v: number): number => (v < 0 ? v : 0);
/** stab(d) = d + eps * s(d), s = +1 for d >= 0. (The spec takes the sign of the unmodified z; the
 * two differ only where a modified denominator and z have opposite signs, by eps, far below the
 * tolerances used here.) */
const stab = (d: number, eps: number): number => d + eps * (d >= 0 ? 1 : -1);

function denseForward(x: Vec, W: Mat, b: Vec): Vec {
  return b.map((bk, k) => x.reduce((acc, xj, j) => acc + xj * W[j][k], bk));
}

/** R_j for a linear node z = x W + b with output relevance R, per the spec's table. */
function lrpDense(x: Vec, W: Mat, b: Vec, R: Vec, r: RefRule): Vec {
  const K = x.length;
  const z = denseForward(x, W, b);
  const bias = r.zeroBias ? b.map(() => 0) : b;
  const eps = r.stabilizer ?? 1e-6;
  const out = new Array<number>(K).fill(0);
  const group = (
    coef: number,
    num: (j: number, k: number) => number,
    den0: (k: number) => number,
    e: number,
    mask: (k: number) => boolean = () => true,
  ): void => {
    for (let k = 0; k < R.length; k++) {
      if (!mask(k)) continue;
      let D = den0(k);
      for (let j = 0; j < K; j++) D += num(j, k);
      const s = (coef * R[k]) / stab(D, e);
      for (let j = 0; j < K; j++) out[j] += num(j, k) * s;
    }
  };
  switch (r.rule) {
    case 'epsilon':
      group(1, (j, k) => x[j] * W[j][k], (k) => bias[k], r.epsilon ?? 1e-6);
      break;
    case 'z':
      group(1, (j, k) => x[j] * W[j][k], (k) => bias[k], 0);
      break;
    case 'zplus':
      group(1, (j, k) => pos(x[j]) * pos(W[j][k]) + neg(x[j]) * neg(W[j][k]), (k) => pos(bias[k]), eps);
      break;
    case 'alpha-beta': {
      const alpha = r.alpha ?? 2;
      const beta = r.beta ?? 1;
      group(alpha, (j, k) => pos(x[j]) * pos(W[j][k]) + neg(x[j]) * neg(W[j][k]), (k) => pos(bias[k]), eps);
      group(-beta, (j, k) => pos(x[j]) * neg(W[j][k]) + neg(x[j]) * pos(W[j][k]), (k) => neg(bias[k]), eps);
      break;
    }
    case 'gamma': {
      const g = r.gamma ?? 0.25;
      const u = (w: number): number => w + g * pos(w);
      const v = (w: number): number => w + g * neg(w);
      group(1, (j, k) => pos(x[j]) * u(W[j][k]) + neg(x[j]) * v(W[j][k]), (k) => bias[k] + g * pos(bias[k]), eps, (k) => z[k] > 0);
      group(1, (j, k) => pos(x[j]) * v(W[j][k]) + neg(x[j]) * u(W[j][k]), (k) => bias[k] + g * neg(bias[k]), eps, (k) => z[k] < 0);
      break;
    }
    case 'zbox': {
      const lo = (j: number): number => (r.low!.length === 1 ? r.low![0] : r.low![j]);
      const hi = (j: number): number => (r.high!.length === 1 ? r.high![0] : r.high![j]);
      group(1, (j, k) => x[j] * W[j][k] - lo(j) * pos(W[j][k]) - hi(j) * neg(W[j][k]), () => 0, eps);
      break;
    }
    case 'flat':
      group(1, () => 1, () => 0, eps);
      break;
    case 'wsquare':
      group(1, (j, k) => W[j][k] * W[j][k], (k) => bias[k] * bias[k], eps);
      break;
  }
  return out;
}

// ---------------- random parameters (float32-exact) ----------------

function uniform(rand: () => number, n: number, lo: number, hi: number): number[] {
  return Array.from({ length: n }, () => Math.fround(lo + (hi - lo) * rand()));
}

function randomMat(rand: () => number, K: number, N: number, scale: number): Mat {
  return Array.from({ length: K }, () => uniform(rand, N, -scale, scale));
}

/** Row-major [N, K] data of W^T (ONNX Gemm with transB = 1). */
function transposedData(W: Mat): number[] {
  const K = W.length;
  const N = W[0].length;
  const out: number[] = [];
  for (let k = 0; k < N; k++) for (let j = 0; j < K; j++) out.push(W[j][k]);
  return out;
}

// ---------------- Bach et al.'s alpha-beta example ----------------

describe("Bach et al.'s alpha-beta example (W = (1, -1), b = -1, x = (1, 1))", () => {
  const model: TinyModel = {
    input: floatInput('input', [1, 2]),
    output: floatInput('logits', [1, 1]),
    nodes: [node('fc', 'Gemm', ['input', 'W', 'b'], ['logits'])],
    initializers: { W: f32([2, 1], [1, -1]), b: f32([1], [-1]) },
  };
  const x = f32([1, 2], [1, 1]);

  it('the output z = 1 - 1 - 1 = -1 is the relevance under init logit', async () => {
    const e = await explainTiny(model, x, { composite: 'epsilon' }, 0);
    assert.ok(Math.abs(e.logit - -1) < 1e-6, `logit ${e.logit}`);
    assert.equal(e.target, 0);
  });

  it('alpha1-beta0 (composite) gives (-1, 0)', async () => {
    const e = await explainTiny(model, x, { composite: 'alpha1-beta0' }, 0);
    assertClose(rel(e), [-1, 0], 1e-5, 'alpha1-beta0');
    assert.match(layerRule(e, 'fc'), /^alpha-beta\(1,0\)/);
  });

  it('alpha1-beta0 (override) gives (-1, 0)', async () => {
    const e = await explainTiny(model, x, { composite: 'epsilon', overrides: [{ opType: 'Gemm', rule: 'alpha-beta', alpha: 1, beta: 0 }] }, 0);
    assertClose(rel(e), [-1, 0], 1e-5, 'alpha1-beta0');
  });

  it('alpha2-beta1 (override) gives (-2, 0.5)', async () => {
    const e = await explainTiny(model, x, { composite: 'epsilon', overrides: [{ opType: 'Gemm', rule: 'alpha-beta', alpha: 2, beta: 1 }] }, 0);
    assertClose(rel(e), [-2, 0.5], 1e-5, 'alpha2-beta1');
    assert.match(layerRule(e, 'fc'), /^alpha-beta\(2,1\)/);
  });

  it('alpha-beta without parameters defaults to alpha 2, beta 1', async () => {
    const e = await explainTiny(model, x, { overrides: [{ layer: 'fc', rule: 'alpha-beta' }] }, 0);
    assertClose(rel(e), [-2, 0.5], 1e-5, 'alpha-beta default');
  });

  it('an override with only alpha: 2 implies beta 1', async () => {
    const e = await explainTiny(model, x, { overrides: [{ layer: 'fc', rule: 'alpha-beta', alpha: 2 }] }, 0);
    assertClose(rel(e), [-2, 0.5], 1e-5, 'alpha 2');
  });

  it("init one-hot starts from R = 1: (1, 0) and (2, -0.5)", async () => {
    const e10 = await explainTiny(model, x, { composite: 'alpha1-beta0', init: 'one-hot' }, 0);
    assertClose(rel(e10), [1, 0], 1e-5, 'alpha1-beta0 one-hot');
    const e21 = await explainTiny(model, x, { init: 'one-hot', overrides: [{ opType: 'Gemm', rule: 'alpha-beta', alpha: 2, beta: 1 }] }, 0);
    assertClose(rel(e21), [2, -0.5], 1e-5, 'alpha2-beta1 one-hot');
  });
});

describe('LRP-0 (epsilon 0) where a pre-activation is exactly 0', () => {
  // x = (1, 1); hidden z = (3, 0, 1) (the middle unit sums to exactly 0); logit = 3 + 0 + 1 = 4
  const model: TinyModel = {
    input: floatInput('input', [1, 2]),
    output: floatInput('logits', [1, 1]),
    nodes: [node('fc1', 'Gemm', ['input', 'W1'], ['h']), node('relu', 'Relu', ['h'], ['a']), node('fc2', 'Gemm', ['a', 'W2'], ['logits'])],
    initializers: { W1: f32([2, 3], [1, 1, 2, 2, -1, -1]), W2: f32([3, 1], [1, 1, 1]) },
  };
  const x = f32([1, 2], [1, 1]);

  it('the unit passes no relevance (not 0/0 = NaN) and the rest is exact: R = (1 + 2, 2 - 1)', async () => {
    for (const rules of [{ composite: 'epsilon', epsilon: 0 }, { overrides: [{ opType: 'Gemm', rule: 'z' }] }]) {
      const e = await explainTiny(model, x, rules, 0);
      assert.ok(Math.abs(e.logit - 4) < 1e-6, `logit ${e.logit}`);
      assertClose(rel(e), [3, 1], 1e-6, JSON.stringify(rules));
      for (const l of e.layers) assert.ok(Number.isFinite(l.relevanceSum), `${l.name}: ${l.relevanceSum}`);
    }
  });
});

// ---------------- every rule on a two-layer net ----------------

describe('each rule on a two-layer net (Gemm-ReLU-Gemm) against an explicit float64 computation', () => {
  const K = 6; // inputs
  const H = 5; // hidden
  const C = 3; // classes
  const rand = rng(7); // 3 of 5 hidden units active; the largest logit in magnitude is negative
  const W1 = randomMat(rand, K, H, 1);
  const b1 = uniform(rand, H, -0.5, 0.5);
  const W2 = randomMat(rand, H, C, 1);
  const b2 = uniform(rand, C, -0.5, 0.5);
  const xs = uniform(rand, K, -2, 2);
  // fc1 stored transposed (transB = 1, as PyTorch exports), fc2 plain.
  const model: TinyModel = {
    input: floatInput('input', [1, K]),
    output: floatInput('logits', [1, C]),
    nodes: [
      node('fc1', 'Gemm', ['input', 'W1', 'b1'], ['h'], { transB: A.int(1) }),
      node('relu', 'Relu', ['h'], ['a']),
      node('fc2', 'Gemm', ['a', 'W2', 'b2'], ['logits']),
    ],
    initializers: { W1: f32([H, K], transposedData(W1)), b1: f32([H], b1), W2: f32([H, C], W2.flat()), b2: f32([C], b2) },
  };
  const x = f32([1, K], xs);
  const h = denseForward(xs, W1, b1);
  const a = h.map(pos);
  const z = denseForward(a, W2, b2);
  // explain the class whose logit is largest in magnitude (a clear, non-zero starting relevance)
  const target = z.map(Math.abs).indexOf(Math.max(...z.map(Math.abs)));

  function expected(r1: RefRule, r2: RefRule, init: 'logit' | 'one-hot' = 'logit'): Vec {
    const R2 = z.map((zk, k) => (k === target ? (init === 'logit' ? zk : 1) : 0));
    const R1 = lrpDense(a, W2, b2, R2, r2);
    return lrpDense(xs, W1, b1, R1, r1);
  }

  it('the test net is non-degenerate (several hidden units active and inactive)', async () => {
    const active = a.filter((v) => v > 0).length;
    assert.ok(active >= 2 && active < H, `active hidden units: ${active} of ${H}`);
    assert.ok(Math.abs(z[target]) > 0.1, `target logit ${z[target]}`);
    const e = await explainTiny(model, x, { composite: 'epsilon' }, target);
    assertClose(e.logits, z, 1e-5, 'logits');
    assert.ok(Math.abs(e.logit - z[target]) < 1e-5);
  });

  const cases: { name: string; rule: RefRule; params?: Record<string, unknown> }[] = [
    { name: 'epsilon (default 1e-6)', rule: { rule: 'epsilon' } },
    { name: 'epsilon 0.25', rule: { rule: 'epsilon', epsilon: 0.25 }, params: { epsilon: 0.25 } },
    { name: 'z (LRP-0)', rule: { rule: 'z' } },
    { name: 'zplus', rule: { rule: 'zplus' } },
    { name: 'alpha-beta(2,1)', rule: { rule: 'alpha-beta', alpha: 2, beta: 1 }, params: { alpha: 2, beta: 1 } },
    { name: 'alpha-beta(1,0)', rule: { rule: 'alpha-beta', alpha: 1, beta: 0 }, params: { alpha: 1, beta: 0 } },
    { name: 'alpha-beta(3,2)', rule: { rule: 'alpha-beta', alpha: 3, beta: 2 }, params: { alpha: 3, beta: 2 } },
    { name: 'gamma (default 0.25)', rule: { rule: 'gamma' } },
    { name: 'gamma 1.5', rule: { rule: 'gamma', gamma: 1.5 }, params: { gamma: 1.5 } },
    { name: 'flat', rule: { rule: 'flat' } },
    { name: 'wsquare', rule: { rule: 'wsquare' } },
  ];

  for (const c of cases) {
    it(`${c.name} on both layers`, async () => {
      const e = await explainTiny(
        model,
        x,
        { composite: 'epsilon', overrides: [{ opType: 'Gemm', rule: c.rule.rule, ...(c.params ?? {}) }] },
        target,
      );
      assertClose(rel(e), expected(c.rule, c.rule), 1e-4, c.name);
    });
  }

  for (const c of cases.filter((k) => ['epsilon', 'zplus', 'alpha-beta', 'gamma', 'wsquare'].includes(k.rule.rule))) {
    it(`${c.name} with zeroBias: biases left out of the rule only`, async () => {
      const e = await explainTiny(
        model,
        x,
        { composite: 'epsilon', zeroBias: true, overrides: [{ opType: 'Gemm', rule: c.rule.rule, ...(c.params ?? {}) }] },
        target,
      );
      assertClose(e.logits, z, 1e-5, 'logits (forward keeps its biases)');
      const r = { ...c.rule, zeroBias: true };
      assertClose(rel(e), expected(r, r), 1e-4, `${c.name} zeroBias`);
    });
  }

  it('zbox on the first layer (per-input bounds), epsilon on the second', async () => {
    const low = xs.map((v) => Math.fround(Math.min(v, 0) - 1));
    const high = xs.map((v) => Math.fround(Math.max(v, 0) + 1.5));
    const e = await explainTiny(
      model,
      x,
      { composite: 'epsilon', overrides: [{ layer: 'fc1', rule: 'zbox', low, high }] },
      target,
    );
    assert.equal(layerRule(e, 'fc1'), 'zbox');
    assertClose(rel(e), expected({ rule: 'zbox', low, high }, { rule: 'epsilon' }), 1e-4, 'zbox');
  });

  it('zbox with one bound for every input, from inputBounds', async () => {
    const e = await explainTiny(
      model,
      x,
      { composite: 'epsilon', inputBounds: { low: [-2], high: [2] }, overrides: [{ layer: 'fc1', rule: 'zbox' }] },
      target,
    );
    assertClose(rel(e), expected({ rule: 'zbox', low: [-2], high: [2] }, { rule: 'epsilon' }), 1e-4, 'zbox inputBounds');
  });

  it('different rules per layer: flat first, alpha-beta(2,1) second, init one-hot', async () => {
    const e = await explainTiny(
      model,
      x,
      {
        composite: 'epsilon',
        init: 'one-hot',
        overrides: [
          { layer: 'fc1', rule: 'flat' },
          { layer: 'fc2', rule: 'alpha-beta', alpha: 2, beta: 1 },
        ],
      },
      target,
    );
    assertClose(rel(e), expected({ rule: 'flat' }, { rule: 'alpha-beta', alpha: 2, beta: 1 }, 'one-hot'), 1e-4, 'flat + ab21');
  });

  it('Gemm alpha/beta attributes scale the weight and bias', async () => {
    const scaled: TinyModel = {
      ...model,
      nodes: [
        model.nodes[0],
        model.nodes[1],
        node('fc2', 'Gemm', ['a', 'W2h', 'b2d'], ['logits'], { alpha: A.float(2), beta: A.float(0.5) }),
      ],
      initializers: {
        ...model.initializers,
        W2h: f32([H, C], W2.flat().map((v) => v / 2)),
        b2d: f32([C], b2.map((v) => v * 2)),
      },
    };
    for (const rule of ['epsilon', 'alpha-beta', 'gamma'] as const) {
      const e = await explainTiny(scaled, x, { overrides: [{ opType: 'Gemm', rule }] }, target);
      assertClose(rel(e), expected({ rule }, { rule }), 1e-4, `${rule} with Gemm alpha 2, beta 0.5`);
    }
  });

  it('MatMul with a constant plus Add of a bias behaves as a Gemm (bias folded)', async () => {
    const mm: TinyModel = {
      ...model,
      nodes: [
        model.nodes[0],
        model.nodes[1],
        node('fc2', 'MatMul', ['a', 'W2'], ['m']),
        node('fc2_bias', 'Add', ['m', 'b2'], ['logits']),
      ],
    };
    for (const rule of ['epsilon', 'zplus', 'alpha-beta'] as const) {
      const e = await explainTiny(mm, x, { overrides: [{ opType: 'Gemm', rule }] }, target);
      assertClose(rel(e), expected({ rule }, { rule }), 1e-4, `${rule} on MatMul + Add`);
    }
  });
});

// ---------------- conservation ----------------

/** Conv(2->4, 3x3, pad 1)-ReLU-MaxPool 2-Conv(4->4, 3x3, pad 1)-ReLU-Flatten-Gemm(64->3), input 1x2x8x8. */
function convNet(seed: number, withBias: boolean): { model: TinyModel; x: Tensor } {
  const rand = rng(seed);
  const w1 = uniform(rand, 4 * 2 * 9, -0.6, 0.6);
  const w2 = uniform(rand, 4 * 4 * 9, -0.3, 0.3);
  const w3 = uniform(rand, 3 * 64, -0.3, 0.3);
  // negative biases: an active unit's bias-free pre-activation z - b exceeds |b|, never near 0
  const b1 = uniform(rand, 4, -0.3, -0.05);
  const b2 = uniform(rand, 4, -0.3, -0.05);
  const b3 = uniform(rand, 3, -0.2, 0.2);
  const conv = (name: string, inp: string, out: string, w: string, b: string): ReturnType<typeof node> =>
    node(name, 'Conv', withBias ? [inp, w, b] : [inp, w], [out], { kernel_shape: A.ints([3, 3]), pads: A.ints([1, 1, 1, 1]) });
  const model: TinyModel = {
    input: floatInput('input', [1, 2, 8, 8]),
    output: floatInput('logits', [1, 3]),
    nodes: [
      conv('conv1', 'input', 'c1', 'w1', 'b1'),
      node('relu1', 'Relu', ['c1'], ['r1']),
      node('pool1', 'MaxPool', ['r1'], ['p1'], { kernel_shape: A.ints([2, 2]), strides: A.ints([2, 2]) }),
      conv('conv2', 'p1', 'c2', 'w2', 'b2'),
      node('relu2', 'Relu', ['c2'], ['r2']),
      node('flatten', 'Flatten', ['r2'], ['f'], { axis: A.int(1) }),
      node('fc', 'Gemm', withBias ? ['f', 'w3', 'b3'] : ['f', 'w3'], ['logits'], { transB: A.int(1) }),
    ],
    initializers: {
      w1: f32([4, 2, 3, 3], w1),
      w2: f32([4, 4, 3, 3], w2),
      w3: f32([3, 64], w3),
      ...(withBias ? { b1: f32([4], b1), b2: f32([4], b2), b3: f32([3], b3) } : {}),
    },
  };
  return { model, x: f32([1, 2, 8, 8], uniform(rand, 128, -2, 2)) };
}

describe('conservation with epsilon 1e-9', () => {
  for (const variant of [
    { name: 'a bias-free conv net', withBias: false, zeroBias: false },
    { name: 'a conv net with biases under zeroBias', withBias: true, zeroBias: true },
  ]) {
    it(`${variant.name}: the input relevance sums to the logit (1e-5 relative), at every layer`, async () => {
      const { model, x } = convNet(7, variant.withBias);
      const e = await explainTiny(model, x, { composite: 'epsilon', epsilon: 1e-9, zeroBias: variant.zeroBias });
      assert.ok(Math.abs(e.logit) > 0.05, `degenerate test net: logit ${e.logit}`);
      const s = sum(e.relevance.data as Float32Array);
      assert.ok(
        Math.abs(s - e.logit) <= 1e-5 * Math.abs(e.logit),
        `sum of input relevance ${s} vs logit ${e.logit} (relative error ${(Math.abs(s - e.logit) / Math.abs(e.logit)).toExponential(2)})`,
      );
      assert.ok(Math.abs(e.relevanceSum - e.logit) <= 1e-5 * Math.abs(e.logit), `relevanceSum ${e.relevanceSum}`);
      for (const name of ['fc', 'conv2', 'pool1', 'conv1']) {
        const l = e.layers.find((k) => k.name === name);
        assert.ok(l, `layer ${name} reported`);
        assert.ok(
          Math.abs(l.relevanceSum - e.logit) <= 1e-4 * Math.abs(e.logit),
          `layer ${name}: relevance sum ${l.relevanceSum} vs logit ${e.logit}`,
        );
        assert.ok(Math.abs(l.positiveSum + l.negativeSum - l.relevanceSum) <= 1e-5 * Math.abs(l.positiveSum - l.negativeSum) + 1e-6);
      }
    });
  }

  it('with biases and without zeroBias, relevance leaks into the biases (the sum differs)', async () => {
    const { model, x } = convNet(7, true);
    const e = await explainTiny(model, x, { composite: 'epsilon', epsilon: 1e-9 });
    const s = sum(e.relevance.data as Float32Array);
    assert.ok(Math.abs(s - e.logit) > 1e-3 * Math.abs(e.logit), `expected a leak: sum ${s}, logit ${e.logit}`);
  });
});

// ---------------- MaxPool winner-take-all ----------------

describe('MaxPool winner-take-all', () => {
  it('2x2 stride 2 on two channels: each window relevance lands on its maximum; exact ties go to the first in row-major order', async () => {
    // channel 0: windows with a clear max, a tie on one row, a tie on one column, all equal
    // channel 1: negative values, a tie between diagonal corners
    const ch0 = [
      [1, 4, 5, 5],
      [2, 3, 1, 0],
      [-1, 7, 2, 2],
      [7, 0, 2, 2],
    ];
    const ch1 = [
      [-3, -1, 0.5, 0],
      [-2, -5, 0, 0.5],
      [-4, -4, 9, 1],
      [-4, -4, 3, 9],
    ];
    const xs = [...ch0.flat(), ...ch1.flat()];
    const w = [0.5, -1, 2, 1.5, 1, -0.25, 0.75, 2];
    const model: TinyModel = {
      input: floatInput('input', [1, 2, 4, 4]),
      output: floatInput('logits', [1, 1]),
      nodes: [
        node('pool', 'MaxPool', ['input'], ['p'], { kernel_shape: A.ints([2, 2]), strides: A.ints([2, 2]) }),
        node('flatten', 'Flatten', ['p'], ['f'], { axis: A.int(1) }),
        node('fc', 'Gemm', ['f', 'w'], ['logits'], { transB: A.int(1) }),
      ],
      initializers: { w: f32([1, 8], w) },
    };
    const e = await explainTiny(model, f32([1, 2, 4, 4], xs), { composite: 'epsilon' }, 0);
    // window maxima (pool outputs) and their winners, row-major per channel
    const winners: [number, number, number][] = [
      [0, 0, 1], // ch0 window (0,0): 1 4 / 2 3 -> 4 at (0,1)
      [0, 0, 2], // ch0 window (0,1): 5 5 / 1 0 -> tie, first: (0,2)
      [0, 2, 1], // ch0 window (1,0): -1 7 / 7 0 -> tie, first: (2,1)
      [0, 2, 2], // ch0 window (1,1): all 2 -> first: (2,2)
      [1, 0, 1], // ch1 window (0,0): -3 -1 / -2 -5 -> -1 at (0,1)
      [1, 0, 2], // ch1 window (0,1): .5 0 / 0 .5 -> tie, first: (0,2)
      [1, 2, 0], // ch1 window (1,0): all -4 -> first: (2,0)
      [1, 2, 2], // ch1 window (1,1): 9 1 / 3 9 -> tie, first: (2,2)
    ];
    const y = winners.map(([c, r, q]) => xs[c * 16 + r * 4 + q]);
    const logit = y.reduce((acc, v, k) => acc + v * w[k], 0);
    const want = new Array<number>(32).fill(0);
    // epsilon on the Gemm: R_k = y_k w_k / z * z = y_k w_k
    winners.forEach(([c, r, q], k) => (want[c * 16 + r * 4 + q] += (y[k] * w[k] * logit) / stab(logit, 1e-6)));
    assert.ok(Math.abs(e.logit - logit) < 1e-5);
    assertClose(rel(e), want, 1e-5, 'winner-take-all');
    const got = rel(e);
    for (let i = 0; i < 32; i++) if (want[i] === 0) assert.equal(got[i], 0, `element ${i} is not a winner and must get exactly 0`);
    assert.equal(layerRule(e, 'pool'), 'winner-take-all');
  });

  it('overlapping windows (3x3 input, 2x2 kernel, stride 1): a position winning several windows collects all their relevance', async () => {
    const xs = [1, 2, 0, 3, 8, 1, 0, 2, 5];
    const w = [1, -0.5, 2, 0.25];
    const model: TinyModel = {
      input: floatInput('input', [1, 1, 3, 3]),
      output: floatInput('logits', [1, 1]),
      nodes: [
        node('pool', 'MaxPool', ['input'], ['p'], { kernel_shape: A.ints([2, 2]), strides: A.ints([1, 1]) }),
        node('flatten', 'Flatten', ['p'], ['f'], { axis: A.int(1) }),
        node('fc', 'Gemm', ['f', 'w'], ['logits'], { transB: A.int(1) }),
      ],
      initializers: { w: f32([1, 4], w) },
    };
    const e = await explainTiny(model, f32([1, 1, 3, 3], xs), { composite: 'epsilon' }, 0);
    // every window contains the centre 8
    const logit = 8 * sum(w);
    const want = new Array<number>(9).fill(0);
    want[4] = logit / stab(logit, 1e-6) * logit;
    assertClose(rel(e), want, 1e-5, 'overlapping winner-take-all');
  });

  it('GlobalMaxPool: each channel relevance goes to its first maximum', async () => {
    const xs = [0, 3, 1, 3, 2, -1, /* ch1 */ -2, -1, -1, -3, -5, -1];
    const model: TinyModel = {
      input: floatInput('input', [1, 2, 2, 3]),
      output: floatInput('logits', [1, 1]),
      nodes: [
        node('gpool', 'GlobalMaxPool', ['input'], ['p']),
        node('flatten', 'Flatten', ['p'], ['f'], { axis: A.int(1) }),
        node('fc', 'Gemm', ['f', 'w'], ['logits'], { transB: A.int(1) }),
      ],
      initializers: { w: f32([1, 2], [1, 2]) },
    };
    const e = await explainTiny(model, f32([1, 2, 2, 3], xs), { composite: 'epsilon' }, 0);
    const logit = 3 * 1 + -1 * 2; // = 1
    const want = new Array<number>(12).fill(0);
    want[1] = (3 * logit) / stab(logit, 1e-6);
    want[7] = (-2 * logit) / stab(logit, 1e-6);
    assertClose(rel(e), want, 1e-5, 'GlobalMaxPool');
  });
});

// ---------------- residual Add ----------------

describe('residual Add: each summand gets x_i / (x_1 + x_2) * R', () => {
  it('two slices of the input added: the split is proportional to the summands (also with signs)', async () => {
    const x1 = [1, 3, -1, 2];
    const x2 = [3, 1, 4, -0.5];
    const w = [0.5, -1, 2, 1];
    const model: TinyModel = {
      input: floatInput('input', [1, 8]),
      output: floatInput('logits', [1, 1]),
      nodes: [
        node('s1', 'Slice', ['input', 'st1', 'en1', 'ax'], ['a']),
        node('s2', 'Slice', ['input', 'st2', 'en2', 'ax'], ['b']),
        node('add', 'Add', ['a', 'b'], ['s']),
        node('fc', 'Gemm', ['s', 'w'], ['logits'], { transB: A.int(1) }),
      ],
      initializers: {
        st1: i64([1], [0]),
        en1: i64([1], [4]),
        st2: i64([1], [4]),
        en2: i64([1], [8]),
        ax: i64([1], [1]),
        w: f32([1, 4], w),
      },
    };
    const e = await explainTiny(model, f32([1, 8], [...x1, ...x2]), { composite: 'epsilon' }, 0);
    const s = x1.map((v, i) => v + x2[i]);
    const logit = s.reduce((acc, v, i) => acc + v * w[i], 0);
    const Rs = s.map((v, i) => (v * w[i] * logit) / stab(logit, 1e-6));
    const want = [...x1.map((v, i) => (v / stab(s[i], 1e-6)) * Rs[i]), ...x2.map((v, i) => (v / stab(s[i], 1e-6)) * Rs[i])];
    assertClose(rel(e), want, 1e-5, 'residual split');
    assert.equal(layerRule(e, 'add'), 'norm');
  });

  it('a skip connection y = x + f(x): bypass and branch shares, then the branch through its own rule', async () => {
    const rand = rng(99);
    const N = 4;
    const Wf = randomMat(rand, N, N, 1); // branch f(x) = x Wf (no bias)
    const Wc = randomMat(rand, N, 2, 1);
    const bc = uniform(rand, 2, -0.3, 0.3);
    const xs = uniform(rand, N, 0.2, 2);
    const model: TinyModel = {
      input: floatInput('input', [1, N]),
      output: floatInput('logits', [1, 2]),
      nodes: [
        node('branch', 'Gemm', ['input', 'Wf'], ['f']),
        node('add', 'Add', ['input', 'f'], ['s']),
        node('head', 'Gemm', ['s', 'Wc', 'bc'], ['logits']),
      ],
      initializers: { Wf: f32([N, N], Wf.flat()), Wc: f32([N, 2], Wc.flat()), bc: f32([2], bc) },
    };
    const f = denseForward(xs, Wf, new Array<number>(N).fill(0));
    const s = xs.map((v, i) => v + f[i]);
    const z = denseForward(s, Wc, bc);
    const target = z[0] >= z[1] ? 0 : 1;
    const Rz = z.map((v, k) => (k === target ? v : 0));
    const Rs = lrpDense(s, Wc, bc, Rz, { rule: 'epsilon' });
    const Rbypass = xs.map((v, i) => (v / stab(s[i], 1e-6)) * Rs[i]);
    const Rf = f.map((v, i) => (v / stab(s[i], 1e-6)) * Rs[i]);
    const Rbranch = lrpDense(xs, Wf, new Array<number>(N).fill(0), Rf, { rule: 'epsilon' });
    const want = xs.map((_, i) => Rbypass[i] + Rbranch[i]);
    const e = await explainTiny(model, f32([1, N], xs), { composite: 'epsilon' }, target);
    assertClose(rel(e), want, 1e-4, 'skip connection');
  });
});

// ---------------- overrides and composites ----------------

describe('rule assignment: overrides and composites', () => {
  const rand = rng(4242);
  // MLP: fc1 (first) - ReLU - fc2 - ReLU - head
  const mlp: TinyModel = {
    input: floatInput('input', [1, 6]),
    output: floatInput('logits', [1, 3]),
    nodes: [
      node('fc1', 'Gemm', ['input', 'W1', 'b1'], ['h1']),
      node('relu1', 'Relu', ['h1'], ['a1']),
      node('fc2', 'Gemm', ['a1', 'W2', 'b2'], ['h2']),
      node('relu2', 'Relu', ['h2'], ['a2']),
      node('head', 'Gemm', ['a2', 'W3', 'b3'], ['logits']),
    ],
    initializers: {
      W1: f32([6, 5], uniform(rand, 30, -1, 1)),
      b1: f32([5], uniform(rand, 5, 0, 0.5)),
      W2: f32([5, 4], uniform(rand, 20, -1, 1)),
      b2: f32([4], uniform(rand, 4, 0, 0.5)),
      W3: f32([4, 3], uniform(rand, 12, -1, 1)),
      b3: f32([3], uniform(rand, 3, -0.2, 0.2)),
    },
  };
  const xm = f32([1, 6], uniform(rand, 6, -1, 1));
  const rulesOf = (e: Explanation): Record<string, string> =>
    Object.fromEntries(e.layers.filter((l) => ['Gemm', 'Conv', 'MatMul'].includes(l.opType)).map((l) => [l.name, l.rule]));
  const kind = (label: string): string => label.replace(/\(.*$/, '');

  async function mlpRules(rules: unknown): Promise<Record<string, string>> {
    const e = await explainTiny(mlp, xm, rules);
    return Object.fromEntries(Object.entries(rulesOf(e)).map(([k, v]) => [k, kind(v)]));
  }

  it('layer: an exact node name', async () => {
    assert.deepEqual(await mlpRules({ composite: 'epsilon', overrides: [{ layer: 'fc2', rule: 'zplus' }] }), {
      fc1: 'epsilon',
      fc2: 'zplus',
      head: 'epsilon',
    });
  });

  it('layer: an exact name is not a substring or pattern match', async () => {
    assert.deepEqual(await mlpRules({ composite: 'epsilon', overrides: [{ layer: 'fc', rule: 'zplus' }] }), {
      fc1: 'epsilon',
      fc2: 'epsilon',
      head: 'epsilon',
    });
  });

  it('layer: /regex/', async () => {
    assert.deepEqual(await mlpRules({ composite: 'epsilon', overrides: [{ layer: '/^fc\\d$/', rule: 'wsquare' }] }), {
      fc1: 'wsquare',
      fc2: 'wsquare',
      head: 'epsilon',
    });
  });

  it('opType', async () => {
    assert.deepEqual(await mlpRules({ composite: 'epsilon', overrides: [{ opType: 'Gemm', rule: 'flat' }] }), {
      fc1: 'flat',
      fc2: 'flat',
      head: 'flat',
    });
    assert.deepEqual(await mlpRules({ composite: 'epsilon', overrides: [{ opType: 'Conv', rule: 'flat' }] }), {
      fc1: 'epsilon',
      fc2: 'epsilon',
      head: 'epsilon',
    });
  });

  it('layer and opType together must both match', async () => {
    assert.deepEqual(
      await mlpRules({
        composite: 'epsilon',
        overrides: [
          { layer: 'fc1', opType: 'Conv', rule: 'flat' },
          { layer: 'fc2', opType: 'Gemm', rule: 'zplus' },
        ],
      }),
      { fc1: 'epsilon', fc2: 'zplus', head: 'epsilon' },
    );
  });

  it('the first matching override wins', async () => {
    assert.deepEqual(
      await mlpRules({
        composite: 'epsilon',
        overrides: [
          { layer: 'fc1', rule: 'flat' },
          { layer: '/fc/', rule: 'zplus' },
          { opType: 'Gemm', rule: 'gamma' },
          { layer: 'head', rule: 'wsquare' },
        ],
      }),
      { fc1: 'flat', fc2: 'zplus', head: 'gamma' },
    );
  });

  it("an override's own parameters override the top-level ones", async () => {
    const e = await explainTiny(mlp, xm, {
      composite: 'epsilon',
      epsilon: 0.01,
      gamma: 0.5,
      overrides: [
        { layer: 'head', rule: 'epsilon', epsilon: 0.25 },
        { layer: 'fc2', rule: 'gamma', gamma: 2 },
      ],
    });
    const r = rulesOf(e);
    assert.equal(r.head, 'epsilon(0.25)');
    assert.equal(r.fc2, 'gamma(2)');
    assert.equal(r.fc1, 'epsilon(0.01)');
  });

  it('an override beats the composite, including its first-layer rule', async () => {
    assert.deepEqual(await mlpRules({ composite: 'epsilon-plus-flat', overrides: [{ layer: 'fc1', rule: 'zplus' }] }), {
      fc1: 'zplus',
      fc2: 'epsilon',
      head: 'epsilon',
    });
  });

  it('composites on an MLP: a first Gemm gets flat, but keeps the dense rule under epsilon-gamma-box', async () => {
    assert.deepEqual(await mlpRules({ composite: 'epsilon-plus-flat' }), { fc1: 'flat', fc2: 'epsilon', head: 'epsilon' });
    assert.deepEqual(await mlpRules({ composite: 'epsilon-alpha2-beta1-flat' }), {
      fc1: 'flat',
      fc2: 'epsilon',
      head: 'epsilon',
    });
    assert.deepEqual(await mlpRules({ composite: 'epsilon-gamma-box' }), { fc1: 'epsilon', fc2: 'epsilon', head: 'epsilon' });
    assert.deepEqual(await mlpRules({ composite: 'alpha1-beta0' }), {
      fc1: 'alpha-beta',
      fc2: 'alpha-beta',
      head: 'alpha-beta',
    });
    assert.deepEqual(await mlpRules({ composite: 'gamma' }), { fc1: 'gamma', fc2: 'gamma', head: 'gamma' });
  });

  // Conv net: input - Pad - conv1a / conv1b (both first, reached through the Pad) - Concat - ReLU -
  // MaxPool - conv2 - ReLU - Flatten - fc - ReLU - head
  const crand = rng(777);
  const convModel: TinyModel = {
    input: floatInput('input', [1, 3, 8, 8]),
    output: floatInput('logits', [1, 4]),
    nodes: [
      node('pad', 'Pad', ['input', 'pads'], ['xp']),
      node('conv1a', 'Conv', ['xp', 'wa', 'ba'], ['ca'], { kernel_shape: A.ints([3, 3]) }),
      node('conv1b', 'Conv', ['xp', 'wb', 'bb'], ['cb'], { kernel_shape: A.ints([3, 3]) }),
      node('cat', 'Concat', ['ca', 'cb'], ['c1'], { axis: A.int(1) }),
      node('relu1', 'Relu', ['c1'], ['r1']),
      node('pool', 'MaxPool', ['r1'], ['p1'], { kernel_shape: A.ints([2, 2]), strides: A.ints([2, 2]) }),
      node('conv2', 'Conv', ['p1', 'w2', 'b2'], ['c2'], { kernel_shape: A.ints([3, 3]), pads: A.ints([1, 1, 1, 1]) }),
      node('relu2', 'Relu', ['c2'], ['r2']),
      node('flatten', 'Flatten', ['r2'], ['f'], { axis: A.int(1) }),
      node('fc', 'Gemm', ['f', 'w3', 'b3'], ['h'], { transB: A.int(1) }),
      node('relu3', 'Relu', ['h'], ['a']),
      node('head', 'Gemm', ['a', 'w4', 'b4'], ['logits'], { transB: A.int(1) }),
    ],
    initializers: {
      pads: i64([8], [0, 0, 1, 1, 0, 0, 1, 1]),
      wa: f32([2, 3, 3, 3], uniform(crand, 54, -0.5, 0.5)),
      ba: f32([2], uniform(crand, 2, 0, 0.2)),
      wb: f32([2, 3, 3, 3], uniform(crand, 54, -0.5, 0.5)),
      bb: f32([2], uniform(crand, 2, 0, 0.2)),
      w2: f32([3, 4, 3, 3], uniform(crand, 108, -0.4, 0.4)),
      b2: f32([3], uniform(crand, 3, 0, 0.2)),
      w3: f32([5, 48], uniform(crand, 240, -0.3, 0.3)),
      b3: f32([5], uniform(crand, 5, 0, 0.2)),
      w4: f32([4, 5], uniform(crand, 20, -0.5, 0.5)),
      b4: f32([4], uniform(crand, 4, -0.1, 0.1)),
    },
  };
  const xc = f32([1, 3, 8, 8], uniform(crand, 192, -2, 2));
  const bounds = { low: [-2, -2, -2], high: [2, 2, 2] };

  const composites: [string, Record<string, string>][] = [
    ['epsilon', { conv1a: 'epsilon', conv1b: 'epsilon', conv2: 'epsilon', fc: 'epsilon', head: 'epsilon' }],
    ['alpha1-beta0', { conv1a: 'alpha-beta(1,0)', conv1b: 'alpha-beta(1,0)', conv2: 'alpha-beta(1,0)', fc: 'alpha-beta(1,0)', head: 'alpha-beta(1,0)' }],
    ['gamma', { conv1a: 'gamma', conv1b: 'gamma', conv2: 'gamma', fc: 'gamma', head: 'gamma' }],
    ['epsilon-plus', { conv1a: 'zplus', conv1b: 'zplus', conv2: 'zplus', fc: 'epsilon', head: 'epsilon' }],
    ['epsilon-plus-flat', { conv1a: 'flat', conv1b: 'flat', conv2: 'zplus', fc: 'epsilon', head: 'epsilon' }],
    ['epsilon-gamma-box', { conv1a: 'zbox', conv1b: 'zbox', conv2: 'gamma', fc: 'epsilon', head: 'epsilon' }],
    ['epsilon-alpha2-beta1', { conv1a: 'alpha-beta(2,1)', conv1b: 'alpha-beta(2,1)', conv2: 'alpha-beta(2,1)', fc: 'epsilon', head: 'epsilon' }],
    ['epsilon-alpha2-beta1-flat', { conv1a: 'flat', conv1b: 'flat', conv2: 'alpha-beta(2,1)', fc: 'epsilon', head: 'epsilon' }],
  ];
  for (const [composite, want] of composites) {
    it(`composite ${composite} on a conv net with two parallel first convs behind a Pad`, async () => {
      const e = await explainTiny(convModel, xc, { composite, inputBounds: bounds });
      const got = rulesOf(e);
      const norm = (r: Record<string, string>): Record<string, string> =>
        Object.fromEntries(Object.entries(r).map(([k, v]) => [k, v.startsWith('alpha-beta') ? v : kind(v)]));
      assert.deepEqual(norm(got), want);
      assert.ok(rel(e).every(Number.isFinite), 'relevance is finite');
    });
  }
});
