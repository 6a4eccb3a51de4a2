// Build a ViT-B/16-shaped model (torchvision's vit_b_16 layout) with deterministic random weights
// and write it as ONNX (opset 17) for `npm run bench`. Never committed: it is about 330 MB and
// regenerated when missing.
//
//   node --import tsx scripts/make-vit-b16.ts [OUT.onnx] [--force]
//
// Layout, as torchvision's opset-17 export computes it: 16x16/16 Conv patch embedding 3 -> 768,
// Reshape + Transpose to 196 tokens, Concat of the class token, Add of the position embedding;
// 12 encoder blocks of LayerNormalization, one fused q/k/v MatMul + bias Add, heads split by
// Reshape/Transpose/Gather, q scaled by 1/8, MatMul q k^T, Softmax, MatMul with v, heads merged,
// output MatMul + Add, residual Add, LayerNormalization, MLP 768 -> 3072 -> 768 with exact GELU
// (x * 0.5 * (1 + erf(x / sqrt 2))), residual Add; a final LayerNormalization, the class token
// (Gather) and a Gemm 768 -> 1000. Weights: normal with std 1/sqrt(fan-in) from a seeded PRNG;
// LayerNorm gamma ~1, beta small. Input `input` [1, 3, 224, 224], output `logits` [1, 1000].
import { A, Attr, Graph, Node, Tensor, f32, i64 } from '../src/engine/graph/graph';
import { normalFrom, seededRandom } from '../src/engine/random';
import { ensureGenerated } from './make-resnet50';

export const DEFAULT_OUT = '.cache/bench/vit_b16.onnx';

export interface VitShape {
  image: number;
  patch: number;
  width: number;
  layers: number;
  heads: number;
  mlp: number;
  classes: number;
}

export const VIT_B16: VitShape = { image: 224, patch: 16, width: 768, layers: 12, heads: 12, mlp: 3072, classes: 1000 };

export function buildVit(s: VitShape = VIT_B16, seed = 16): Graph {
  const rand = seededRandom(seed);
  const normal = normalFrom(rand);
  const nodes: Node[] = [];
  const initializers = new Map<string, Tensor>();
  const param = (name: string, dims: number[], gen: () => number): string => {
    const t = f32(dims);
    const d = t.data as Float32Array;
    for (let i = 0; i < d.length; i++) d[i] = gen();
    initializers.set(name, t);
    return name;
  };
  const ints = (name: string, v: number[]): string => {
    initializers.set(name, i64([v.length], v));
    return name;
  };
  const scalar = (name: string, v: number): string => {
    initializers.set(name, f32([], [v]));
    return name;
  };
  const node = (name: string, opType: string, inputs: string[], attrs: Record<string, Attr> = {}): string => {
    nodes.push({ name, opType, inputs, outputs: [name], attrs });
    return name;
  };
  const dense = (name: string, x: string, cin: number, cout: number): string => {
    const std = 1 / Math.sqrt(cin);
    const w = param(`${name}.weight`, [cin, cout], () => std * normal());
    const b = param(`${name}.bias`, [cout], () => 0.02 * normal());
    return node(`${name}/Add`, 'Add', [node(`${name}/MatMul`, 'MatMul', [x, w]), b]);
  };
  const layerNorm = (name: string, x: string): string => {
    const g = param(`${name}.weight`, [s.width], () => 1 + 0.1 * normal());
    const b = param(`${name}.bias`, [s.width], () => 0.02 * normal());
    return node(name, 'LayerNormalization', [x, g, b], { axis: A.int(-1), epsilon: A.float(1e-6) });
  };

  const grid = s.image / s.patch;
  const tokens = grid * grid + 1;
  const headDim = s.width / s.heads;
  const D = s.width;

  // patch embedding and tokens
  const pstd = 1 / Math.sqrt(3 * s.patch * s.patch);
  const pw = param('conv_proj.weight', [D, 3, s.patch, s.patch], () => pstd * normal());
  const pb = param('conv_proj.bias', [D], () => 0.02 * normal());
  let x = node('conv_proj', 'Conv', ['input', pw, pb], {
    kernel_shape: A.ints([s.patch, s.patch]),
    strides: A.ints([s.patch, s.patch]),
  });
  x = node('patches/Reshape', 'Reshape', [x, ints('patches.shape', [1, D, grid * grid])]);
  x = node('patches/Transpose', 'Transpose', [x], { perm: A.ints([0, 2, 1]) });
  const cls = param('class_token', [1, 1, D], () => 0.02 * normal());
  x = node('tokens/Concat', 'Concat', [cls, x], { axis: A.int(1) });
  const pos = param('encoder.pos_embedding', [1, tokens, D], () => 0.02 * normal());
  x = node('tokens/AddPos', 'Add', [x, pos]);

  const qkvShape = ints('qkv.shape', [1, tokens, 3, s.heads, headDim]);
  const mergedShape = ints('heads.shape', [1, tokens, D]);
  const idx = [0, 1, 2].map((i) => {
    initializers.set(`index.${i}`, i64([], [i]));
    return `index.${i}`;
  });
  const scale = scalar('attention.scale', 1 / Math.sqrt(headDim));
  const sqrt2 = scalar('gelu.sqrt2', Math.SQRT2);
  const one = scalar('gelu.one', 1);
  const half = scalar('gelu.half', 0.5);

  for (let l = 0; l < s.layers; l++) {
    const p = `encoder.layers.${l}`;
    // attention
    const h = layerNorm(`${p}.ln_1`, x);
    const qkv = node(`${p}.attn/qkv/Reshape`, 'Reshape', [dense(`${p}.attn.in_proj`, h, D, 3 * D), qkvShape]);
    const heads = node(`${p}.attn/qkv/Transpose`, 'Transpose', [qkv], { perm: A.ints([2, 0, 3, 1, 4]) });
    const [q, k, v] = ['q', 'k', 'v'].map((n, i) => node(`${p}.attn/${n}`, 'Gather', [heads, idx[i]], { axis: A.int(0) }));
    const qs = node(`${p}.attn/q_scaled`, 'Mul', [q, scale]);
    const kt = node(`${p}.attn/k_t`, 'Transpose', [k], { perm: A.ints([0, 1, 3, 2]) });
    const scores = node(`${p}.attn/scores`, 'MatMul', [qs, kt]);
    const attn = node(`${p}.attn/Softmax`, 'Softmax', [scores], { axis: A.int(-1) });
    const ctx = node(`${p}.attn/context`, 'MatMul', [attn, v]);
    const merged = node(`${p}.attn/merge/Transpose`, 'Transpose', [ctx], { perm: A.ints([0, 2, 1, 3]) });
    const flat = node(`${p}.attn/merge/Reshape`, 'Reshape', [merged, mergedShape]);
    x = node(`${p}/Add_1`, 'Add', [x, dense(`${p}.attn.out_proj`, flat, D, D)]);
    // MLP with exact GELU
    const m = dense(`${p}.mlp.0`, layerNorm(`${p}.ln_2`, x), D, s.mlp);
    const erf = node(`${p}.mlp.1/Erf`, 'Erf', [node(`${p}.mlp.1/Div`, 'Div', [m, sqrt2])]);
    const gate = node(`${p}.mlp.1/Mul`, 'Mul', [m, node(`${p}.mlp.1/Add`, 'Add', [erf, one])]);
    const gelu = node(`${p}.mlp.1/Mul_1`, 'Mul', [gate, half]);
    x = node(`${p}/Add_2`, 'Add', [x, dense(`${p}.mlp.3`, gelu, s.mlp, D)]);
  }
  x = layerNorm('encoder.ln', x);
  initializers.set('class.index', i64([], [0]));
  x = node('class/Gather', 'Gather', [x, 'class.index'], { axis: A.int(1) });
  const hstd = 1 / Math.sqrt(D);
  const hw = param('heads.head.weight', [s.classes, D], () => hstd * normal());
  const hb = param('heads.head.bias', [s.classes], () => 0.02 * normal());
  nodes.push({ name: 'heads.head', opType: 'Gemm', inputs: [x, hw, hb], outputs: ['logits'], attrs: { transB: A.int(1) } });

  return {
    inputs: [{ name: 'input', dtype: 'float32', shape: [1, 3, s.image, s.image] }],
    outputs: [{ name: 'logits', dtype: 'float32', shape: [1, s.classes] }],
    nodes,
    initializers,
    layout: 'NCHW',
    source: 'vit_b_16 (random weights)',
  };
}

if (require.main === module) {
  const args = process.argv.slice(2);
  const out = args.find((a) => !a.startsWith('--')) ?? DEFAULT_OUT;
  ensureGenerated('make-vit-b16', out, () => buildVit(), args.includes('--force')).catch((e: Error) => {
    process.stderr.write(`make-vit-b16: ${e.message}\n`);
    process.exitCode = 1;
  });
}
