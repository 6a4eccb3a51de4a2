// The backend adapter: something that can run a Graph (ONNX op semantics) on tensors.
// The engine builds one graph holding the forward pass and the whole relevance pass; a backend
// only executes graphs, so every backend computes the same rules by construction.
import type { Graph, Tensor } from '../engine/graph/graph';

export type BackendName = 'onnxruntime' | 'tfjs';
export type BackendChoice = BackendName | 'auto';

export interface CompiledGraph {
  /** Run the graph. Feeds are keyed by graph input name; returns every graph output by name. */
  run(feeds: Record<string, Tensor>): Promise<Record<string, Tensor>>;
  dispose(): Promise<void>;
}

export interface Backend {
  readonly name: BackendName;
  /** Human-readable detail, e.g. 'onnxruntime-node 1.30.0 (cpu)' or 'tfjs 4.22.0 (wasm)'. */
  readonly detail: string;
  /** How many compiled LRP programs an explainer may keep at once (memory-bound backends keep few). */
  readonly programCacheSize?: number;
  compile(graph: Graph): Promise<CompiledGraph>;
}
