// Build a ResNet-50-shaped model (torchvision layout) with deterministic random weights and write
// it as ONNX for `npm run bench`. Never committed: it is about 100 MB and regenerated when missing.
//
//   node --import tsx scripts/make-resnet50.ts [OUT.onnx] [--force]
//
// Layout: stem 7x7/2 Conv+BN+ReLU, 3x3/2 MaxPool (pad 1), bottleneck stages [3, 4, 6, 3] (1x1, 3x3,
// 1x1 convs with BN; stride on the 3x3 as in torchvision v1.5; projection shortcut 1x1 Conv+BN with
// the stage's stride), residual Add then ReLU, GlobalAveragePool, Flatten, Gemm 2048 -> 1000.
// Weights: He (Kaiming normal, fan-in) from a seeded PRNG; BN gamma ~1, beta and running mean
// small, running var positive. Input `input` [1, 3, 224, 224], output `logits` [1, 1000].
import { existsSync, mkdirSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { A, Attr, Graph, Node, Tensor, f32 } from '../src/engine/graph/graph';
import { exportOnnx } from '../src/engine/import/onnx';
import { normalFrom, seededRandom } from '../src/engine/random';

export const DEFAULT_OUT = '.cache/bench/resnet50.onnx';


export function buildResNet50(seed = 50): Graph {
  const rand = seededRandom(seed);
  const normal = normalFrom(rand);
  const uniform = (lo: number, hi: number): number => lo + (hi - lo) * rand();

  const nodes: Node[] = [];
  const initializers = new Map<string, Tensor>();
  const param = (name: string, dims: number[], gen: () => number): string => {
    const t = f32(dims);
    const d = t.data as Float32Array;
    for (let i = 0; i < d.length; i++) d[i] = gen();
    initializers.set(name, t);
    return name;
  };
  const node = (name: string, opType: string, inputs: string[], attrs: Record<string, Attr> = {}): string => {
    nodes.push({ name, opType, inputs, outputs: [name], attrs });
    return name;
  };

  const conv = (name: string, x: string, cin: number, cout: number, k: number, stride: number): string => {
    const std = Math.sqrt(2 / (cin * k * k));
    const w = param(`${name}.weight`, [cout, cin, k, k], () => std * normal());
    const p = (k - 1) >> 1;
    return node(name, 'Conv', [x, w], {
      kernel_shape: A.ints([k, k]),
      strides: A.ints([stride, stride]),
      pads: A.ints([p, p, p, p]),
      dilations: A.ints([1, 1]),
      group: A.int(1),
    });
  };
  const bn = (name: string, x: string, c: number): string => {
    const gamma = param(`${name}.weight`, [c], () => uniform(0.8, 1.2));
    const beta = param(`${name}.bias`, [c], () => 0.05 * normal());
    const mean = param(`${name}.running_mean`, [c], () => 0.05 * normal());
    const v = param(`${name}.running_var`, [c], () => uniform(0.5, 1.5));
    return node(name, 'BatchNormalization', [x, gamma, beta, mean, v], { epsilon: A.float(1e-5) });
  };
  const relu = (name: string, x: string): string => node(name, 'Relu', [x]);

  let x = 'input';
  x = conv('conv1', x, 3, 64, 7, 2);
  x = bn('bn1', x, 64);
  x = relu('relu', x);
  x = node('maxpool', 'MaxPool', [x], {
    kernel_shape: A.ints([3, 3]),
    strides: A.ints([2, 2]),
    pads: A.ints([1, 1, 1, 1]),
  });

  let cin = 64;
  const stages: [number, number, number][] = [
    [64, 3, 1],
    [128, 4, 2],
    [256, 6, 2],
    [512, 3, 2],
  ];
  stages.forEach(([width, blocks, stride], si) => {
    const cout = width * 4;
    for (let bi = 0; bi < blocks; bi++) {
      const p = `layer${si + 1}.${bi}`;
      const s = bi === 0 ? stride : 1;
      let y = conv(`${p}.conv1`, x, cin, width, 1, 1);
      y = relu(`${p}.relu1`, bn(`${p}.bn1`, y, width));
      y = conv(`${p}.conv2`, y, width, width, 3, s);
      y = relu(`${p}.relu2`, bn(`${p}.bn2`, y, width));
      y = conv(`${p}.conv3`, y, width, cout, 1, 1);
      y = bn(`${p}.bn3`, y, cout);
      let short = x;
      if (bi === 0) short = bn(`${p}.downsample.1`, conv(`${p}.downsample.0`, x, cin, cout, 1, s), cout);
      x = relu(`${p}.relu3`, node(`${p}.add`, 'Add', [y, short]));
      cin = cout;
    }
  });

  x = node('avgpool', 'GlobalAveragePool', [x]);
  x = node('flatten', 'Flatten', [x], { axis: A.int(1) });
  const fcStd = Math.sqrt(1 / 2048);
  const fw = param('fc.weight', [1000, 2048], () => fcStd * normal());
  const fb = param('fc.bias', [1000], () => 0.01 * normal());
  nodes.push({ name: 'fc', opType: 'Gemm', inputs: [x, fw, fb], outputs: ['logits'], attrs: { transB: A.int(1) } });

  return {
    inputs: [{ name: 'input', dtype: 'float32', shape: [1, 3, 224, 224] }],
    outputs: [{ name: 'logits', dtype: 'float32', shape: [1, 1000] }],
    nodes,
    initializers,
    layout: 'NCHW',
    source: 'resnet50 (random weights)',
  };
}

/** Load the model in onnxruntime and run it once; throws unless the logits are [1, 1000] and finite. */
export async function verifyModel(path: string): Promise<{ ms: number; min: number; max: number }> {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const ort = require('onnxruntime-node') as typeof import('onnxruntime-node');
  const session = await ort.InferenceSession.create(path);
  try {
    const data = new Float32Array(3 * 224 * 224);
    const rand = seededRandom(7);
    for (let i = 0; i < data.length; i++) data[i] = rand() * 4 - 2;
    const t0 = performance.now();
    const out = await session.run({ input: new ort.Tensor('float32', data, [1, 3, 224, 224]) });
    const ms = performance.now() - t0;
    const logits = out.logits;
    if (!logits || logits.dims.join('x') !== '1x1000') throw new Error(`${path}: expected logits [1, 1000], got ${logits?.dims}`);
    const v = logits.data as Float32Array;
    if (!v.every(Number.isFinite)) throw new Error(`${path}: logits are not finite`);
    return { ms, min: Math.min(...v), max: Math.max(...v) };
  } finally {
    await session.release();
  }
}

/** Write the model unless it exists (or `force`); then verify it loads and runs. */
export async function ensureResNet50(out = DEFAULT_OUT, force = false): Promise<string> {
  return ensureGenerated('make-resnet50', out, buildResNet50, force);
}

/** Write a generated model to `out` unless it exists (or `force`); then verify it loads and runs. */
export async function ensureGenerated(tool: string, out: string, build: () => Graph, force = false): Promise<string> {
  const path = resolve(out);
  if (force || !existsSync(path) || statSync(path).size === 0) {
    const t0 = performance.now();
    const bytes = exportOnnx(build());
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path + '.tmp', bytes);
    // rename only after a complete write, so an interrupted run never leaves a truncated model
    renameSync(path + '.tmp', path);
    process.stderr.write(`${tool}: wrote ${out} (${(bytes.length / 2 ** 20).toFixed(1)} MB) in ${((performance.now() - t0) / 1000).toFixed(1)} s\n`);
  }
  const v = await verifyModel(path);
  process.stderr.write(
    `${tool}: ${out} runs in onnxruntime: logits [1, 1000] in [${v.min.toFixed(2)}, ${v.max.toFixed(2)}], ${v.ms.toFixed(1)} ms (first run)\n`,
  );
  return path;
}

if (require.main === module) {
  const args = process.argv.slice(2);
  const out = args.find((a) => !a.startsWith('--')) ?? DEFAULT_OUT;
  ensureResNet50(out, args.includes('--force')).catch((e: Error) => {
    process.stderr.write(`make-resnet50: ${e.message}\n`);
    process.exitCode = 1;
  });
}
