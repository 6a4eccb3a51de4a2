// Shape rules of structural ops: reshapes, squeezes, transposes, concatenation, splits, slices
// (ONNX clamping), pads, broadcasting and tiling, gathers, one-hot, resizes, shapes and constants.
// The slice, shape-range and permutation helpers serve the value rules too.
import { numel } from '../graph';
import { NodeCtx, ShapeFn, TensorInfo, broadcastDims } from './context';

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

export const permOf = (c: NodeCtx, rank: number): number[] =>
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
export function sliceAxes(c: NodeCtx, dims: number[]): SliceAxis[] {
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

export function shapeRange(c: NodeCtx, rank: number): [number, number] {
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

const constant: ShapeFn = (c) => {
  const v = c.node.attrs.value;
  if (!v || v.type !== 'tensor') throw c.err('only Constant with a tensor value is supported here');
  return [{ dtype: v.value.dtype, dims: [...v.value.dims] }];
};

/** Reshapes, transposes, concatenation, splits, slices, pads, gathers, shapes and constants. */
export const STRUCTURE_SHAPES: Record<string, ShapeFn> = {
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
  Constant: constant,
};
