// LRP for pooling: winner-take-all through max pooling, the norm rule through averages.
import { A, ModelError, Node, attrInt, attrInts, f32, numel } from '../../graph/graph';
import { WindowGeometry, reduceMeanGeometry, transposedPads, windowGeometry } from '../../graph/geometry';
import { Ctx, NORM_EPS, dimsOf, recordLayer, stab } from './context';

// ---------------- pooling ----------------

export function maxPoolHandler(ctx: Ctx, n: Node, R: (string | null)[]): (string | null)[] {
  const { b } = ctx;
  if (!R[0]) return [];
  const x = n.inputs[0];
  const inD = dimsOf(ctx, x);
  let idx: string;
  if (n.outputs[1]) idx = n.outputs[1];
  else {
    idx = b.fresh('maxpool_idx');
    n.outputs = [n.outputs[0], idx];
  }
  if (attrInt(n, 'storage_order', 0) !== 0)
    throw new ModelError(`${ctx.g.source}: node '${n.name}' (MaxPool): storage_order 1 is not supported`);
  const total = numel(inD);
  const zeros = b.op('ConstantOfShape', [b.ints([total])], { value: A.tensor(f32([1], [0])) });
  const scattered = b.op(
    'ScatterElements',
    [zeros, b.reshape(idx, [-1]), b.reshape(R[0], [-1])],
    { axis: A.int(0), reduction: A.string('add') },
  );
  const Rin = b.reshape(scattered, inD);
  recordLayer(ctx, n, 'winner-take-all', [Rin]);
  return [Rin];
}

export function globalMaxPoolHandler(ctx: Ctx, n: Node, R: (string | null)[]): (string | null)[] {
  const { b } = ctx;
  if (!R[0]) return [];
  const x = n.inputs[0];
  const inD = dimsOf(ctx, x);
  const [N, C] = inD;
  const hw = numel(inD.slice(2));
  const flat = b.reshape(x, [N, C, hw]);
  const arg = b.op('ArgMax', [flat], { axis: A.int(2), keepdims: A.int(1) });
  const zeros = b.op('ConstantOfShape', [b.ints([N, C, hw])], { value: A.tensor(f32([1], [0])) });
  const scattered = b.op('ScatterElements', [zeros, arg, b.reshape(R[0], [N, C, 1])], { axis: A.int(2) });
  const Rin = b.reshape(scattered, inD);
  recordLayer(ctx, n, 'winner-take-all', [Rin]);
  return [Rin];
}

/** norm rule over an averaging node: R_in = x * T(R / stab(y)) where T is the transposed average. */
function normAverage(ctx: Ctx, n: Node, R: string, transposedAvg: (s: string) => string): string {
  const { b } = ctx;
  const y = n.outputs[0];
  const s = b.div(R, stab(ctx, y, NORM_EPS));
  return b.mul(n.inputs[0], transposedAvg(s));
}

export function globalAvgHandler(ctx: Ctx, n: Node, R: (string | null)[]): (string | null)[] {
  if (!R[0]) return [];
  const { b } = ctx;
  const inD = dimsOf(ctx, n.inputs[0]);
  const count = numel(inD.slice(2));
  const Rin = normAverage(ctx, n, R[0], (s) => b.mul(s, b.scalar(1 / count)));
  recordLayer(ctx, n, 'norm', [Rin]);
  return [Rin];
}

export function reduceMeanHandler(ctx: Ctx, n: Node, R: (string | null)[]): (string | null)[] {
  if (!R[0]) return [];
  const { b } = ctx;
  const { count, keptDims } = reduceMeanGeometry(n, dimsOf(ctx, n.inputs[0]));
  const Rin = normAverage(ctx, n, R[0], (s) => b.mul(b.reshape(s, keptDims), b.scalar(1 / count)));
  recordLayer(ctx, n, 'norm', [Rin]);
  return [Rin];
}

/** Per-output-position divisor of an AveragePool, as ORT computes it. */
function avgDivisors(geo: WindowGeometry, countIncludePad: boolean): Float32Array {
  const [OH, OW] = geo.outSize;
  const [H, W] = geo.inSize;
  const [pt, pl, pb, pr] = geo.pads;
  const out = new Float32Array(OH * OW);
  for (let oy = 0; oy < OH; oy++)
    for (let ox = 0; ox < OW; ox++) {
      const hs = oy * geo.strides[0] - pt;
      const ws = ox * geo.strides[1] - pl;
      let he = Math.min(hs + geo.kernel[0], H + pb);
      let we = Math.min(ws + geo.kernel[1], W + pr);
      let count: number;
      if (countIncludePad) count = (he - hs) * (we - ws);
      else {
        he = Math.min(he, H);
        we = Math.min(we, W);
        count = (he - Math.max(hs, 0)) * (we - Math.max(ws, 0));
      }
      out[oy * OW + ox] = 1 / Math.max(count, 1);
    }
  return out;
}

/** The gradient (transpose) of an AveragePool: spreads each output over its window / divisor. */
export function averagePoolTranspose(ctx: Ctx, n: Node): (s: string) => string {
  const { b } = ctx;
  const inD = dimsOf(ctx, n.inputs[0]);
  const outD = dimsOf(ctx, n.outputs[0]);
  if (inD.length !== 4) throw new ModelError(`${ctx.g.source}: node '${n.name}' (AveragePool): only 2-D pooling is supported`);
  const kernel = attrInts(n, 'kernel_shape', undefined);
  if (!kernel) throw new ModelError(`${ctx.g.source}: node '${n.name}' (AveragePool): kernel_shape missing`);
  const geo = windowGeometry(n, kernel, inD.slice(2), outD.slice(2));
  const C = inD[1];
  const inv = avgDivisors(geo, attrInt(n, 'count_include_pad', 0) === 1);
  const tp = transposedPads(geo);
  const ones = f32([C, 1, kernel[0], kernel[1]]);
  (ones.data as Float32Array).fill(1);
  return (s) =>
    b.op(
      'ConvTranspose',
      [b.mul(s, b.constant(f32([1, 1, outD[2], outD[3]], inv), 'avgdiv')), b.constant(ones, 'avgk')],
      { strides: A.ints(geo.strides), pads: A.ints(tp.pads), output_padding: A.ints(tp.outputPadding), group: A.int(C) },
      'avgT',
    );
}

export function averagePoolHandler(ctx: Ctx, n: Node, R: (string | null)[]): (string | null)[] {
  if (!R[0]) return [];
  const Rin = normAverage(ctx, n, R[0], averagePoolTranspose(ctx, n));
  recordLayer(ctx, n, 'norm', [Rin]);
  return [Rin];
}
