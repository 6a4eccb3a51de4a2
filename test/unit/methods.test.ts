// Issue 5: the methods beside LRP (gradient, gradient x input, Grad-CAM, CAM, random) against
// hand computations and finite differences on tiny networks, and the faithfulness measures
// (localisation on the shapes fixtures' object masks, AOPC of region perturbation against random)
// on the reference fixtures. The tables printed here are the README's.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import * as path from 'node:path';
import { parseRulesConfig } from '../../src/engine/config';
import {
  DEFAULT_METHODS,
  EvaluationResult,
  aopcOf,
  defaultPatch,
  evaluateMethods,
  loadMask,
  localisation,
  patchGrid,
  perturbedShare,
  stepCounts,
} from '../../src/explain/evaluate';
import { Explainer } from '../../src/explain/explainer';
import { A, Tensor, f32 } from '../../src/engine/graph/graph';
import { inputBoundsFor } from '../../src/engine/io/image';
import { REFERENCE_DIR, TinyModel, floatInput, makeTmpDir, maxRelErr, node, readNpyFile, rng, writeTinyModel } from '../helpers';

let tmp: { dir: string; cleanup: () => void };
let counter = 0;
before(() => {
  tmp = makeTmpDir('lrp-lens-methods-');
});
after(() => tmp?.cleanup());

async function load(m: TinyModel): Promise<Explainer> {
  return Explainer.load(writeTinyModel(tmp.dir, `m${counter++}`, m), { backend: 'onnxruntime' });
}

/** Random float32-exact values in [-1, 1) (multiples of 1/64). */
function rand(r: () => number, n: number, scale = 1): number[] {
  return Array.from({ length: n }, () => (Math.round((r() * 2 - 1) * 64) / 64) * scale);
}

function assertClose(got: ArrayLike<number>, want: ArrayLike<number>, tol: number, what: string): void {
  assert.equal(got.length, want.length, `${what}: length`);
  const err = maxRelErr(got, want);
  assert.ok(
    err <= tol,
    `${what}: max relative error ${err.toExponential(3)} > ${tol}\n  got      [${Array.from(got, (v) => v.toPrecision(6)).join(', ')}]\n  expected [${Array.from(want, (v) => v.toPrecision(6)).join(', ')}]`,
  );
}

// ---------------- gradient vs finite differences ----------------

describe('gradient', () => {
  it('equals central finite differences on a conv net with LeakyRelu, a SiLU gate, MaxPool, Tanh, a residual Add, AveragePool, Gemm', async () => {
    const r = rng(11);
    const m: TinyModel = {
      input: floatInput('x', [1, 2, 6, 6]),
      output: floatInput('y', [1, 4]),
      nodes: [
        node('c1', 'Conv', ['x', 'w1', 'b1'], ['c1'], { pads: A.ints([1, 1, 1, 1]) }),
        node('r1', 'LeakyRelu', ['c1'], ['r1'], { alpha: A.float(0.1) }),
        node('s1', 'Sigmoid', ['r1']),
        node('g1', 'Mul', ['r1', 's1']),
        node('mp', 'MaxPool', ['g1'], ['mp'], { kernel_shape: A.ints([2, 2]), strides: A.ints([2, 2]) }),
        node('c2', 'Conv', ['mp', 'w2', 'b2']),
        node('t2', 'Tanh', ['c2']),
        node('a2', 'Add', ['t2', 'mp']),
        node('ap', 'AveragePool', ['a2'], ['ap'], { kernel_shape: A.ints([2, 2]) }),
        node('fl', 'Flatten', ['ap']),
        node('y', 'Gemm', ['fl', 'w3', 'b3']),
      ],
      initializers: {
        w1: f32([3, 2, 3, 3], rand(r, 54, 0.5)),
        b1: f32([3], rand(r, 3, 0.1)),
        w2: f32([3, 3, 1, 1], rand(r, 9)),
        b2: f32([3], rand(r, 3, 0.1)),
        w3: f32([12, 4], rand(r, 48)),
        b3: f32([4], rand(r, 4, 0.1)),
      },
    };
    const ex = await load(m);
    try {
      const x = f32([1, 2, 6, 6], rand(r, 72));
      for (const target of [0, 3]) {
        const a = await ex.attribute(x, { method: 'gradient', target });
        const g = a.relevance.data as Float32Array;
        const h = 1e-3;
        const fd = new Float64Array(g.length);
        for (let i = 0; i < g.length; i++) {
          const xp = f32(x.dims, x.data as Float32Array);
          const xm = f32(x.dims, x.data as Float32Array);
          (xp.data as Float32Array)[i] += h;
          (xm.data as Float32Array)[i] -= h;
          fd[i] = ((await ex.forward(xp))[target] - (await ex.forward(xm))[target]) / (2 * h);
        }
        assertClose(g, fd, 2e-3, `gradient of logit ${target}`);
      }
    } finally {
      await ex.dispose();
    }
  });
});

// ---------------- gradient x input by hand ----------------

describe('gradient-input', () => {
  it('is x * W1 (mask . W2[:, t]) on Flatten-Gemm-Relu-Gemm (hand computation)', async () => {
    const r = rng(5);
    const W1 = Array.from({ length: 4 }, () => rand(r, 3)); // [4][3]
    const b1 = rand(r, 3, 0.25);
    const W2 = Array.from({ length: 3 }, () => rand(r, 2)); // [3][2]
    const b2 = rand(r, 2, 0.25);
    const m: TinyModel = {
      input: floatInput('x', [1, 1, 2, 2]),
      output: floatInput('y', [1, 2]),
      nodes: [node('fl', 'Flatten', ['x']), node('h', 'Gemm', ['fl', 'w1', 'b1']), node('r', 'Relu', ['h']), node('y', 'Gemm', ['r', 'w2', 'b2'])],
      initializers: { w1: f32([4, 3], W1.flat()), b1: f32([3], b1), w2: f32([3, 2], W2.flat()), b2: f32([2], b2) },
    };
    const ex = await load(m);
    try {
      const xv = [0.5, -0.75, 1.25, 0.25];
      const x = f32([1, 1, 2, 2], xv);
      const hidden = [0, 1, 2].map((k) => b1[k] + xv.reduce((s, v, j) => s + v * W1[j][k], 0));
      for (const t of [0, 1]) {
        const grad = xv.map((_, j) => [0, 1, 2].reduce((s, k) => s + (hidden[k] > 0 ? W1[j][k] * W2[k][t] : 0), 0));
        const a = await ex.attribute(x, { method: 'gradient-input', target: t });
        assertClose(a.relevance.data as Float32Array, xv.map((v, j) => v * grad[j]), 1e-5, `gradient-input, target ${t}`);
        assertClose(a.map.data, xv.map((v, j) => v * grad[j]), 1e-5, 'map (one channel)');
        const g = await ex.attribute(x, { method: 'gradient', target: t });
        assertClose(g.relevance.data as Float32Array, grad, 1e-5, `gradient, target ${t}`);
      }
    } finally {
      await ex.dispose();
    }
  });
});

// ---------------- Grad-CAM and CAM by hand ----------------

/** Bilinear upsampling with pixel centres aligned, as in the engine. */
function upsample(src: number[], w: number, h: number, W: number, H: number): number[] {
  const out: number[] = [];
  for (let y = 0; y < H; y++)
    for (let x = 0; x < W; x++) {
      const fy = Math.min(Math.max(((y + 0.5) * h) / H - 0.5, 0), h - 1);
      const fx = Math.min(Math.max(((x + 0.5) * w) / W - 0.5, 0), w - 1);
      const y0 = Math.floor(fy);
      const x0 = Math.floor(fx);
      const y1 = Math.min(y0 + 1, h - 1);
      const x1 = Math.min(x0 + 1, w - 1);
      const wy = fy - y0;
      const wx = fx - x0;
      const top = src[y0 * w + x0] * (1 - wx) + src[y0 * w + x1] * wx;
      const bot = src[y1 * w + x0] * (1 - wx) + src[y1 * w + x1] * wx;
      out.push(top * (1 - wy) + bot * wy);
    }
  return out;
}

describe('gradcam and cam', () => {
  // x [1,1,6,6] -> Conv 2x3x3 stride 2 pad 1 -> [1,2,3,3] -> Relu -> GlobalAveragePool -> Flatten -> Gemm [2,3]
  const r = rng(21);
  const Wc = rand(r, 18); // [2][1][3][3]
  const bc = rand(r, 2, 0.25);
  const Wg = rand(r, 6); // [2][3]
  const bg = rand(r, 3, 0.25);
  const xv = rand(r, 36);
  const model: TinyModel = {
    input: floatInput('x', [1, 1, 6, 6]),
    output: floatInput('y', [1, 3]),
    nodes: [
      node('conv', 'Conv', ['x', 'wc', 'bc'], ['conv'], { strides: A.ints([2, 2]), pads: A.ints([1, 1, 1, 1]) }),
      node('relu', 'Relu', ['conv']),
      node('gap', 'GlobalAveragePool', ['relu']),
      node('flat', 'Flatten', ['gap']),
      node('y', 'Gemm', ['flat', 'wg', 'bg']),
    ],
    initializers: { wc: f32([2, 1, 3, 3], Wc), bc: f32([2], bc), wg: f32([2, 3], Wg), bg: f32([3], bg) },
  };
  // the feature map A = relu(conv(x)), [2][9], in float64
  const Amap: number[][] = [0, 1].map((c) => {
    const out: number[] = [];
    for (let oy = 0; oy < 3; oy++)
      for (let ox = 0; ox < 3; ox++) {
        let s = bc[c];
        for (let ky = 0; ky < 3; ky++)
          for (let kx = 0; kx < 3; kx++) {
            const iy = oy * 2 - 1 + ky;
            const ix = ox * 2 - 1 + kx;
            if (iy >= 0 && iy < 6 && ix >= 0 && ix < 6) s += xv[iy * 6 + ix] * Wc[c * 9 + ky * 3 + kx];
          }
        out.push(Math.max(s, 0));
      }
    return out;
  });
  let ex: Explainer;
  before(async () => {
    ex = await load(model);
  });
  after(async () => ex?.dispose());

  it('gradcam = upsample(ReLU(sum_c mean(dy/dA_c) A_c)) (hand computation), at the Relu after the last Conv', async () => {
    const x = f32([1, 1, 6, 6], xv);
    for (const t of [0, 1, 2]) {
      // dy_t/dA_c(i) = Wg[c][t] / 9 everywhere, so alpha_c = Wg[c][t] / 9
      const small = Array.from({ length: 9 }, (_, i) => Math.max(0, Amap[0][i] * (Wg[0 * 3 + t] / 9) + Amap[1][i] * (Wg[1 * 3 + t] / 9)));
      const want = upsample(small, 3, 3, 6, 6);
      const a = await ex.attribute(x, { method: 'gradcam', target: t });
      assert.equal(a.layer, 'relu');
      assert.equal(a.target, t);
      assertClose(a.map.data, want, 1e-5, `gradcam map, target ${t}`);
      assertClose(a.relevance.data as Float32Array, want, 1e-5, 'gradcam relevance (one channel: the map)');
    }
    // --layer picks another node: the Conv output itself (pre-ReLU)
    const b = await ex.attribute(x, { method: 'gradcam', target: 1, layer: 'conv' });
    assert.equal(b.layer, 'conv');
    await assert.rejects(ex.attribute(x, { method: 'gradcam', layer: 'nope' }), /--layer 'nope': no node or tensor/);
    await assert.rejects(ex.attribute(x, { method: 'gradcam', layer: 'y' }), /needs a spatial feature map/);
  });

  it('cam = upsample(sum_c w_ct A_c) (hand computation) on GlobalAveragePool -> Gemm', async () => {
    const x = f32([1, 1, 6, 6], xv);
    for (const t of [0, 2]) {
      const small = Array.from({ length: 9 }, (_, i) => Amap[0][i] * Wg[0 * 3 + t] + Amap[1][i] * Wg[1 * 3 + t]);
      const a = await ex.attribute(x, { method: 'cam', target: t });
      assertClose(a.map.data, upsample(small, 3, 3, 6, 6), 1e-5, `cam map, target ${t}`);
      assert.equal(a.layer, 'relu');
    }
  });

  it('random is uniform in [0, 1), seeded', async () => {
    const x = f32([1, 1, 6, 6], xv);
    const a = await ex.attribute(x, { method: 'random', seed: 3 });
    const b = await ex.attribute(x, { method: 'random', seed: 3 });
    const c = await ex.attribute(x, { method: 'random', seed: 4 });
    assert.deepEqual(Array.from(a.map.data), Array.from(b.map.data));
    assert.notDeepEqual(Array.from(a.map.data), Array.from(c.map.data));
    assert.ok(a.map.data.every((v) => v >= 0 && v < 1));
  });

  it('cam is not applicable to a network without global average pooling before one dense layer', async () => {
    const digits = path.join(REFERENCE_DIR, 'digits-cnn', 'model.onnx');
    const dx = await Explainer.load(digits, { backend: 'onnxruntime' });
    try {
      const x = readNpyFile(path.join(REFERENCE_DIR, 'digits-cnn', 'inputs', 'sample0.npy'));
      await assert.rejects(dx.attribute(x, { method: 'cam' }), (e: Error) => {
        assert.match(e.message, /digits-cnn[\\/]model\.onnx: cam is not applicable/);
        assert.match(e.message, /global average pooling followed by one dense layer/);
        assert.match(e.message, /preceded by Relu/);
        return true;
      });
    } finally {
      await dx.dispose();
    }
  });
});

// ---------------- faithfulness on the fixtures ----------------

describe('evaluation helpers', () => {
  it('AOPC, localisation and the default patch size', () => {
    assert.equal(aopcOf([3, 2, 1]), (0 + 1 + 2) / 3);
    const map = { width: 2, height: 2, data: new Float32Array([3, 1, -5, 0]) };
    // 3 of 4 positive inside a 1-pixel mask (area share 1/4): (3/4) / (1/4) = 3
    assert.equal(localisation(map, new Uint8Array([1, 0, 0, 0])), 3);
    assert.equal(localisation({ ...map, data: new Float32Array([-1, -1, -1, -1]) }, new Uint8Array([1, 0, 0, 0])), null);
    assert.equal(defaultPatch(224, 224), 14);
    assert.equal(defaultPatch(64, 64), 4);
    assert.equal(defaultPatch(28, 28), 2);
    // 25% of the patches over the steps, evenly, whatever the input size
    assert.deepEqual(stepCounts(256, 4), [16, 32, 48, 64]);
    assert.deepEqual(stepCounts(196, 50).length, 49, 'no more steps than patches to replace');
    assert.equal(stepCounts(196, 50).at(-1), 49);
    assert.deepEqual(stepCounts(10, 50, 0.01), [1], 'at least one patch');
    for (const [h, w] of [[28, 28], [64, 64], [224, 224], [299, 299], [100, 37]]) {
      const grid = patchGrid(h, w, defaultPatch(h, w));
      const order = grid.map((_, i) => i);
      const share = perturbedShare(grid, order, stepCounts(grid.length, 50).at(-1) as number, h, w);
      assert.ok(share >= 0.2 && share <= 0.3, `${w}x${h}: ${share}`);
    }
  });
});

const FIXTURE_MODELS = ['digits-cnn', 'shapes-vgg', 'shapes-resnet'];
const TABLE_METHODS = [...DEFAULT_METHODS, 'gradient', 'cam'];

describe('faithfulness on the reference fixtures', () => {
  const results = new Map<string, EvaluationResult>();
  before(async () => {
    for (const m of FIXTURE_MODELS) {
      const dir = path.join(REFERENCE_DIR, m);
      const ex = await Explainer.load(path.join(dir, 'model.onnx'), { backend: 'onnxruntime' });
      try {
        const x = readNpyFile(path.join(dir, 'inputs', 'sample0.npy'));
        const { channels: C, width, height, layout } = ex.input;
        const bounds = inputBoundsFor({ width, height, channels: C as 1 | 3, layout, preset: C === 1 ? 'unit' : 'imagenet' });
        const maskFile = path.join(dir, 'inputs', 'sample0-mask.png');
        const mask = existsSync(maskFile) ? await loadMask(maskFile, width, height) : undefined;
        results.set(m, await evaluateMethods(ex, x, { methods: TABLE_METHODS, rules: parseRulesConfig({ inputBounds: bounds }), mask }));
      } finally {
        await ex.dispose();
      }
    }
    const fmt = (v: number | null | undefined, d: number) => (v === undefined ? 'n/a' : v === null ? '-' : v.toFixed(d));
    const table = (title: string, models: string[], cell: (r: EvaluationResult, name: string) => string) => {
      const lines = [`\n${title}`, `| method | ${models.join(' | ')} |`, `|---|${models.map(() => '---:').join('|')}|`];
      for (const name of TABLE_METHODS) lines.push(`| ${name} | ${models.map((mm) => cell(results.get(mm) as EvaluationResult, name)).join(' | ')} |`);
      console.log(lines.join('\n'));
    };
    const score = (r: EvaluationResult, name: string) => r.methods.find((s) => s.name === name);
    table('Localisation (positive relevance inside the object mask / mask area share; 1 = uniform)', ['shapes-vgg', 'shapes-resnet'], (r, n) =>
      score(r, n)?.error ? 'n/a' : fmt(score(r, n)?.localisation, 2),
    );
    const head = FIXTURE_MODELS.map((mm) => {
      const r = results.get(mm) as EvaluationResult;
      return `${mm} (${r.patch}x${r.patch}, ${r.patches} of ${r.patchCount} patches over ${r.steps} steps, ${(r.share * 100).toFixed(1)}% of the image)`;
    });
    table(`AOPC (target logit, region perturbation with ${(results.get('digits-cnn') as EvaluationResult).perturbation})`, FIXTURE_MODELS, (r, n) =>
      score(r, n)?.error ? 'n/a' : fmt(score(r, n)?.aopc, 3),
    );
    console.log(`(columns: ${head.join(', ')})`);
  });

  const get = (m: string, name: string) => {
    const s = (results.get(m) as EvaluationResult).methods.find((x) => x.name === name);
    assert.ok(s && !s.error, `${m}/${name}: ${s?.error ?? 'missing'}`);
    return s;
  };

  for (const m of ['shapes-vgg', 'shapes-resnet'])
    for (const name of ['epsilon-plus-flat', 'epsilon-gamma-box'])
      it(`${m}: localisation of ${name} is at least 2`, () => {
        const l = get(m, name).localisation;
        assert.ok(typeof l === 'number' && l >= 2, `${m}/${name}: localisation ${l}`);
      });

  for (const m of FIXTURE_MODELS)
    it(`${m}: the default parameters perturb at least 20% of the image`, () => {
      const r = results.get(m) as EvaluationResult;
      assert.ok(r.share >= 0.2, `${m}: ${(r.share * 100).toFixed(1)}% of the image`);
      assert.ok(r.patches >= r.steps && r.patches <= r.patchCount);
    });

  for (const m of FIXTURE_MODELS)
    it(`${m}: AOPC of epsilon-plus-flat and epsilon-gamma-box is above random's`, () => {
      const rnd = get(m, 'random').aopc as number;
      for (const name of ['epsilon-plus-flat', 'epsilon-gamma-box']) {
        const a = get(m, name).aopc as number;
        assert.ok(a > rnd, `${m}: AOPC ${name} ${a.toFixed(4)} <= random ${rnd.toFixed(4)}`);
      }
      const curve = get(m, 'epsilon-plus-flat').curve as number[];
      assert.equal(curve.length, (results.get(m) as EvaluationResult).steps + 1);
    });

  it('cam applies to shapes-resnet (GlobalAveragePool -> Gemm) and not to the others', () => {
    assert.ok(!get('shapes-resnet', 'cam').error);
    for (const m of ['digits-cnn', 'shapes-vgg'])
      assert.match((results.get(m) as EvaluationResult).methods.find((s) => s.name === 'cam')?.error ?? '', /cam is not applicable/);
  });
});

describe('forwardBatch', () => {
  it('gives the batch-1 logits for every input (batched graph)', async () => {
    const dir = path.join(REFERENCE_DIR, 'shapes-vgg');
    const ex = await Explainer.load(path.join(dir, 'model.onnx'), { backend: 'onnxruntime' });
    try {
      const x = readNpyFile(path.join(dir, 'inputs', 'sample0.npy'));
      const r = rng(2);
      const xs: Tensor[] = [x, ...[1, 2, 3, 4].map(() => f32(x.dims, Array.from(x.data as Float32Array, (v) => v + r() - 0.5)))];
      const got = await ex.forwardBatch(xs, 4);
      assert.equal(got.length, 5);
      assert.equal((ex as unknown as { batchable?: boolean }).batchable, true, 'the batch-4 forward graph was used');
      for (let i = 0; i < xs.length; i++) assertClose(got[i], await ex.forward(xs[i]), 1e-4, `sample ${i}`);
    } finally {
      await ex.dispose();
    }
  });
});
