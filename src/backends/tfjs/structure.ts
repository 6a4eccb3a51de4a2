// Structural ops: reshapes, transposes, concatenation, splits, slices, pads, broadcasting and
// tiling, gathers and scatters, one-hot, shapes and constants. Most work on the logical (NCHW)
// tensor; Transpose, Concat and Pad keep an NHWC value physical where they can.
import * as tf from '@tensorflow/tfjs';
import { type DType, attrInt, attrInts, attrString, numel } from '../../engine/graph/graph';
import {
  type Ctx,
  type OpImpl,
  type Val,
  PHYS_AXIS,
  TO_NCHW,
  TO_NHWC,
  broadcastShapes,
  dims,
  fail,
  hostVal,
  inp,
  logical,
  normAxis,
  nums,
  opt,
  same,
  shapeOf,
  tfDtype,
  val,
  wrapIndex,
} from './value';

function reshapeTo(c: Ctx, v: Val, target: number[], allowZero: boolean): Val {
  const inShape = shapeOf(v);
  const shape = target.map((d, i) => (d === 0 && !allowZero ? inShape[i] : d));
  if (shape.filter((d) => d === -1).length > 1) fail(c, 'more than one -1 in the target shape');
  return val(tf.reshape(logical(v), shape), v.dtype);
}

const sliceOp: OpImpl = (c) => {
  const v = inp(c, 0);
  let x = logical(v);
  const shape = x.shape;
  const rank = x.rank;
  const starts = nums(inp(c, 1));
  const ends = nums(inp(c, 2));
  const axesV = opt(c, 3);
  const stepsV = opt(c, 4);
  const axes = axesV ? nums(axesV).map((a) => normAxis(a, rank)) : starts.map((_, i) => i);
  const steps = stepsV ? nums(stepsV) : starts.map(() => 1);
  const begin = new Array<number>(rank).fill(0);
  const end = [...shape];
  const stride = new Array<number>(rank).fill(1);
  const reverse: number[] = [];
  axes.forEach((a, i) => {
    const dim = shape[a];
    const st = steps[i];
    if (st === 0) fail(c, 'a step of 0');
    const norm = (p: number) => (p < 0 ? p + dim : p);
    let s0: number;
    let cnt: number;
    if (st > 0) {
      s0 = Math.min(Math.max(norm(starts[i]), 0), dim);
      const e = Math.min(Math.max(norm(ends[i]), 0), dim);
      cnt = Math.max(0, Math.ceil((e - s0) / st));
    } else {
      s0 = Math.min(Math.max(norm(starts[i]), 0), dim - 1);
      const e = Math.min(Math.max(norm(ends[i]), -1), dim - 1);
      cnt = Math.max(0, Math.ceil((s0 - e) / -st));
      reverse.push(a);
      s0 = dim - 1 - s0;
    }
    const as = Math.abs(st);
    begin[a] = s0;
    end[a] = cnt > 0 ? s0 + (cnt - 1) * as + 1 : s0;
    stride[a] = as;
  });
  if (reverse.length) x = tf.reverse(x, reverse);
  if (end.some((e, i) => e - begin[i] <= 0)) {
    const outShape = end.map((e, i) => Math.max(0, Math.ceil((e - begin[i]) / stride[i])));
    return [val(tf.zeros(outShape, x.dtype), v.dtype)];
  }
  return [val(tf.stridedSlice(x, begin, end, stride), v.dtype)];
};

const padOp: OpImpl = (c) => {
  const v = inp(c, 0);
  const rank = v.t.rank;
  const padsV = opt(c, 1);
  const raw = padsV ? nums(padsV) : (attrInts(c.node, 'pads', undefined) ?? []);
  const axesV = opt(c, 3);
  const axes = axesV ? nums(axesV).map((a) => normAxis(a, rank)) : [...Array(rank).keys()];
  const before = new Array<number>(rank).fill(0);
  const after = new Array<number>(rank).fill(0);
  axes.forEach((a, i) => {
    before[a] = raw[i];
    after[a] = raw[i + axes.length];
  });
  const cv = opt(c, 2);
  const value = cv ? (nums(cv)[0] ?? 0) : c.node.attrs.value ? attrInt(c.node, 'value', 0) : 0;
  const mode = attrString(c.node, 'mode', 'constant');
  // work physically when the value is NHWC
  const map = (arr: number[]) => (v.nhwc ? [arr[0], arr[2], arr[3], arr[1]] : arr);
  const b = map(before);
  const e = map(after);
  let x = v.t;
  // negative pads crop
  if (b.some((p) => p < 0) || e.some((p) => p < 0)) {
    const start = b.map((p) => Math.max(0, -p));
    const size = x.shape.map((d, i) => d - start[i] - Math.max(0, -e[i]));
    x = tf.slice(x, start, size);
  }
  const p = b.map((q, i): [number, number] => [Math.max(0, q), Math.max(0, e[i])]);
  let y: tf.Tensor;
  if (mode === 'constant') y = tf.pad(x, p, value);
  else if (mode === 'reflect') y = tf.mirrorPad(x, p, 'reflect');
  else if (mode === 'edge') {
    y = x;
    p.forEach(([lo, hi], a) => {
      if (!lo && !hi) return;
      const n = y.shape[a];
      const parts: tf.Tensor[] = [];
      const edge = (at: number, times: number) => {
        const begin = new Array<number>(y.rank).fill(0);
        begin[at === 0 ? a : a] = at;
        const size = [...y.shape];
        size[a] = 1;
        const reps = new Array<number>(y.rank).fill(1);
        reps[a] = times;
        return tf.tile(tf.slice(y, begin, size), reps);
      };
      if (lo) parts.push(edge(0, lo));
      parts.push(y);
      if (hi) parts.push(edge(n - 1, hi));
      y = tf.concat(parts, a);
    });
  } else fail(c, `pad mode '${mode}' is not supported`);
  return [same(v, y)];
};

const scatterElements: OpImpl = (c) => {
  const data = logical(inp(c, 0));
  const indices = logical(inp(c, 1));
  const updates = logical(inp(c, 2));
  const rank = data.rank;
  const axis = normAxis(attrInt(c.node, 'axis', 0), rank);
  const reduction = attrString(c.node, 'reduction', 'none');
  const idx = wrapIndex(indices, dims(data)[axis]);
  const full = tf.reshape(elementCoords(idx, axis, rank), [-1, rank]);
  const upd = tf.reshape(updates, [-1]);
  let y: tf.Tensor;
  if (reduction === 'add') y = tf.add(data, tf.scatterND(full, upd, data.shape));
  else if (reduction === 'none') y = tf.tensorScatterUpdate(data, full, upd);
  else return fail(c, `reduction '${reduction}' is not supported`);
  return [val(y, inp(c, 0).dtype)];
};

/** Coordinates [.., rank] for gatherND/scatterND: `idx` along `axis`, the element's own index elsewhere. */
function elementCoords(idx: tf.Tensor, axis: number, rank: number): tf.Tensor {
  const shape = idx.shape;
  const coords: tf.Tensor[] = [];
  for (let a = 0; a < rank; a++) {
    if (a === axis) coords.push(idx);
    else {
      const s = new Array<number>(rank).fill(1);
      s[a] = shape[a];
      coords.push(tf.broadcastTo(tf.reshape(tf.range(0, shape[a], 1, 'int32'), s), shape));
    }
  }
  return tf.stack(coords, rank);
}

const gatherElements: OpImpl = (c) => {
  const data = logical(inp(c, 0));
  const axis = normAxis(attrInt(c.node, 'axis', 0), data.rank);
  const idx = wrapIndex(logical(inp(c, 1)), dims(data)[axis]);
  return [val(tf.gatherND(data, elementCoords(idx, axis, data.rank)), inp(c, 0).dtype)];
};

/** Reshapes, transposes, concatenation, splitting, slicing, padding, gathering and scattering, constants. */
export const STRUCTURE_OPS: Record<string, OpImpl> = {
  GatherElements: gatherElements,
  Identity: (c) => [same(inp(c, 0), tf.clone(inp(c, 0).t))],
  Dropout: (c) => [same(inp(c, 0), tf.clone(inp(c, 0).t))],
  OneHot: (c) => {
    const iv = inp(c, 0);
    const depth = nums(inp(c, 1))[0];
    const values = inp(c, 2);
    const [off, on] = nums(values);
    const idx = wrapIndex(logical(iv), depth);
    // (the wasm OneHot kernel writes int32 whatever dtype is asked: build a 0/1 mask, then scale)
    const mask = tf.oneHot(idx, depth, 1, 0, 'int32');
    const outType = tfDtype(values.dtype) === 'int32' ? 'int32' : 'float32';
    let y: tf.Tensor = tf.add(tf.mul(tf.cast(mask, outType), tf.scalar(on - off, outType)), tf.scalar(off, outType));
    const rank = y.rank;
    const axis = normAxis(attrInt(c.node, 'axis', -1), rank);
    if (axis !== rank - 1) {
      const perm = [...Array(rank - 1).keys()];
      perm.splice(axis, 0, rank - 1);
      y = tf.transpose(y, perm);
    }
    return [val(y, values.dtype)];
  },
  Reshape: (c) => [reshapeTo(c, inp(c, 0), nums(inp(c, 1)), attrInt(c.node, 'allowzero', 0) === 1)],
  Flatten: (c) => {
    const v = inp(c, 0);
    const s = shapeOf(v);
    const axis = normAxis(attrInt(c.node, 'axis', 1), s.length);
    return [val(tf.reshape(logical(v), [numel(s.slice(0, axis)), numel(s.slice(axis))]), v.dtype)];
  },
  Squeeze: (c) => {
    const v = inp(c, 0);
    const s = shapeOf(v);
    const av = opt(c, 1);
    const raw = av ? nums(av) : attrInts(c.node, 'axes', undefined);
    const axes = raw ? raw.map((a) => normAxis(a, s.length)) : s.map((d, i) => (d === 1 ? i : -1)).filter((i) => i >= 0);
    return [val(tf.reshape(logical(v), s.filter((_, i) => !axes.includes(i))), v.dtype)];
  },
  Unsqueeze: (c) => {
    const v = inp(c, 0);
    const s = shapeOf(v);
    const av = opt(c, 1);
    const raw = av ? nums(av) : (attrInts(c.node, 'axes', undefined) ?? []);
    const r = s.length + raw.length;
    const axes = raw.map((a) => normAxis(a, r));
    const out: number[] = [];
    let k = 0;
    for (let i = 0; i < r; i++) out.push(axes.includes(i) ? 1 : s[k++]);
    return [val(tf.reshape(logical(v), out), v.dtype)];
  },
  Transpose: (c) => {
    const v = inp(c, 0);
    const rank = v.t.rank;
    const perm = attrInts(c.node, 'perm', undefined) ?? [...Array(rank).keys()].reverse();
    // NHWC <-> NCHW without moving data when the physical form already is the wanted one
    if (rank === 4 && v.nhwc && perm.join() === TO_NHWC.join()) return [val(tf.clone(v.t), v.dtype)];
    if (rank === 4 && !v.nhwc && perm.join() === TO_NCHW.join()) return [val(tf.clone(v.t), v.dtype, true)];
    return [val(tf.transpose(logical(v), perm), v.dtype)];
  },
  Concat: (c) => {
    const vs = c.inputs.filter((v): v is Val => !!v);
    const rank = vs[0].t.rank;
    const axis = normAxis(attrInt(c.node, 'axis', 0), rank);
    if (rank === 4 && vs.every((v) => v.nhwc)) return [val(tf.concat(vs.map((v) => v.t), PHYS_AXIS[axis]), vs[0].dtype, true)];
    return [val(tf.concat(vs.map(logical), axis), vs[0].dtype)];
  },
  Split: (c) => {
    const v = inp(c, 0);
    const x = logical(v);
    const axis = normAxis(attrInt(c.node, 'axis', 0), x.rank);
    const sv = opt(c, 1);
    const sizes = sv ? nums(sv) : attrInts(c.node, 'split', undefined);
    const n = c.node.outputs.length;
    let parts: tf.Tensor[];
    if (sizes) parts = tf.split(x, sizes, axis);
    else {
      const dim = x.shape[axis];
      const chunk = Math.ceil(dim / n);
      const s = new Array<number>(n).fill(chunk);
      s[n - 1] = dim - chunk * (n - 1);
      parts = tf.split(x, s, axis);
    }
    return parts.map((p) => val(p, v.dtype));
  },
  Slice: sliceOp,
  Pad: padOp,
  Expand: (c) => {
    const v = inp(c, 0);
    const shape = broadcastShapes(shapeOf(v), nums(inp(c, 1)));
    return [val(tf.broadcastTo(logical(v), shape), v.dtype)];
  },
  Tile: (c) => {
    const v = inp(c, 0);
    return [val(tf.tile(logical(v), nums(inp(c, 1))), v.dtype)];
  },
  Shape: (c) => {
    const s = shapeOf(inp(c, 0));
    const start = normAxis(attrInt(c.node, 'start', 0), s.length);
    const endA = c.node.attrs.end ? normAxis(attrInt(c.node, 'end', s.length), s.length) : s.length;
    return [val(tf.tensor1d(s.slice(start, endA), 'int32'), 'int64')];
  },
  Gather: (c) => {
    const v = inp(c, 0);
    const x = logical(v);
    const axis = normAxis(attrInt(c.node, 'axis', 0), x.rank);
    const idx = wrapIndex(logical(inp(c, 1)), dims(x)[axis]);
    return [val(tf.gather(x, idx, axis), v.dtype)];
  },
  Constant: (c) => {
    const a = c.node.attrs.value;
    if (!a || a.type !== 'tensor') return fail(c, 'only tensor-valued Constant nodes are supported');
    return [hostVal(a.value)];
  },
  ConstantOfShape: (c) => {
    const shape = nums(inp(c, 0));
    const a = c.node.attrs.value;
    const fill = a && a.type === 'tensor' ? Number(a.value.data[0]) : 0;
    const dtype: DType = a && a.type === 'tensor' ? a.value.dtype : 'float32';
    return [val(tf.fill(shape, fill, tfDtype(dtype)), dtype)];
  },
  ScatterElements: scatterElements,
};
