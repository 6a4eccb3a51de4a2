// Concepts (CRP): conditional heatmaps of a layer's channels, the channels' shares of the layer's
// relevance, and the top channels of an explanation. The masks are an input of one compiled program
// per (rules, layer, batch), so switching channels is a run, not a recompile; up to CONDITION_BATCH
// masks go through one run of a program whose graph has that batch.
import { RulesConfig } from '../engine/config';
import { ConditionSpec, LRP_CHANNEL_RELEVANCE, LRP_CONDITION_RELEVANCE, LRP_MASK, channelCount } from '../engine/compile/condition';
import { LRP_LOGITS, LRP_RELEVANCE, LRP_TARGET, LRP_TARGET_USED, compileLrp } from '../engine/compile/lrp';
import { batchedForwardGraph } from '../engine/compile/batched-forward';
import { inferShapes } from '../engine/graph/shapes';
import { Graph, ModelError, Node, Tensor, i64, numel } from '../engine/graph/graph';
import type { MethodHost } from './methods';

/** Masks per run: a batch of this many conditional maps is one program run. */
export const CONDITION_BATCH = 8;

export interface LayerInfo {
  /** The node's name. */
  name: string;
  opType: string;
  /** Output shape, batch 1. */
  dims: number[];
  channels: number;
}

/** The node a layer name (node name or output tensor) refers to, with its channel count. */
export function conditionLayer(host: Pick<MethodHost, 'graph' | 'shapes' | 'modelPath'>, layer: string): LayerInfo {
  const n: Node | undefined = host.graph.nodes.find((m) => m.name === layer || m.outputs[0] === layer);
  if (!n) {
    const known = host.graph.nodes.filter((m) => ['Conv', 'Gemm', 'MatMul'].includes(m.opType)).map((m) => m.name);
    throw new ModelError(
      `${host.modelPath}: no layer '${layer}' in the model (give a node name or its output tensor's name; its linear layers: ${known.slice(0, 8).join(', ')}${known.length > 8 ? `, ... ${known.length} in all` : ''})`,
    );
  }
  const dims = host.shapes.get(n.outputs[0])?.dims;
  if (!dims) throw new ModelError(`${host.modelPath}: no shape known for the output of layer '${layer}'`);
  try {
    return { name: n.name, opType: n.opType, dims, channels: channelCount(dims) };
  } catch (e) {
    throw new ModelError(`${host.modelPath}: layer '${layer}': ${(e as Error).message}`);
  }
}

export interface ConditionalOptions {
  rules: RulesConfig;
  /** 0-based class index; default: the top class. */
  target?: number;
  layer: string;
  /** One mask per conditional map, each with one weight per channel of the layer (usually 0/1). */
  masks: Float32Array[];
  /** Masks per program run (default CONDITION_BATCH). */
  maxBatch?: number;
}

export interface ConditionalResult {
  layer: LayerInfo;
  target: number;
  logits: Float32Array;
  /** The relevance at the layer's output per channel (unmasked). */
  channelRelevance: Float32Array;
  /** The layer's total relevance (sum of channelRelevance). */
  layerRelevance: number;
  /** Per mask: the input relevance (model layout, batch 1) and the masked relevance at the layer. */
  maps: { relevance: Tensor; conditionRelevance: number }[];
  /** Whether the masks ran batched (false: the graph pins its batch, one run per mask). */
  batched: boolean;
  timings: { ms: number; runs: number };
}

function programFor(host: MethodHost, rules: RulesConfig, spec: ConditionSpec, batch: number) {
  return host.compileCached(
    JSON.stringify({ condition: spec.layer, rules, batch }),
    () => {
      let g: Graph = host.graph;
      let shapes = host.shapes;
      if (batch > 1) {
        const fwd = batchedForwardGraph(host.graph, host.shapes, batch);
        g = fwd;
        shapes = inferShapes(fwd, batch);
      }
      return compileLrp(g, shapes, rules, { maps: false, stats: false, condition: spec }).graph;
    },
    `the conditional LRP program for layer '${spec.layer}' (batch ${batch})`,
  );
}

/** One conditional map per mask (see condition.ts for the definition). */
export async function conditionalRelevance(host: MethodHost, x: Tensor, opts: ConditionalOptions): Promise<ConditionalResult> {
  const layer = conditionLayer(host, opts.layer);
  const t = opts.target;
  if (t !== undefined && (!Number.isInteger(t) || t < 0 || t >= host.numClasses))
    throw new ModelError(`${host.modelPath}: target ${t} is out of range (0 to ${host.numClasses - 1})`);
  if (!opts.masks.length) throw new ModelError(`${host.modelPath}: no channel masks to condition on`);
  for (const m of opts.masks)
    if (m.length !== layer.channels)
      throw new ModelError(`${host.modelPath}: a mask for layer '${layer.name}' has ${m.length} values; the layer has ${layer.channels} channels`);
  const spec: ConditionSpec = { layer: layer.name };
  const per = numel(host.input.dims);
  const C = layer.channels;
  const t0 = performance.now();
  let batch = Math.max(1, Math.min(opts.maxBatch ?? CONDITION_BATCH, opts.masks.length));
  let compiled;
  try {
    compiled = await programFor(host, opts.rules, spec, batch);
  } catch (e) {
    if (batch === 1) throw e;
    batch = 1; // the graph pins its batch (e.g. a reshape that folds it): one run per mask
    compiled = await programFor(host, opts.rules, spec, 1);
  }
  const maps: ConditionalResult['maps'] = [];
  let logits = new Float32Array(0);
  let target = -1;
  let channelRelevance = new Float32Array(C);
  let runs = 0;
  for (let s = 0; s < opts.masks.length; s += batch) {
    const xs = new Float32Array(batch * per);
    const mask = new Float32Array(batch * C);
    for (let i = 0; i < batch; i++) {
      xs.set(x.data as Float32Array, i * per);
      if (s + i < opts.masks.length) mask.set(opts.masks[s + i], i * C);
    }
    const out = await compiled.run({
      [host.input.name]: { dtype: 'float32', dims: [batch, ...host.input.dims.slice(1)], data: xs },
      [LRP_TARGET]: i64([1], [t ?? -1]),
      [LRP_MASK]: { dtype: 'float32', dims: [batch, C], data: mask },
    });
    runs++;
    if (s === 0) {
      const k = host.numClasses;
      logits = Float32Array.from((out[LRP_LOGITS].data as Float32Array).subarray(0, k));
      target = Number(out[LRP_TARGET_USED].data[0]);
      channelRelevance = Float32Array.from((out[LRP_CHANNEL_RELEVANCE].data as Float32Array).subarray(0, C));
    }
    const rel = out[LRP_RELEVANCE].data as Float32Array;
    const cr = out[LRP_CONDITION_RELEVANCE].data as Float32Array;
    for (let i = 0; i < batch && s + i < opts.masks.length; i++)
      maps.push({
        relevance: { dtype: 'float32', dims: [...host.input.dims], data: rel.slice(i * per, (i + 1) * per) },
        conditionRelevance: cr[i],
      });
  }
  let layerRelevance = 0;
  for (const v of channelRelevance) layerRelevance += v;
  return { layer, target, logits, channelRelevance, layerRelevance, maps, batched: batch > 1, timings: { ms: performance.now() - t0, runs } };
}

/** Channel indices by relevance at the layer, largest first (ties: lower index first). */
export function topChannels(channelRelevance: ArrayLike<number>, k: number): number[] {
  const idx = Array.from({ length: channelRelevance.length }, (_, i) => i);
  idx.sort((a, b) => channelRelevance[b] - channelRelevance[a] || a - b);
  return idx.slice(0, Math.max(0, k));
}

/** A 0/1 mask with ones at the given channels. */
export function channelMask(channels: number, on: number[]): Float32Array {
  const m = new Float32Array(channels);
  for (const c of on) {
    if (!Number.isInteger(c) || c < 0 || c >= channels) throw new ModelError(`channel ${c} is out of range (0 to ${channels - 1})`);
    m[c] = 1;
  }
  return m;
}
