// Conditional relevance (CRP, issue 12): a hand-computed two-layer example, and additivity on every
// reference fixture model, rule configuration and explained layer.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Explainer } from '../../src/explain/explainer';
import { channelMask, conditionLayer, conditionalRelevance, topChannels } from '../../src/explain/concepts';
import { RulesConfig, parseRulesConfig } from '../../src/engine/config';
import { Graph, f32 } from '../../src/engine/graph/graph';
import { REFERENCE_DIR, floatInput, makeTmpDir, matrix, node, readNpyFile, relL2, writeTinyModel } from '../helpers';

let tmp: { dir: string; cleanup: () => void };
before(() => (tmp = makeTmpDir('lrp-lens-concepts-')));
after(() => tmp?.cleanup());

describe('conditional relevance by hand', () => {
  // x (3) -> h = relu(W1 x) (4 units, no bias) -> y = W2 h (2 classes, no bias); epsilon 1e-9 (LRP-0)
  const W1 = [
    [1, -2, -0.5],
    [0.25, 1, 1],
    [-1, 0.5, 2],
    [2, 1, -0.5],
  ];
  const W2 = [
    [1, -1, 0.5, 2],
    [-0.5, 1, 1, 0.25],
  ];
  const x = [1, 0.5, 2];
  it('each hidden unit\'s map is x_i w_ji / z_j * R_j, and the maps add up to the whole explanation', async () => {
    const file = writeTinyModel(tmp.dir, 'two-layer', {
      input: floatInput('x', [1, 3]),
      output: floatInput('y', [1, 2]),
      nodes: [node('fc1', 'Gemm', ['x', 'w1'], ['z1']), node('relu', 'Relu', ['z1'], ['h']), node('fc2', 'Gemm', ['h', 'w2'], ['y'])],
      initializers: { w1: transposeM(W1), w2: transposeM(W2) },
    });
    const e = await Explainer.load(file, { backend: 'onnxruntime' });
    const rules: RulesConfig = parseRulesConfig({ composite: 'epsilon', epsilon: 1e-9 });
    // by hand: z_j = sum_i W1[j][i] x_i; h_j = relu(z_j); y_t = sum_j W2[t][j] h_j; target t = argmax y
    const z = W1.map((r) => r.reduce((s, w, i) => s + w * x[i], 0));
    const h = z.map((v) => Math.max(0, v));
    const y = W2.map((r) => r.reduce((s, w, j) => s + w * h[j], 0));
    const t = y[0] >= y[1] ? 0 : 1;
    // R_j = h_j W2[t][j] / y_t * y_t = h_j W2[t][j]; R_i|j = x_i W1[j][i] / z_j * R_j (0 where h_j = 0)
    const Rj = h.map((v, j) => v * W2[t][j]);
    const masks = [0, 1, 2, 3].map((j) => channelMask(4, [j]));
    const res = await conditionalRelevance(e, f32([1, 3], x), { rules, layer: 'fc1', masks });
    assert.equal(res.target, t);
    assert.equal(res.layer.channels, 4);
    for (let j = 0; j < 4; j++) {
      assert.ok(Math.abs(res.channelRelevance[j] - Rj[j]) < 1e-5, `R_${j}: ${res.channelRelevance[j]} vs ${Rj[j]}`);
      assert.ok(Math.abs(res.maps[j].conditionRelevance - Rj[j]) < 1e-5);
      const want = x.map((xi, i) => (h[j] > 0 ? (xi * W1[j][i] * Rj[j]) / z[j] : 0));
      const got = res.maps[j].relevance.data as Float32Array;
      want.forEach((w, i) => assert.ok(Math.abs(got[i] - w) < 1e-5, `unit ${j} input ${i}: ${got[i]} vs ${w}`));
      // conservation below the layer (bias-free, LRP-0): each map sums to its unit's relevance
      assert.ok(Math.abs(got.reduce((s, v) => s + v, 0) - Rj[j]) < 1e-5);
    }
    // a dead unit (h_j = 0) carries nothing
    assert.ok(h.some((v) => v === 0), 'the example has a dead unit');
    // masks are weights: 2 * unit 0 + unit 1 is the weighted sum of their maps
    const mixed = await conditionalRelevance(e, f32([1, 3], x), { rules, layer: 'z1', masks: [Float32Array.from([2, 1, 0, 0])] });
    const m0 = res.maps[0].relevance.data as Float32Array;
    const m1 = res.maps[1].relevance.data as Float32Array;
    (mixed.maps[0].relevance.data as Float32Array).forEach((v, i) => assert.ok(Math.abs(v - (2 * m0[i] + m1[i])) < 1e-5));
    await e.dispose();
  });

  it('names what is wrong: an unknown layer, a mask of the wrong length, a channel out of range', async () => {
    const file = writeTinyModel(tmp.dir, 'two-layer-b', {
      input: floatInput('x', [1, 3]),
      output: floatInput('y', [1, 2]),
      nodes: [node('fc1', 'Gemm', ['x', 'w1'], ['z1']), node('relu', 'Relu', ['z1'], ['h']), node('fc2', 'Gemm', ['h', 'w2'], ['y'])],
      initializers: { w1: transposeM(W1), w2: transposeM(W2) },
    });
    const e = await Explainer.load(file, { backend: 'onnxruntime' });
    const rules = parseRulesConfig({ composite: 'epsilon' });
    await assert.rejects(conditionalRelevance(e, f32([1, 3], x), { rules, layer: 'nope', masks: [new Float32Array(4)] }), /two-layer-b\.onnx: no layer 'nope'/);
    await assert.rejects(conditionalRelevance(e, f32([1, 3], x), { rules, layer: 'fc1', masks: [new Float32Array(3)] }), /has 3 values; the layer has 4 channels/);
    assert.throws(() => channelMask(4, [4]), /channel 4 is out of range/);
    await e.dispose();
  });
});

function transposeM(m: number[][]) {
  // Gemm without transB computes x @ B with B [in, out]
  return matrix(m[0].map((_, i) => m.map((r) => r[i])));
}

// ---------------- additivity on the reference fixtures ----------------

interface RefCase {
  id: string;
  model: string;
  input: string;
  target: number;
  rules: Record<string, unknown>;
}
const cases = (JSON.parse(readFileSync(path.join(REFERENCE_DIR, 'manifest.json'), 'utf8')) as { cases: RefCase[] }).cases;

/** Does every path from the input to the output pass through `layer`'s node? */
function dominates(g: Graph, layer: string): boolean {
  const skip = g.nodes.find((n) => n.name === layer);
  const reached = new Set<string>([g.inputs[0].name]);
  let grew = true;
  while (grew) {
    grew = false;
    for (const n of g.nodes) {
      if (n === skip || !n.inputs.some((i) => reached.has(i))) continue;
      for (const o of n.outputs)
        if (!reached.has(o)) {
          reached.add(o);
          grew = true;
        }
    }
  }
  return !reached.has(g.outputs[0].name);
}

const MODELS = ['digits-cnn/model.onnx', 'shapes-vgg/model.onnx', 'shapes-resnet/model.onnx', 'shapes-resnet/model-bn.onnx'];

for (const model of MODELS) {
  describe(`conditional maps add up: ${model}`, () => {
    const mine = cases.filter((c) => c.model === model);
    let e: Explainer;
    before(async () => (e = await Explainer.load(path.join(REFERENCE_DIR, model), { backend: 'onnxruntime' })));
    after(() => e?.dispose());
    for (const c of mine) {
      it(c.id, async () => {
        const x = readNpyFile(path.join(REFERENCE_DIR, c.input));
        const rules = parseRulesConfig(c.rules);
        const full = await e.explain(x, { rules, target: c.target });
        assert.ok(full.layers.length >= 4);
        let dominating = 0;
        for (const l of full.layers) {
          const info = conditionLayer(e, l.name);
          const C = info.channels;
          const masks = [channelMask(C, Array.from({ length: C }, (_, i) => i)), ...Array.from({ length: C }, (_, i) => channelMask(C, [i]))];
          const res = await conditionalRelevance(e, x, { rules, target: c.target, layer: l.name, masks, maxBatch: masks.length });
          const all = res.maps[0].relevance.data as Float32Array;
          const sum = new Float64Array(all.length);
          for (let k = 1; k < res.maps.length; k++) (res.maps[k].relevance.data as Float32Array).forEach((v, i) => (sum[i] += v));
          const err = relL2(Float32Array.from(sum), all);
          assert.ok(err <= 1e-5, `${l.name}: the channel maps add up to the all-channel map within relL2 ${err.toExponential(2)}`);
          // the masked relevance at L per channel is that channel's relevance, and they add up to the layer's
          res.maps.slice(1).forEach((m, k) => assert.ok(Math.abs(m.conditionRelevance - res.channelRelevance[k]) <= 1e-5 * (1 + Math.abs(res.layerRelevance))));
          assert.ok(Math.abs(res.maps[0].conditionRelevance - res.layerRelevance) <= 1e-4 * (1 + Math.abs(res.layerRelevance)));
          if (dominates(e.graph, info.name)) {
            dominating++;
            const d = relL2(all, full.relevance.data as Float32Array);
            assert.ok(d <= 1e-5, `${l.name} lies on every path: the all-channel map equals the explanation (relL2 ${d.toExponential(2)})`);
          }
        }
        assert.ok(dominating >= 2, 'some layers lie on every path');
        // top channels by relevance at L, largest first
        const top = topChannels(Float32Array.from([0.1, 3, -2, 3, 0.5]), 3);
        assert.deepEqual(top, [1, 3, 4]);
      });
    }
  });
}

describe('conditional maps on a vision transformer (token features as channels)', () => {
  const dir = path.join(REFERENCE_DIR, '..', 'lrp-reference-modern', 'shapes-vit');
  let e: Explainer;
  before(async () => (e = await Explainer.load(path.join(dir, 'model.onnx'), { backend: 'onnxruntime' })));
  after(() => e?.dispose());
  for (const layer of ['/encoder/layers/encoder_layer_1/Add_1', '/encoder/layers/encoder_layer_2/mlp/mlp.3/MatMul']) {
    it(`${layer}: the feature maps add up to the all-feature map, which equals the explanation where every path passes`, async () => {
      const x = readNpyFile(path.join(dir, 'inputs', 'sample0.npy'));
      const rules = parseRulesConfig({ composite: 'epsilon', epsilon: 1e-6, attention: 'cp' });
      const info = conditionLayer(e, layer);
      assert.equal(info.channels, 64);
      const C = info.channels;
      const masks = [channelMask(C, Array.from({ length: C }, (_, i) => i)), ...Array.from({ length: C }, (_, i) => channelMask(C, [i]))];
      const res = await conditionalRelevance(e, x, { rules, layer, masks, maxBatch: 16 });
      const all = res.maps[0].relevance.data as Float32Array;
      const sum = new Float32Array(all.length);
      for (let k = 1; k < res.maps.length; k++) (res.maps[k].relevance.data as Float32Array).forEach((v, i) => (sum[i] += v));
      assert.ok(relL2(sum, all) <= 1e-5, `relL2 ${relL2(sum, all)}`);
      const full = await e.explain(x, { rules });
      if (dominates(e.graph, info.name)) assert.ok(relL2(all, full.relevance.data as Float32Array) <= 1e-5);
      else assert.ok(relL2(all, full.relevance.data as Float32Array) > 1e-3, 'a layer beside the residual stream leaves part of the relevance out');
    });
  }
});
