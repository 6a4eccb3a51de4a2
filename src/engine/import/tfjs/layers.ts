// tf.js LayersModel (Keras topology) -> the engine's graph, NCHW inside.
// The graph input stays NHWC and is followed by a Transpose; every rank-4 tensor is NCHW from
// there on, and rank changes (Flatten, Reshape) go back through NHWC so element order matches Keras.
import { A, type Tensor, f32 } from '../../graph/graph';
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
  toDims,
  windowAttrs,
  windowOut,
  emitActivation,
} from './common';

type Shape = (number | null)[];

/** A Keras tensor: its graph tensor (NCHW when rank 4) and its Keras (channels_last) shape. */
interface KT {
  name: string;
  shape: Shape;
}

interface LayerJson {
  class_name: string;
  name?: string;
  config: Record<string, unknown>;
  inbound_nodes?: unknown[];
}

interface Ctx {
  e: Emitter;
  source: string;
  weights: Map<string, Tensor>;
  used: Set<string>;
}

type Convert = (ctx: Ctx, layer: LayerJson, name: string, inputs: KT[]) => KT[];

// ---------- helpers ----------

function cfg<T>(l: LayerJson, key: string, dflt: T): T {
  const v = l.config[key];
  return v === undefined || v === null ? dflt : (v as T);
}

function pair(v: unknown, dflt: number): [number, number] {
  if (v === undefined || v === null) return [dflt, dflt];
  if (typeof v === 'number') return [v, v];
  const a = v as number[];
  return [a[0], a[1] ?? a[0]];
}

function bad(ctx: Ctx, l: LayerJson, name: string, why: string): never {
  return fail(ctx.source, `layer '${name}' (${l.class_name})`, why);
}

function weight(ctx: Ctx, l: LayerJson, name: string, w: string): Tensor {
  const exact = `${name}/${w}`;
  let key: string | undefined = ctx.weights.has(exact) ? exact : undefined;
  if (!key) {
    const cands = [...ctx.weights.keys()].filter((k) => k.endsWith(`/${exact}`) || k === `${exact}:0` || k.endsWith(`/${exact}:0`));
    if (cands.length === 1) key = cands[0];
    else if (cands.length > 1) key = cands.find((k) => !ctx.used.has(k)) ?? cands[0];
  }
  if (!key) return bad(ctx, l, name, `weight '${exact}' is not in the weights manifest`);
  ctx.used.add(key);
  return ctx.weights.get(key) as Tensor;
}

function optWeight(ctx: Ctx, l: LayerJson, name: string, w: string, present: boolean): Tensor | undefined {
  return present ? weight(ctx, l, name, w) : undefined;
}

function checkChannelsLast(ctx: Ctx, l: LayerJson, name: string): void {
  const df = cfg(l, 'data_format', 'channels_last');
  if (df !== 'channels_last') bad(ctx, l, name, `data_format '${df}' is not supported (only channels_last)`);
}

function needRank(ctx: Ctx, l: LayerJson, name: string, x: KT, rank: number): void {
  if (x.shape.length !== rank) bad(ctx, l, name, `expects a rank-${rank} input, got shape [${x.shape.map(String)}]`);
}

/** Internal axis for a Keras axis of a tensor of the given rank. */
function internalAxis(axis: number, rank: number): number {
  const a = axis < 0 ? axis + rank : axis;
  return rank === 4 ? NHWC_TO_NCHW_AXIS[a] : a;
}

/** Keras activation name -> nodes. Returns the output tensor name. */
const LAYER_ACTIVATIONS = new Set(['relu', 'relu6', 'elu', 'selu', 'sigmoid', 'hard_sigmoid', 'hardSigmoid', 'tanh', 'softplus', 'swish', 'silu', 'softmax']);

function activation(ctx: Ctx, l: LayerJson, layerName: string, kind: string, x: string, rank: number, nodeName: string): string {
  if (kind === 'linear') return x;
  const out = LAYER_ACTIVATIONS.has(kind) ? emitActivation(ctx.e, kind, x, nodeName, rank) : null;
  return out ?? bad(ctx, l, layerName, `activation '${kind}' is not supported`);
}

function withActivation(ctx: Ctx, l: LayerJson, name: string, y: KT): KT {
  const kind = cfg(l, 'activation', 'linear');
  const act = typeof kind === 'string' ? kind : ((kind as { class_name?: string }).class_name ?? String(kind)).toLowerCase();
  if (act === 'linear') return y;
  return { name: activation(ctx, l, name, act, y.name, y.shape.length, `${name}/${act}`), shape: y.shape };
}

// ---------- layers ----------

function convLike(kind: 'conv' | 'depthwise' | 'separable'): Convert {
  return (ctx, l, name, [x]) => {
    needRank(ctx, l, name, x, 4);
    checkChannelsLast(ctx, l, name);
    const e = ctx.e;
    const k = pair(l.config.kernel_size, 1);
    const s = pair(l.config.strides, 1);
    const d = pair(l.config.dilation_rate, 1);
    const padding = cfg<string>(l, 'padding', 'valid');
    if (padding !== 'same' && padding !== 'valid') bad(ctx, l, name, `padding '${padding}' is not supported`);
    const useBias = cfg(l, 'use_bias', true);
    const inC = x.shape[3];
    if (inC === null) bad(ctx, l, name, 'the number of input channels is unknown');
    const inHW = [x.shape[1], x.shape[2]];
    const win = windowAttrs(inHW, k, s, d, padding);
    delete win.kernel_shape;
    const outHW = [0, 1].map((i) => windowOut(inHW[i], k[i], s[i], d[i], padding === 'same'));
    const attrs = { ...win, dilations: A.ints(d) };
    let y: string;
    let outC: number;
    if (kind === 'conv') {
      const groups = cfg(l, 'groups', 1);
      const w = hwioToOihw(weight(ctx, l, name, 'kernel'));
      outC = w.dims[0];
      const ins = [x.name, e.init(`${name}/kernel`, w)];
      const b = optWeight(ctx, l, name, 'bias', useBias);
      if (b) ins.push(e.init(`${name}/bias`, b));
      y = e.op('Conv', name, ins, { ...attrs, group: A.int(groups) });
    } else {
      const dw = depthwiseToOihw(weight(ctx, l, name, 'depthwise_kernel'));
      const mid = dw.dims[0];
      const dwIns = [x.name, e.init(`${name}/depthwise_kernel`, dw)];
      if (kind === 'depthwise') {
        const b = optWeight(ctx, l, name, 'bias', useBias);
        if (b) dwIns.push(e.init(`${name}/bias`, b));
        y = e.op('Conv', name, dwIns, { ...attrs, group: A.int(inC) });
        outC = mid;
      } else {
        const t = e.op('Conv', `${name}/depthwise`, dwIns, { ...attrs, group: A.int(inC) });
        const pw = hwioToOihw(weight(ctx, l, name, 'pointwise_kernel'));
        outC = pw.dims[0];
        const ins = [t, e.init(`${name}/pointwise_kernel`, pw)];
        const b = optWeight(ctx, l, name, 'bias', useBias);
        if (b) ins.push(e.init(`${name}/bias`, b));
        y = e.op('Conv', name, ins, {
          kernel_shape: A.ints([1, 1]),
          strides: A.ints([1, 1]),
          pads: A.ints([0, 0, 0, 0]),
          dilations: A.ints([1, 1]),
          group: A.int(1),
        });
      }
    }
    return [withActivation(ctx, l, name, { name: y, shape: [x.shape[0], outHW[0], outHW[1], outC] })];
  };
}

function pool(op: 'MaxPool' | 'AveragePool'): Convert {
  return (ctx, l, name, [x]) => {
    needRank(ctx, l, name, x, 4);
    checkChannelsLast(ctx, l, name);
    const k = pair(l.config.pool_size, 2);
    const s = l.config.strides === null || l.config.strides === undefined ? k : pair(l.config.strides, 1);
    const padding = cfg<string>(l, 'padding', 'valid');
    const inHW = [x.shape[1], x.shape[2]];
    const attrs = windowAttrs(inHW, k, s, [1, 1], padding);
    if (op === 'AveragePool') attrs.count_include_pad = A.int(0);
    const y = ctx.e.op(op, name, [x.name], attrs);
    const outHW = [0, 1].map((i) => windowOut(inHW[i], k[i], s[i], 1, padding === 'same'));
    return [{ name: y, shape: [x.shape[0], outHW[0], outHW[1], x.shape[3]] }];
  };
}

function globalPool(op: 'GlobalAveragePool' | 'GlobalMaxPool'): Convert {
  return (ctx, l, name, [x]) => {
    needRank(ctx, l, name, x, 4);
    checkChannelsLast(ctx, l, name);
    const keep = cfg(l, 'keepdims', false);
    if (keep) return [{ name: ctx.e.op(op, name, [x.name]), shape: [x.shape[0], 1, 1, x.shape[3]] }];
    const p = ctx.e.op(op, name, [x.name]);
    return [{ name: ctx.e.op('Flatten', `${name}/flatten`, [p], { axis: A.int(1) }), shape: [x.shape[0], x.shape[3]] }];
  };
}

/** Rank-4 tensors go back to NHWC before anything that depends on element order. */
function toKerasOrder(ctx: Ctx, x: KT, name: string): string {
  return x.shape.length === 4 ? ctx.e.op('Transpose', `${name}/to_nhwc`, [x.name], { perm: A.ints(TO_NHWC) }) : x.name;
}

function elementwise(op: string, post?: (ctx: Ctx, name: string, y: string, n: number) => string): Convert {
  return (ctx, l, name, inputs) => {
    if (inputs.length < 2) bad(ctx, l, name, 'needs at least two inputs');
    const rank = inputs[0].shape.length;
    if (inputs.some((t) => t.shape.length !== rank)) bad(ctx, l, name, 'inputs of different ranks are not supported');
    let acc = inputs[0].name;
    let shape = inputs[0].shape;
    for (let i = 1; i < inputs.length; i++) {
      const last = i === inputs.length - 1 && !post;
      acc = ctx.e.op(op, last ? name : `${name}/${i}`, [acc, inputs[i].name]);
      shape = broadcast(shape, inputs[i].shape);
    }
    if (post) acc = post(ctx, name, acc, inputs.length);
    return [{ name: acc, shape }];
  };
}

function batchNorm(ctx: Ctx, l: LayerJson, name: string, [x]: KT[]): KT[] {
  const rank = x.shape.length;
  const axisCfg = l.config.axis;
  const axis = Array.isArray(axisCfg) ? (axisCfg as number[]) : [axisCfg === undefined ? -1 : (axisCfg as number)];
  if (axis.length !== 1 || internalAxis(axis[0], rank) !== 1) bad(ctx, l, name, `axis ${JSON.stringify(axisCfg)} is not the channel axis`);
  const C = x.shape[rank - 1];
  if (C === null) bad(ctx, l, name, 'the number of channels is unknown');
  const ones = f32([C], new Array<number>(C).fill(1));
  const zeros = f32([C]);
  const gamma = cfg(l, 'scale', true) ? weight(ctx, l, name, 'gamma') : ones;
  const beta = cfg(l, 'center', true) ? weight(ctx, l, name, 'beta') : zeros;
  const mean = weight(ctx, l, name, 'moving_mean');
  const variance = weight(ctx, l, name, 'moving_variance');
  const e = ctx.e;
  const y = e.op(
    'BatchNormalization',
    name,
    [x.name, e.init(`${name}/gamma`, gamma), e.init(`${name}/beta`, beta), e.init(`${name}/moving_mean`, mean), e.init(`${name}/moving_variance`, variance)],
    { epsilon: A.float(cfg(l, 'epsilon', 1e-3)) },
  );
  return [{ name: y, shape: x.shape }];
}

function dense(ctx: Ctx, l: LayerJson, name: string, [x]: KT[]): KT[] {
  const e = ctx.e;
  const kernel = weight(ctx, l, name, 'kernel');
  const [inF, units] = kernel.dims;
  const bias = optWeight(ctx, l, name, 'bias', cfg(l, 'use_bias', true));
  const rank = x.shape.length;
  if (x.shape[rank - 1] !== null && x.shape[rank - 1] !== inF)
    bad(ctx, l, name, `kernel expects ${inF} input features, input has ${x.shape[rank - 1]}`);
  const outShape = [...x.shape.slice(0, -1), units];
  if (rank === 2) {
    const ins = [x.name, e.init(`${name}/kernel`, permute(kernel, [1, 0]))];
    if (bias) ins.push(e.init(`${name}/bias`, bias));
    const y = e.op('Gemm', name, ins, { transB: A.int(1) });
    return [withActivation(ctx, l, name, { name: y, shape: outShape })];
  }
  // Dense on the last axis of a higher-rank tensor: in Keras order, MatMul (+ Add)
  const xk = toKerasOrder(ctx, x, name);
  let y = e.op('MatMul', name, [xk, e.init(`${name}/kernel`, kernel)]);
  if (bias) y = e.op('Add', `${name}/bias_add`, [y, e.init(`${name}/bias`, bias)]);
  if (rank === 4) y = e.op('Transpose', `${name}/to_nchw`, [y], { perm: A.ints(TO_NCHW) });
  return [withActivation(ctx, l, name, { name: y, shape: outShape })];
}

function reshapeLayer(ctx: Ctx, l: LayerJson, name: string, [x]: KT[]): KT[] {
  const target = cfg<number[]>(l, 'target_shape', []);
  const known = x.shape.slice(1);
  const total = known.every((d) => d !== null) ? (known as number[]).reduce((a, b) => a * b, 1) : null;
  const fixed = target.filter((d) => d !== -1).reduce((a, b) => a * b, 1);
  const outShape: Shape = [x.shape[0], ...target.map((d) => (d === -1 ? (total === null ? null : total / fixed) : d))];
  const e = ctx.e;
  const xk = toKerasOrder(ctx, x, name);
  let y = e.op('Reshape', name, [xk, e.ints(`${name}/shape`, [0, ...target])]);
  if (outShape.length === 4) y = e.op('Transpose', `${name}/to_nchw`, [y], { perm: A.ints(TO_NCHW) });
  return [{ name: y, shape: outShape }];
}

function flattenLayer(ctx: Ctx, _l: LayerJson, name: string, [x]: KT[]): KT[] {
  const xk = toKerasOrder(ctx, x, name);
  const rest = x.shape.slice(1);
  const n = rest.every((d) => d !== null) ? (rest as number[]).reduce((a, b) => a * b, 1) : null;
  return [{ name: ctx.e.op('Flatten', name, [xk], { axis: A.int(1) }), shape: [x.shape[0], n] }];
}

function zeroPadding(ctx: Ctx, l: LayerJson, name: string, [x]: KT[]): KT[] {
  needRank(ctx, l, name, x, 4);
  checkChannelsLast(ctx, l, name);
  const p = l.config.padding;
  let t: number, b: number, le: number, r: number;
  if (typeof p === 'number') [t, b, le, r] = [p, p, p, p];
  else {
    const a = p as (number | number[])[];
    const h = typeof a[0] === 'number' ? [a[0], a[0]] : (a[0] as number[]);
    const w = typeof a[1] === 'number' ? [a[1], a[1]] : (a[1] as number[]);
    [t, b, le, r] = [h[0], h[1], w[0], w[1]];
  }
  const e = ctx.e;
  const y = e.op('Pad', name, [x.name, e.ints(`${name}/pads`, [0, 0, t, le, 0, 0, b, r])], { mode: A.string('constant') });
  const add = (v: number | null, k: number) => (v === null ? null : v + k);
  return [{ name: y, shape: [x.shape[0], add(x.shape[1], t + b), add(x.shape[2], le + r), x.shape[3]] }];
}

function concatenate(ctx: Ctx, l: LayerJson, name: string, inputs: KT[]): KT[] {
  const rank = inputs[0].shape.length;
  const axisK = cfg(l, 'axis', -1);
  const ak = axisK < 0 ? axisK + rank : axisK;
  if (ak === 0) bad(ctx, l, name, 'concatenation along the batch axis is not supported');
  const shape = [...inputs[0].shape];
  shape[ak] = inputs.reduce<number | null>((acc, t) => (acc === null || t.shape[ak] === null ? null : acc + (t.shape[ak] as number)), 0);
  const y = ctx.e.op(
    'Concat',
    name,
    inputs.map((t) => t.name),
    { axis: A.int(internalAxis(ak, rank)) },
  );
  return [{ name: y, shape }];
}

function activationLayer(ctx: Ctx, l: LayerJson, name: string, [x]: KT[]): KT[] {
  const kind = cfg(l, 'activation', 'linear');
  if (kind === 'linear') return [{ name: ctx.e.op('Identity', name, [x.name]), shape: x.shape }];
  return [{ name: activation(ctx, l, name, kind, x.name, x.shape.length, name), shape: x.shape }];
}

function reluLayer(ctx: Ctx, l: LayerJson, name: string, [x]: KT[]): KT[] {
  const e = ctx.e;
  const maxValue = l.config.max_value as number | null | undefined;
  const slope = cfg(l, 'negative_slope', 0);
  const threshold = cfg(l, 'threshold', 0);
  if (threshold !== 0) bad(ctx, l, name, 'a non-zero threshold is not supported');
  let y: string;
  if (slope === 0) {
    y =
      maxValue === null || maxValue === undefined
        ? e.op('Relu', name, [x.name])
        : e.op('Clip', name, [x.name, e.scalar(`${name}/min`, 0), e.scalar(`${name}/max`, maxValue)]);
  } else {
    if (maxValue !== null && maxValue !== undefined) bad(ctx, l, name, 'negative_slope together with max_value is not supported');
    y = e.op('LeakyRelu', name, [x.name], { alpha: A.float(slope) });
  }
  return [{ name: y, shape: x.shape }];
}

function rescaling(ctx: Ctx, l: LayerJson, name: string, [x]: KT[]): KT[] {
  const e = ctx.e;
  const rank = x.shape.length;
  const constOf = (v: unknown, what: string): string => {
    if (typeof v === 'number') return e.scalar(`${name}/${what}`, v);
    const a = v as number[];
    const dims = rank === 4 ? [a.length, 1, 1] : [a.length];
    return e.init(`${name}/${what}`, f32(dims, a));
  };
  let y = e.op('Mul', name, [x.name, constOf(l.config.scale ?? 1, 'scale')]);
  const off = l.config.offset ?? 0;
  if (!(typeof off === 'number' && off === 0)) y = e.op('Add', `${name}/offset`, [y, constOf(off, 'offset')]);
  return [{ name: y, shape: x.shape }];
}

const identityLayer: Convert = (ctx, _l, name, [x]) => [{ name: ctx.e.op('Identity', name, [x.name]), shape: x.shape }];

const LAYERS: Record<string, Convert> = {
  Conv2D: convLike('conv'),
  Convolution2D: convLike('conv'),
  DepthwiseConv2D: convLike('depthwise'),
  SeparableConv2D: convLike('separable'),
  SeparableConvolution2D: convLike('separable'),
  Dense: dense,
  BatchNormalization: batchNorm,
  Activation: activationLayer,
  ReLU: reluLayer,
  LeakyReLU: (ctx, l, name, [x]) => [
    { name: ctx.e.op('LeakyRelu', name, [x.name], { alpha: A.float(cfg(l, 'alpha', cfg(l, 'negative_slope', 0.3))) }), shape: x.shape },
  ],
  ELU: (ctx, l, name, [x]) => [{ name: ctx.e.op('Elu', name, [x.name], { alpha: A.float(cfg(l, 'alpha', 1)) }), shape: x.shape }],
  Softmax: (ctx, l, name, [x]) => {
    const axis = cfg(l, 'axis', -1);
    const rank = x.shape.length;
    return [{ name: ctx.e.op('Softmax', name, [x.name], { axis: A.int(internalAxis(Array.isArray(axis) ? axis[0] : axis, rank)) }), shape: x.shape }];
  },
  ZeroPadding2D: zeroPadding,
  MaxPooling2D: pool('MaxPool'),
  MaxPool2D: pool('MaxPool'),
  AveragePooling2D: pool('AveragePool'),
  AvgPool2D: pool('AveragePool'),
  GlobalAveragePooling2D: globalPool('GlobalAveragePool'),
  GlobalAvgPool2D: globalPool('GlobalAveragePool'),
  GlobalMaxPooling2D: globalPool('GlobalMaxPool'),
  GlobalMaxPool2D: globalPool('GlobalMaxPool'),
  Flatten: flattenLayer,
  Reshape: reshapeLayer,
  Add: elementwise('Add'),
  Subtract: elementwise('Sub'),
  Multiply: elementwise('Mul'),
  Maximum: elementwise('Max'),
  Minimum: elementwise('Min'),
  Average: elementwise('Add', (ctx, name, y, n) => ctx.e.op('Div', name, [y, ctx.e.scalar(`${name}/count`, n)])),
  Concatenate: concatenate,
  Dropout: identityLayer,
  SpatialDropout2D: identityLayer,
  GaussianDropout: identityLayer,
  GaussianNoise: identityLayer,
  AlphaDropout: identityLayer,
  ActivityRegularization: identityLayer,
  Rescaling: rescaling,
};

/** The Keras layer classes the importer understands. */
export const TFJS_LAYERS: readonly string[] = Object.keys(LAYERS);

// ---------- topology ----------

const MODEL_CLASSES = new Set(['Model', 'Functional', 'Sequential']);

interface ModelJson {
  class_name: string;
  config: { name?: string; layers?: LayerJson[]; input_layers?: unknown; output_layers?: unknown } | LayerJson[];
}

type Ref = [string, number, number];

/** Inbound node -> list of (layer, node index, tensor index); Keras 2 and Keras 3 formats. */
function parseInbound(node: unknown): Ref[] {
  if (Array.isArray(node)) return node.map((r) => [r[0] as string, (r[1] as number) ?? 0, (r[2] as number) ?? 0]);
  const refs: Ref[] = [];
  const visit = (v: unknown) => {
    if (Array.isArray(v)) v.forEach(visit);
    else if (v && typeof v === 'object') {
      const o = v as { class_name?: string; config?: { keras_history?: [string, number, number] } };
      if (o.class_name === '__keras_tensor__' && o.config?.keras_history) refs.push(o.config.keras_history);
    }
  };
  visit((node as { args?: unknown }).args);
  return refs;
}

function refList(v: unknown): Ref[] {
  if (!Array.isArray(v)) return [];
  if (v.length && typeof v[0] === 'string') return [v as Ref];
  return (v as unknown[]).map((r) => r as Ref);
}

function layerName(l: LayerJson): string {
  return (l.config?.name as string) ?? l.name ?? l.class_name;
}

/** Emit one (possibly nested) model called on `inputs`; returns its output tensors. */
function emitModel(ctx: Ctx, model: ModelJson, inputs: KT[] | null): KT[] {
  const conf = model.config;
  const layers = Array.isArray(conf) ? conf : (conf.layers ?? []);
  if (model.class_name === 'Sequential') {
    let cur: KT[] | null = inputs;
    for (let i = 0; i < layers.length; i++) {
      const l = layers[i];
      if (l.class_name === 'InputLayer') {
        if (!cur) cur = [graphInput(ctx, l, layerName(l))];
        continue;
      }
      if (!cur) {
        const shape = l.config.batch_input_shape as Shape | undefined;
        if (!shape) return fail(ctx.source, `layer '${layerName(l)}' (${l.class_name})`, 'the Sequential model declares no input shape');
        cur = [graphInput(ctx, { class_name: 'InputLayer', config: { batch_input_shape: shape } }, `${layerName(l)}_input`)];
      }
      cur = callLayer(ctx, l, cur);
    }
    if (!cur) return fail(ctx.source, 'model', 'the Sequential model has no layers');
    return cur;
  }
  // functional
  const byName = new Map(layers.map((l) => [layerName(l), l]));
  const produced = new Map<string, KT[]>(); // `${layer}|${nodeIndex}` -> outputs
  const c = conf as { input_layers?: unknown; output_layers?: unknown };
  const inRefs = refList(c.input_layers);
  inRefs.forEach((r, i) => {
    const l = byName.get(r[0]);
    if (!l) fail(ctx.source, `input layer '${r[0]}'`, 'is not among the layers');
    produced.set(`${r[0]}|${r[1]}`, [inputs ? inputs[i] : graphInput(ctx, l, r[0])]);
  });
  const resolve = (ref: Ref): KT | undefined => produced.get(`${ref[0]}|${ref[1]}`)?.[ref[2]];
  // layers are listed in a valid order in practice; loop until everything that can be emitted is
  const pending: { l: LayerJson; k: number; refs: Ref[] }[] = [];
  for (const l of layers) {
    if (l.class_name === 'InputLayer') continue;
    (l.inbound_nodes ?? []).forEach((node, k) => pending.push({ l, k, refs: parseInbound(node) }));
  }
  while (pending.length) {
    const i = pending.findIndex((p) => p.refs.every((r) => resolve(r)));
    if (i < 0) {
      const p = pending[0];
      const miss = p.refs.find((r) => !resolve(r)) as Ref;
      return fail(ctx.source, `layer '${layerName(p.l)}' (${p.l.class_name})`, `its input '${miss[0]}' is never computed`);
    }
    const { l, k, refs } = pending.splice(i, 1)[0];
    produced.set(`${layerName(l)}|${k}`, callLayer(ctx, l, refs.map((r) => resolve(r) as KT)));
  }
  return refList(c.output_layers).map((r) => {
    const t = resolve(r);
    if (!t) return fail(ctx.source, `output layer '${r[0]}'`, 'is never computed');
    return t;
  });
}

function callLayer(ctx: Ctx, l: LayerJson, inputs: KT[]): KT[] {
  if (MODEL_CLASSES.has(l.class_name)) return emitModel(ctx, l as unknown as ModelJson, inputs);
  const name = layerName(l);
  const conv = LAYERS[l.class_name];
  if (!conv) return fail(ctx.source, `layer '${name}' (${l.class_name})`, `layer type ${l.class_name} is not supported`);
  try {
    return conv(ctx, l, name, inputs);
  } catch (e) {
    if ((e as Error).message.startsWith(ctx.source)) throw e;
    return fail(ctx.source, `layer '${name}' (${l.class_name})`, (e as Error).message);
  }
}

function graphInput(ctx: Ctx, l: LayerJson, name: string): KT {
  const shape = (l.config.batch_input_shape ?? l.config.batch_shape) as Shape | undefined;
  if (!shape) return fail(ctx.source, `input layer '${name}'`, 'declares no batch_input_shape');
  const dtype = (l.config.dtype as string | undefined) ?? 'float32';
  if (dtype !== 'float32') fail(ctx.source, `input layer '${name}'`, `input dtype ${dtype} is not supported (only float32)`);
  const e = ctx.e;
  const inName = e.input(name, toDims(shape));
  if (shape.length !== 4) return { name: inName, shape };
  return { name: e.op('Transpose', `${name}/to_nchw`, [inName], { perm: A.ints(TO_NCHW) }), shape };
}

export function importLayersModel(source: string, topology: Record<string, unknown>, weights: Map<string, Tensor>): Emitter {
  const e = new Emitter(source);
  const model = ((topology.model_config as ModelJson | undefined) ?? topology) as ModelJson;
  if (!model || !model.class_name || !MODEL_CLASSES.has(model.class_name))
    fail(source, 'modelTopology', `expected a Keras Model or Sequential, got '${String(model?.class_name)}'`);
  const ctx: Ctx = { e, source, weights, used: new Set() };
  const outs = emitModel(ctx, model, null);
  for (const o of outs) {
    // rank-4 outputs go back to NHWC, as tf.js returns them
    const name = o.shape.length === 4 ? e.op('Transpose', `${o.name}/to_nhwc`, [o.name], { perm: A.ints(TO_NHWC) }) : o.name;
    e.g.outputs.push({ name, dtype: 'float32', shape: toDims(o.shape) });
  }
  return e;
}
