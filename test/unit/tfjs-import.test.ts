// tf.js model import: real pretrained models from npm packages against tf.js's own predict, the
// imported graph on the tfjs backend and on onnxruntime; manifest safety and error messages.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { importTfjs } from '../../src/engine/import/tfjs';
import { createTfjsBackend } from '../../src/backends/tfjs';
import type { Graph, Tensor } from '../../src/engine/graph/graph';
import { emotionModel, extractNsfwjs, fileHandler, maxRelErr, numbersOf, rng, runOrt } from './tfjs-util';
import { makeTmpDir } from '../helpers';

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
      const dProbs = maxRelErr(mineProbs, Array.from(probs));
      const dLogits = maxRelErr(centered(logits), centeredLog(probs));
      // the same graph on onnxruntime
      const ort = numbersOf((await runOrt(lg, { [lg.inputs[0].name]: x }))[lg.outputs[0].name]);
      const dOrt = maxRelErr(logits, ort);
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

// ---------- small synthetic models: every layer kind, quantisations, errors ----------

const tmpDirs: { dir: string; cleanup: () => void }[] = [];
function tmpDir(): string {
  const t = makeTmpDir('lrp-lens-tfjs-');
  tmpDirs.push(t);
  return t.dir;
}

interface Saved {
  modelTopology: object;
  weightSpecs: tf.io.WeightsManifestEntry[];
  weightData: ArrayBuffer;
}

async function saveModel(model: tf.LayersModel): Promise<Saved> {
  let saved: Saved | undefined;
  await model.save(
    tf.io.withSaveHandler(async (a) => {
      saved = { modelTopology: a.modelTopology as object, weightSpecs: a.weightSpecs ?? [], weightData: a.weightData as ArrayBuffer };
      return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
    }),
  );
  return saved as Saved;
}

type Quant = 'none' | 'uint8' | 'uint16' | 'float16';

function toHalf(v: number): number {
  const f = new Float32Array([v]);
  const u = new Uint32Array(f.buffer)[0];
  const sign = (u >>> 16) & 0x8000;
  let exp = ((u >>> 23) & 0xff) - 127 + 15;
  let mant = u & 0x7fffff;
  if (exp <= 0) return sign;
  if (exp >= 31) return sign | 0x7c00;
  mant += 0x1000; // round
  if (mant & 0x800000) {
    mant = 0;
    exp++;
  }
  return sign | (exp << 10) | (mant >>> 13);
}

/** Write a saved model as model.json + shards (optionally quantised), split into `shards` files. */
function writeModel(dir: string, saved: Saved, quant: Quant = 'none', shards = 2): string {
  const src = new Float32Array(saved.weightData);
  const parts: Buffer[] = [];
  const specs: tf.io.WeightsManifestEntry[] = [];
  let off = 0;
  for (const w of saved.weightSpecs) {
    const n = w.shape.reduce((a, b) => a * b, 1);
    const v = src.subarray(off, off + n);
    off += n;
    if (quant === 'none' || w.dtype !== 'float32') {
      parts.push(Buffer.from(v.slice().buffer));
      specs.push(w);
    } else if (quant === 'float16') {
      const h = new Uint16Array(n);
      for (let i = 0; i < n; i++) h[i] = toHalf(v[i]);
      parts.push(Buffer.from(h.buffer));
      specs.push({ ...w, quantization: { dtype: 'float16' } });
    } else {
      const levels = quant === 'uint8' ? 255 : 65535;
      let min = Math.min(...v);
      const max = Math.max(...v);
      if (min === max) min = max - 1;
      const scale = (max - min) / levels;
      const q = quant === 'uint8' ? new Uint8Array(n) : new Uint16Array(n);
      for (let i = 0; i < n; i++) q[i] = Math.round((v[i] - min) / scale);
      parts.push(Buffer.from(q.buffer));
      specs.push({ ...w, quantization: { dtype: quant, min, scale } });
    }
  }
  const all = Buffer.concat(parts);
  const paths: string[] = [];
  const size = Math.ceil(all.length / shards);
  for (let k = 0; k < shards; k++) {
    const p = `group1-shard${k + 1}of${shards}.bin`;
    fs.writeFileSync(path.join(dir, p), all.subarray(k * size, Math.min(all.length, (k + 1) * size)));
    paths.push(p);
  }
  const file = path.join(dir, 'model.json');
  fs.writeFileSync(file, JSON.stringify({ format: 'layers-model', modelTopology: saved.modelTopology, weightsManifest: [{ paths, weights: specs }] }));
  return file;
}

/** Random weights everywhere (batch-norm variances positive). */
function randomise(model: tf.LayersModel, seed: number): void {
  const r = rng(seed);
  model.setWeights(
    model.weights.map((w) => {
      const shape = w.shape as number[];
      const n = shape.reduce((a, b) => a * b, 1);
      const isVar = w.originalName.endsWith('moving_variance');
      const data = Float32Array.from({ length: n }, () => (isVar ? 0.5 + r() : (r() * 2 - 1) * 0.5));
      return tf.tensor(data, shape);
    }),
  );
}

async function compareWithTfjs(file: string, kind: 'layers' | 'graph' = 'layers'): Promise<number> {
  const backend = await createTfjsBackend();
  const g = await importTfjs(file);
  const dims = g.inputs[0].shape.map((d) => (typeof d === 'number' ? d : 1));
  const x = randomInput(dims, 7);
  const model = kind === 'layers' ? await tf.loadLayersModel(fileHandler(file)) : await tf.loadGraphModel(fileHandler(file));
  const y = model.predict(tf.tensor(x.data as Float32Array, x.dims)) as tf.Tensor;
  const ref = Array.from(await y.data());
  y.dispose();
  const c = await backend.compile(g);
  const out = (await c.run({ [g.inputs[0].name]: x }))[g.outputs[0].name];
  await c.dispose();
  assert.deepEqual(out.dims, [...y.shape]);
  const mine = numbersOf(out);
  const ortOut = numbersOf((await runOrt(g, { [g.inputs[0].name]: x }))[g.outputs[0].name]);
  const d = maxRelErr(mine, ref);
  assert.ok(d < 1e-4, `differs from tf.js predict by ${d}`);
  assert.ok(maxRelErr(ortOut, ref) < 1e-4, `onnxruntime differs from tf.js predict by ${maxRelErr(ortOut, ref)}`);
  return d;
}

function functionalZoo(): tf.LayersModel {
  const L = tf.layers;
  const input = tf.input({ shape: [13, 12, 3], name: 'img' });
  const r = L.rescaling({ scale: 2, offset: -1, name: 'rescale' }).apply(input) as tf.SymbolicTensor;
  const p = L.zeroPadding2d({ padding: [[1, 0], [0, 2]], name: 'pad' }).apply(r) as tf.SymbolicTensor;
  const c1 = L.conv2d({ filters: 6, kernelSize: 3, strides: 2, padding: 'same', activation: 'relu6', name: 'conv_same_s2' }).apply(p) as tf.SymbolicTensor;
  const bn = L.batchNormalization({ name: 'bn' }).apply(c1) as tf.SymbolicTensor;
  const dw = L.depthwiseConv2d({ kernelSize: 3, depthMultiplier: 2, padding: 'same', activation: 'swish', name: 'dw' }).apply(bn) as tf.SymbolicTensor;
  const sep = L.separableConv2d({ filters: 6, kernelSize: 3, padding: 'same', activation: 'elu', name: 'sep' }).apply(bn) as tf.SymbolicTensor;
  const c2 = L.conv2d({ filters: 6, kernelSize: 1, activation: 'sigmoid', name: 'gate' }).apply(bn) as tf.SymbolicTensor;
  const mul = L.multiply({ name: 'mul' }).apply([sep, c2]) as tf.SymbolicTensor;
  const add = L.add({ name: 'add' }).apply([mul, bn]) as tf.SymbolicTensor;
  const cat = L.concatenate({ name: 'cat' }).apply([add, dw]) as tf.SymbolicTensor;
  const relu = L.reLU({ maxValue: 4, name: 'relu_max' }).apply(cat) as tf.SymbolicTensor;
  const leaky = L.leakyReLU({ alpha: 0.1, name: 'leaky' }).apply(relu) as tf.SymbolicTensor;
  const mp = L.maxPooling2d({ poolSize: 3, strides: 2, padding: 'same', name: 'mp' }).apply(leaky) as tf.SymbolicTensor;
  const ap = L.averagePooling2d({ poolSize: 2, strides: 1, padding: 'same', name: 'ap' }).apply(mp) as tf.SymbolicTensor;
  const gmp = L.globalMaxPooling2d({ name: 'gmp' }).apply(ap) as tf.SymbolicTensor;
  const flat = L.flatten({ name: 'flat' }).apply(ap) as tf.SymbolicTensor;
  const rs = L.reshape({ targetShape: [2, 144], name: 'rs' }).apply(ap) as tf.SymbolicTensor;
  const rsf = L.flatten({ name: 'rs_flat' }).apply(rs) as tf.SymbolicTensor;
  const cat2 = L.concatenate({ name: 'cat2' }).apply([gmp, flat, rsf]) as tf.SymbolicTensor;
  const d1 = L.dense({ units: 8, activation: 'tanh', name: 'fc1' }).apply(cat2) as tf.SymbolicTensor;
  const dr = L.dropout({ rate: 0.5, name: 'drop' }).apply(d1) as tf.SymbolicTensor;
  const bn1 = L.batchNormalization({ name: 'bn1' }).apply(dr) as tf.SymbolicTensor;
  const out = L.dense({ units: 4, activation: 'softmax', name: 'fc2' }).apply(bn1) as tf.SymbolicTensor;
  const model = tf.model({ inputs: input, outputs: out, name: 'zoo' });
  randomise(model, 3);
  return model;
}

test('tf.js import: functional model with every layer kind, float32 in 2 shards', async () => {
  const file = writeModel(tmpDir(), await saveModel(functionalZoo()));
  const g = await importTfjs(file);
  const byName = new Map(g.nodes.map((n) => [n.name, n]));
  assert.equal(byName.get('sep')?.opType, 'Conv');
  assert.equal(byName.get('sep/depthwise')?.opType, 'Conv');
  assert.equal(byName.get('dw')?.opType, 'Conv');
  assert.equal(byName.get('fc1')?.opType, 'Gemm');
  // TF's SAME puts the extra pad at the end: 14x14 input, k3 s2 -> pads [0,0,1,1]
  assert.deepEqual(byName.get('conv_same_s2')?.attrs.pads?.value, [0, 0, 1, 1]);
  await compareWithTfjs(file);
});

for (const q of ['uint8', 'uint16', 'float16'] as const)
  test(`tf.js import: ${q}-quantised weights decode as tf.js does`, async () => {
    await compareWithTfjs(writeModel(tmpDir(), await saveModel(functionalZoo()), q, 3));
  });

test('tf.js import: Sequential with a nested Sequential and a nested functional model', async () => {
  const L = tf.layers;
  const inner = tf.sequential({
    name: 'inner_seq',
    layers: [
      L.conv2d({ inputShape: [6, 6, 4], filters: 4, kernelSize: 3, padding: 'same', activation: 'relu', name: 'inner_conv' }),
      L.batchNormalization({ name: 'inner_bn' }),
    ],
  });
  const fi = tf.input({ shape: [6, 6, 4] });
  const fa = L.conv2d({ filters: 4, kernelSize: 1, name: 'branch_a' }).apply(fi) as tf.SymbolicTensor;
  const fb = L.conv2d({ filters: 4, kernelSize: 1, name: 'branch_b' }).apply(fi) as tf.SymbolicTensor;
  const func = tf.model({ inputs: fi, outputs: L.add({ name: 'inner_add' }).apply([fa, fb]) as tf.SymbolicTensor, name: 'inner_func' });
  const outer = tf.sequential({
    name: 'outer',
    layers: [
      L.conv2d({ inputShape: [8, 8, 3], filters: 4, kernelSize: 3, name: 'stem' }),
      inner,
      func,
      L.globalAveragePooling2d({ name: 'gap' }),
      L.dense({ units: 3, name: 'head' }),
    ],
  });
  randomise(outer, 5);
  const file = writeModel(tmpDir(), await saveModel(outer), 'none', 1);
  const g = await importTfjs(file);
  assert.ok(g.nodes.some((n) => n.name === 'inner_conv' && n.opType === 'Conv'));
  assert.ok(g.nodes.some((n) => n.name === 'inner_add' && n.opType === 'Add'));
  await compareWithTfjs(file);
});

test('tf.js import: a manifest path leaving the model folder is an error, not a read', async () => {
  for (const bad of ['../secret.bin', '/etc/passwd', 'sub/../../x.bin', '..%2Fsecret.bin', 'file:///etc/passwd']) {
    const dir = tmpDir();
    const file = path.join(dir, 'model.json');
    fs.writeFileSync(file, JSON.stringify({ modelTopology: { class_name: 'Sequential', config: { layers: [] } }, weightsManifest: [{ paths: [bad], weights: [] }] }));
    await assert.rejects(importTfjs(file), (e: Error) => {
      assert.ok(e.message.startsWith(file), e.message);
      assert.match(e.message, /outside the model's folder/);
      assert.ok(e.message.includes(bad));
      return true;
    });
  }
});

test('tf.js import: missing and wrong-sized shards, unsupported layers and ops', async () => {
  const saved = await saveModel(functionalZoo());
  // missing shard
  let dir = tmpDir();
  let file = writeModel(dir, saved, 'none', 2);
  fs.rmSync(path.join(dir, 'group1-shard2of2.bin'));
  await assert.rejects(importTfjs(file), (e: Error) => e.message.startsWith(file) && /group1-shard2of2\.bin' not found/.test(e.message));
  // truncated shard
  dir = tmpDir();
  file = writeModel(dir, saved, 'none', 2);
  const p = path.join(dir, 'group1-shard2of2.bin');
  fs.writeFileSync(p, fs.readFileSync(p).subarray(0, 100));
  await assert.rejects(importTfjs(file), (e: Error) => e.message.startsWith(file) && /hold \d+ bytes but the manifest needs \d+/.test(e.message));
  // unsupported layer
  dir = tmpDir();
  file = writeModel(dir, saved, 'none', 1);
  const json = JSON.parse(fs.readFileSync(file, 'utf8'));
  const layer = json.modelTopology.config.layers.find((l: { name?: string; config: { name: string } }) => (l.config.name ?? l.name) === 'mp');
  layer.class_name = 'MaxPooling3D';
  fs.writeFileSync(file, JSON.stringify(json));
  await assert.rejects(importTfjs(file), (e: Error) => e.message.startsWith(file) && /layer 'mp' \(MaxPooling3D\).*not supported/.test(e.message));
  // unsupported GraphModel op
  dir = tmpDir();
  file = path.join(dir, 'model.json');
  fs.writeFileSync(
    file,
    JSON.stringify({
      format: 'graph-model',
      modelTopology: {
        node: [
          { name: 'x', op: 'Placeholder', attr: { dtype: { type: 'DT_FLOAT' }, shape: { shape: { dim: [{ size: '1' }, { size: '4' }] } } } },
          { name: 'weird', op: 'Cumsum', input: ['x'] },
        ],
      },
      weightsManifest: [],
    }),
  );
  await assert.rejects(importTfjs(file), (e: Error) => e.message.startsWith(file) && /node 'weird' \(Cumsum\).*not supported/.test(e.message));
});

test.after(() => {
  for (const t of tmpDirs) t.cleanup();
  if (figures.length) console.log(`tf.js agreement:\n  ${figures.join('\n  ')}`);
});
