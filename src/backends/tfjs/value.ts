// The values the tf.js backend computes with, and the helpers every op family shares.
//
// tf.js convolutions and pools are NHWC only, while the graph is NCHW. To avoid a transpose pair
// around every such op, a 4D value may be held "physically NHWC": `nhwc` is set and the tf.js
// tensor is the NHWC transpose of the logical NCHW tensor. Convs, pools, element-wise ops and
// channel-wise ops keep that form; everything else materialises the logical tensor.
import * as tf from '@tensorflow/tfjs';
import { type DType, type Graph, type Node, type Tensor, ModelError, describeNode, toNumbers } from '../../engine/graph/graph';

export interface Val {
  t: tf.Tensor;
  /** The ONNX dtype this value stands for (tf.js has no int64: int64 values live as int32). */
  dtype: DType;
  /** 4D only: `t` holds the NHWC transpose of the logical NCHW tensor. */
  nhwc: boolean;
  /** For initializers: the original tensor, read exactly for shapes, axes and bounds. */
  host?: Tensor;
}

export interface Ctx {
  node: Node;
  graph: Graph;
  inputs: (Val | undefined)[];
  /** Cache of tensors derived from constants (e.g. transposed weights), kept across runs. */
  derive(key: string, make: () => tf.Tensor): tf.Tensor;
}

export type OpImpl = (c: Ctx) => Val[];

export const TO_NHWC = [0, 2, 3, 1];
export const TO_NCHW = [0, 3, 1, 2];
/** logical NCHW axis -> physical NHWC axis */
export const PHYS_AXIS = [0, 3, 1, 2];

export function tfDtype(d: DType): 'float32' | 'int32' | 'bool' {
  if (d === 'bool') return 'bool';
  if (d === 'float32' || d === 'float64') return 'float32';
  return 'int32';
}

export function fail(c: Ctx, why: string): never {
  throw new ModelError(`${describeNode(c.graph, c.node)}: ${why}`);
}

export function val(t: tf.Tensor, dtype: DType, nhwc = false): Val {
  return { t, dtype, nhwc };
}

export function logical(v: Val): tf.Tensor {
  return v.nhwc ? tf.transpose(v.t, TO_NCHW) : v.t;
}

/** The NHWC tensor of a logical 4D NCHW value. */
export function physNhwc(v: Val): tf.Tensor4D {
  return (v.nhwc ? v.t : tf.transpose(v.t, TO_NHWC)) as tf.Tensor4D;
}

export function dims(t: tf.Tensor): number[] {
  return t.shape as number[];
}

export function shapeOf(v: Val): number[] {
  const s = dims(v.t);
  return v.nhwc ? [s[0], s[3], s[1], s[2]] : [...s];
}

export function inp(c: Ctx, i: number): Val {
  const v = c.inputs[i];
  if (!v) fail(c, `input ${i} is missing`);
  return v;
}

export function opt(c: Ctx, i: number): Val | undefined {
  return c.inputs[i];
}

/** Numbers of a (usually constant) input: exact for initializers, else read from the tensor. */
export function nums(v: Val): number[] {
  if (v.host) return toNumbers(v.host);
  return Array.from(v.t.dataSync() as ArrayLike<number>, Number);
}

export function normAxis(a: number, rank: number): number {
  return a < 0 ? a + rank : a;
}

export const int = (n: number) => tf.scalar(n, 'int32');

/** Negative indices count from the end of an axis of size n. */
export function wrapIndex(t: tf.Tensor, n: number): tf.Tensor {
  const i = tf.cast(t, 'int32');
  return tf.where(tf.less(i, int(0)), tf.add(i, int(n)), i);
}

export function same(v: Val, t: tf.Tensor): Val {
  return val(t, v.dtype, v.nhwc);
}

/** The cache key of input i when it is an initializer (for tensors derived from it), else null. */
export function constKey(c: Ctx, i: number): string | null {
  const v = c.inputs[i];
  return v?.host ? `${c.node.inputs[i]}` : null;
}

export function broadcastShapes(a: number[], b: number[]): number[] {
  const r = Math.max(a.length, b.length);
  const out: number[] = [];
  for (let i = 0; i < r; i++) {
    const x = a[a.length - r + i] ?? 1;
    const y = b[b.length - r + i] ?? 1;
    out.push(x === 1 ? y : x);
  }
  return out;
}

/** An engine tensor as a tf.js value (int64 as int32, clamped); `host` keeps the original. */
export function hostVal(t: Tensor): Val {
  const d = tfDtype(t.dtype);
  let data: Float32Array | Int32Array | Uint8Array;
  if (d === 'float32') data = t.data instanceof Float32Array ? t.data : Float32Array.from(t.data as ArrayLike<number>, Number);
  else if (d === 'int32') {
    data = new Int32Array(t.data.length);
    for (let i = 0; i < data.length; i++) data[i] = Math.max(-2147483648, Math.min(2147483647, Number(t.data[i])));
  } else data = Uint8Array.from(t.data as ArrayLike<number>, (x) => (Number(x) ? 1 : 0));
  return { t: tf.tensor(data, t.dims, d), dtype: t.dtype, nhwc: false, host: t };
}

/** A computed value back as an engine tensor of its ONNX dtype, in the logical layout. */
export function toHost(v: Val): Tensor {
  const t = logical(v);
  const dims = [...t.shape];
  const raw = t.dataSync();
  if (t !== v.t) t.dispose();
  const n = raw.length;
  switch (v.dtype) {
    case 'float32':
      return { dtype: 'float32', dims, data: raw instanceof Float32Array ? raw.slice() : Float32Array.from(raw as ArrayLike<number>) };
    case 'float64':
      return { dtype: 'float64', dims, data: Float64Array.from(raw as ArrayLike<number>) };
    case 'int64': {
      const o = new BigInt64Array(n);
      for (let i = 0; i < n; i++) o[i] = BigInt(Math.trunc(Number(raw[i])));
      return { dtype: 'int64', dims, data: o };
    }
    case 'int32':
      return { dtype: 'int32', dims, data: Int32Array.from(raw as ArrayLike<number>) };
    default:
      return { dtype: v.dtype, dims, data: Uint8Array.from(raw as ArrayLike<number>, (x) => (Number(x) ? 1 : 0)) };
  }
}
