// LRP for normalisation nodes. A BatchNormalization left after folding (spec section 3) passes
// relevance unchanged, or, with `batchNorm: affine`, is a per-channel product whose shift absorbs
// its share: R_x = x * s * R / y, s = scale / sqrt(var + eps).
// LayerNormalization (spec section 7) with its standard deviation frozen. y = (x - mean(x)) * gamma / sigma + beta with sigma a constant is linear in x; relevance
// passes by its Jacobian (LRP-0) and beta absorbs its share like a bias:
//   c = gamma / sigma * R / y,   R_x = x * (c - mean(c))   (means over the normalised axes).
import { A, ModelError, Node, attrFloat, attrInt, f32 } from '../../graph/graph';
import { Ctx, constOf, dimsOf, ratio, recordLayer } from './context';

export function batchNormHandler(ctx: Ctx, n: Node, R: (string | null)[]): (string | null)[] {
  if (!R[0]) return [];
  if (ctx.cfg.batchNorm === 'pass') return [R[0]];
  const { b } = ctx;
  const x = n.inputs[0];
  const scale = constOf(ctx, n, 1, 'scale');
  const variance = constOf(ctx, n, 4, 'variance');
  const eps = attrFloat(n, 'epsilon', 1e-5);
  const channels = scale.data.length;
  const s = new Float32Array(channels);
  for (let c = 0; c < channels; c++) s[c] = Number(scale.data[c]) / Math.sqrt(Number(variance.data[c]) + eps);
  // per channel (axis 1), broadcast over the axes after it
  const rank = dimsOf(ctx, x).length;
  const sc = b.constant(f32([channels, ...Array(Math.max(0, rank - 2)).fill(1)], s), 'bn_scale');
  const q = b.mul(ratio(ctx, R[0], n.outputs[0]), sc);
  const Rin = b.mul(x, q);
  ctx.products.set(Rin, { x, q });
  return [Rin];
}

/** The InvStdDev output of a LayerNormalization (added to the node when the model did not use it). */
function invStdDev(ctx: Ctx, n: Node): string {
  while (n.outputs.length < 3) n.outputs.push('');
  if (!n.outputs[2]) n.outputs[2] = ctx.b.fresh('ln_invstd');
  return n.outputs[2];
}

export function layerNormAxes(ctx: Ctx, n: Node): number[] {
  const rank = dimsOf(ctx, n.inputs[0]).length;
  let axis = attrInt(n, 'axis', -1);
  if (axis < 0) axis += rank;
  if (axis < 0 || axis >= rank)
    throw new ModelError(`${ctx.g.source}: node '${n.name}' (LayerNormalization): axis ${attrInt(n, 'axis', -1)} is out of range`);
  return Array.from({ length: rank - axis }, (_, i) => axis + i);
}

export function layerNormHandler(ctx: Ctx, n: Node, R: (string | null)[]): (string | null)[] {
  if (!R[0]) return [];
  const { b } = ctx;
  if (ctx.isAct(n.inputs[1]) || (n.inputs[2] && ctx.isAct(n.inputs[2])))
    throw new ModelError(`${ctx.g.source}: node '${n.name}' (LayerNormalization): scale and bias must not depend on the input for LRP`);
  const x = n.inputs[0];
  const axes = layerNormAxes(ctx, n);
  const c = b.mul(b.mul(ratio(ctx, R[0], n.outputs[0]), n.inputs[1]), invStdDev(ctx, n));
  const centred = b.sub(c, b.op('ReduceMean', [c], { axes: A.ints(axes), keepdims: A.int(1) }));
  const Rin = b.mul(x, centred);
  ctx.products.set(Rin, { x, q: centred });
  recordLayer(ctx, n, 'frozen-std', [Rin]);
  return [Rin];
}
