// Conditional relevance (Concept Relevance Propagation, Achtibat et al. 2023): the relevance at a
// layer L is masked to a set of channels, and only that masked relevance goes on to the input.
// Relevance that would reach the input around L (a residual skip, a concatenation that bypasses
// L) is dropped at L, as zennit-crp's default (`exclude_parallel`) does, so a channel's map shows
// that channel alone. The mask is a program input: a batch of K masks is one run of a program
// whose graph has batch K (every row carries the same image; rows differ only below L).
import { GraphBuilder } from '../graph/builder';
import { A, ModelError, Node } from '../graph/graph';

/** Program input: the channel masks, float32 [K, C]. */
export const LRP_MASK = 'lrp_mask';
/** Program output: the relevance at L per channel, before masking, [K, C] (rows equal). */
export const LRP_CHANNEL_RELEVANCE = 'lrp_channel_relevance';
/** Program output: the masked relevance at L, per mask, [K]. */
export const LRP_CONDITION_RELEVANCE = 'lrp_condition_relevance';

export interface ConditionSpec {
  /** The conditioned node: its name, or the name of its first output tensor. */
  layer: string;
}

/** Whether `n` is the node a condition names. */
export function isConditionNode(n: Node, spec: ConditionSpec): boolean {
  return n.name === spec.layer || n.outputs[0] === spec.layer;
}

/**
 * The channel axis of a layer output: axis 1 of a 4-D (NCHW) map, the last axis of a [N, D]
 * dense output or of a [N, T, D] token sequence.
 */
export function channelAxis(dims: number[]): number {
  if (dims.length === 4 || dims.length === 2) return 1;
  if (dims.length === 3) return 2;
  throw new ModelError(`a layer output of rank ${dims.length} ([${dims.join(', ')}]) has no channel axis LRP Lens knows`);
}

/** Number of channels of a layer output (see channelAxis). */
export function channelCount(dims: number[]): number {
  return dims[channelAxis(dims)];
}

/**
 * Mask the relevance `r` at the output (shape `dims`) of the conditioned node in a program of batch
 * `batch`: adds the mask input and the two condition outputs to the graph, returns the masked
 * relevance. The output's axis 0 is the batch, except in a batch-1 program whose exporter folded
 * the batch away (a per-token dense layer on [tokens, features]); that output takes the one mask.
 */
export function applyCondition(b: GraphBuilder, r: string, dims: number[], batch: number): string {
  const axis = channelAxis(dims);
  const C = dims[axis];
  const batched = dims[0] === batch && axis !== 0;
  if (!batched && batch !== 1)
    throw new ModelError(`the conditioned layer's output [${dims.join(', ')}] does not keep the batch of ${batch} on its first axis`);
  b.g.inputs.push({ name: LRP_MASK, dtype: 'float32', shape: [batch, C] });
  const maskShape = dims.map((_, i) => (i === axis ? C : batched && i === 0 ? batch : 1));
  const masked = b.mul(r, b.reshape(LRP_MASK, maskShape));
  const all = dims.map((_, i) => i);
  const kept = batched ? [0, axis] : [axis];
  // (ReduceSum over an empty axes list would sum everything: no reduction there)
  const sumOver = (t: string, axes: number[]) => (axes.length ? b.op('ReduceSum', [t, b.ints(axes)], { keepdims: A.int(1) }) : t);
  const perChannel = b.reshape(sumOver(r, all.filter((i) => !kept.includes(i))), [batch, C]);
  const perMask = b.reshape(sumOver(masked, all.filter((i) => !(batched && i === 0))), [batch]);
  for (const [src, name, shape] of [
    [perChannel, LRP_CHANNEL_RELEVANCE, [batch, C]],
    [perMask, LRP_CONDITION_RELEVANCE, [batch]],
  ] as const) {
    b.g.nodes.push({ name: `${name}_node`, opType: 'Identity', inputs: [src], outputs: [name], attrs: {} });
    b.g.outputs.push({ name, dtype: 'float32', shape: [...shape] });
  }
  return masked;
}
