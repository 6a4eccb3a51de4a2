// Build a VGG-16-shaped model (torchvision `vgg16` layout, 138 M parameters, about 553 MB) with
// deterministic random weights and write it as ONNX. Used by the end-to-end responsiveness test
// (test/e2e/engine.test.ts) and `npm run bench`; never committed, generated when missing.
//
//   node --import tsx scripts/make-vgg16.ts [OUT.onnx] [--force] [--classes N]
//
// Layout: 13 3x3 Conv (pad 1) + ReLU in five blocks (64, 64 | 128, 128 | 256 x3 | 512 x3 | 512 x3),
// each block closed by a 2x2/2 MaxPool; Flatten; Gemm 25088 -> 4096, ReLU, Gemm 4096 -> 4096, ReLU,
// Gemm 4096 -> N (1000). Weights: He normal (fan-in) from a seeded PRNG, small biases.
import { existsSync, mkdirSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { A, Graph, Node, Tensor, f32 } from '../src/engine/graph/graph';
import { exportOnnx } from '../src/engine/import/onnx';
import { seededRandom } from '../src/engine/random';

export const DEFAULT_VGG16 = '.cache/bench/vgg16.onnx';

const BLOCKS = [[64, 64], [128, 128], [256, 256, 256], [512, 512, 512], [512, 512, 512]];

export function buildVgg16(seed = 16, classes = 1000): Graph {
  const rand = seededRandom(seed);
  // a cheap approximately normal draw (sum of four uniforms, unit variance): 138 M draws stay fast
  const normal = (): number => (rand() + rand() + rand() + rand() - 2) * Math.sqrt(3);
  const nodes: Node[] = [];
  const initializers = new Map<string, Tensor>();
  const param = (name: string, dims: number[], scale: number): string => {
    const t = f32(dims);
    const d = t.data as Float32Array;
    for (let i = 0; i < d.length; i++) d[i] = scale * normal();
    initializers.set(name, t);
    return name;
  };
  const node = (name: string, opType: string, inputs: string[], attrs: Node['attrs'] = {}, output = name): string => {
    nodes.push({ name, opType, inputs, outputs: [output], attrs });
    return output;
  };
  let x = 'input';
  let cin = 3;
  let i = 0;
  for (const [b, block] of BLOCKS.entries()) {
    for (const cout of block) {
      const w = param(`features.${i}.weight`, [cout, cin, 3, 3], Math.sqrt(2 / (cin * 9)));
      const bias = param(`features.${i}.bias`, [cout], 0.01);
      x = node(`features.${i}`, 'Conv', [x, w, bias], { kernel_shape: A.ints([3, 3]), pads: A.ints([1, 1, 1, 1]), strides: A.ints([1, 1]) });
      x = node(`features.${i + 1}`, 'Relu', [x]);
      i += 2;
      cin = cout;
    }
    x = node(`pool${b + 1}`, 'MaxPool', [x], { kernel_shape: A.ints([2, 2]), strides: A.ints([2, 2]) });
    i++;
  }
  x = node('flatten', 'Flatten', [x], { axis: A.int(1) });
  const dense = (name: string, input: string, nin: number, nout: number, output = name): string => {
    const w = param(`${name}.weight`, [nout, nin], Math.sqrt(2 / nin));
    const bias = param(`${name}.bias`, [nout], 0.01);
    return node(name, 'Gemm', [input, w, bias], { transB: A.int(1) }, output);
  };
  x = node('classifier.1', 'Relu', [dense('classifier.0', x, 512 * 7 * 7, 4096)]);
  x = node('classifier.4', 'Relu', [dense('classifier.3', x, 4096, 4096)]);
  dense('classifier.6', x, 4096, classes, 'logits');
  return {
    inputs: [{ name: 'input', dtype: 'float32', shape: [1, 3, 224, 224] }],
    outputs: [{ name: 'logits', dtype: 'float32', shape: [1, classes] }],
    nodes,
    initializers,
    layout: 'NCHW',
    source: 'vgg16 (random weights)',
  };
}

/** Write the model to `out` unless it exists (or `force`); the write is atomic (temp file, rename). */
export function ensureVgg16(out = DEFAULT_VGG16, force = false, opts: { seed?: number; classes?: number } = {}): string {
  const path = resolve(out);
  if (force || !existsSync(path) || statSync(path).size === 0) {
    const t0 = performance.now();
    const bytes = exportOnnx(buildVgg16(opts.seed, opts.classes));
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path + '.tmp', bytes);
    renameSync(path + '.tmp', path);
    process.stderr.write(`make-vgg16: wrote ${out} (${(bytes.length / 2 ** 20).toFixed(1)} MiB) in ${((performance.now() - t0) / 1000).toFixed(1)} s\n`);
  }
  return path;
}

if (require.main === module) {
  const args = process.argv.slice(2);
  const ci = args.indexOf('--classes');
  const classes = ci >= 0 ? Number(args[ci + 1]) : 1000;
  const out = args.find((a, k) => !a.startsWith('--') && args[k - 1] !== '--classes') ?? DEFAULT_VGG16;
  try {
    ensureVgg16(out, args.includes('--force'), { classes });
  } catch (e) {
    process.stderr.write(`make-vgg16: ${(e as Error).message}\n`);
    process.exitCode = 1;
  }
}
