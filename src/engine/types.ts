// Public result types of the engine, shared by the CLI, the extension host and (as plain JSON
// plus typed arrays) the webview protocol.
import type { Layout, Tensor } from './graph/graph';

export interface LayerRelevance {
  /** The model's own node name. */
  name: string;
  /** ONNX op type (for every model format). */
  opType: string;
  /** The rule applied, e.g. 'epsilon', 'zplus', 'alpha-beta(2,1)', 'norm', 'winner-take-all'. */
  rule: string;
  /** Shape of the node's output (batch axis included). */
  outputShape: number[];
  /** Sum of the relevance the node hands to its input (spec section 5). */
  relevanceSum: number;
  positiveSum: number;
  negativeSum: number;
  /** Channel-summed relevance at the node's input, [H, W]; only when maps were requested. */
  map?: { height: number; width: number; data: Float32Array };
  /** Relevance per input channel (per feature for dense layers); only when maps were requested. */
  channelSums?: Float32Array;
  /**
   * Relevance per token (summed over the features) when the node's input is a token tensor
   * [1, T, D] of a transformer (index 0 is the first token, e.g. the class token); only when maps
   * were requested.
   */
  tokenSums?: Float32Array;
}

export interface Explanation {
  /** Input relevance in the model's layout, batch axis included, float32. */
  relevance: Tensor;
  layout: Layout;
  logits: Float32Array;
  target: number;
  /** The target's logit. */
  logit: number;
  relevanceSum: number;
  /** From output to input. */
  layers: LayerRelevance[];
  timings: { forwardMs?: number; lrpMs: number };
}

export interface ModelInputInfo {
  name: string;
  /** Static dims with the batch axis set to 1. */
  dims: number[];
  layout: Layout;
  /** Channels, height, width, derived from dims and layout (for images). */
  channels: number;
  height: number;
  width: number;
}
