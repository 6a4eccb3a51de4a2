// tf.js model import: real pretrained models from npm packages against tf.js's own predict, the
// imported graph on the tfjs backend and on onnxruntime; manifest safety and error messages.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { importTfjs } from '../../src/engine/tfjs';
import { createTfjsBackend } from '../../src/backends/tfjs';
import type { Graph, Tensor } from '../../src/engine/graph';
import { emotionModel, extractNsfwjs, fileHandler, maxRelDiff, numbersOf, rng, runOrt } from './tfjs-util';

/** Logits up to a constant from softmax probabilities: log p - mean(log p). */
function centeredLog(p: ArrayLike<number>): number[] {
  const l = Array.from(p, (v) => Math.log(v));
  const m = l.reduce((a, b) => a + b, 0) / l.length;
  return l.map((v) => v - m);
}

function centered(z: ArrayLike<number>): number[] {
  const l = Array.from(z);
  const m = l.reduce((a, b) => a + b, 0) / l.length;
  return l.map((v) => v - m);
}

/** The same graph with its final Softmax cut off (outputs the logits). */
function logitsGraph(g: Graph): Graph {
  const last = g.nodes.find((n) => n.outputs[0] === g.outputs[0].name);
  assert.ok(last && last.opType === 'Softmax', 'the model ends in a Softmax');
  return { ...g, nodes: g.nodes.filter((n) => n !== last), outputs: [{ ...g.outputs[0], name: last.inputs[0] }] };
}

function randomInput(dims: number[], seed: number): Tensor {
  const r = rng(seed);
  const n = dims.reduce((a, b) => a * b, 1);
  const data = new Float32Array(n);
  for (let i = 0; i < n; i++) data[i] = r();
  return { dtype: 'float32', dims, data };
}

const MODELS = [
  { label: 'nsfwjs MobileNetV2 (uint8-quantised LayersModel)', file: () => extractNsfwjs('mobilenet_v2'), kind: 'layers' },
  { label: 'nsfwjs InceptionV3 (LayersModel, 6 shards)', file: () => extractNsfwjs('inception_v3'), kind: 'layers' },
  { label: 'nsfwjs MobileNetV2-mid (GraphModel, fused ops)', file: () => extractNsfwjs('mobilenet_v2_mid'), kind: 'graph' },
  { label: 'human emotion (GraphModel)', file: emotionModel, kind: 'graph' },
] as const;

/** Measured agreement, printed at the end for the report. */
const figures: string[] = [];

for (const m of MODELS)
  test(`tf.js import: ${m.label} matches tf.js predict, and onnxruntime`, async () => {
    const file = m.file();
    const backend = await createTfjsBackend(); // also selects the tf.js runtime for the reference below
    const g = await importTfjs(file);
    assert.equal(g.layout, 'NHWC');
    const dims = g.inputs[0].shape.map((d) => (typeof d === 'number' ? d : 1));
    for (const seed of [1, 2]) {
      const x = randomInput(dims, seed);
      // tf.js's own model
      let probs: Float32Array;
      if (m.kind === 'layers') {
        const model = await tf.loadLayersModel(fileHandler(file));
        const y = model.predict(tf.tensor(x.data as Float32Array, x.dims)) as tf.Tensor;
        probs = (await y.data()) as Float32Array;
        y.dispose();
        model.dispose();
      } else {
        const model = await tf.loadGraphModel(fileHandler(file));
        const y = model.predict(tf.tensor(x.data as Float32Array, x.dims)) as tf.Tensor;
        probs = (await y.data()) as Float32Array;
        y.dispose();
        model.dispose();
      }
      // the imported graph on the tfjs backend, whole and without the softmax
      const whole = await backend.compile(g);
      const mineProbs = numbersOf((await whole.run({ [g.inputs[0].name]: x }))[g.outputs[0].name]);
      await whole.dispose();
      const lg = logitsGraph(g);
      const cl = await backend.compile(lg);
      const logits = numbersOf((await cl.run({ [lg.inputs[0].name]: x }))[lg.outputs[0].name]);
      await cl.dispose();
      const dProbs = maxRelDiff(mineProbs, Array.from(probs));
      const dLogits = maxRelDiff(centered(logits), centeredLog(probs));
      // the same graph on onnxruntime
      const ort = numbersOf((await runOrt(lg, { [lg.inputs[0].name]: x }))[lg.outputs[0].name]);
      const dOrt = maxRelDiff(logits, ort);
      figures.push(`${m.label} seed ${seed}: probs ${dProbs.toExponential(2)}, logits vs tf.js ${dLogits.toExponential(2)}, tfjs vs ort logits ${dOrt.toExponential(2)}`);
      assert.ok(dProbs < 1e-4, `softmax outputs differ from tf.js by ${dProbs}`);
      assert.ok(dLogits < 1e-4, `logits differ from tf.js by ${dLogits}`);
      assert.ok(dOrt < 1e-4, `tfjs and onnxruntime logits differ by ${dOrt}`);
    }
  });

test('tf.js import: node names are the Keras layer / TF node names, ops are ONNX', async () => {
  const g = await importTfjs(extractNsfwjs('mobilenet_v2'));
  const conv1 = g.nodes.find((n) => n.name === 'Conv1');
  assert.equal(conv1?.opType, 'Conv');
  const dw = g.nodes.find((n) => n.name === 'expanded_conv_depthwise');
  assert.equal(dw?.opType, 'Conv');
  assert.ok(g.nodes.some((n) => n.name === 'dense_3' && n.opType === 'Gemm'));
  assert.equal(g.inputs[0].name, 'input_1');
  assert.deepEqual(g.inputs[0].shape, ['batch', 224, 224, 3]);
  const first = g.nodes.find((n) => n.inputs[0] === 'input_1');
  assert.equal(first?.opType, 'Transpose');
  const em = await importTfjs(emotionModel());
  assert.ok(em.nodes.some((n) => n.name === 'StatefulPartitionedCall/model_1/conv2d_5/BiasAdd' && n.opType === 'Conv'));
  assert.ok(em.nodes.some((n) => n.name === 'StatefulPartitionedCall/model_1/separable_conv2d_1/separable_conv2d/depthwise' && n.opType === 'Conv'));
});

// ---------- small synthetic models: every layer kind, errors ----------

function tmpDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'lrp-lens-tfjs-'));
}

test.after(() => {
  if (figures.length) console.log(`tf.js agreement:\n  ${figures.join('\n  ')}`);
});

export { tmpDir };
