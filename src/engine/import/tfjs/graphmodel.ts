// tf.js GraphModel (TF GraphDef as JSON) -> the engine's graph, NCHW inside.
// Placeholders stay NHWC and are followed by a Transpose; rank-4 tensors are NCHW from there on.
// Constants stay on the host (in TF layout) until an op decides how to lay them out.
import { A, type Attr, type Tensor, f32, numel } from '../../graph/graph';
import {
  Emitter,
  NHWC_TO_NCHW_AXIS,
  TO_NCHW,
  TO_NHWC,
  broadcast,
  depthwiseToOihw,
  fail,
  hwioToOihw,
  permute,
  reshaped,
  toDims,
  windowAttrs,
  windowOut,
  emitActivation,
} from './common';

type Shape = (number | null)[];

/** A TF tensor: a graph tensor (NCHW when rank 4) or a host constant (TF layout). */
interface TT {
  name?: string;
  shape: Shape;
  konst?: Tensor;
}

interface TfAttrValue {
  s?: string;
  i?: string | number;
  f?: number;
  b?: boolean;
  type?: string;
  shape?: { dim?: { size: string | number }[]; unknownRank?: boolean };
  list?: { s?: string[]; i?: (string | number)[]; f?: number[] };
  tensor?: TfTensorProto;
}

interface TfTensorProto {
  dtype?: string;
  tensorShape?: { dim?: { size: string | number }[] };
  floatVal?: number[];
  intVal?: number[];
  int64Val?: (string | number)[];
  tensorContent?: string;
}

interface TfNode {
  name: string;
  op: string;
  input?: string[];
  attr?: Record<string, TfAttrValue>;
}

interface Ctx {
  e: Emitter;
  source: string;
  weights: Map<string, Tensor>;
  node: TfNode;
  inputs: TT[];
}

type Convert = (ctx: Ctx) => TT[];

// ---------- attributes ----------

const b64 = (s: string) => Buffer.from(s, 'base64').toString('utf8');

function attrS(n: TfNode, k: string, dflt: string): string {
  const v = n.attr?.[k]?.s;
  return v === undefined ? dflt : b64(v);
}
function attrSs(n: TfNode, k: string): string[] {
  return (n.attr?.[k]?.list?.s ?? []).map(b64);
}
function attrI(n: TfNode, k: string, dflt: number): number {
  const v = n.attr?.[k]?.i;
  return v === undefined ? dflt : Number(v);
}
function attrIs(n: TfNode, k: string): number[] | undefined {
  const l = n.attr?.[k]?.list?.i;
  return l ? l.map(Number) : undefined;
}
function attrF(n: TfNode, k: string, dflt: number): number {
  const v = n.attr?.[k]?.f;
  return v === undefined ? dflt : Number(v);
}
function attrB(n: TfNode, k: string, dflt: boolean): boolean {
  const v = n.attr?.[k]?.b;
  return v === undefined ? dflt : v;
}

function bad(ctx: Ctx, why: string): never {
  return fail(ctx.source, `node '${ctx.node.name}' (${ctx.node.op})`, why);
}

function dimsOf(shape: { dim?: { size: string | number }[] } | undefined): Shape {
  return (shape?.dim ?? []).map((d) => (Number(d.size) < 0 ? null : Number(d.size)));
}

function inlineTensor(t: TfTensorProto): Tensor | undefined {
  const dims = dimsOf(t.tensorShape).map((d) => d ?? 0);
  const n = numel(dims);
  const isInt = t.dtype === 'DT_INT32' || t.dtype === 'DT_INT64';
  if (t.tensorContent) {
    const buf = Buffer.from(t.tensorContent, 'base64');
    const ab = buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength);
    if (t.dtype === 'DT_FLOAT') return f32(dims, new Float32Array(ab));
    if (t.dtype === 'DT_INT32') return { dtype: 'int32', dims, data: new Int32Array(ab) };
    if (t.dtype === 'DT_INT64') return { dtype: 'int32', dims, data: Int32Array.from(new BigInt64Array(ab), Number) };
    return undefined;
  }
  const vals = (t.floatVal ?? t.intVal ?? t.int64Val ?? []).map(Number);
  const fill = (i: number) => vals[Math.min(i, vals.length - 1)] ?? 0;
  if (isInt) return { dtype: 'int32', dims, data: Int32Array.from({ length: n }, (_, i) => fill(i)) };
  if (t.dtype === 'DT_FLOAT') return f32(dims, Float32Array.from({ length: n }, (_, i) => fill(i)));
  return undefined;
}

// ---------- layout helpers ----------

/** Graph tensor of an operand; constants become initializers in their TF layout. */
function asTensor(ctx: Ctx, t: TT, hint: string): string {
  if (t.name) return t.name;
  const k = t.konst as Tensor;
  const name = ctx.e.init(`${ctx.node.name}/${hint}`, k.dtype === 'float32' ? k : f32(k.dims, Float32Array.from(k.data as Int32Array)));
  t.name = name;
  return name;
}

/** A constant laid out to broadcast against an internal NCHW rank-4 tensor. */
function constFor4d(k: Tensor): Tensor {
  const v = k.dtype === 'float32' ? k : f32(k.dims, Float32Array.from(k.data as Int32Array));
  if (v.dims.length === 0) return v;
  const dims4 = [...new Array<number>(4 - v.dims.length).fill(1), ...v.dims];
  return permute(reshaped(v, dims4), TO_NCHW);
}

/** Graph tensor of `t` to combine element-wise with an operand of rank `rank` (internal layout). */
function operandFor(ctx: Ctx, t: TT, rank: number, hint: string): string {
  if (t.konst) {
    if (rank === 4) return ctx.e.init(`${ctx.node.name}/${hint}`, constFor4d(t.konst));
    return asTensor(ctx, t, hint);
  }
  const name = t.name as string;
  if (rank === 4 && t.shape.length < 4 && t.shape.length > 0) {
    const e = ctx.e;
    const r = e.op('Reshape', `${ctx.node.name}/${hint}_rank4`, [name, e.ints(`${ctx.node.name}/${hint}_shape`, [...new Array<number>(4 - t.shape.length).fill(1), ...t.shape.map((d) => d ?? -1)])]);
    return e.op('Transpose', `${ctx.node.name}/${hint}_nchw`, [r], { perm: A.ints(TO_NCHW) });
  }
  return name;
}

function constInput(ctx: Ctx, i: number, what: string): Tensor {
  const t = ctx.inputs[i];
  if (!t?.konst) return bad(ctx, `the ${what} must be a constant`);
  return t.konst;
}

function numsOf(t: Tensor): number[] {
  return Array.from(t.data as ArrayLike<number>, Number);
}

function needRank4(ctx: Ctx, t: TT): void {
  if (t.shape.length !== 4) bad(ctx, `expects a rank-4 input, got shape [${t.shape.map(String)}]`);
  if (attrS(ctx.node, 'data_format', 'NHWC') !== 'NHWC') bad(ctx, `data_format ${attrS(ctx.node, 'data_format', '')} is not supported (only NHWC)`);
}

const GRAPH_ACTIVATIONS = new Set(['Relu', 'Relu6', 'Elu', 'Selu', 'Sigmoid', 'Tanh', 'LeakyRelu', 'Softmax']);

function activation(ctx: Ctx, kind: string, x: string, rank: number, name: string): string {
  const alpha = attrF(ctx.node, 'leakyrelu_alpha', attrF(ctx.node, 'alpha', 0.2));
  const out = GRAPH_ACTIVATIONS.has(kind) ? emitActivation(ctx.e, kind, x, name, rank, alpha) : null;
  return out ?? bad(ctx, `activation ${kind} is not supported`);
}

// ---------- ops ----------

function convOp(depthwise: boolean): Convert {
  return (ctx) => {
    const n = ctx.node;
    const x = ctx.inputs[0];
    needRank4(ctx, x);
    const e = ctx.e;
    const k = constInput(ctx, 1, 'filter');
    const w = depthwise ? depthwiseToOihw(k) : hwioToOihw(k);
    const s = attrIs(n, 'strides') ?? [1, 1, 1, 1];
    const d = attrIs(n, 'dilations') ?? [1, 1, 1, 1];
    const padding = attrS(n, 'padding', 'VALID').toLowerCase();
    const ep = attrIs(n, 'explicit_paddings');
    const kh = k.dims[0];
    const kw = k.dims[1];
    const inHW = [x.shape[1], x.shape[2]];
    const attrs: Record<string, Attr> = {
      ...windowAttrs(inHW, [kh, kw], [s[1], s[2]], [d[1], d[2]], padding, ep && ep.length === 8 ? [ep[2], ep[4], ep[3], ep[5]] : undefined),
      dilations: A.ints([d[1], d[2]]),
      group: A.int(depthwise ? k.dims[2] : 1),
    };
    const fused = attrSs(n, 'fused_ops');
    const ins = [x.name as string, e.init(`${n.name}/weights`, w)];
    let post: string[] = [];
    let bnArgs: Tensor[] | null = null;
    if (fused[0] === 'BiasAdd') {
      ins.push(e.init(`${n.name}/bias`, constInput(ctx, 2, 'bias')));
      post = fused.slice(1);
    } else if (fused[0] === 'FusedBatchNorm') {
      bnArgs = [2, 3, 4, 5].map((i) => constInput(ctx, i, 'batch-norm argument'));
      post = fused.slice(1);
    } else post = fused;
    const outC = w.dims[0];
    // the convolution carries the TF node's name; fused batch norm and activation get suffixes
    let y = e.op('Conv', n.name, ins, attrs);
    if (bnArgs)
      y = e.op(
        'BatchNormalization',
        `${n.name}/batchnorm`,
        [y, ...bnArgs.map((t, i) => e.init(`${n.name}/bn${i}`, t))],
        { epsilon: A.float(attrF(n, 'epsilon', 1e-3)) },
      );
    for (const p of post) {
      if (p === 'Prelu') return bad(ctx, 'fused Prelu is not supported');
      y = activation(ctx, p, y, 4, `${n.name}/${p.toLowerCase()}`);
    }
    const outHW = [0, 1].map((i) => windowOut(inHW[i], i ? kw : kh, s[i + 1], d[i + 1], padding === 'same'));
    const outShape: Shape = padding === 'explicit' && ep ? [x.shape[0], null, null, outC] : [x.shape[0], outHW[0], outHW[1], outC];
    if (padding === 'explicit' && ep)
      for (let i = 0; i < 2; i++) {
        const v = inHW[i];
        const K = ((i ? kw : kh) - 1) * d[i + 1] + 1;
        outShape[i + 1] = v === null ? null : Math.floor((v + ep[2 + 2 * i] + ep[3 + 2 * i] - K) / s[i + 1]) + 1;
      }
    return [{ name: y, shape: outShape }];
  };
}

const matMul: Convert = (ctx) => {
  const n = ctx.node;
  const e = ctx.e;
  const [a, b] = ctx.inputs;
  if (a.shape.length !== 2) bad(ctx, `expects a rank-2 input, got shape [${a.shape.map(String)}]`);
  const ta = attrB(n, 'transpose_a', false);
  const tb = attrB(n, 'transpose_b', false);
  const fused = attrSs(n, 'fused_ops');
  let post: string[] = fused;
  let y: string;
  if (b.konst) {
    // Gemm with B as [out, in] and transB, as exporters write it
    const w = tb ? b.konst : permute(b.konst, [1, 0]);
    const ins = [a.name as string, e.init(`${n.name}/weights`, w)];
    if (fused[0] === 'BiasAdd') {
      ins.push(e.init(`${n.name}/bias`, constInput(ctx, 2, 'bias')));
      post = fused.slice(1);
    }
    y = e.op('Gemm', n.name, ins, { transA: A.int(ta ? 1 : 0), transB: A.int(1) });
  } else {
    if (ta || tb) bad(ctx, 'transposed operands of a MatMul of two activations are not supported');
    y = e.op('MatMul', n.name, [a.name as string, b.name as string]);
    if (fused[0] === 'BiasAdd') {
      y = e.op('Add', `${n.name}/bias_add`, [y, asTensor(ctx, ctx.inputs[2], 'bias')]);
      post = fused.slice(1);
    }
  }
  for (const p of post) y = activation(ctx, p, y, 2, `${n.name}/${p.toLowerCase()}`);
  const outShape: Shape = [ta ? a.shape[1] : a.shape[0], tb ? b.shape[0] : b.shape[1]];
  return [{ name: y, shape: outShape }];
};

function binary(op: string): Convert {
  return (ctx) => {
    const [a, b] = ctx.inputs;
    const shape = broadcast(a.shape, b.shape);
    const rank = shape.length;
    const y = ctx.e.op(op, ctx.node.name, [operandFor(ctx, a, rank, 'a'), operandFor(ctx, b, rank, 'b')]);
    return [{ name: y, shape }];
  };
}

const biasAdd: Convert = (ctx) => {
  const [x] = ctx.inputs;
  const bias = constInput(ctx, 1, 'bias');
  const rank = x.shape.length;
  const b = rank === 4 ? reshaped(bias, [bias.dims[0], 1, 1]) : bias;
  return [{ name: ctx.e.op('Add', ctx.node.name, [x.name as string, ctx.e.init(`${ctx.node.name}/bias`, b)]), shape: x.shape }];
};

function unaryAct(kind: string): Convert {
  return (ctx) => {
    const [x] = ctx.inputs;
    return [{ name: activation(ctx, kind, x.name as string, x.shape.length, ctx.node.name), shape: x.shape }];
  };
}

function poolOp(op: 'MaxPool' | 'AveragePool'): Convert {
  return (ctx) => {
    const n = ctx.node;
    const x = ctx.inputs[0];
    needRank4(ctx, x);
    const k = attrIs(n, 'ksize') ?? [1, 1, 1, 1];
    const s = attrIs(n, 'strides') ?? [1, 1, 1, 1];
    if (k[0] !== 1 || k[3] !== 1 || s[0] !== 1 || s[3] !== 1) bad(ctx, 'pooling over batch or channels is not supported');
    const padding = attrS(n, 'padding', 'VALID').toLowerCase();
    const inHW = [x.shape[1], x.shape[2]];
    const attrs = windowAttrs(inHW, [k[1], k[2]], [s[1], s[2]], [1, 1], padding);
    if (op === 'AveragePool') attrs.count_include_pad = A.int(0);
    const y = ctx.e.op(op, n.name, [x.name as string], attrs);
    const outHW = [0, 1].map((i) => windowOut(inHW[i], k[i + 1], s[i + 1], 1, padding === 'same'));
    return [{ name: y, shape: [x.shape[0], outHW[0], outHW[1], x.shape[3]] }];
  };
}

const mean: Convert = (ctx) => {
  const n = ctx.node;
  const e = ctx.e;
  const [x] = ctx.inputs;
  const rank = x.shape.length;
  const axes = numsOf(constInput(ctx, 1, 'reduction axes')).map((a) => (a < 0 ? a + rank : a));
  const keep = attrB(n, 'keep_dims', attrB(n, 'keepdims', false));
  const outShape = keep ? x.shape.map((d, i) => (axes.includes(i) ? 1 : d)) : x.shape.filter((_, i) => !axes.includes(i));
  if (rank === 4 && [...axes].sort().join() === '1,2') {
    const p = e.op('GlobalAveragePool', n.name, [x.name as string]);
    if (keep) return [{ name: p, shape: outShape }];
    return [{ name: e.op('Flatten', `${n.name}/flatten`, [p], { axis: A.int(1) }), shape: outShape }];
  }
  const ia = rank === 4 ? axes.map((a) => NHWC_TO_NCHW_AXIS[a]) : axes;
  if (rank === 4 && !keep) {
    // the remaining axes must come out in TF order: reduce in NHWC
    const t = e.op('Transpose', `${n.name}/to_nhwc`, [x.name as string], { perm: A.ints(TO_NHWC) });
    return [{ name: e.op('ReduceMean', n.name, [t], { axes: A.ints(axes), keepdims: A.int(0) }), shape: outShape }];
  }
  return [{ name: e.op('ReduceMean', n.name, [x.name as string], { axes: A.ints(ia), keepdims: A.int(keep ? 1 : 0) }), shape: outShape }];
};

const reshapeOp: Convert = (ctx) => {
  const e = ctx.e;
  const n = ctx.node;
  const [x] = ctx.inputs;
  const target = numsOf(constInput(ctx, 1, 'shape'));
  const known = x.shape.every((d) => d !== null) ? (x.shape as number[]).reduce((a, b) => a * b, 1) : null;
  const fixed = target.filter((d) => d !== -1).reduce((a, b) => a * b, 1);
  const outShape: Shape = target.map((d) => (d === -1 ? (known === null ? null : known / fixed) : d));
  // keep the batch axis symbolic when the model leaves it open
  const shapeArg = x.shape[0] === null && target.length > 0 && (target[0] === -1 || target[0] === 1) && target.filter((d) => d === -1).length <= 1 ? [0, ...target.slice(1)] : target;
  if (shapeArg !== target) outShape[0] = null;
  const xk = x.shape.length === 4 ? e.op('Transpose', `${n.name}/to_nhwc`, [x.name as string], { perm: A.ints(TO_NHWC) }) : (x.name as string);
  let y = e.op('Reshape', n.name, [xk, e.ints(`${n.name}/shape`, shapeArg)]);
  if (outShape.length === 4) y = e.op('Transpose', `${n.name}/to_nchw`, [y], { perm: A.ints(TO_NCHW) });
  return [{ name: y, shape: outShape }];
};

const squeeze: Convert = (ctx) => {
  const n = ctx.node;
  const [x] = ctx.inputs;
  const rank = x.shape.length;
  let axes = (attrIs(n, 'squeeze_dims') ?? attrIs(n, 'axis') ?? []).map((a) => (a < 0 ? a + rank : a));
  if (!axes.length) axes = x.shape.map((d, i) => (d === 1 ? i : -1)).filter((i) => i >= 0);
  const outShape = x.shape.filter((_, i) => !axes.includes(i));
  const e = ctx.e;
  let src = x.name as string;
  let ia = axes;
  if (rank === 4) {
    if (outShape.length === 4) ia = axes.map((a) => NHWC_TO_NCHW_AXIS[a]);
    else {
      // the remaining axes must come out in TF order
      const keepsOrder = axes.every((a) => a === 1 || a === 2);
      if (keepsOrder) ia = axes.map((a) => NHWC_TO_NCHW_AXIS[a]);
      else src = e.op('Transpose', `${n.name}/to_nhwc`, [src], { perm: A.ints(TO_NHWC) });
    }
  }
  return [{ name: e.op('Squeeze', n.name, [src, e.ints(`${n.name}/axes`, ia)]), shape: outShape }];
};

const concat: Convert = (ctx) => {
  const n = ctx.node;
  const N = attrI(n, 'N', ctx.inputs.length - 1);
  const parts = ctx.inputs.slice(0, N);
  const axisT = ctx.inputs[N];
  if (!axisT?.konst) bad(ctx, 'the axis must be a constant');
  const rank = parts[0].shape.length;
  let axis = numsOf(axisT.konst)[0];
  if (axis < 0) axis += rank;
  const shape = [...parts[0].shape];
  shape[axis] = parts.reduce<number | null>((acc, t) => (acc === null || t.shape[axis] === null ? null : acc + (t.shape[axis] as number)), 0);
  const names = parts.map((t, i) => (t.konst ? ctx.e.init(`${n.name}/part${i}`, rank === 4 ? constFor4d(t.konst) : t.konst) : (t.name as string)));
  return [{ name: ctx.e.op('Concat', n.name, names, { axis: A.int(rank === 4 ? NHWC_TO_NCHW_AXIS[axis] : axis) }), shape }];
};

const pad: Convert = (ctx) => {
  const n = ctx.node;
  const [x] = ctx.inputs;
  const p = numsOf(constInput(ctx, 1, 'paddings'));
  const rank = x.shape.length;
  const before: number[] = [];
  const after: number[] = [];
  for (let i = 0; i < rank; i++) {
    before.push(p[2 * i]);
    after.push(p[2 * i + 1]);
  }
  const order = rank === 4 ? TO_NCHW : [...Array(rank).keys()];
  const pads = [...order.map((a) => before[a]), ...order.map((a) => after[a])];
  const e = ctx.e;
  const ins = [x.name as string, e.ints(`${n.name}/pads`, pads)];
  const cv = ctx.inputs[2]?.konst;
  if (cv) ins.push(e.scalar(`${n.name}/value`, numsOf(cv)[0]));
  const mode = attrS(n, 'mode', 'CONSTANT').toLowerCase();
  if (mode !== 'constant' && mode !== 'reflect') bad(ctx, `padding mode ${mode} is not supported`);
  const shape = x.shape.map((d, i) => (d === null ? null : d + before[i] + after[i]));
  return [{ name: e.op('Pad', n.name, ins, { mode: A.string(mode) }), shape }];
};

const batchNorm: Convert = (ctx) => {
  const n = ctx.node;
  const [x] = ctx.inputs;
  if (x.shape.length === 4) needRank4(ctx, x);
  const e = ctx.e;
  const args = [1, 2, 3, 4].map((i) => e.init(`${n.name}/arg${i}`, constInput(ctx, i, 'scale, offset, mean and variance')));
  return [{ name: e.op('BatchNormalization', n.name, [x.name as string, ...args], { epsilon: A.float(attrF(n, 'epsilon', 1e-3)) }), shape: x.shape }];
};

const softmax: Convert = (ctx) => {
  const [x] = ctx.inputs;
  return [{ name: activation(ctx, 'Softmax', x.name as string, x.shape.length, ctx.node.name), shape: x.shape }];
};

const OPS: Record<string, Convert> = {
  Conv2D: convOp(false),
  _FusedConv2D: convOp(false),
  DepthwiseConv2dNative: convOp(true),
  FusedDepthwiseConv2dNative: convOp(true),
  MatMul: matMul,
  _FusedMatMul: matMul,
  BiasAdd: biasAdd,
  Add: binary('Add'),
  AddV2: binary('Add'),
  Sub: binary('Sub'),
  Mul: binary('Mul'),
  RealDiv: binary('Div'),
  Maximum: binary('Max'),
  Minimum: binary('Min'),
  MaxPool: poolOp('MaxPool'),
  AvgPool: poolOp('AveragePool'),
  Mean: mean,
  Relu: unaryAct('Relu'),
  Relu6: unaryAct('Relu6'),
  Sigmoid: unaryAct('Sigmoid'),
  Tanh: unaryAct('Tanh'),
  Elu: unaryAct('Elu'),
  Selu: unaryAct('Selu'),
  LeakyRelu: unaryAct('LeakyRelu'),
  Softmax: softmax,
  Reshape: reshapeOp,
  Squeeze: squeeze,
  ConcatV2: concat,
  Pad: pad,
  PadV2: pad,
  MirrorPad: pad,
  FusedBatchNorm: batchNorm,
  FusedBatchNormV2: batchNorm,
  FusedBatchNormV3: batchNorm,
};

/** The TF ops the GraphModel importer understands (plus Const, Placeholder, Identity, NoOp). */
export const TFJS_GRAPH_OPS: readonly string[] = [...Object.keys(OPS), 'Const', 'Placeholder', 'Identity', 'StopGradient', 'NoOp'];

const PASS = new Set(['Identity', 'StopGradient', 'Snapshot']);

interface Signature {
  inputs?: Record<string, { name?: string }>;
  outputs?: Record<string, { name?: string }>;
}

function refName(s: string): { node: string; index: number } {
  const m = /^(.*?)(?::(\d+))?$/.exec(s) as RegExpExecArray;
  return { node: m[1], index: m[2] ? Number(m[2]) : 0 };
}

export function importGraphModel(source: string, topology: Record<string, unknown>, weights: Map<string, Tensor>, signature: unknown): Emitter {
  const e = new Emitter(source);
  const nodes = (topology.node ?? []) as TfNode[];
  if ((topology.library as { function?: unknown[] } | undefined)?.function?.length)
    fail(source, 'modelTopology', 'graphs with functions (control flow) are not supported');
  const byName = new Map(nodes.map((n) => [n.name, n]));
  const values = new Map<string, TT[]>();
  const visiting = new Set<string>();

  const valueOf = (ref: string, from: TfNode): TT => {
    const { node, index } = refName(ref);
    const outs = compute(node, from);
    const v = outs[index];
    if (!v) return fail(source, `node '${from.name}' (${from.op})`, `reads output ${index} of '${node}', which has ${outs.length}`);
    return v;
  };

  function compute(name: string, from: TfNode | null): TT[] {
    const done = values.get(name);
    if (done) return done;
    const n = byName.get(name);
    if (!n) return fail(source, from ? `node '${from.name}' (${from.op})` : 'signature', `reads '${name}', which is not in the graph`);
    if (visiting.has(name)) return fail(source, `node '${name}' (${n.op})`, 'is part of a cycle');
    visiting.add(name);
    let out: TT[];
    const ins = (n.input ?? []).filter((i) => !i.startsWith('^'));
    if (n.op === 'Const') {
      const w = weights.get(n.name) ?? (n.attr?.value?.tensor ? inlineTensor(n.attr.value.tensor) : undefined);
      if (!w) return fail(source, `node '${n.name}' (Const)`, 'its value is neither in the weights manifest nor inline');
      out = [{ shape: [...w.dims], konst: w }];
    } else if (n.op === 'Placeholder') {
      const shape = dimsOf(n.attr?.shape?.shape);
      const dt = n.attr?.dtype?.type ?? 'DT_FLOAT';
      if (dt !== 'DT_FLOAT') fail(source, `node '${n.name}' (Placeholder)`, `input dtype ${dt} is not supported (only float32)`);
      const inName = e.input(n.name, toDims(shape));
      out = [
        shape.length === 4
          ? { name: e.op('Transpose', `${n.name}/to_nchw`, [inName], { perm: A.ints(TO_NCHW) }), shape }
          : { name: inName, shape },
      ];
    } else if (PASS.has(n.op)) {
      out = [valueOf(ins[0], n)];
    } else {
      const conv = OPS[n.op];
      if (!conv) return fail(source, `node '${n.name}' (${n.op})`, `op ${n.op} is not supported`);
      const ctx: Ctx = { e, source, weights, node: n, inputs: ins.map((i) => valueOf(i, n)) };
      try {
        out = conv(ctx);
      } catch (err) {
        if ((err as Error).message.startsWith(source)) throw err;
        return fail(source, `node '${n.name}' (${n.op})`, (err as Error).message);
      }
    }
    visiting.delete(name);
    values.set(name, out);
    return out;
  }

  const sig = (signature ?? {}) as Signature;
  let outRefs = Object.values(sig.outputs ?? {})
    .map((o) => o.name)
    .filter((x): x is string => !!x);
  if (!outRefs.length) {
    const used = new Set<string>();
    for (const n of nodes) for (const i of n.input ?? []) used.add(refName(i.replace(/^\^/, '')).node);
    outRefs = nodes.filter((n) => !used.has(n.name) && n.op !== 'Const' && n.op !== 'NoOp' && n.op !== 'Placeholder').map((n) => n.name);
  }
  // inputs: the signature's order first, then any other placeholder reached
  for (const i of Object.values(sig.inputs ?? {})) if (i.name) compute(refName(i.name).node, null);
  for (const ref of outRefs) {
    const fake: TfNode = { name: 'outputs', op: 'signature' };
    const v = valueOf(ref, fake);
    if (!v.name) fail(source, `output '${ref}'`, 'is a constant');
    const name = v.shape.length === 4 ? e.op('Transpose', `${refName(ref).node}/to_nhwc`, [v.name as string], { perm: A.ints(TO_NHWC) }) : (v.name as string);
    e.g.outputs.push({ name, dtype: 'float32', shape: toDims(v.shape) });
  }
  return e;
}
