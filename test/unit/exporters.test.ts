// What real exporters emit beyond the fixtures: open spatial sizes, a softmax wrapped in
// Flatten/Reshape, hard-swish written out as x * clip(x + 3, 0, 6) / 6.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { A, f32, i64 } from '../../src/engine/graph/graph';
import { Explainer } from '../../src/explain/explainer';
import { parseRulesConfig } from '../../src/engine/config';
import { TinyModel, floatInput, makeTmpDir, node, rng, runCli, writeNpyFile, writeTinyModel } from '../helpers';

const tmp = makeTmpDir();
after(() => tmp.cleanup());

function randomTensor(dims: number[], seed: number, scale = 0.5) {
  const r = rng(seed);
  const t = f32(dims);
  const d = t.data as Float32Array;
  for (let i = 0; i < d.length; i++) d[i] = (r() * 2 - 1) * scale;
  return t;
}

/** Conv 3->4 (3x3, pad 1) -> hard-swish written out -> GlobalAveragePool -> Flatten -> Gemm 4->2 -> Flatten/Softmax/Reshape. */
function model(inputShape: (number | string)[]): TinyModel {
  return {
    input: { name: 'x', dtype: 'float32', shape: inputShape },
    output: floatInput('probs', [1, 2]),
    nodes: [
      node('conv', 'Conv', ['x', 'w', 'b'], ['z'], { pads: A.ints([1, 1, 1, 1]) }),
      node('add3', 'Add', ['z', 'three'], ['z3']),
      node('clip', 'Clip', ['z3', 'zero', 'six'], ['c']),
      node('mul', 'Mul', ['z', 'c'], ['zc']),
      node('div6', 'Div', ['zc', 'six'], ['hs']),
      node('gap', 'GlobalAveragePool', ['hs'], ['g']),
      node('flat', 'Flatten', ['g'], ['f']),
      node('fc', 'Gemm', ['f', 'fw', 'fb'], ['logits'], { transB: A.int(1) }),
      node('flat2', 'Flatten', ['logits'], ['lf'], { axis: A.int(1) }),
      node('softmax', 'Softmax', ['lf'], ['sm'], { axis: A.int(-1) }),
      node('back', 'Reshape', ['sm', 'shape'], ['probs']),
    ],
    initializers: {
      w: randomTensor([4, 3, 3, 3], 1),
      b: randomTensor([4], 2),
      three: f32([], [3]),
      zero: f32([], [0]),
      six: f32([], [6]),
      fw: randomTensor([2, 4], 3, 1),
      fb: randomTensor([2], 4),
      shape: i64([2], [1, 2]),
    },
  };
}

test('a softmax behind Flatten/Reshape is removed and hard-swish written out is a gate', async () => {
  const file = writeTinyModel(tmp.dir, 'hswish', model([1, 3, 8, 8]));
  const ex = await Explainer.load(file);
  try {
    assert.ok(!ex.graph.nodes.some((n) => n.opType === 'Softmax'), 'the final softmax is gone');
    const x = randomTensor([1, 3, 8, 8], 5, 2);
    const logits = await ex.forward(x);
    const e = await ex.explain(x, { rules: parseRulesConfig({ composite: 'epsilon', epsilon: 1e-9 }) });
    assert.equal(e.target, logits[0] > logits[1] ? 0 : 1);
    const gate = e.layers.find((l) => l.name === 'mul');
    assert.ok(gate, 'the product is explained as a gate');
    assert.equal(gate.rule, 'gate');
    // the signal z gets all of the product's relevance; the clip branch none
    assert.ok(Math.abs(gate.relevanceSum - e.layers.find((l) => l.name === 'gap')!.relevanceSum) < 1e-5);
  } finally {
    await ex.dispose();
  }
});

test('a model with open height and width takes its size from --size or the --input shape', async () => {
  const file = writeTinyModel(tmp.dir, 'dynamic', model(['N', 3, 'H', 'W']));
  const npy = path.join(tmp.dir, 'x.npy');
  writeNpyFile(npy, randomTensor([1, 3, 10, 12], 6, 2));
  const out = path.join(tmp.dir, 'r.npy');
  const withInput = await runCli(['explain', '--model', file, '--input', npy, '--out-relevance', out]);
  assert.equal(withInput.code, 0, withInput.stderr);

  const img = path.join(tmp.dir, 'img.png');
  const { default: sharp } = await import('sharp');
  await sharp({ create: { width: 30, height: 20, channels: 3, background: { r: 200, g: 30, b: 30 } } })
    .png()
    .toFile(img);
  const withSize = await runCli(['explain', '--model', file, '--image', img, '--size', '24x16']);
  assert.equal(withSize.code, 0, withSize.stderr);

  const without = await runCli(['explain', '--model', file, '--image', img]);
  assert.notEqual(without.code, 0);
  assert.match(without.stderr, /dynamic\.onnx: input 'x' leaves its height and width open .*--size WxH/);
  assert.equal(without.stderr.trim().split('\n').length, 1);
});
