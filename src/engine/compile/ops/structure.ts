// LRP for structural nodes (reshapes, transposes, concatenation, padding, slicing, splitting,
// broadcasting): relevance goes back by the inverse index map, which is also their gradient.
import { A, ModelError, Node, asFloat32, attrInt, attrInts, f32 } from '../../graph/graph';
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
  const inD = dimsOf(ctx, n.inputs[0]);
  const rank = inD.length;
  const starts = Array.from(asFloat32(constOf(ctx, n, 1, 'starts')));
  const ends = Array.from(asFloat32(constOf(ctx, n, 2, 'ends')));
  const axes = n.inputs[3] ? Array.from(asFloat32(constOf(ctx, n, 3, 'axes'))) : starts.map((_, i) => i);
  const steps = n.inputs[4] ? Array.from(asFloat32(constOf(ctx, n, 4, 'steps'))) : starts.map(() => 1);
  if (steps.some((s) => s !== 1))
    throw new ModelError(`${ctx.g.source}: node '${n.name}' (Slice): steps other than 1 are not supported`);
  const pads = new Array<number>(2 * rank).fill(0);
  axes.forEach((a0, k) => {
    const a = a0 < 0 ? a0 + rank : a0;
    const dim = inD[a];
    let s = starts[k] < 0 ? starts[k] + dim : starts[k];
    let e = ends[k] < 0 ? ends[k] + dim : ends[k];
    s = Math.min(Math.max(s, 0), dim);
    e = Math.min(Math.max(e, 0), dim);
    pads[a] = s;
    pads[a + rank] = dim - Math.max(e, s);
  });
  return [ctx.b.op('Pad', [R[0], ctx.b.ints(pads)])];
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
};
