// Attribution methods beside LRP: gradient (saliency), gradient x input, Grad-CAM (Selvaraju et
// al. 2017), CAM (Zhou et al. 2016) and a seeded uniform random map (the baseline). Every method
// returns the same Attribution: an [H, W] map at the model's input size plus a relevance tensor
// in the model's input layout, so the heatmap, the compare grid and the evaluation treat them
// alike.
import type { CompiledGraph } from '../backends/backend';
import { COMPOSITE_NAMES, RulesConfig } from '../engine/config';
import { GRAD_INPUT, GradientProgram, compileGradient } from '../engine/compile/gradient';
import { Graph, ModelError, Node, Tensor, consumers, i64, producers, topoSort } from '../engine/graph/graph';
import { LRP_LOGITS, LRP_TARGET, LRP_TARGET_USED, Shapes } from '../engine/compile/lrp';
import { Explanation, ModelInputInfo } from '../engine/types';
import { seededRandom } from '../engine/random';
import { resizeBilinear } from '../engine/io/resample';

export { seededRandom };

export const METHOD_NAMES = ['gradient', 'gradient-input', 'gradcam', 'cam', 'random'] as const;
export type MethodName = (typeof METHOD_NAMES)[number];

/** A method beside LRP, or LRP under a rules config. */
export type Method = MethodName | { lrp: RulesConfig };

export interface AttributeOptions {
  method: Method;
  /** 0-based class index; default: the top class. */
  target?: number;
  /** gradcam: the node (or tensor) whose output is the feature map; default: see gradcamLayer. */
  layer?: string;
  /** random: the seed (default 0). */
  seed?: number;
}

/** A 2-D map, row-major. */
export interface AttributionMap {
  width: number;
  height: number;
  data: Float32Array;
}

export interface Attribution {
  /** 'gradient', 'gradient-input', 'gradcam', 'cam', 'random', or 'lrp:<composite>'. */
  method: string;
  /**
   * The attribution per input pixel, [H, W] at the model's input size. Pixel-level methods
   * (LRP, gradient, gradient-input): the relevance tensor summed over channels. Map methods
   * (gradcam, cam): the class map bilinearly upsampled from the feature map's size. random:
   * uniform in [0, 1).
   */
  map: AttributionMap;
  /**
   * In the model's input layout with the batch axis, float32. Pixel-level methods: the per-element
   * attribution (the signed gradient for `gradient`). Map methods and random: the map divided
   * equally among the channels, so the channel sum is `map` again.
   */
  relevance: Tensor;
  logits: Float32Array;
  target: number;
  logit: number;
  /** gradcam / cam: the node whose output was the feature map. */
  layer?: string;
  /** Per-layer detail when the method is LRP. */
  explanation?: Explanation;
  timings: { ms: number };
}

/** What the methods need from an Explainer. */
export interface MethodHost {
  readonly modelPath: string;
  readonly graph: Graph;
  readonly shapes: Shapes;
  readonly input: ModelInputInfo;
  readonly numClasses: number;
  /** Compile an engine-built graph once per key on the explainer's backend. */
  compileCached(key: string, build: () => Graph, what: string): Promise<CompiledGraph>;
  explain(x: Tensor, opts: { target?: number; rules: RulesConfig; layers?: boolean }): Promise<Explanation>;
}

export function methodLabel(m: Method): string {
  return typeof m === 'string' ? m : `lrp:${m.lrp.composite}`;
}

/** A method name as the CLI and settings spell it: a method, `lrp`, or an LRP composite name. */
export function parseMethod(name: string, baseRules: RulesConfig): Method {
  const n = name.trim();
  if ((METHOD_NAMES as readonly string[]).includes(n)) return n as MethodName;
  if (n === 'lrp') return { lrp: baseRules };
  if ((COMPOSITE_NAMES as readonly string[]).includes(n)) return { lrp: { ...baseRules, composite: n as RulesConfig['composite'] } };
  throw new ModelError(
    `unknown method '${name}' (known: ${[...METHOD_NAMES, 'lrp', ...COMPOSITE_NAMES].join(', ')})`,
  );
}

// ---------------- layers ----------------

/** Element-wise ops a feature map is followed through to its block's end (shape unchanged). */
const FOLLOW = new Set([
  'Relu', 'LeakyRelu', 'PRelu', 'Clip', 'Elu', 'Selu', 'HardSwish', 'Tanh', 'Sigmoid', 'Softplus',
  'Identity', 'Dropout', 'BatchNormalization',
]);

export interface FeatureLayer {
  /** The node whose output is the feature map. */
  node: string;
  tensor: string;
  /** Channel axis of the feature map. */
  channelAxis: number;
  /**
   * A token tensor [1, T, D] of a vision transformer: after `skip` leading tokens (class,
   * distillation), the patch tokens laid out as the height x width patch grid, channels last.
   */
  tokens?: TokenLayout;
}

/** Patch tokens of a vision transformer: `skip` leading tokens (class, distillation), then the height x width patch grid, row by row. */
export interface TokenLayout {
  skip: number;
  height: number;
  width: number;
}

/**
 * The patch grid of a token model: the spatial size of the patch-embedding Conv (the first Conv
 * with a spatial output) when its output becomes a token tensor [1, h*w, D].
 */
function patchGrid(order: Node[], dims: (t: string) => number[] | undefined): { height: number; width: number } | null {
  const conv = order.find((n) => n.opType === 'Conv' && (dims(n.outputs[0]) ?? []).length === 4);
  if (!conv) return null;
  const [, , h, w] = dims(conv.outputs[0]) as number[];
  return h > 1 && w > 1 ? { height: h, width: w } : null;
}

/** How a [1, T, D] tensor maps onto the patch grid (T = skip + h*w, up to 4 leading tokens), or null. */
function tokenLayout(d: number[] | undefined, grid: { height: number; width: number } | null): TokenLayout | null {
  if (!grid || !d || d.length !== 3 || d[0] !== 1) return null;
  const skip = d[1] - grid.height * grid.width;
  return skip >= 0 && skip <= 4 ? { skip, ...grid } : null;
}

/**
 * Grad-CAM's layer in a vision transformer: the last LayerNormalization whose output is a token
 * tensor on the patch grid and still feeds an attention Softmax (the last block's first norm, as
 * usual for ViTs: after it, only the class token reaches the head, so later patch tokens have no
 * gradient). Null for models without attention.
 */
function transformerLayer(graph: Graph, order: Node[], dims: (t: string) => number[] | undefined): FeatureLayer | null {
  const grid = patchGrid(order, dims);
  if (!grid) return null;
  const feedsSoftmax = new Set<string>();
  const cons = consumers(graph);
  for (let i = order.length - 1; i >= 0; i--) {
    const n = order[i];
    const reaches = n.opType === 'Softmax' || n.outputs.some((o) => (cons.get(o) ?? []).length && feedsSoftmax.has(o));
    if (reaches) for (const x of n.inputs) if (x) feedsSoftmax.add(x);
  }
  let found: FeatureLayer | null = null;
  for (const n of order) {
    if (n.opType !== 'LayerNormalization' || !feedsSoftmax.has(n.outputs[0])) continue;
    const tokens = tokenLayout(dims(n.outputs[0]), grid);
    if (tokens) found = { node: n.name, tensor: n.outputs[0], channelAxis: 3, tokens };
  }
  return found;
}

/**
 * The token layout of a vision transformer (a patch-embedding Conv whose grid becomes the tokens
 * of attention blocks, see transformerLayer), or null for other models (CNNs, Swin, ConvNeXt).
 */
export function patchTokenLayout(graph: Graph, shapes: Shapes): TokenLayout | null {
  const dims = (t: string) => shapes.get(t)?.dims;
  return transformerLayer(graph, topoSort(graph), dims)?.tokens ?? null;
}

/**
 * Grad-CAM's feature map. With `name`: the output of the node of that name (or the tensor of that
 * name), taken as [N, C, H, W] (ONNX Conv layout), or as patch tokens [1, T, D] on a vision
 * transformer. Default on a vision transformer: see transformerLayer. Otherwise: the last Conv
 * whose output has H, W > 1 (or a residual Add of such maps after it: a ConvNeXt stage's output),
 * followed through its activation and a residual Add while the shape stays the same, so the map
 * is the rectified block output (VGG: the ReLU after the last Conv; ResNet: the last block's ReLU
 * after the addition), as in Selvaraju et al.
 */
export function gradcamLayer(graph: Graph, shapes: Shapes, name?: string): FeatureLayer {
  const dims = (t: string) => shapes.get(t)?.dims;
  const order = topoSort(graph);
  if (name !== undefined) {
    const n = order.find((m) => m.name === name);
    const tensor = n ? n.outputs[0] : order.some((m) => m.outputs.includes(name)) ? name : undefined;
    if (!tensor) {
      const convs = order.filter((m) => m.opType === 'Conv').map((m) => m.name);
      throw new ModelError(
        `${graph.source}: --layer '${name}': no node or tensor of that name (Conv nodes: ${convs.join(', ') || 'none'})`,
      );
    }
    const d = dims(tensor);
    const tokens = tokenLayout(d, patchGrid(order, dims));
    if (tokens) return { node: n ? n.name : name, tensor, channelAxis: 3, tokens };
    if (!d || d.length !== 4)
      throw new ModelError(
        `${graph.source}: --layer '${name}': Grad-CAM needs a spatial feature map [N, C, H, W] or patch tokens [1, T, D], but its output has shape [${(d ?? []).join(', ')}]`,
      );
    return { node: n ? n.name : name, tensor, channelAxis: 1 };
  }
  const vit = transformerLayer(graph, order, dims);
  if (vit) return vit;
  // the last Conv with a spatial output, or a later residual Add of spatial maps (a ConvNeXt
  // stage ends in one, after its depthwise Conv and the per-pixel MLP)
  let conv: Node | undefined;
  for (const n of order) {
    const d = dims(n.outputs[0]);
    const spatial = !!d && d.length === 4 && d[2] > 1 && d[3] > 1;
    const residual =
      n.opType === 'Add' && n.inputs.length === 2 && n.inputs.every((i) => !graph.initializers.has(i) && (dims(i) ?? []).join() === (d ?? []).join());
    if (spatial && (n.opType === 'Conv' || (conv && residual))) conv = n;
  }
  if (!conv) throw new ModelError(`${graph.source}: gradcam: the model has no Conv layer with a spatial output (H, W > 1)`);
  const cons = consumers(graph);
  const outputs = new Set(graph.outputs.map((o) => o.name));
  let node = conv;
  let tensor = conv.outputs[0];
  const shape = (dims(tensor) ?? []).join();
  for (;;) {
    const c = cons.get(tensor) ?? [];
    if (c.length !== 1 || outputs.has(tensor)) break;
    const next = c[0];
    const sameShape = (dims(next.outputs[0]) ?? []).join() === shape;
    const residual = next.opType === 'Add' && next.inputs.length === 2 && next.inputs.every((i) => (dims(i) ?? []).join() === shape);
    if (!sameShape || !(FOLLOW.has(next.opType) || residual)) break;
    node = next;
    tensor = next.outputs[0];
  }
  return { node: node.name, tensor, channelAxis: 1 };
}

const SHAPE_ONLY = new Set(['Flatten', 'Reshape', 'Squeeze', 'Identity', 'Dropout']);

/**
 * CAM's feature map: the input of the global average pooling when the network ends in
 * GlobalAveragePool (or ReduceMean over the spatial axes) -> (Flatten/Reshape) -> one dense
 * layer. Otherwise throws "cam is not applicable" naming the model and the reason.
 */
export function camLayer(graph: Graph, shapes: Shapes, modelPath: string): FeatureLayer {
  const prod = producers(graph);
  const cons = consumers(graph);
  const desc = (n: Node) => `${n.opType} '${n.name}'`;
  const fail = (why: string): never => {
    throw new ModelError(
      `${modelPath}: cam is not applicable: CAM needs a network that ends in global average pooling followed by one dense layer (Zhou et al. 2016), but ${why}; use gradcam instead`,
    );
  };
  const out = graph.outputs[0].name;
  let dense = prod.get(out);
  if (!dense) return fail(`the output '${out}' is not computed by any node`);
  // MatMul + Add(bias constant)
  if (dense.opType === 'Add') {
    const consts = dense.inputs.filter((i) => graph.initializers.has(i));
    const other = dense.inputs.find((i) => !graph.initializers.has(i));
    const p = other ? prod.get(other) : undefined;
    if (consts.length === 1 && p && (p.opType === 'MatMul' || p.opType === 'Gemm')) dense = p;
  }
  if (dense.opType !== 'Gemm' && dense.opType !== 'MatMul')
    return fail(`the output '${out}' comes from ${desc(dense)}, not from a dense layer`);
  if (!graph.initializers.has(dense.inputs[1])) return fail(`the weight of ${desc(dense)} is not a constant`);
  let t = dense.inputs[0];
  for (;;) {
    const p = prod.get(t);
    if (!p) return fail(`the input of ${desc(dense)} is the model input`);
    if ((cons.get(t) ?? []).length !== 1) return fail(`'${t}' before ${desc(dense)} feeds several nodes`);
    if (SHAPE_ONLY.has(p.opType)) {
      t = p.inputs[0];
      continue;
    }
    const fm = p.inputs[0];
    const d = shapes.get(fm)?.dims ?? [];
    const node = prod.get(fm)?.name ?? fm;
    if (p.opType === 'GlobalAveragePool' && d.length === 4) return { node, tensor: fm, channelAxis: 1 };
    if (p.opType === 'ReduceMean' && d.length === 4) {
      const rank = d.length;
      const axes = ((p.attrs.axes?.value as number[] | undefined) ?? []).map((a) => (a < 0 ? a + rank : a)).sort();
      if (axes.join() === '2,3') return { node, tensor: fm, channelAxis: 1 };
      if (axes.join() === '1,2') return { node, tensor: fm, channelAxis: 3 };
      return fail(`${desc(p)} before the dense layer averages over axes [${axes.join(', ')}], not over height and width`);
    }
    return fail(`the dense layer ${desc(dense)} is preceded by ${desc(p)}, not by global average pooling`);
  }
}

// ---------------- maps ----------------


/** Channel sum of an input-layout tensor as an [H, W] map. */
export function channelSum(t: Tensor, input: ModelInputInfo): AttributionMap {
  const { channels: C, height: H, width: W } = input;
  const data = new Float32Array(H * W);
  const src = t.data;
  const nchw = input.layout === 'NCHW';
  for (let p = 0; p < H * W; p++) {
    let s = 0;
    for (let c = 0; c < C; c++) s += Number(nchw ? src[c * H * W + p] : src[p * C + c]);
    data[p] = s;
  }
  return { width: W, height: H, data };
}

/** An [H, W] map spread equally over the channels of the input layout. */
export function spreadMap(map: AttributionMap, input: ModelInputInfo): Tensor {
  const { channels: C, height: H, width: W } = input;
  const out = new Float32Array(C * H * W);
  const nchw = input.layout === 'NCHW';
  for (let p = 0; p < H * W; p++) {
    const v = map.data[p] / C;
    for (let c = 0; c < C; c++) out[nchw ? c * H * W + p : p * C + c] = v;
  }
  return { dtype: 'float32', dims: [...input.dims], data: out };
}

/**
 * sum_c weight_c(y, x) * A_c(y, x) over a 4-D feature map with the given channel axis, where the
 * weight is either per channel (Grad-CAM: alpha_c) or per element (CAM).
 */
function weightedChannelSum(
  A: Float32Array,
  dims: number[],
  channelAxis: number,
  weight: (c: number, i: number) => number,
): AttributionMap {
  const [, d1, d2, d3] = dims;
  const [C, h, w] = channelAxis === 1 ? [d1, d2, d3] : [d3, d1, d2];
  const data = new Float32Array(h * w);
  for (let c = 0; c < C; c++)
    for (let p = 0; p < h * w; p++) {
      const i = channelAxis === 1 ? c * h * w + p : p * C + c;
      data[p] += weight(c, i) * A[i];
    }
  return { width: w, height: h, data };
}

function channelMeans(G: Float32Array, dims: number[], channelAxis: number): Float32Array {
  const [, d1, d2, d3] = dims;
  const [C, h, w] = channelAxis === 1 ? [d1, d2, d3] : [d3, d1, d2];
  const m = new Float32Array(C);
  for (let c = 0; c < C; c++) {
    let s = 0;
    for (let p = 0; p < h * w; p++) s += G[channelAxis === 1 ? c * h * w + p : p * C + c];
    m[c] = s / (h * w);
  }
  return m;
}


// ---------------- running ----------------

interface GradientRun {
  logits: Float32Array;
  target: number;
  inputGrad?: Float32Array;
  taps: { value: Float32Array; grad: Float32Array; dims: number[] }[];
}

async function runGradient(host: MethodHost, x: Tensor, target: number | undefined, input: boolean, taps: string[]): Promise<GradientRun> {
  let prog: GradientProgram | undefined;
  const key = JSON.stringify({ gradient: { input, taps } });
  const compiled = await host.compileCached(
    key,
    () => {
      prog = compileGradient(host.graph, host.shapes, { input, taps });
      return prog.graph;
    },
    'the gradient program',
  );
  const out = await compiled.run({ [host.input.name]: x, [LRP_TARGET]: i64([1], [target ?? -1]) });
  return {
    logits: out[LRP_LOGITS].data as Float32Array,
    target: Number(out[LRP_TARGET_USED].data[0]),
    inputGrad: input ? (out[GRAD_INPUT].data as Float32Array) : undefined,
    taps: taps.map((_, i) => ({
      value: out[`grad_tap_value_${i}`].data as Float32Array,
      grad: out[`grad_tap_grad_${i}`].data as Float32Array,
      dims: out[`grad_tap_value_${i}`].dims,
    })),
  };
}

function checkTarget(host: MethodHost, t: number | undefined): void {
  if (t !== undefined && (!Number.isInteger(t) || t < 0 || t >= host.numClasses))
    throw new ModelError(
      `${host.modelPath}: target ${t} is out of range (the model has ${host.numClasses} classes: 0 to ${host.numClasses - 1})`,
    );
}

function checkImageInput(host: MethodHost, what: string): void {
  if (host.input.dims.length !== 4 || !host.input.height || !host.input.width)
    throw new ModelError(`${host.modelPath}: ${what} needs an image input [N, C, H, W] or [N, H, W, C], got [${host.input.dims.join(', ')}]`);
}

/** Attribution of `x` (batch 1, the model's layout) under any method. */
export async function attribute(host: MethodHost, x: Tensor, opts: AttributeOptions, forward: () => Promise<Float32Array>): Promise<Attribution> {
  checkTarget(host, opts.target);
  checkImageInput(host, methodLabel(opts.method));
  const t0 = performance.now();
  const { input } = host;
  const { height: H, width: W } = input;
  const m = opts.method;
  const done = (a: Omit<Attribution, 'timings' | 'method'>): Attribution => ({
    method: methodLabel(m),
    ...a,
    timings: { ms: performance.now() - t0 },
  });
  if (typeof m === 'object') {
    const e = await host.explain(x, { target: opts.target, rules: m.lrp, layers: false });
    return done({ map: channelSum(e.relevance, input), relevance: e.relevance, logits: e.logits, target: e.target, logit: e.logit, explanation: e });
  }
  switch (m) {
    case 'gradient':
    case 'gradient-input': {
      const r = await runGradient(host, x, opts.target, true, []);
      const g = r.inputGrad as Float32Array;
      let data: Float32Array = g;
      if (m === 'gradient-input') {
        const xs = x.data as Float32Array;
        data = new Float32Array(g.length);
        for (let i = 0; i < g.length; i++) data[i] = g[i] * xs[i];
      }
      const relevance: Tensor = { dtype: 'float32', dims: [...input.dims], data };
      return done({ map: channelSum(relevance, input), relevance, logits: r.logits, target: r.target, logit: r.logits[r.target] });
    }
    case 'gradcam':
    case 'cam': {
      const layer = m === 'gradcam' ? gradcamLayer(host.graph, host.shapes, opts.layer) : camLayer(host.graph, host.shapes, host.modelPath);
      const r = await runGradient(host, x, opts.target, false, [layer.tensor]);
      let { value: Av, grad: G, dims } = r.taps[0];
      if (layer.tokens) {
        // the patch tokens as a [1, h, w, D] map
        const { skip, height, width } = layer.tokens;
        const D = dims[2];
        Av = Av.subarray(skip * D);
        G = G.subarray(skip * D);
        dims = [1, height, width, D];
      }
      let small: AttributionMap;
      if (m === 'gradcam') {
        // alpha_c = mean of dlogit/dA_c over the map; ReLU(sum_c alpha_c A_c)
        const alpha = channelMeans(G, dims, layer.channelAxis);
        small = weightedChannelSum(Av, dims, layer.channelAxis, (c) => alpha[c]);
        for (let i = 0; i < small.data.length; i++) small.data[i] = Math.max(small.data[i], 0);
      } else {
        // the gradient at the pooled map is w_ck / (h w) everywhere: CAM_k = sum_c w_ck A_c
        const hw = layer.channelAxis === 1 ? dims[2] * dims[3] : dims[1] * dims[2];
        small = weightedChannelSum(Av, dims, layer.channelAxis, (_c, i) => G[i] * hw);
      }
      const map: AttributionMap = { width: W, height: H, data: resizeBilinear(small.data, small.width, small.height, 1, W, H) };
      return done({ map, relevance: spreadMap(map, input), logits: r.logits, target: r.target, logit: r.logits[r.target], layer: layer.node });
    }
    case 'random': {
      const logits = await forward();
      let target = opts.target ?? 0;
      if (opts.target === undefined) for (let i = 1; i < logits.length; i++) if (logits[i] > logits[target]) target = i;
      const rnd = seededRandom(opts.seed ?? 0);
      const data = new Float32Array(H * W);
      for (let i = 0; i < data.length; i++) data[i] = rnd();
      const map: AttributionMap = { width: W, height: H, data };
      return done({ map, relevance: spreadMap(map, input), logits, target, logit: logits[target] });
    }
    default:
      throw new ModelError(`unknown method '${String(m)}' (known: ${[...METHOD_NAMES, 'lrp'].join(', ')})`);
  }
}
