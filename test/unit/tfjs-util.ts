// Shared helpers for the tf.js tests: run a Graph on onnxruntime-node (via exportOnnx) and compare.
import type * as ortTypes from 'onnxruntime-node';
import { exportOnnx } from '../../src/engine/onnx';
import type { Graph, Tensor } from '../../src/engine/graph';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const ort = require('onnxruntime-node') as typeof ortTypes;

export async function runOrt(g: Graph, feeds: Record<string, Tensor>): Promise<Record<string, Tensor>> {
  const session = await ort.InferenceSession.create(exportOnnx(g), { graphOptimizationLevel: 'disabled' });
  try {
    const f: Record<string, ortTypes.Tensor> = {};
    for (const [k, v] of Object.entries(feeds))
      f[k] = new ort.Tensor(v.dtype === 'int64' ? 'int64' : v.dtype === 'int32' ? 'int32' : 'float32', v.data as Float32Array, v.dims);
    const out = await session.run(f);
    const res: Record<string, Tensor> = {};
    for (const [k, v] of Object.entries(out)) {
      const dtype = v.type === 'float32' ? 'float32' : v.type === 'int64' ? 'int64' : v.type === 'int32' ? 'int32' : 'bool';
      res[k] = { dtype, dims: [...v.dims], data: v.data as Float32Array };
    }
    return res;
  } finally {
    await session.release();
  }
}

export function numbersOf(t: Tensor): number[] {
  return Array.from(t.data as ArrayLike<number | bigint>, (x) => Number(x));
}

/** Relative L2 distance ||a - b|| / max(||b||, tiny). */
export function relL2(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let num = 0;
  let den = 0;
  for (let i = 0; i < b.length; i++) {
    num += (a[i] - b[i]) ** 2;
    den += b[i] ** 2;
  }
  return Math.sqrt(num) / Math.max(Math.sqrt(den), 1e-30);
}

export function maxRelDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let scale = 0;
  for (let i = 0; i < b.length; i++) scale = Math.max(scale, Math.abs(b[i]));
  let m = 0;
  for (let i = 0; i < b.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m / Math.max(scale, 1e-30);
}

/** A deterministic pseudo-random generator (mulberry32). */
export function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function randn(dims: number[], r: () => number, scale = 1): Tensor {
  let n = 1;
  for (const d of dims) n *= d;
  const data = new Float32Array(n);
  for (let i = 0; i < n; i++) data[i] = (r() * 2 - 1) * scale;
  return { dtype: 'float32', dims: [...dims], data };
}
