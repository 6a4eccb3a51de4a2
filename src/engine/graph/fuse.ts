// Pattern passes of the canonisation (spec section 7): what exporters write out as several nodes
// becomes the one node the rules are defined on.
//  - LayerNorm written out (ReduceMean, Sub, Pow/Mul, ReduceMean, Add eps, Sqrt, Div or Reciprocal
//    and Mul, then Mul gamma, Add beta) becomes one LayerNormalization node (with Transposes around
//    it when the normalised axes are not the last ones, as a channels-first LayerNorm).
//  - GELU in its exact form x * 0.5 * (1 + Erf(x / sqrt 2)) and its tanh approximation
//    0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))), in any arrangement of the products, becomes
//    one Gelu node.
//  - MatMul of an N-D activation with a constant matrix, followed by a bias Add, becomes Reshape,
//    Gemm with that bias, Reshape: a linear node whose rules see the bias (spec section 7).
import { A, Graph, Node, Tensor, asFloat32, attrInt, attrInts, consumers, f32, i64, numel, producers, stridesOf } from './graph';

type ShapeOf = (t: string) => number[] | undefined;

const close = (a: number, b: number, rel: number): boolean => Math.abs(a - b) <= rel * Math.max(Math.abs(a), Math.abs(b));

/** The value of a one-element constant, or undefined. */
function scalarOf(g: Graph, t: string): number | undefined {
  const c = g.initializers.get(t);
  return c && c.data.length === 1 ? Number(c.data[0]) : undefined;
}

function isOutput(g: Graph, t: string): boolean {
  return g.outputs.some((o) => o.name === t);
}

function soleConsumer(g: Graph, cons: Map<string, Node[]>, t: string): Node | null {
  if (isOutput(g, t)) return null;
  const c = cons.get(t) ?? [];
  return c.length === 1 ? c[0] : null;
}

/** A name no node, tensor or initializer of the graph uses yet: `want`, else `want_1`, ... */
function freshName(g: Graph, want: string): string {
  const taken = new Set<string>([...g.initializers.keys(), ...g.inputs.map((i) => i.name)]);
  for (const n of g.nodes) {
    taken.add(n.name);
    for (const t of [...n.inputs, ...n.outputs]) taken.add(t);
  }
  let name = want;
  for (let k = 1; taken.has(name); k++) name = `${want}_${k}`;
  return name;
}

function other(n: Node, t: string): string {
  return n.inputs[0] === t ? n.inputs[1] : n.inputs[0];
}

// ---------------- GELU ----------------

/** A polynomial in x: power -> coefficient. */
type Poly = Map<number, number>;

function polyMul(a: Poly, b: Poly): Poly {
  const out: Poly = new Map();
  for (const [pa, ca] of a) for (const [pb, cb] of b) out.set(pa + pb, (out.get(pa + pb) ?? 0) + ca * cb);
  return out;
}

function polyAdd(a: Poly, b: Poly, sign = 1): Poly {
  const out: Poly = new Map(a);
  for (const [p, c] of b) out.set(p, (out.get(p) ?? 0) + sign * c);
  return out;
}

/** `t` as a polynomial in `x` through Add/Sub/Mul/Div-by-constant/Pow/Neg of x and scalars; null otherwise. */
function polyOf(g: Graph, prod: Map<string, Node>, t: string, x: string, depth = 0): Poly | null {
  if (t === x) return new Map([[1, 1]]);
  const s = scalarOf(g, t);
  if (s !== undefined) return new Map([[0, s]]);
  const n = prod.get(t);
  if (!n || depth > 12) return null;
  const sub = (i: number) => polyOf(g, prod, n.inputs[i], x, depth + 1);
  switch (n.opType) {
    case 'Add':
    case 'Sub': {
      const [a, b] = [sub(0), sub(1)];
      return a && b ? polyAdd(a, b, n.opType === 'Sub' ? -1 : 1) : null;
    }
    case 'Mul': {
      const [a, b] = [sub(0), sub(1)];
      return a && b ? polyMul(a, b) : null;
    }
    case 'Div': {
      const d = scalarOf(g, n.inputs[1]);
      const a = sub(0);
      return a && d !== undefined ? polyMul(a, new Map([[0, 1 / d]])) : null;
    }
    case 'Neg': {
      const a = sub(0);
      return a ? polyMul(a, new Map([[0, -1]])) : null;
    }
    case 'Pow': {
      const e = scalarOf(g, n.inputs[1]);
      const a = sub(0);
      if (!a || e === undefined || !Number.isInteger(e) || e < 1 || e > 4) return null;
      let r: Poly = new Map([[0, 1]]);
      for (let i = 0; i < e; i++) r = polyMul(r, a);
      return r;
    }
    default:
      return null;
  }
}

function polyIs(p: Poly, want: [number, number][], rel: number): boolean {
  const wantMap = new Map(want);
  for (const [pw, c] of p) if (!wantMap.has(pw) && Math.abs(c) > 1e-9) return false;
  return want.every(([pw, c]) => close(p.get(pw) ?? 0, c, rel));
}

/** `t` = k * u with k from Mul/Div by scalar constants; u is the activation under them. */
function peel(g: Graph, prod: Map<string, Node>, t: string): { u: string; k: number } {
  let k = 1;
  for (;;) {
    const n = prod.get(t);
    if (!n || (n.opType !== 'Mul' && n.opType !== 'Div')) return { u: t, k };
    const c1 = scalarOf(g, n.inputs[1]);
    const c0 = n.opType === 'Mul' ? scalarOf(g, n.inputs[0]) : undefined;
    if (c1 !== undefined && c0 === undefined) {
      k *= n.opType === 'Mul' ? c1 : 1 / c1;
      t = n.inputs[0];
    } else if (c0 !== undefined && c1 === undefined) {
      k *= c0;
      t = n.inputs[1];
    } else return { u: t, k };
  }
}

const GELU_TANH_K = Math.sqrt(2 / Math.PI);

/** Replace written-out GELUs by Gelu nodes (exact: approximate 'none'; tanh form: 'tanh'). */
export function fuseGelu(g: Graph): void {
  const prod = producers(g);
  const cons = consumers(g);
  for (const e of [...g.nodes]) {
    if (e.opType !== 'Erf' && e.opType !== 'Tanh') continue;
    const plus = soleConsumer(g, cons, e.outputs[0]);
    if (!plus || plus.opType !== 'Add' || !close(scalarOf(g, other(plus, e.outputs[0])) ?? NaN, 1, 1e-6)) continue;
    // up the chain of products: x * (1 + erf) * 0.5 in any order and grouping
    let cur = plus.outputs[0];
    let coef = 1;
    let x: string | null = null;
    let top: Node | null = null;
    for (let steps = 0; steps < 4; steps++) {
      const m = soleConsumer(g, cons, cur);
      if (!m || m.opType !== 'Mul') break;
      const o = other(m, cur);
      const s = scalarOf(g, o);
      if (s !== undefined) coef *= s;
      else {
        const { u, k } = peel(g, prod, o);
        if (x !== null) break;
        x = u;
        coef *= k;
      }
      cur = m.outputs[0];
      if (x !== null && close(coef, 0.5, 1e-6)) {
        top = m;
        break;
      }
    }
    if (!top || !x) continue;
    const arg = polyOf(g, prod, e.inputs[0], x);
    if (!arg) continue;
    const exact = e.opType === 'Erf' && polyIs(arg, [[1, Math.SQRT1_2]], 1e-5);
    const tanh = e.opType === 'Tanh' && polyIs(arg, [[1, GELU_TANH_K], [3, GELU_TANH_K * 0.044715]], 1e-4);
    if (!exact && !tanh) continue;
    top.opType = 'Gelu';
    top.inputs = [x];
    top.attrs = tanh ? { approximate: A.string('tanh') } : {};
  }
}

// ---------------- LayerNorm ----------------

function reduceAxes(n: Node, rank: number): number[] | null {
  if (n.opType !== 'ReduceMean' || attrInt(n, 'keepdims', 1) !== 1 || n.inputs[1]) return null;
  const axes = attrInts(n, 'axes', undefined);
  if (!axes || !axes.length) return null;
  return [...new Set(axes.map((a) => (a < 0 ? a + rank : a)))].sort((a, b) => a - b);
}

/** A constant broadcast against [..dims] that varies only over `axes`, laid out as the normalised shape. */
function normalisedConst(t: Tensor, dims: number[], axes: number[]): Tensor | null {
  const r = dims.length;
  if (t.dims.length > r) return null;
  const padded = [...new Array<number>(r - t.dims.length).fill(1), ...t.dims];
  for (let i = 0; i < r; i++) {
    if (padded[i] === 1) continue;
    if (!axes.includes(i) || padded[i] !== dims[i]) return null;
  }
  const src = asFloat32(t);
  const ps = stridesOf(padded);
  const outDims = axes.map((a) => dims[a]);
  const out = new Float32Array(numel(outDims));
  const idx = new Array<number>(axes.length).fill(0);
  for (let flat = 0; flat < out.length; flat++) {
    let off = 0;
    axes.forEach((a, k) => {
      if (padded[a] !== 1) off += idx[k] * ps[a];
    });
    out[flat] = src[off];
    for (let k = axes.length - 1; k >= 0; k--) {
      if (++idx[k] < outDims[k]) break;
      idx[k] = 0;
    }
  }
  return f32(outDims, out);
}

/** Replace written-out LayerNorms by LayerNormalization nodes. */
export function fuseLayerNorm(g: Graph, shapeOf: ShapeOf): void {
  let cons = consumers(g);
  for (const mean of [...g.nodes]) {
    if (mean.opType !== 'ReduceMean' || !g.nodes.includes(mean)) continue;
    const x = mean.inputs[0];
    const xd = shapeOf(x);
    if (!xd) continue;
    const axes = reduceAxes(mean, xd.length);
    if (!axes) continue;
    // centring: Sub(x, mean)
    const centre = (cons.get(mean.outputs[0]) ?? []).find((n) => n.opType === 'Sub' && n.inputs[0] === x && n.inputs[1] === mean.outputs[0]);
    if (!centre) continue;
    const d = centre.outputs[0];
    const dUses = cons.get(d) ?? [];
    // variance: ReduceMean(Pow(d, 2) or Mul(d, d)) over the same axes, + eps, Sqrt
    const sq = dUses.find(
      (n) => (n.opType === 'Pow' && n.inputs[0] === d && scalarOf(g, n.inputs[1]) === 2) || (n.opType === 'Mul' && n.inputs[0] === d && n.inputs[1] === d),
    );
    if (!sq) continue;
    const varMean = soleConsumer(g, cons, sq.outputs[0]);
    if (!varMean || varMean.inputs[0] !== sq.outputs[0] || (reduceAxes(varMean, xd.length) ?? []).join() !== axes.join()) continue;
    const addEps = soleConsumer(g, cons, varMean.outputs[0]);
    const eps = addEps && addEps.opType === 'Add' ? scalarOf(g, other(addEps, varMean.outputs[0])) : undefined;
    if (!addEps || eps === undefined || eps < 0) continue;
    const sqrt = soleConsumer(g, cons, addEps.outputs[0]);
    if (!sqrt || sqrt.opType !== 'Sqrt') continue;
    // normalisation: Div(d, sd), or Mul(d, Reciprocal(sd))
    let norm: Node | undefined = dUses.find((n) => n.opType === 'Div' && n.inputs[0] === d && n.inputs[1] === sqrt.outputs[0]);
    if (!norm) {
      const rec = soleConsumer(g, cons, sqrt.outputs[0]);
      if (rec && rec.opType === 'Reciprocal')
        norm = dUses.find((n) => n.opType === 'Mul' && n.inputs.includes(d) && n.inputs.includes(rec.outputs[0]));
    }
    if (!norm) continue;
    // the intermediate tensors must serve the LayerNorm only
    if (new Set(dUses).size !== 2 || (cons.get(mean.outputs[0]) ?? []).length !== 1) continue;
    // affine: Mul gamma, Add beta (each optional)
    let last = norm;
    let gamma: Tensor | null = null;
    let beta: Tensor | null = null;
    const affine: Node[] = [];
    const mulG = soleConsumer(g, cons, last.outputs[0]);
    if (mulG && mulG.opType === 'Mul') {
      const c = g.initializers.get(other(mulG, last.outputs[0]));
      const t = c && normalisedConst(c, xd, axes);
      if (t) {
        gamma = t;
        last = mulG;
        affine.push(mulG);
      }
    }
    const addB = soleConsumer(g, cons, last.outputs[0]);
    if (addB && addB.opType === 'Add') {
      const c = g.initializers.get(other(addB, last.outputs[0]));
      const t = c && normalisedConst(c, xd, axes);
      if (t) {
        beta = t;
        last = addB;
        affine.push(addB);
      }
    }
    const normShape = axes.map((a) => xd[a]);
    if (!gamma) gamma = f32(normShape, new Float32Array(numel(normShape)).fill(1));
    const trailing = axes.every((a, k) => a === xd.length - axes.length + k);
    // named after the scope of the written-out norm (.../ln_1/Add_1 -> .../ln_1/LayerNormalization)
    const scope = last.name.replace(/\/[^/]*$/, '') || last.name;
    const name = freshName(g, `${scope}/LayerNormalization`);
    const gName = freshName(g, `${name}.scale`);
    g.initializers.set(gName, gamma);
    const ins = [x, gName];
    if (beta) {
      const bName = freshName(g, `${name}.bias`);
      g.initializers.set(bName, beta);
      ins.push(bName);
    }
    const lnAttrs = { axis: A.int(xd.length - axes.length), epsilon: A.float(eps) };
    const out = last.outputs[0];
    const removed = new Set<Node>([mean, centre, sq, varMean, addEps, sqrt, norm, ...affine]);
    const idx = g.nodes.indexOf(last);
    let replacement: Node[];
    if (trailing) replacement = [{ name, opType: 'LayerNormalization', inputs: ins, outputs: [out], attrs: lnAttrs }];
    else {
      const keep = xd.map((_, i) => i).filter((i) => !axes.includes(i));
      const perm = [...keep, ...axes];
      const inv = new Array<number>(perm.length);
      perm.forEach((p, i) => (inv[p] = i));
      const tIn = freshName(g, `${name}.in`);
      const tOut = freshName(g, `${name}.out`);
      replacement = [
        { name: `${name}/Transpose`, opType: 'Transpose', inputs: [x], outputs: [tIn], attrs: { perm: A.ints(perm) } },
        { name, opType: 'LayerNormalization', inputs: [tIn, ...ins.slice(1)], outputs: [tOut], attrs: lnAttrs },
        { name: `${name}/Transpose_1`, opType: 'Transpose', inputs: [tOut], outputs: [out], attrs: { perm: A.ints(inv) } },
      ];
    }
    g.nodes.splice(idx, 1, ...replacement);
    g.nodes = g.nodes.filter((n) => !removed.has(n) || replacement.includes(n));
    cons = consumers(g);
  }
}

// ---------------- MatMul + bias ----------------

/**
 * MatMul(x, W) with x of rank > 2 and a constant 2-D W, whose only consumer adds a constant bias
 * along the last axis: Reshape x to 2-D, Gemm with the bias (named as the MatMul, so overrides by
 * layer name still match), Reshape back. The rules then see the bias as part of the linear node.
 */
export function foldMatMulBias(g: Graph, shapeOf: ShapeOf): void {
  const cons = consumers(g);
  for (const mm of [...g.nodes]) {
    if (mm.opType !== 'MatMul') continue;
    const w = g.initializers.get(mm.inputs[1]);
    const xd = shapeOf(mm.inputs[0]);
    if (!w || w.dims.length !== 2 || !xd || xd.length <= 2) continue;
    const add = soleConsumer(g, cons, mm.outputs[0]);
    if (!add || add.opType !== 'Add') continue;
    const c = g.initializers.get(other(add, mm.outputs[0]));
    const N = w.dims[1];
    if (!c || c.dtype !== 'float32') continue;
    const lead = c.dims.slice(0, -1);
    const last = c.dims[c.dims.length - 1] ?? 1;
    if (lead.some((v) => v !== 1) || (last !== N && numel(c.dims) !== 1)) continue;
    const outDims = shapeOf(add.outputs[0]);
    if (!outDims || outDims.length !== xd.length) continue;
    const cv = asFloat32(c);
    const bias = f32([N], Array.from({ length: N }, (_, k) => cv[cv.length === 1 ? 0 : k]));
    const base = mm.name;
    const names = {
      shapeIn: freshName(g, `${base}/gemm_in_shape`),
      shapeOut: freshName(g, `${base}/gemm_out_shape`),
      bias: freshName(g, `${base}/gemm_bias`),
      flat: freshName(g, `${base}/gemm_in`),
      gemmOut: freshName(g, `${base}/gemm_out`),
    };
    g.initializers.set(names.shapeIn, i64([2], [-1, xd[xd.length - 1]]));
    g.initializers.set(names.shapeOut, i64([outDims.length], outDims));
    g.initializers.set(names.bias, bias);
    const nodes: Node[] = [
      { name: `${base}/Reshape_in`, opType: 'Reshape', inputs: [mm.inputs[0], names.shapeIn], outputs: [names.flat], attrs: {} },
      { name: base, opType: 'Gemm', inputs: [names.flat, mm.inputs[1], names.bias], outputs: [names.gemmOut], attrs: {} },
      { name: `${base}/Reshape_out`, opType: 'Reshape', inputs: [names.gemmOut, names.shapeOut], outputs: [add.outputs[0]], attrs: {} },
    ];
    const at = g.nodes.indexOf(add);
    g.nodes.splice(at, 1, ...nodes);
    g.nodes = g.nodes.filter((n) => n !== mm);
  }
}
