// Static shape inference and constant folding over the graph IR (ONNX opset-17 semantics).
import {
  DType,
  Graph,
  ModelError,
  Node,
  Tensor,
  TensorData,
  attrInt,
  attrInts,
  attrString,
  describeNode,
  numel,
  stridesOf,
  toNumbers,
  topoSort,
} from './graph';
import { allocData, dtypeFromOnnx } from '../import/onnx';

export interface TensorInfo {
  dtype: DType;
  dims: number[];
}

// ---------- helpers ----------

class NodeCtx {
  constructor(
    readonly g: Graph,
    readonly node: Node,
    readonly ins: (TensorInfo | undefined)[],
    readonly values: Map<string, Tensor>,
  ) {}

  err(msg: string): ModelError {
    return new ModelError(`${describeNode(this.g, this.node)}: ${msg}`);
  }

  /** Info of input i (must be present). */
  in(i: number): TensorInfo {
    const t = this.ins[i];
    if (!t) throw this.err(`input ${i} is missing`);
    return t;
  }

  has(i: number): boolean {
    return !!this.node.inputs[i];
  }

  /** The constant values of input i, as numbers; undefined when the input is omitted. */
  opt(i: number): number[] | undefined {
    const name = this.node.inputs[i];
    if (!name) return undefined;
    const v = this.values.get(name);
    if (!v) throw this.err(`input '${name}' must be a constant (or computable from static shapes)`);
    return toNumbers(v);
  }

  need(i: number): number[] {
    const v = this.opt(i);
    if (!v) throw this.err(`input ${i} is required`);
    return v;
  }

  int(name: string, dflt: number): number {
    return attrInt(this.node, name, dflt);
  }

  ints(name: string): number[] | undefined {
    return attrInts(this.node, name, undefined);
  }

  axis(a: number, rank: number): number {
    if (a < -rank || a >= rank) throw this.err(`axis ${a} is out of range for rank ${rank}`);
    return a < 0 ? a + rank : a;
  }
}

type ShapeFn = (c: NodeCtx) => TensorInfo[];

export function broadcastDims(list: number[][], err: () => ModelError): number[] {
  const rank = Math.max(0, ...list.map((d) => d.length));
  const out = new Array<number>(rank).fill(1);
  for (const dims of list)
    for (let i = 0; i < dims.length; i++) {
      const k = rank - dims.length + i;
      const d = dims[i];
      if (d === out[k] || d === 1) continue;
      if (out[k] !== 1) throw err();
      out[k] = d;
    }
  return out;
}

const same: ShapeFn = (c) => [{ ...c.in(0), dims: [...c.in(0).dims] }];

function broadcastOf(dtype: (c: NodeCtx) => DType, from = 0): ShapeFn {
  return (c) => {
    const dims = c.ins.slice(from).filter((x): x is TensorInfo => !!x).map((x) => x.dims);
    const out = broadcastDims(dims, () => c.err(`cannot broadcast shapes ${dims.map((d) => `[${d}]`).join(' and ')}`));
    return [{ dtype: dtype(c), dims: out }];
  };
}

const firstType = (c: NodeCtx): DType => c.in(0).dtype;
const boolType = (): DType => 'bool';
const elementwise = broadcastOf(firstType);
const comparison = broadcastOf(boolType);

// ---------- convolution and pooling ----------

interface Window {
  kernel: number[];
  strides: number[];
  dilations: number[];
  pads: number[];
}

function windowOf(c: NodeCtx, spatial: number[], kernel: number[]): Window {
  const r = spatial.length;
  const strides = c.ints('strides') ?? new Array<number>(r).fill(1);
  const dilations = c.ints('dilations') ?? new Array<number>(r).fill(1);
  const autoPad = attrString(c.node, 'auto_pad', 'NOTSET');
  let pads = c.ints('pads') ?? new Array<number>(2 * r).fill(0);
  if (autoPad === 'VALID') pads = new Array<number>(2 * r).fill(0);
  else if (autoPad === 'SAME_UPPER' || autoPad === 'SAME_LOWER') {
    pads = new Array<number>(2 * r).fill(0);
    for (let i = 0; i < r; i++) {
      const out = Math.ceil(spatial[i] / strides[i]);
      const total = Math.max(0, (out - 1) * strides[i] + (kernel[i] - 1) * dilations[i] + 1 - spatial[i]);
      const small = Math.floor(total / 2);
      pads[i] = autoPad === 'SAME_UPPER' ? small : total - small;
      pads[i + r] = total - pads[i];
    }
  } else if (autoPad !== 'NOTSET') throw c.err(`auto_pad '${autoPad}' is not supported`);
  return { kernel, strides, dilations, pads };
}

/** Output spatial size of a sliding window; ceil mode drops a last window starting in the end padding. */
function windowOut(w: Window, spatial: number[], ceil: boolean): number[] {
  const r = spatial.length;
  return spatial.map((d, i) => {
    const span = d + w.pads[i] + w.pads[i + r] - ((w.kernel[i] - 1) * w.dilations[i] + 1);
    let o = (ceil ? Math.ceil(span / w.strides[i]) : Math.floor(span / w.strides[i])) + 1;
    if (ceil && (o - 1) * w.strides[i] >= d + w.pads[i]) o--;
    return o;
  });
}

const conv: ShapeFn = (c) => {
  const x = c.in(0);
  const w = c.in(1);
  const spatial = x.dims.slice(2);
  const kernel = c.ints('kernel_shape') ?? w.dims.slice(2);
  const group = c.int('group', 1);
  if (x.dims[1] !== w.dims[1] * group)
    throw c.err(`input has ${x.dims[1]} channels but the weight expects ${w.dims[1] * group} (group ${group})`);
  const out = windowOut(windowOf(c, spatial, kernel), spatial, false);
  if (out.some((d) => d <= 0)) throw c.err(`output would be empty: [${out}]`);
  return [{ dtype: x.dtype, dims: [x.dims[0], w.dims[0], ...out] }];
};

const convTranspose: ShapeFn = (c) => {
  const x = c.in(0);
  const w = c.in(1);
  const spatial = x.dims.slice(2);
  const r = spatial.length;
  const channels = w.dims[1] * c.int('group', 1);
  const given = c.ints('output_shape');
  if (given) return [{ dtype: x.dtype, dims: [x.dims[0], channels, ...given.slice(given.length - r)] }];
  const kernel = c.ints('kernel_shape') ?? w.dims.slice(2);
  const strides = c.ints('strides') ?? new Array<number>(r).fill(1);
  const dil = c.ints('dilations') ?? new Array<number>(r).fill(1);
  const outPad = c.ints('output_padding') ?? new Array<number>(r).fill(0);
  const autoPad = attrString(c.node, 'auto_pad', 'NOTSET');
  const pads = autoPad === 'NOTSET' ? (c.ints('pads') ?? new Array<number>(2 * r).fill(0)) : new Array<number>(2 * r).fill(0);
  const out = spatial.map((d, i) =>
    autoPad === 'SAME_UPPER' || autoPad === 'SAME_LOWER'
      ? d * strides[i]
      : strides[i] * (d - 1) + outPad[i] + (kernel[i] - 1) * dil[i] + 1 - pads[i] - pads[i + r],
  );
  return [{ dtype: x.dtype, dims: [x.dims[0], channels, ...out] }];
};

const pool: ShapeFn = (c) => {
  const x = c.in(0);
  const spatial = x.dims.slice(2);
  const kernel = c.ints('kernel_shape');
  if (!kernel) throw c.err('kernel_shape is required');
  const out = windowOut(windowOf(c, spatial, kernel), spatial, c.int('ceil_mode', 0) === 1);
  const dims = [x.dims[0], x.dims[1], ...out];
  return [{ dtype: x.dtype, dims }, { dtype: 'int64', dims: [...dims] }];
};

const globalPool: ShapeFn = (c) => {
  const x = c.in(0);
  return [{ dtype: x.dtype, dims: [x.dims[0], x.dims[1], ...x.dims.slice(2).map(() => 1)] }];
};

// ---------- linear algebra ----------

const gemm: ShapeFn = (c) => {
  const a = c.in(0).dims;
  const b = c.in(1).dims;
  const [m, k1] = c.int('transA', 0) ? [a[1], a[0]] : [a[0], a[1]];
  const [k2, n] = c.int('transB', 0) ? [b[1], b[0]] : [b[0], b[1]];
  if (k1 !== k2) throw c.err(`inner dimensions differ: ${k1} vs ${k2}`);
  return [{ dtype: c.in(0).dtype, dims: [m, n] }];
};

const matmul: ShapeFn = (c) => {
  const a = c.in(0).dims;
  const b = c.in(1).dims;
  const a2 = a.length === 1 ? [1, a[0]] : a;
  const b2 = b.length === 1 ? [b[0], 1] : b;
  if (a2[a2.length - 1] !== b2[b2.length - 2]) throw c.err(`cannot multiply [${a}] by [${b}]`);
  const batch = broadcastDims([a2.slice(0, -2), b2.slice(0, -2)], () => c.err(`cannot broadcast [${a}] and [${b}]`));
  const dims = [...batch];
  if (a.length > 1) dims.push(a2[a2.length - 2]);
  if (b.length > 1) dims.push(b2[b2.length - 1]);
  return [{ dtype: c.in(0).dtype, dims }];
};

// ---------- reductions ----------

function reduceDims(c: NodeCtx, dims: number[], axes: number[] | undefined): number[] {
  const keep = c.int('keepdims', 1) === 1;
  if (!axes || axes.length === 0) {
    if (c.int('noop_with_empty_axes', 0)) return [...dims];
    axes = dims.map((_, i) => i);
  }
  const set = new Set(axes.map((a) => c.axis(a, dims.length)));
  return dims.flatMap((d, i) => (set.has(i) ? (keep ? [1] : []) : [d]));
}

const reduce: ShapeFn = (c) => {
  const x = c.in(0);
  const axes = c.has(1) ? c.opt(1) : c.ints('axes');
  return [{ dtype: x.dtype, dims: reduceDims(c, x.dims, axes) }];
};

const argReduce: ShapeFn = (c) => [{ dtype: 'int64', dims: reduceDims(c, c.in(0).dims, [c.int('axis', 0)]) }];

// ---------- shape manipulation ----------

const flatten: ShapeFn = (c) => {
  const d = c.in(0).dims;
  let axis = c.int('axis', 1);
  if (axis < 0) axis += d.length;
  return [{ dtype: c.in(0).dtype, dims: [numel(d.slice(0, axis)), numel(d.slice(axis))] }];
};

const reshape: ShapeFn = (c) => {
  const x = c.in(0);
  const shape = c.need(1);
  const allowZero = c.int('allowzero', 0) === 1;
  const dims = shape.map((s, i) => (s === 0 && !allowZero ? x.dims[i] : s));
  const minus = dims.indexOf(-1);
  if (minus >= 0) {
    const rest = numel(dims.filter((_, i) => i !== minus));
    dims[minus] = rest === 0 ? 0 : numel(x.dims) / rest;
  }
  if (!Number.isInteger(dims[minus] ?? 0) || numel(dims) !== numel(x.dims))
    throw c.err(`cannot reshape [${x.dims}] to [${shape}]`);
  return [{ dtype: x.dtype, dims }];
};

const squeeze: ShapeFn = (c) => {
  const d = c.in(0).dims;
  const axes = (c.has(1) ? c.opt(1) : c.ints('axes'))?.map((a) => c.axis(a, d.length));
  const drop = new Set(axes ?? d.flatMap((x, i) => (x === 1 ? [i] : [])));
  for (const a of drop) if (d[a] !== 1) throw c.err(`cannot squeeze axis ${a} of size ${d[a]}`);
  return [{ dtype: c.in(0).dtype, dims: d.filter((_, i) => !drop.has(i)) }];
};

const unsqueeze: ShapeFn = (c) => {
  const d = c.in(0).dims;
  const axes = c.has(1) ? c.need(1) : c.ints('axes');
  if (!axes) throw c.err('axes are required');
  const rank = d.length + axes.length;
  const set = new Set(axes.map((a) => c.axis(a, rank)));
  const out: number[] = [];
  let k = 0;
  for (let i = 0; i < rank; i++) out.push(set.has(i) ? 1 : d[k++]);
  return [{ dtype: c.in(0).dtype, dims: out }];
};

const permOf = (c: NodeCtx, rank: number): number[] =>
  c.ints('perm') ?? Array.from({ length: rank }, (_, i) => rank - 1 - i);

const transpose: ShapeFn = (c) => {
  const d = c.in(0).dims;
  return [{ dtype: c.in(0).dtype, dims: permOf(c, d.length).map((p) => d[p]) }];
};

const concat: ShapeFn = (c) => {
  const parts = c.ins.filter((x): x is TensorInfo => !!x);
  const axis = c.axis(c.int('axis', 0), parts[0].dims.length);
  const dims = [...parts[0].dims];
  dims[axis] = parts.reduce((s, p) => s + p.dims[axis], 0);
  return [{ dtype: parts[0].dtype, dims }];
};

const split: ShapeFn = (c) => {
  const x = c.in(0);
  const axis = c.axis(c.int('axis', 0), x.dims.length);
  const d = x.dims[axis];
  const n = c.node.outputs.length;
  let sizes = (c.has(1) ? c.opt(1) : c.ints('split')) ?? undefined;
  if (!sizes) {
    const chunk = Math.ceil(d / n);
    sizes = Array.from({ length: n }, (_, i) => Math.max(0, Math.min(chunk, d - i * chunk)));
  }
  if (sizes.reduce((s, v) => s + v, 0) !== d) throw c.err(`split sizes [${sizes}] do not add up to ${d}`);
  return sizes.map((s) => {
    const dims = [...x.dims];
    dims[axis] = s;
    return { dtype: x.dtype, dims };
  });
};

interface SliceAxis {
  start: number;
  step: number;
  len: number;
}

/** Per-axis start/step/length of a Slice, with ONNX's clamping rules. */
function sliceAxes(c: NodeCtx, dims: number[]): SliceAxis[] {
  const starts = c.need(1);
  const ends = c.need(2);
  const axes = (c.opt(3) ?? starts.map((_, i) => i)).map((a) => c.axis(a, dims.length));
  const steps = c.opt(4) ?? starts.map(() => 1);
  const out: SliceAxis[] = dims.map((d) => ({ start: 0, step: 1, len: d }));
  axes.forEach((a, i) => {
    const d = dims[a];
    const step = steps[i];
    if (step === 0) throw c.err('slice step 0');
    let s = starts[i] < 0 ? starts[i] + d : starts[i];
    let e = ends[i] < 0 ? ends[i] + d : ends[i];
    if (step > 0) {
      s = Math.min(Math.max(s, 0), d);
      e = Math.min(Math.max(e, 0), d);
    } else {
      s = Math.min(Math.max(s, 0), d - 1);
      e = Math.min(Math.max(e, -1), d - 1);
    }
    out[a] = { start: s, step, len: Math.max(0, Math.ceil((e - s) / step)) };
  });
  return out;
}

const slice: ShapeFn = (c) => [{ dtype: c.in(0).dtype, dims: sliceAxes(c, c.in(0).dims).map((a) => a.len) }];

const pad: ShapeFn = (c) => {
  const d = c.in(0).dims;
  const pads = c.has(1) ? c.need(1) : c.ints('pads');
  if (!pads || pads.length !== 2 * d.length) throw c.err(`pads must have ${2 * d.length} values`);
  return [{ dtype: c.in(0).dtype, dims: d.map((x, i) => x + pads[i] + pads[i + d.length]) }];
};

const expand: ShapeFn = (c) => {
  const d = c.in(0).dims;
  const shape = c.need(1);
  return [{ dtype: c.in(0).dtype, dims: broadcastDims([d, shape], () => c.err(`cannot expand [${d}] to [${shape}]`)) }];
};

function shapeRange(c: NodeCtx, rank: number): [number, number] {
  const clamp = (v: number): number => Math.min(Math.max(v < 0 ? v + rank : v, 0), rank);
  return [clamp(c.int('start', 0)), clamp(c.int('end', rank))];
}

const shapeOp: ShapeFn = (c) => {
  const [s, e] = shapeRange(c, c.in(0).dims.length);
  return [{ dtype: 'int64', dims: [Math.max(0, e - s)] }];
};

const gather: ShapeFn = (c) => {
  const d = c.in(0).dims;
  const axis = c.axis(c.int('axis', 0), d.length);
  return [{ dtype: c.in(0).dtype, dims: [...d.slice(0, axis), ...c.in(1).dims, ...d.slice(axis + 1)] }];
};

const constantOfShape: ShapeFn = (c) => {
  const v = c.node.attrs.value;
  const dtype = v && v.type === 'tensor' ? v.value.dtype : 'float32';
  return [{ dtype, dims: c.need(0) }];
};

const range: ShapeFn = (c) => {
  const [start] = c.need(0);
  const [limit] = c.need(1);
  const [delta] = c.need(2);
  if (delta === 0) throw c.err('delta is 0');
  return [{ dtype: c.in(0).dtype, dims: [Math.max(0, Math.ceil((limit - start) / delta))] }];
};

const tile: ShapeFn = (c) => {
  const reps = c.need(1);
  return [{ dtype: c.in(0).dtype, dims: c.in(0).dims.map((d, i) => d * reps[i]) }];
};

const oneHot: ShapeFn = (c) => {
  const [depth] = c.need(1);
  const d = c.in(0).dims;
  const axis = c.axis(c.int('axis', -1), d.length + 1);
  return [{ dtype: c.in(2).dtype, dims: [...d.slice(0, axis), depth, ...d.slice(axis)] }];
};

const resize: ShapeFn = (c) => {
  const d = c.in(0).dims;
  const sizes = c.opt(3);
  const scales = c.opt(2);
  if (sizes && sizes.length) return [{ dtype: c.in(0).dtype, dims: sizes }];
  if (!scales || !scales.length) throw c.err('needs scales or sizes');
  return [{ dtype: c.in(0).dtype, dims: d.map((x, i) => Math.floor(x * scales[i])) }];
};

const topK: ShapeFn = (c) => {
  const d = [...c.in(0).dims];
  const [k] = c.need(1);
  d[c.axis(c.int('axis', -1), d.length)] = k;
  return [{ dtype: c.in(0).dtype, dims: d }, { dtype: 'int64', dims: [...d] }];
};

const cast: ShapeFn = (c) => {
  const to = c.int('to', 1);
  const dtype = dtypeFromOnnx(to) ?? (to === 11 ? 'float64' : undefined);
  if (!dtype) throw c.err(`cast to ONNX type ${to} is not supported`);
  return [{ dtype, dims: [...c.in(0).dims] }];
};

const dropout: ShapeFn = (c) => [{ ...c.in(0) }, { dtype: 'bool', dims: [...c.in(0).dims] }];

const layerNorm: ShapeFn = (c) => {
  const d = c.in(0).dims;
  const axis = c.axis(c.int('axis', -1), d.length);
  const stat = d.map((x, i) => (i < axis ? x : 1));
  return [{ ...c.in(0) }, { dtype: 'float32', dims: stat }, { dtype: 'float32', dims: [...stat] }];
};

const constant: ShapeFn = (c) => {
  const v = c.node.attrs.value;
  if (!v || v.type !== 'tensor') throw c.err('only Constant with a tensor value is supported here');
  return [{ dtype: v.value.dtype, dims: [...v.value.dims] }];
};

const UNARY = [
  'Sqrt', 'Neg', 'Abs', 'Sign', 'Exp', 'Log', 'Reciprocal', 'Relu', 'LeakyRelu', 'Clip', 'Sigmoid', 'HardSigmoid',
  'HardSwish', 'Tanh', 'Elu', 'Selu', 'Gelu', 'Softplus', 'Softsign', 'Erf', 'Identity', 'BatchNormalization',
  'Softmax', 'LogSoftmax', 'Hardmax', 'Floor', 'Ceil', 'Round', 'Sin', 'Cos', 'PRelu', 'InstanceNormalization', 'LRN',
  'Mish', 'Celu', 'ThresholdedRelu', 'ScatterElements', 'ScatterND', 'Trilu',
];
const BINARY = ['Add', 'Sub', 'Mul', 'Div', 'Pow', 'Mod', 'Max', 'Min', 'Sum', 'Mean', 'BitShift'];
const COMPARE = ['Less', 'Greater', 'GreaterOrEqual', 'LessOrEqual', 'Equal', 'And', 'Or', 'Xor'];

const SHAPES: Record<string, ShapeFn> = {
  ...Object.fromEntries(UNARY.map((op) => [op, same])),
  ...Object.fromEntries(BINARY.map((op) => [op, elementwise])),
  ...Object.fromEntries(COMPARE.map((op) => [op, comparison])),
  Not: (c) => [{ dtype: 'bool', dims: [...c.in(0).dims] }],
  IsNaN: (c) => [{ dtype: 'bool', dims: [...c.in(0).dims] }],
  Where: broadcastOf((c) => c.in(1).dtype),
  Cast: cast,
  CastLike: (c) => [{ dtype: c.in(1).dtype, dims: [...c.in(0).dims] }],
  Dropout: dropout,
  LayerNormalization: layerNorm,
  Conv: conv,
  ConvTranspose: convTranspose,
  MaxPool: pool,
  AveragePool: pool,
  LpPool: pool,
  GlobalAveragePool: globalPool,
  GlobalMaxPool: globalPool,
  Gemm: gemm,
  MatMul: matmul,
  ReduceMean: reduce,
  ReduceSum: reduce,
  ReduceMax: reduce,
  ReduceMin: reduce,
  ReduceProd: reduce,
  ReduceL1: reduce,
  ReduceL2: reduce,
  ReduceSumSquare: reduce,
  ReduceLogSumExp: reduce,
  ArgMax: argReduce,
  ArgMin: argReduce,
  OneHot: oneHot,
  Flatten: flatten,
  Reshape: reshape,
  Squeeze: squeeze,
  Unsqueeze: unsqueeze,
  Transpose: transpose,
  Concat: concat,
  Split: split,
  Slice: slice,
  Pad: pad,
  Expand: expand,
  Shape: shapeOp,
  Size: () => [{ dtype: 'int64', dims: [] }],
  Gather: gather,
  GatherElements: (c) => [{ dtype: c.in(0).dtype, dims: [...c.in(1).dims] }],
  ConstantOfShape: constantOfShape,
  Range: range,
  Tile: tile,
  Resize: resize,
  TopK: topK,
  Constant: constant,
};

// ---------- values of small constant tensors ----------

type Scalar = number | bigint;
type ValueFn = (c: NodeCtx, ins: Tensor[], out: TensorInfo[]) => Tensor[];

function store(dst: TensorData, i: number, v: Scalar): void {
  if (dst instanceof BigInt64Array) dst[i] = typeof v === 'bigint' ? v : BigInt(Math.trunc(v));
  else dst[i] = Number(v);
}

function makeTensor(info: TensorInfo, get: (i: number) => Scalar): Tensor {
  const n = numel(info.dims);
  const data = allocData(info.dtype, n);
  for (let i = 0; i < n; i++) store(data, i, get(i));
  return { dtype: info.dtype, dims: [...info.dims], data };
}

/** Calls f(flat, index) for every element of dims in row-major order (index is reused). */
function forEachIndex(dims: number[], f: (flat: number, idx: number[]) => void): void {
  const n = numel(dims);
  const idx = new Array<number>(dims.length).fill(0);
  for (let flat = 0; flat < n; flat++) {
    f(flat, idx);
    for (let k = dims.length - 1; k >= 0; k--) {
      if (++idx[k] < dims[k]) break;
      idx[k] = 0;
    }
  }
}

/** Source offsets of a broadcast read of `dims` into `outDims`. */
function broadcastOffsets(dims: number[], outDims: number[]): Int32Array {
  const s = stridesOf(dims);
  const lead = outDims.length - dims.length;
  const off = new Int32Array(numel(outDims));
  forEachIndex(outDims, (flat, idx) => {
    let o = 0;
    for (let k = 0; k < dims.length; k++) if (dims[k] !== 1) o += idx[k + lead] * s[k];
    off[flat] = o;
  });
  return off;
}

/** Rearrangement by an offset table: out[i] = src[off[i]]. */
function pick(src: Tensor, info: TensorInfo, off: ArrayLike<number>): Tensor {
  return makeTensor(info, (i) => src.data[off[i]]);
}

const reshaped: ValueFn = (_c, [x], [o]) => [{ dtype: x.dtype, dims: [...o.dims], data: x.data }];

type Arith = { f: (a: number, b: number) => number; b: (a: bigint, b: bigint) => bigint };
const isIntType = (d: DType): boolean => d !== 'float32' && d !== 'float64';

function arith(op: Arith): ValueFn {
  return (c, [a, b], [o]) => {
    const oa = broadcastOffsets(a.dims, o.dims);
    const ob = broadcastOffsets(b.dims, o.dims);
    const int = isIntType(o.dtype);
    if (a.data instanceof BigInt64Array && b.data instanceof BigInt64Array) {
      const [da, db] = [a.data, b.data];
      return [makeTensor(o, (i) => op.b(da[oa[i]], db[ob[i]]))];
    }
    return [makeTensor(o, (i) => {
      const v = op.f(Number(a.data[oa[i]]), Number(b.data[ob[i]]));
      return int ? Math.trunc(v) : v;
    })];
  };
}

const ARITH: Record<string, Arith> = {
  Add: { f: (a, b) => a + b, b: (a, b) => a + b },
  Sub: { f: (a, b) => a - b, b: (a, b) => a - b },
  Mul: { f: (a, b) => a * b, b: (a, b) => a * b },
  Div: { f: (a, b) => a / b, b: (a, b) => a / b },
  // ONNX Mod with fmod 0: the sign of the divisor (Python's %)
  Mod: { f: (a, b) => a - Math.floor(a / b) * b, b: (a, b) => ((a % b) + b) % b },
  Max: { f: Math.max, b: (a, b) => (a > b ? a : b) },
  Min: { f: Math.min, b: (a, b) => (a < b ? a : b) },
  Pow: { f: Math.pow, b: (a, b) => a ** b },
};

/** Element-wise unary ops on small constants. */
const UNARY_VALUES: Record<string, (v: number) => number> = {
  Neg: (v) => -v,
  Abs: Math.abs,
  Floor: Math.floor,
  Ceil: Math.ceil,
  Sqrt: Math.sqrt,
  Sign: Math.sign,
  Reciprocal: (v) => 1 / v,
  Exp: Math.exp,
  Log: Math.log,
  Not: (v) => (v ? 0 : 1),
};

function unaryValue(f: (v: number) => number): ValueFn {
  return (_c, [x], [o]) => [makeTensor(o, (i) => f(Number(x.data[i])))];
}

function compareValue(f: (a: number, b: number) => boolean): ValueFn {
  return (_c, [a, b], [o]) => {
    const oa = broadcastOffsets(a.dims, o.dims);
    const ob = broadcastOffsets(b.dims, o.dims);
    return [makeTensor(o, (i) => (f(Number(a.data[oa[i]]), Number(b.data[ob[i]])) ? 1 : 0))];
  };
}

const COMPARE_VALUES: Record<string, (a: number, b: number) => boolean> = {
  Less: (a, b) => a < b,
  LessOrEqual: (a, b) => a <= b,
  Greater: (a, b) => a > b,
  GreaterOrEqual: (a, b) => a >= b,
  And: (a, b) => !!a && !!b,
  Or: (a, b) => !!a || !!b,
  Xor: (a, b) => !!a !== !!b,
};

const tileValue: ValueFn = (_c, [x], [o]) => {
  const s = stridesOf(x.dims);
  const off = new Int32Array(numel(o.dims));
  forEachIndex(o.dims, (flat, idx) => {
    let v = 0;
    for (let k = 0; k < idx.length; k++) v += (idx[k] % x.dims[k]) * s[k];
    off[flat] = v;
  });
  return [pick(x, o, off)];
};

/** ReduceSum/Prod/Max/Min/Mean of a small constant (shape arithmetic such as window counts). */
function reduceValue(init: number, f: (acc: number, v: number) => number, mean = false): ValueFn {
  return (c, [x], [o]) => {
    const axesIn = c.has(1) ? c.opt(1) : c.ints('axes');
    const all = !axesIn || axesIn.length === 0;
    if (all && c.int('noop_with_empty_axes', 0)) return [makeTensor(o, (i) => x.data[i])];
    const axes = new Set((all ? x.dims.map((_, i) => i) : axesIn).map((a) => c.axis(a, x.dims.length)));
    const keptDims = x.dims.map((d, i) => (axes.has(i) ? 1 : d));
    const ks = stridesOf(keptDims);
    const acc = new Float64Array(numel(keptDims)).fill(init);
    let count = 1;
    for (const a of axes) count *= x.dims[a];
    forEachIndex(x.dims, (flat, idx) => {
      let k = 0;
      for (let j = 0; j < idx.length; j++) if (!axes.has(j)) k += idx[j] * ks[j];
      acc[k] = f(acc[k], Number(x.data[flat]));
    });
    return [makeTensor(o, (i) => (mean ? acc[i] / count : acc[i]))];
  };
}

const padValue: ValueFn = (c, [x, padsT, valueT], [o]) => {
  if (attrString(c.node, 'mode', 'constant') !== 'constant' || c.has(3)) throw c.err('only constant pads fold');
  const pads = toNumbers(padsT);
  const fillV = valueT ? Number(valueT.data[0]) : 0;
  const r = x.dims.length;
  const s = stridesOf(x.dims);
  return [makeTensor(o, (() => {
    const vals = new Float64Array(numel(o.dims));
    forEachIndex(o.dims, (flat, idx) => {
      let off = 0;
      for (let k = 0; k < r; k++) {
        const j = idx[k] - pads[k];
        if (j < 0 || j >= x.dims[k]) {
          vals[flat] = fillV;
          return;
        }
        off += j * s[k];
      }
      vals[flat] = Number(x.data[off]);
    });
    return (i: number) => vals[i];
  })())];
};

const castValue: ValueFn = (_c, [x], [o]) => {
  if (o.dtype === 'bool') return [makeTensor(o, (i) => (Number(x.data[i]) !== 0 ? 1 : 0))];
  if (o.dtype === 'uint8') return [makeTensor(o, (i) => Math.trunc(Number(x.data[i])) & 255)];
  return [makeTensor(o, (i) => x.data[i])];
};

const gatherValue: ValueFn = (c, [x, idx], [o]) => {
  const axis = c.axis(c.int('axis', 0), x.dims.length);
  const inner = numel(x.dims.slice(axis + 1));
  const d = x.dims[axis];
  const ids = toNumbers(idx).map((v) => (v < 0 ? v + d : v));
  const per = ids.length * inner;
  return [makeTensor(o, (i) => {
    const outer = Math.floor(i / per);
    const r = i % per;
    return x.data[(outer * d + ids[Math.floor(r / inner)]) * inner + (r % inner)];
  })];
};

const concatValue: ValueFn = (c, ins, [o]) => {
  const axis = c.axis(c.int('axis', 0), o.dims.length);
  const inner = numel(o.dims.slice(axis + 1));
  const outer = numel(o.dims.slice(0, axis));
  const data = allocData(o.dtype, numel(o.dims));
  let k = 0;
  for (let b = 0; b < outer; b++)
    for (const t of ins) {
      const chunk = t.dims[axis] * inner;
      for (let j = 0; j < chunk; j++) store(data, k++, t.data[b * chunk + j]);
    }
  return [{ dtype: o.dtype, dims: [...o.dims], data }];
};

const sliceValue: ValueFn = (c, [x], [o]) => {
  const axes = sliceAxes(c, x.dims);
  const s = stridesOf(x.dims);
  const off = new Int32Array(numel(o.dims));
  forEachIndex(o.dims, (flat, idx) => {
    let v = 0;
    for (let k = 0; k < idx.length; k++) v += (axes[k].start + idx[k] * axes[k].step) * s[k];
    off[flat] = v;
  });
  return [pick(x, o, off)];
};

const transposeValue: ValueFn = (c, [x], [o]) => {
  const perm = permOf(c, x.dims.length);
  const s = stridesOf(x.dims);
  const off = new Int32Array(numel(o.dims));
  forEachIndex(o.dims, (flat, idx) => {
    let v = 0;
    for (let k = 0; k < idx.length; k++) v += idx[k] * s[perm[k]];
    off[flat] = v;
  });
  return [pick(x, o, off)];
};

/**
 * ScatterND on constants (reduction 'none'): a copy of the data with the slices addressed by the
 * last axis of `indices` replaced by `updates`; Swin's attention mask is built this way from
 * `mask[h0:h1, w0:w1] = k` assignments.
 */
const scatterNdValue: ValueFn = (c, [x, idx, upd], [o]) => {
  if (attrString(c.node, 'reduction', 'none') !== 'none') throw c.err('only ScatterND without reduction folds');
  const k = idx.dims[idx.dims.length - 1];
  const xs = stridesOf(x.dims);
  const slice = numel(x.dims.slice(k));
  const count = numel(idx.dims.slice(0, -1));
  const data = allocData(o.dtype, numel(o.dims));
  for (let i = 0; i < data.length; i++) store(data, i, x.data[i]);
  for (let j = 0; j < count; j++) {
    let base = 0;
    for (let a = 0; a < k; a++) {
      let v = Number(idx.data[j * k + a]);
      if (v < 0) v += x.dims[a];
      if (v < 0 || v >= x.dims[a]) throw c.err(`index ${v} is out of range for axis ${a}`);
      base += v * xs[a];
    }
    for (let e = 0; e < slice; e++) store(data, base + e, upd.data[j * slice + e]);
  }
  return [{ dtype: o.dtype, dims: [...o.dims], data }];
};

const VALUES: Record<string, ValueFn> = {
  Shape: (c, _ins, [o]) => {
    const dims = c.in(0).dims;
    const [s] = shapeRange(c, dims.length);
    return [makeTensor(o, (i) => dims[s + i])];
  },
  Size: (c, _ins, [o]) => [makeTensor(o, () => numel(c.in(0).dims))],
  Identity: reshaped,
  Reshape: reshaped,
  Flatten: reshaped,
  Squeeze: reshaped,
  Unsqueeze: reshaped,
  Cast: castValue,
  Gather: gatherValue,
  Concat: concatValue,
  Slice: sliceValue,
  Transpose: transposeValue,
  ...Object.fromEntries(Object.entries(ARITH).map(([op, f]) => [op, arith(f)])),
  ConstantOfShape: (c, _ins, [o]) => {
    const v = c.node.attrs.value;
    const fillV = v && v.type === 'tensor' ? v.value.data[0] : 0;
    return [makeTensor(o, () => fillV)];
  },
  Range: (_c, [start, , delta], [o]) => {
    const s = Number(start.data[0]);
    const d = Number(delta.data[0]);
    return [makeTensor(o, (i) => s + i * d)];
  },
  Equal: (_c, [a, b], [o]) => {
    const oa = broadcastOffsets(a.dims, o.dims);
    const ob = broadcastOffsets(b.dims, o.dims);
    return [makeTensor(o, (i) => (a.data[oa[i]] === b.data[ob[i]] ? 1 : 0))];
  },
  Where: (_c, [cond, x, y], [o]) => {
    const [oc, ox, oy] = [cond, x, y].map((t) => broadcastOffsets(t.dims, o.dims));
    return [makeTensor(o, (i) => (cond.data[oc[i]] ? x.data[ox[i]] : y.data[oy[i]]))];
  },
  Expand: (_c, [x], [o]) => [pick(x, o, broadcastOffsets(x.dims, o.dims))],
  Tile: tileValue,
  Pad: padValue,
  ...Object.fromEntries(Object.entries(UNARY_VALUES).map(([op, f]) => [op, unaryValue(f)])),
  ...Object.fromEntries(Object.entries(COMPARE_VALUES).map(([op, f]) => [op, compareValue(f)])),
  ReduceSum: reduceValue(0, (a, v) => a + v),
  ReduceMean: reduceValue(0, (a, v) => a + v, true),
  ReduceProd: reduceValue(1, (a, v) => a * v),
  ReduceMax: reduceValue(-Infinity, Math.max),
  ReduceMin: reduceValue(Infinity, Math.min),
  GatherElements: (c, [x, idx], [o]) => {
    const axis = c.axis(c.int('axis', 0), x.dims.length);
    const xs = stridesOf(x.dims);
    const off = new Int32Array(numel(o.dims));
    forEachIndex(o.dims, (flat, ix) => {
      let v = 0;
      for (let k = 0; k < ix.length; k++) {
        let j = k === axis ? Number(idx.data[flat]) : ix[k];
        if (k === axis && j < 0) j += x.dims[axis];
        v += j * xs[k];
      }
      off[flat] = v;
    });
    return [pick(x, o, off)];
  },
  ScatterND: scatterNdValue,
};

/** Ops whose value shares its input's data: free at any size. */
const ZERO_COPY = new Set(['Identity', 'Reshape', 'Flatten', 'Squeeze', 'Unsqueeze']);

/** Ops whose value follows from input shapes alone. */
const SHAPE_ONLY = new Set(['Shape', 'Size']);

// ---------- propagation ----------

interface Propagation {
  infos: Map<string, TensorInfo>;
  values: Map<string, Tensor>;
}

interface Options {
  batch: number;
  /** Throw on anything that cannot be inferred (else leave it unknown). */
  strict: boolean;
  /** Largest tensor whose value is computed. */
  valueLimit: number;
}

function inputInfos(g: Graph, o: Options): Map<string, TensorInfo> {
  const infos = new Map<string, TensorInfo>();
  for (const [k, t] of g.initializers) infos.set(k, { dtype: t.dtype, dims: [...t.dims] });
  for (const v of g.inputs) {
    const bad = v.shape.findIndex((d, i) => typeof d === 'string' && i > 0);
    if (bad >= 0) {
      if (o.strict)
        throw new ModelError(`${g.source}: input '${v.name}' has a symbolic dimension '${v.shape[bad]}' (axis ${bad}); only the batch axis may be symbolic`);
      continue;
    }
    infos.set(v.name, { dtype: v.dtype, dims: v.shape.map((d) => (typeof d === 'number' ? d : o.batch)) });
  }
  return infos;
}

function computeValues(c: NodeCtx, out: TensorInfo[], p: Propagation, o: Options): void {
  const f = VALUES[c.node.opType];
  if (!f) return;
  if (!ZERO_COPY.has(c.node.opType) && out.some((x) => numel(x.dims) > o.valueLimit)) return;
  const ins: Tensor[] = [];
  if (!SHAPE_ONLY.has(c.node.opType))
    for (const name of c.node.inputs) {
      const v = p.values.get(name);
      if (name && !v) return;
      if (v) ins.push(v);
    }
  let vals: Tensor[];
  try {
    vals = f(c, ins, out);
  } catch {
    return; // e.g. an integer division by zero: the value stays unknown, the shape is still fine
  }
  c.node.outputs.forEach((name, i) => {
    if (name && vals[i]) p.values.set(name, vals[i]);
  });
}

function inferNode(g: Graph, n: Node, p: Propagation, o: Options): void {
  const ins = n.inputs.map((x) => (x ? p.infos.get(x) : undefined));
  if (n.inputs.some((x, i) => x && !ins[i])) {
    if (!o.strict) return;
    throw new ModelError(`${describeNode(g, n)}: the shape of input '${n.inputs[ins.findIndex((v, i) => !v && n.inputs[i])]}' is unknown`);
  }
  const fn = SHAPES[n.opType];
  if (!fn) throw new ModelError(`${describeNode(g, n)}: op type '${n.opType}' is not supported`);
  const c = new NodeCtx(g, n, ins, p.values);
  const out = fn(c);
  n.outputs.forEach((name, i) => {
    if (name && out[i]) p.infos.set(name, out[i]);
  });
  computeValues(c, out, p, o);
}

function propagate(g: Graph, o: Options): Propagation {
  const p: Propagation = { infos: inputInfos(g, o), values: new Map(g.initializers) };
  for (const n of topoSort(g)) {
    try {
      inferNode(g, n, p, o);
    } catch (e) {
      if (o.strict) {
        if (e instanceof ModelError) throw e;
        throw new ModelError(`${describeNode(g, n)}: ${(e as Error).message}`);
      }
    }
  }
  return p;
}

/**
 * Static shape and dtype of every tensor (inputs, initializers, node outputs). A symbolic batch
 * axis (axis 0) of an input is set to `batch`; any other symbolic dimension is an error.
 */
export function inferShapes(g: Graph, batch = 1): Map<string, TensorInfo> {
  return propagate(g, { batch, strict: true, valueLimit: 1 << 12 }).infos;
}

/**
 * Values of every tensor computable without running the model (initializers, shape arithmetic on
 * static shapes, ops on constants), with the shapes, in a non-strict walk; for folding (fold.ts).
 */
export function propagateValues(g: Graph, batch: number, valueLimit: number): { infos: Map<string, TensorInfo>; values: Map<string, Tensor> } {
  return propagate(g, { batch, strict: false, valueLimit });
}
