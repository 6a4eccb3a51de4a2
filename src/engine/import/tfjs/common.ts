// Shared pieces of the tf.js importers: graph emission, host-side weight layout changes, padding.
import { A, type Attr, type Dim, type Graph, ModelError, type Node, type Tensor, f32, i64, numel, stridesOf } from '../../graph/graph';

/** NHWC -> NCHW and back. */
export const TO_NCHW = [0, 3, 1, 2];
export const TO_NHWC = [0, 2, 3, 1];
/** channels_last axis (rank 4) -> internal NCHW axis */
export const NHWC_TO_NCHW_AXIS = [0, 2, 3, 1];

export class Emitter {
  readonly g: Graph;
  private readonly taken = new Set<string>();

  constructor(source: string) {
    this.g = { inputs: [], outputs: [], nodes: [], initializers: new Map(), layout: 'NHWC', source };
  }

  /** A unique name based on `want`. */
  unique(want: string): string {
    let name = want;
    for (let k = 1; this.taken.has(name); k++) name = `${want}_${k}`;
    this.taken.add(name);
    return name;
  }

  /** Add a node named `name` (made unique); its single output tensor carries the same name. */
  op(opType: string, name: string, inputs: string[], attrs: Record<string, Attr> = {}): string {
    const n = this.unique(name);
    const node: Node = { name: n, opType, inputs, outputs: [n], attrs };
    this.g.nodes.push(node);
    return n;
  }

  init(name: string, t: Tensor): string {
    const n = this.unique(name);
    this.g.initializers.set(n, t);
    return n;
  }

  ints(name: string, v: number[]): string {
    return this.init(name, i64([v.length], v));
  }

  scalar(name: string, v: number): string {
    return this.init(name, f32([], [v]));
  }

  input(name: string, shape: Dim[]): string {
    const n = this.unique(name);
    this.g.inputs.push({ name: n, dtype: 'float32', shape });
    return n;
  }
}

/** Host-side transpose of a tensor. */
export function permute(t: Tensor, perm: number[]): Tensor {
  const dims = perm.map((p) => t.dims[p]);
  const src = t.data;
  const n = src.length;
  const inStrides = stridesOf(t.dims);
  const outStrides = stridesOf(dims);
  const data = new (src.constructor as new (n: number) => typeof src)(n);
  const rank = dims.length;
  const idx = new Array<number>(rank).fill(0);
  const srcStep = perm.map((p) => inStrides[p]);
  for (let o = 0; o < n; o++) {
    let s = 0;
    let rem = o;
    for (let a = 0; a < rank; a++) {
      idx[a] = Math.floor(rem / outStrides[a]);
      rem -= idx[a] * outStrides[a];
      s += idx[a] * srcStep[a];
    }
    (data as Float32Array)[o] = (src as Float32Array)[s];
  }
  return { dtype: t.dtype, dims, data };
}

export function reshaped(t: Tensor, dims: number[]): Tensor {
  if (numel(dims) !== t.data.length) throw new Error(`cannot reshape ${t.dims} to ${dims}`);
  return { dtype: t.dtype, dims: [...dims], data: t.data };
}

/** Keras/TF conv kernel [kh, kw, in, out] -> ONNX [out, in, kh, kw]. */
export const hwioToOihw = (t: Tensor): Tensor => permute(t, [3, 2, 0, 1]);

/** Depthwise kernel [kh, kw, C, M] -> ONNX [C*M, 1, kh, kw] (output channel c*M + m). */
export function depthwiseToOihw(t: Tensor): Tensor {
  const [kh, kw, c, m] = t.dims;
  const p = permute(t, [2, 3, 0, 1]);
  return reshaped(p, [c * m, 1, kh, kw]);
}

/** TF's SAME: total = max((ceil(in/s) - 1) * s + (k - 1) * d + 1 - in, 0), extra pad at the end. */
export function samePads(inSize: number, k: number, s: number, d: number): [number, number] {
  const out = Math.ceil(inSize / s);
  const total = Math.max(0, (out - 1) * s + (k - 1) * d + 1 - inSize);
  const begin = Math.floor(total / 2);
  return [begin, total - begin];
}

export function windowOut(inSize: number | null, k: number, s: number, d: number, same: boolean): number | null {
  if (inSize === null) return null;
  if (same) return Math.ceil(inSize / s);
  return Math.floor((inSize - ((k - 1) * d + 1)) / s) + 1;
}

/** Conv/pool attributes for a 2D window over known (or unknown) spatial sizes. */
export function windowAttrs(
  inHW: (number | null)[],
  k: number[],
  s: number[],
  d: number[],
  padding: string,
  explicitPads?: number[],
): Record<string, Attr> {
  const attrs: Record<string, Attr> = { kernel_shape: A.ints(k), strides: A.ints(s) };
  if (padding === 'same') {
    if (inHW.some((v) => v === null)) attrs.auto_pad = A.string('SAME_UPPER');
    else {
      const [t, b] = samePads(inHW[0] as number, k[0], s[0], d[0]);
      const [l, r] = samePads(inHW[1] as number, k[1], s[1], d[1]);
      attrs.pads = A.ints([t, l, b, r]);
    }
  } else if (padding === 'explicit' && explicitPads) attrs.pads = A.ints(explicitPads);
  else attrs.pads = A.ints([0, 0, 0, 0]);
  return attrs;
}

export function fail(source: string, what: string, why: string): never {
  throw new ModelError(`${source}: ${what}: ${why}`);
}

/** Broadcast two shapes (null = unknown). */
export function broadcast(a: (number | null)[], b: (number | null)[]): (number | null)[] {
  const r = Math.max(a.length, b.length);
  const out: (number | null)[] = [];
  for (let i = 0; i < r; i++) {
    const x = i - (r - a.length) >= 0 ? a[i - (r - a.length)] : 1;
    const y = i - (r - b.length) >= 0 ? b[i - (r - b.length)] : 1;
    out.push(x === 1 ? y : y === 1 ? x : (x ?? y));
  }
  return out;
}

export function toDims(shape: (number | null)[]): Dim[] {
  return shape.map((d, i) => (d === null ? (i === 0 ? 'batch' : `d${i}`) : d));
}

/** Element-wise activations both tf.js formats name (lower-cased, without '_'), as ONNX nodes. */
const ACTIVATIONS: Record<string, (e: Emitter, x: string, name: string, rank: number, alpha: number) => string> = {
  relu: (e, x, n) => e.op('Relu', n, [x]),
  relu6: (e, x, n) => e.op('Clip', n, [x, e.scalar(`${n}/min`, 0), e.scalar(`${n}/max`, 6)]),
  elu: (e, x, n) => e.op('Elu', n, [x], { alpha: A.float(1) }),
  selu: (e, x, n) => e.op('Selu', n, [x]),
  sigmoid: (e, x, n) => e.op('Sigmoid', n, [x]),
  hardsigmoid: (e, x, n) => e.op('HardSigmoid', n, [x], { alpha: A.float(0.2), beta: A.float(0.5) }),
  tanh: (e, x, n) => e.op('Tanh', n, [x]),
  softplus: (e, x, n) => e.op('Softplus', n, [x]),
  swish: (e, x, n) => e.op('Mul', n, [x, e.op('Sigmoid', `${n}/sigmoid`, [x])]),
  silu: (e, x, n) => e.op('Mul', n, [x, e.op('Sigmoid', `${n}/sigmoid`, [x])]),
  leakyrelu: (e, x, n, _rank, alpha) => e.op('LeakyRelu', n, [x], { alpha: A.float(alpha) }),
  softmax: (e, x, n, rank) => e.op('Softmax', n, [x], { axis: A.int(rank === 4 ? 1 : -1) }),
};

/**
 * Emit an activation by its Keras or TF name ('relu6', 'Relu6', 'hard_sigmoid', ...); null when
 * the name is not one of them. `alpha` is LeakyRelu's slope.
 */
export function emitActivation(e: Emitter, kind: string, x: string, name: string, rank: number, alpha = 0.2): string | null {
  const f = ACTIVATIONS[kind.toLowerCase().replace(/_/g, '')];
  return f ? f(e, x, name, rank, alpha) : null;
}
