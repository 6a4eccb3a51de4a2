// Values of small constant tensors (shape arithmetic, ops on initializers), computed while shapes
// are inferred so that Reshape targets, Slice bounds and the like are known; fold.ts turns them
// into initializers.
import { DType, Tensor, TensorData, attrString, numel, stridesOf, toNumbers } from '../graph';
import { allocData } from '../../import/onnx';
import { NodeCtx, TensorInfo } from './context';
import { permOf, shapeRange, sliceAxes } from './structure';

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

export const VALUES: Record<string, ValueFn> = {
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
export const ZERO_COPY = new Set(['Identity', 'Reshape', 'Flatten', 'Squeeze', 'Unsqueeze']);

/** Ops whose value follows from input shapes alone. */
export const SHAPE_ONLY = new Set(['Shape', 'Size']);
