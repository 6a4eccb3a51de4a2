// LRP for attention (spec section 7): a Softmax inside the network and a MatMul of two activations
// (Q @ K^T, A @ V), under the rules config's `attention` key.
//  - "cp" (CP-LRP): a Softmax output is a constant. A MatMul with an operand computed from a Softmax
//    is linear in the other operand, which takes all the relevance by its Jacobian (LRP-0); the
//    Softmax and everything that only feeds it receive none.
//  - "attnlrp" (AttnLRP): a Softmax passes relevance by gradient times input,
//    R_i = x_i (R_i - s_i sum_j R_j) over its axis; a MatMul of two activations gives each operand
//    half of its gradient-times-input relevance (the uniform rule).
// Under "cp" a product of two activations that involves no Softmax takes the uniform rule too.
import { A, ModelError, Node, attrInt } from '../../graph/graph';
import { Ctx, dimsOf, ratio, recordLayer, swapLast, unbroadcast } from './context';

/** Ops a Softmax output may pass through and still be the attention weights (a constant under cp). */
const WEIGHT_TRANSPARENT = new Set([
  'Reshape', 'Transpose', 'Identity', 'Dropout', 'Cast', 'Squeeze', 'Unsqueeze', 'Expand', 'Slice', 'Gather', 'Concat', 'Split', 'Flatten', 'Tile',
]);

/** Is `t` computed from a Softmax output through structural ops and products/sums with constants? */
export function fromSoftmax(ctx: Ctx, t: string, prod: Map<string, Node>): boolean {
  const seen = new Set<string>();
  const stack = [t];
  let found = false;
  while (stack.length) {
    const cur = stack.pop() as string;
    if (seen.has(cur)) continue;
    seen.add(cur);
    const p = prod.get(cur);
    if (!p) return false;
    if (p.opType === 'Softmax') {
      found = true;
      continue;
    }
    const acts = p.inputs.filter((i) => i && ctx.isAct(i));
    const affine = ['Mul', 'Div', 'Add', 'Sub'].includes(p.opType) && acts.length === 1;
    if (!WEIGHT_TRANSPARENT.has(p.opType) && !affine) return false;
    stack.push(...acts);
  }
  return found;
}

export function softmaxHandler(ctx: Ctx, n: Node, R: (string | null)[]): (string | null)[] {
  if (!R[0]) return [];
  // cp: the attention weights are constants; relevance reaching them is not passed on
  if (ctx.cfg.attention === 'cp') return [null];
  const { b } = ctx;
  const x = n.inputs[0];
  const rank = dimsOf(ctx, x).length;
  let axis = attrInt(n, 'axis', -1);
  if (axis < 0) axis += rank;
  const total = b.op('ReduceSum', [R[0], b.ints([axis])], { keepdims: A.int(1) });
  const q = b.sub(R[0], b.mul(n.outputs[0], total));
  const Rin = b.mul(x, q);
  ctx.products.set(Rin, { x, q });
  recordLayer(ctx, n, 'softmax (gradient x input)', [Rin]);
  return [Rin];
}

/**
 * Y = A @ B with both operands activations. With G = R / Y:
 * dY/dA^T G = G @ B^T and dY/dB^T G = A^T @ G; the relevance of an operand is itself times that.
 */
export function bilinearMatMulHandler(ctx: Ctx, n: Node, R: (string | null)[], prod: Map<string, Node>): (string | null)[] {
  if (!R[0]) return [];
  const { b } = ctx;
  const [a, bb] = n.inputs;
  const aD = dimsOf(ctx, a);
  const bD = dimsOf(ctx, bb);
  const yD = dimsOf(ctx, n.outputs[0]);
  if (aD.length < 2 || bD.length < 2)
    throw new ModelError(`${ctx.g.source}: node '${n.name}' (MatMul): a product of two activations needs operands of rank 2 or more`);
  let share: [number, number];
  let rule: string;
  if (ctx.cfg.attention === 'cp') {
    const constA = fromSoftmax(ctx, a, prod);
    const constB = fromSoftmax(ctx, bb, prod);
    if (constA && constB) return [null, null];
    if (constA || constB) {
      share = constA ? [0, 1] : [1, 0];
      rule = 'cp';
    } else {
      share = [0.5, 0.5];
      rule = 'uniform';
    }
  } else {
    share = [0.5, 0.5];
    rule = 'uniform';
  }
  const G = ratio(ctx, R[0], n.outputs[0]);
  const out: (string | null)[] = [null, null];
  if (share[0]) {
    // G [.., M, N] @ B^T [.., N, K] -> [.., M, K]
    let gA = unbroadcast(ctx, b.op('MatMul', [G, swapLast(ctx, bb, bD.length)]), [...broadcastBatch(yD, aD)], aD);
    if (share[0] !== 1) gA = b.mul(gA, b.scalar(share[0]));
    out[0] = b.mul(a, gA);
  }
  if (share[1]) {
    let gB = unbroadcast(ctx, b.op('MatMul', [swapLast(ctx, a, aD.length), G]), [...broadcastBatch(yD, bD)], bD);
    if (share[1] !== 1) gB = b.mul(gB, b.scalar(share[1]));
    out[1] = b.mul(bb, gB);
  }
  recordLayer(ctx, n, rule, out.filter((r): r is string => !!r));
  return out;
}

/** The shape of an operand's gradient before unbroadcasting: the output's batch axes, the operand's matrix axes. */
function broadcastBatch(yD: number[], opD: number[]): number[] {
  return [...yD.slice(0, -2), ...opD.slice(-2)];
}
