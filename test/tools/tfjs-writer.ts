// Test tooling: write an ONNX image classifier (the reference fixtures' kind: Conv, BatchNormalization,
// Relu, MaxPool, Add, GlobalAveragePool, Flatten, Gemm) as a tf.js LayersModel — a Keras functional
// topology, channels_last, with model.json and a float32 weights shard — built with tf.js's own layers
// API, so tf.js can load and run it too.
//
// - Conv weights OIHW -> HWIO; Gemm weights [units, in] -> Dense kernels [in, units].
// - ONNX pads that Keras 'same' cannot express (e.g. a stride-2 3x3 Conv with pads 1: Keras 'same' pads
//   0 before and 1 after) become a ZeroPadding2D layer before a 'valid' Conv2D.
// - The ONNX model flattens NCHW, Keras flattens NHWC: the first Dense after a Flatten gets its kernel
//   rows permuted so both compute the same thing.
// - Layer names come from the ONNX node names ('/features/features.0/Conv' -> 'features.0',
//   '/layer2/downsample/downsample.0/Conv' -> 'layer2_downsample.0'), unique, so rule overrides by name
//   work on the tf.js model; `layerNames` maps ONNX node names to them.
import { mkdirSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import type { Graph, Node, Tensor } from '../../src/engine/graph/graph';

export interface WrittenTfjsModel {
  /** model.json */
  file: string;
  /** ONNX node name -> Keras layer name (the node name in the imported graph) */
  layerNames: Map<string, string>;
  /** the model built in memory (tf.js can predict with it; dispose when done) */
  model: tf.LayersModel;
}

/** '/features/features.0/Conv' -> 'features.0'; '/layer1/conv1/Conv' -> 'layer1_conv1'. */
export function kerasName(onnxNodeName: string): string {
  const segs = onnxNodeName.split('/').filter(Boolean);
  if (segs.length > 1) segs.pop(); // the op name
  const kept = segs.filter((s, i) => !(i + 1 < segs.length && segs[i + 1].startsWith(`${s}.`)));
  return kept.join('_').replace(/[^A-Za-z0-9._-]/g, '_') || 'layer';
}

function attrInts(n: Node, key: string, dflt: number[]): number[] {
  const a = n.attrs[key];
  return a && a.type === 'ints' ? a.value.map(Number) : dflt;
}

function attrNum(n: Node, key: string, dflt: number): number {
  const a = n.attrs[key];
  return a && (a.type === 'int' || a.type === 'float') ? Number(a.value) : dflt;
}

function f32data(t: Tensor): Float32Array {
  if (t.dtype !== 'float32') throw new Error(`expected a float32 initializer, got ${t.dtype}`);
  return t.data as Float32Array;
}

/** OIHW -> HWIO */
function oihwToHwio(t: Tensor): tf.Tensor {
  const [O, I, H, W] = t.dims;
  const src = f32data(t);
  const dst = new Float32Array(src.length);
  for (let o = 0; o < O; o++)
    for (let i = 0; i < I; i++)
      for (let h = 0; h < H; h++)
        for (let w = 0; w < W; w++) dst[((h * W + w) * I + i) * O + o] = src[((o * I + i) * H + h) * W + w];
  return tf.tensor4d(dst, [H, W, I, O]);
}

/**
 * Gemm weight [units, in] -> Dense kernel [in, units]. When the input is a Keras (NHWC) flatten of an
 * [H, W, C] tensor that the ONNX model flattened as [C, H, W], row (h, w, c) takes ONNX column (c, h, w).
 */
function gemmToKernel(t: Tensor, transB: boolean, flatHWC: [number, number, number] | null): tf.Tensor {
  const src = f32data(t);
  const [units, inF] = transB ? t.dims : [t.dims[1], t.dims[0]];
  const at = (u: number, j: number) => (transB ? src[u * inF + j] : src[j * units + u]);
  const dst = new Float32Array(src.length);
  for (let j = 0; j < inF; j++) {
    let col = j;
    if (flatHWC) {
      const [H, W, C] = flatHWC;
      const c = j % C;
      const w = Math.floor(j / C) % W;
      const h = Math.floor(j / (C * W));
      col = (c * H + h) * W + w;
    }
    for (let u = 0; u < units; u++) dst[j * units + u] = at(u, col);
  }
  return tf.tensor2d(dst, [inF, units]);
}

interface Sym {
  t: tf.SymbolicTensor;
  /** set on the output of a Flatten of a rank-4 tensor: the Keras [H, W, C] it flattened */
  flatHWC?: [number, number, number];
}

/**
 * Build the Keras equivalent of `g` (an ONNX classifier, NCHW) and write it to `dir` as model.json and
 * group1-shard1of1.bin. The tf.js model takes NHWC input named like the ONNX input.
 */
export async function writeTfjsModel(g: Graph, dir: string): Promise<WrittenTfjsModel> {
  const L = tf.layers;
  if (g.inputs.length !== 1) throw new Error(`${g.source}: one input expected`);
  const inDims = g.inputs[0].shape.map(Number);
  if (inDims.length !== 4) throw new Error(`${g.source}: a rank-4 NCHW input expected`);
  const [, C, H, W] = inDims;
  const input = tf.input({ shape: [H, W, C], name: g.inputs[0].name });
  const vals = new Map<string, Sym>([[g.inputs[0].name, { t: input }]]);
  const weights: { layer: tf.layers.Layer; values: tf.Tensor[] }[] = [];
  const layerNames = new Map<string, string>();
  const used = new Set<string>([g.inputs[0].name]);
  const init = (name: string): Tensor => {
    const t = g.initializers.get(name);
    if (!t) throw new Error(`${g.source}: '${name}' is not an initializer`);
    return t;
  };
  const get = (name: string): Sym => {
    const v = vals.get(name);
    if (!v) throw new Error(`${g.source}: value '${name}' is not computed yet`);
    return v;
  };
  const apply = (layer: tf.layers.Layer, xs: tf.SymbolicTensor[]) =>
    layer.apply(xs.length === 1 ? xs[0] : xs) as tf.SymbolicTensor;

  for (const n of g.nodes) {
    let name = kerasName(n.name);
    for (let k = 2; used.has(name); k++) name = `${kerasName(n.name)}_${k}`;
    used.add(name);
    layerNames.set(n.name, name);
    const x = get(n.inputs[0]);
    let y: Sym;
    switch (n.opType) {
      case 'Conv': {
        const w = init(n.inputs[1]);
        const [O, , kh, kw] = w.dims;
        if (attrNum(n, 'group', 1) !== 1) throw new Error(`${n.name}: grouped Conv is not supported here`);
        const strides = attrInts(n, 'strides', [1, 1]) as [number, number];
        const dil = attrInts(n, 'dilations', [1, 1]) as [number, number];
        const [t, l, b, r] = attrInts(n, 'pads', [0, 0, 0, 0]);
        // Keras 'same' at stride 1 pads floor(total / 2) before and the rest after
        const sameH = (kh - 1) * dil[0];
        const sameW = (kw - 1) * dil[1];
        const isSame = strides[0] === 1 && strides[1] === 1 && t === Math.floor(sameH / 2) && b === sameH - t && l === Math.floor(sameW / 2) && r === sameW - l;
        let src = x.t;
        let padding: 'same' | 'valid' = 'valid';
        if (isSame) padding = 'same';
        else if (t || l || b || r) src = apply(L.zeroPadding2d({ padding: [[t, b], [l, r]], name: `${name}_pad` }), [src]);
        const hasBias = n.inputs.length > 2 && !!n.inputs[2];
        const layer = L.conv2d({ filters: O, kernelSize: [kh, kw], strides, dilationRate: dil, padding, useBias: hasBias, name });
        y = { t: apply(layer, [src]) };
        weights.push({ layer, values: [oihwToHwio(w), ...(hasBias ? [tf.tensor1d(f32data(init(n.inputs[2])))] : [])] });
        break;
      }
      case 'BatchNormalization': {
        const layer = L.batchNormalization({ axis: -1, epsilon: attrNum(n, 'epsilon', 1e-5), name });
        y = { t: apply(layer, [x.t]) };
        weights.push({ layer, values: n.inputs.slice(1, 5).map((i) => tf.tensor1d(f32data(init(i)))) });
        break;
      }
      case 'Relu':
        y = { t: apply(L.reLU({ name }), [x.t]) };
        break;
      case 'MaxPool': {
        if (attrInts(n, 'pads', [0, 0, 0, 0]).some((p) => p !== 0) || attrNum(n, 'ceil_mode', 0) !== 0)
          throw new Error(`${n.name}: padded or ceil-mode MaxPool is not supported here`);
        const k = attrInts(n, 'kernel_shape', [2, 2]) as [number, number];
        y = { t: apply(L.maxPooling2d({ poolSize: k, strides: attrInts(n, 'strides', k) as [number, number], padding: 'valid', name }), [x.t]) };
        break;
      }
      case 'GlobalAveragePool':
        y = { t: apply(L.globalAveragePooling2d({ name }), [x.t]) };
        break;
      case 'Add':
        y = { t: apply(L.add({ name }), [x.t, get(n.inputs[1]).t]) };
        break;
      case 'Flatten': {
        const shape = x.t.shape;
        if (shape.length === 2) y = x; // after GlobalAveragePooling2D: already flat
        else {
          y = { t: apply(L.flatten({ name }), [x.t]) };
          if (shape.length === 4) y.flatHWC = [shape[1], shape[2], shape[3]] as [number, number, number];
        }
        break;
      }
      case 'Gemm': {
        if (attrNum(n, 'alpha', 1) !== 1 || attrNum(n, 'beta', 1) !== 1 || attrNum(n, 'transA', 0) !== 0)
          throw new Error(`${n.name}: Gemm with alpha/beta/transA is not supported here`);
        const kernel = gemmToKernel(init(n.inputs[1]), attrNum(n, 'transB', 0) === 1, x.flatHWC ?? null);
        const hasBias = n.inputs.length > 2 && !!n.inputs[2];
        const layer = L.dense({ units: kernel.shape[1] as number, useBias: hasBias, name });
        y = { t: apply(layer, [x.t]) };
        weights.push({ layer, values: [kernel, ...(hasBias ? [tf.tensor1d(f32data(init(n.inputs[2])))] : [])] });
        break;
      }
      default:
        throw new Error(`${g.source}: node '${n.name}' (${n.opType}) is not supported by the tf.js writer`);
    }
    for (const o of n.outputs) vals.set(o, y);
  }
  const model = tf.model({ inputs: input, outputs: get(g.outputs[0].name).t, name: 'fixture' });
  for (const { layer, values } of weights) {
    layer.setWeights(values);
    values.forEach((v) => v.dispose());
  }

  let saved: tf.io.ModelArtifacts | undefined;
  await model.save(
    tf.io.withSaveHandler(async (a) => {
      saved = a;
      return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
    }),
  );
  if (!saved?.weightData || !saved.weightSpecs) throw new Error('tf.js saved no weights');
  mkdirSync(dir, { recursive: true });
  const shard = 'group1-shard1of1.bin';
  const data = saved.weightData as ArrayBuffer;
  writeFileSync(path.join(dir, shard), new Uint8Array(data));
  const file = path.join(dir, 'model.json');
  writeFileSync(
    file,
    JSON.stringify({
      format: 'layers-model',
      generatedBy: 'lrp-lens test/tools/tfjs-writer.ts',
      modelTopology: saved.modelTopology,
      weightsManifest: [{ paths: [shard], weights: saved.weightSpecs }],
    }),
  );
  return { file, layerNames, model };
}

/** NCHW -> NHWC of a float32 tensor (rank 4). */
export function nchwToNhwc(t: Tensor): Tensor {
  const [N, C, H, W] = t.dims;
  const src = t.data as Float32Array;
  const dst = new Float32Array(src.length);
  for (let n = 0; n < N; n++)
    for (let c = 0; c < C; c++)
      for (let h = 0; h < H; h++)
        for (let w = 0; w < W; w++) dst[((n * H + h) * W + w) * C + c] = src[((n * C + c) * H + h) * W + w];
  return { dtype: 'float32', dims: [N, H, W, C], data: dst };
}
