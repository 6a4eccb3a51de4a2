// LRP for structural nodes (reshapes, transposes, concatenation, padding, slicing with any step,
// splitting, broadcasting, tiling, gathering with constant indices, Where): relevance goes back by
// the inverse index map, which is also their gradient. A Concat with a constant operand (a class
// token) drops the relevance that reaches the constant.
import { A, ModelError, Node, asFloat32, attrInt, attrInts, f32, i64, numel, toNumbers } from '../../graph/graph';
import { Ctx, Handler, constOf, dimsOf, unbroadcast } from './context';

// ---------------- structural ----------------

export function reshapeBack(ctx: Ctx, n: Node, R: (string | null)[]): (string | null)[] {
  if (!R[0]) return [];
  return [ctx.b.reshape(R[0], dimsOf(ctx, n.inputs[0]))];
}

export function transposeBack(ctx: Ctx, n: Node, R: (string | null)[]): (string | null)[] {
  if (!R[0]) return [];
  const rank = dimsOf(ctx, n.inputs[0]).length;
  const perm = attrInts(n, 'perm', undefined) ?? Array.from({ length: rank }, (_, i) => rank - 1 - i);
  const inv = new Array<number>(rank);
  perm.forEach((p, i) => (inv[p] = i));
  return [ctx.b.op('Transpose', [R[0]], { perm: A.ints(inv) })];
}

export function concatBack(ctx: Ctx, n: Node, R: (string | null)[]): (string | null)[] {
  if (!R[0]) return [];
  const outD = dimsOf(ctx, n.outputs[0]);
  let axis = attrInt(n, 'axis', 0);
  if (axis < 0) axis += outD.length;
  const sizes = n.inputs.map((i) => dimsOf(ctx, i)[axis]);
  const parts = ctx.b.node('Split', [R[0], ctx.b.ints(sizes)], { axis: A.int(axis) }, n.inputs.length);
  return parts.map((p, i) => (ctx.isAct(n.inputs[i]) ? p : null));
}

export function padBack(ctx: Ctx, n: Node, R: (string | null)[]): (string | null)[] {
  if (!R[0]) return [];
  const mode = n.attrs.mode && n.attrs.mode.type === 'string' ? n.attrs.mode.value : 'constant';
  if (mode !== 'constant')
    throw new ModelError(`${ctx.g.source}: node '${n.name}' (Pad): mode '${mode}' is not supported (only constant)`);
  const inD = dimsOf(ctx, n.inputs[0]);
  const pads = n.inputs[1] ? asFloat32(constOf(ctx, n, 1, 'pads')) : new Float32Array(2 * inD.length);
  const rank = inD.length;
  let axes = Array.from({ length: rank }, (_, i) => i);
  if (n.inputs[3]) axes = Array.from(asFloat32(constOf(ctx, n, 3, 'axes'))).map((a) => (a < 0 ? a + rank : a));
  const starts: number[] = [];
  const ends: number[] = [];
  axes.forEach((ax, k) => {
    starts.push(pads[k]);
    ends.push(pads[k] + inD[ax]);
  });
  const b = ctx.b;
  if (pads.some((p) => p < 0))
    throw new ModelError(`${ctx.g.source}: node '${n.name}' (Pad): negative pads are not supported`);
  return [b.op('Slice', [R[0], b.ints(starts), b.ints(ends), b.ints(axes)])];
}

export function sliceBack(ctx: Ctx, n: Node, R: (string | null)[]): (string | null)[] {
  if (!R[0]) return [];
  const { b } = ctx;
  const inD = dimsOf(ctx, n.inputs[0]);
  const rank = inD.length;
  const starts = Array.from(asFloat32(constOf(ctx, n, 1, 'starts')));
  const axes = n.inputs[3] ? Array.from(asFloat32(constOf(ctx, n, 3, 'axes'))) : starts.map((_, i) => i);
  const steps = n.inputs[4] ? Array.from(asFloat32(constOf(ctx, n, 4, 'steps'))) : starts.map(() => 1);
  let r = R[0];
  const cur = [...dimsOf(ctx, n.outputs[0])];
  const pads = new Array<number>(2 * rank).fill(0);
  axes.forEach((a0, k) => {
    const a = a0 < 0 ? a0 + rank : a0;
    const dim = inD[a];
    const step = steps[k];
    if (step === 0) throw new ModelError(`${ctx.g.source}: node '${n.name}' (Slice): step 0`);
    const len = cur[a];
    if (len === 0) throw new ModelError(`${ctx.g.source}: node '${n.name}' (Slice): an empty slice carries no relevance`);
    // the first input position the slice reads, in ascending order
    let s = starts[k] < 0 ? starts[k] + dim : starts[k];
    s = step > 0 ? Math.min(Math.max(s, 0), dim) : Math.min(Math.max(s, 0), dim - 1);
    let lo = s;
    if (step < 0) {
      // read backwards: reverse the relevance along this axis, then it is an ascending slice
      r = b.op('Slice', [r, b.ints([-1]), b.ints([-(2 ** 62)]), b.ints([a]), b.ints([-1])]);
      lo = s + (len - 1) * step;
    }
    const st = Math.abs(step);
    if (st > 1) {
      // spread each element over `st` positions, the first holding it: [.., len, st] -> [.., len * st]
      const withStep = [...cur.slice(0, a + 1), 1, ...cur.slice(a + 1)];
      const padSpec = new Array<number>(2 * (rank + 1)).fill(0);
      padSpec[rank + 1 + a + 1] = st - 1;
      r = b.op('Pad', [b.reshape(r, withStep), b.ints(padSpec)]);
      const spread = [...cur];
      spread[a] = len * st;
      r = b.reshape(r, spread);
      const keep = (len - 1) * st + 1;
      r = b.op('Slice', [r, b.ints([0]), b.ints([keep]), b.ints([a])]);
      cur[a] = keep;
    }
    pads[a] = lo;
    pads[a + rank] = dim - lo - cur[a];
    cur[a] = dim;
  });
  return [b.op('Pad', [r, b.ints(pads)])];
}

export function splitBack(ctx: Ctx, n: Node, R: (string | null)[]): (string | null)[] {
  const present = R.filter((r) => r);
  if (!present.length) return [];
  const { b } = ctx;
  const inD = dimsOf(ctx, n.inputs[0]);
  let axis = attrInt(n, 'axis', 0);
  if (axis < 0) axis += inD.length;
  const parts = n.outputs.map((o, i) => {
    if (R[i]) return R[i] as string;
    const d = dimsOf(ctx, o);
    return b.op('ConstantOfShape', [b.ints(d)], { value: A.tensor(f32([1], [0])) });
  });
  return [b.op('Concat', parts, { axis: A.int(axis) })];
}

export function expandBack(ctx: Ctx, n: Node, R: (string | null)[]): (string | null)[] {
  if (!R[0]) return [];
  return [unbroadcast(ctx, R[0], dimsOf(ctx, n.outputs[0]), dimsOf(ctx, n.inputs[0]))];
}

/** Constant integer values of an index input, negatives wrapped. */
function indexValues(ctx: Ctx, n: Node, i: number, dim: number): number[] {
  const t = ctx.g.initializers.get(n.inputs[i]);
  if (!t)
    throw new ModelError(`${ctx.g.source}: node '${n.name}' (${n.opType}): the indices must be constants (computed from the input size only) for LRP`);
  return toNumbers(t).map((v) => (v < 0 ? v + dim : v));
}

/** Gather with constant indices (the class token x[:, 0]): each output element goes back to its source. */
export function gatherBack(ctx: Ctx, n: Node, R: (string | null)[]): (string | null)[] {
  if (!R[0]) return [];
  const { b } = ctx;
  const inD = dimsOf(ctx, n.inputs[0]);
  let axis = attrInt(n, 'axis', 0);
  if (axis < 0) axis += inD.length;
  const D = inD[axis];
  const idx = indexValues(ctx, n, 1, D);
  const outer = numel(inD.slice(0, axis));
  const inner = numel(inD.slice(axis + 1));
  const K = idx.length;
  const r = b.reshape(R[0], [outer, K, inner]);
  let back: string;
  if (idx.every((v, k) => v === idx[0] + k)) back = b.op('Pad', [r, b.ints([0, idx[0], 0, 0, D - idx[0] - K, 0])]);
  else {
    // a one-hot [D, K] matrix sums the relevance of repeated indices
    const m = f32([D, K]);
    idx.forEach((v, k) => ((m.data as Float32Array)[v * K + k] = 1));
    back = b.op('MatMul', [b.constant(m, 'gather_onehot'), r]);
  }
  return [b.reshape(back, inD), null];
}

/** GatherElements with constant indices: scattered back, repeated indices summed. */
export function gatherElementsBack(ctx: Ctx, n: Node, R: (string | null)[]): (string | null)[] {
  if (!R[0]) return [];
  const { b } = ctx;
  const inD = dimsOf(ctx, n.inputs[0]);
  let axis = attrInt(n, 'axis', 0);
  if (axis < 0) axis += inD.length;
  const idx = indexValues(ctx, n, 1, inD[axis]);
  const idxD = dimsOf(ctx, n.inputs[1]);
  const zeros = b.op('ConstantOfShape', [b.ints(inD)], { value: A.tensor(f32([1], [0])) });
  return [
    b.op('ScatterElements', [zeros, b.constant(i64(idxD, idx), 'gather_idx'), R[0]], { axis: A.int(axis), reduction: A.string('add') }),
    null,
  ];
}

/** Tile: every copy's relevance goes back to the one source element. */
export function tileBack(ctx: Ctx, n: Node, R: (string | null)[]): (string | null)[] {
  if (!R[0]) return [];
  const { b } = ctx;
  const inD = dimsOf(ctx, n.inputs[0]);
  const reps = toNumbers(constOf(ctx, n, 1, 'repeats'));
  const split = inD.flatMap((d, i) => [reps[i], d]);
  const axes = inD.map((_, i) => 2 * i).filter((a) => split[a] !== 1);
  const r = b.reshape(R[0], split);
  return [b.reshape(axes.length ? b.op('ReduceSum', [r, b.ints(axes)], { keepdims: A.int(0) }) : r, inD), null];
}

/** Where: each output element's relevance goes to the operand it was taken from. */
export function whereBack(ctx: Ctx, n: Node, R: (string | null)[]): (string | null)[] {
  if (!R[0]) return [];
  const { b } = ctx;
  if (ctx.isAct(n.inputs[0]) && !ctx.isAct(n.inputs[1]) && !ctx.isAct(n.inputs[2]))
    throw new ModelError(`${ctx.g.source}: node '${n.name}' (Where): only the condition depends on the input; there is no operand to pass relevance to`);
  const outD = dimsOf(ctx, n.outputs[0]);
  const zero = b.scalar(0);
  return n.inputs.map((inp, i) => {
    if (i === 0 || !ctx.isAct(inp)) return null;
    const picked = b.op('Where', i === 1 ? [n.inputs[0], R[0] as string, zero] : [n.inputs[0], zero, R[0] as string]);
    return unbroadcast(ctx, picked, outD, dimsOf(ctx, inp));
  });
}

/** Structural ops route relevance back by their inverse index map, which is also their gradient. */
export const STRUCTURAL_HANDLERS: Record<string, Handler> = {
  Flatten: reshapeBack,
  Reshape: reshapeBack,
  Squeeze: reshapeBack,
  Unsqueeze: reshapeBack,
  Transpose: transposeBack,
  Concat: concatBack,
  Pad: padBack,
  Slice: sliceBack,
  Split: splitBack,
  Expand: expandBack,
  Gather: gatherBack,
  GatherElements: gatherElementsBack,
  Tile: tileBack,
  Where: whereBack,
};
