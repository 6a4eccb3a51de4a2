// tf.js model import: LayersModel (Keras topology) and GraphModel (format graph-model) model.json
// files into the engine's graph (ONNX ops, NCHW inside, the input itself NHWC).
import { readFile } from 'node:fs/promises';
import { type Graph, ModelError, pruneDead } from '../../graph/graph';
import { importGraphModel } from './graphmodel';
import { importLayersModel } from './layers';
import { loadWeights } from './weights';

export { TFJS_LAYERS } from './layers';
export { TFJS_GRAPH_OPS } from './graphmodel';
export { shardPath } from './weights';

interface ModelJsonFile {
  format?: string;
  modelTopology?: Record<string, unknown>;
  weightsManifest?: unknown;
  signature?: unknown;
  userDefinedMetadata?: { signature?: unknown };
}

/** Read a tf.js model.json (and its weight shards, from its own folder only) into a Graph. */
export async function importTfjs(modelJsonPath: string): Promise<Graph> {
  let text: string;
  try {
    text = await readFile(modelJsonPath, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new ModelError(`${modelJsonPath}: ${code === 'ENOENT' ? 'model file not found' : `cannot read the model file (${code})`}`);
  }
  let json: ModelJsonFile;
  try {
    json = JSON.parse(text) as ModelJsonFile;
  } catch (e) {
    throw new ModelError(`${modelJsonPath}: not a tf.js model.json (invalid JSON: ${(e as Error).message})`);
  }
  if (!json || typeof json !== 'object' || !json.modelTopology || typeof json.modelTopology !== 'object')
    throw new ModelError(`${modelJsonPath}: not a tf.js model.json (no modelTopology)`);
  const weights = await loadWeights(modelJsonPath, json.weightsManifest);
  const isGraph = json.format === 'graph-model' || Array.isArray((json.modelTopology as { node?: unknown }).node);
  const e = isGraph
    ? importGraphModel(modelJsonPath, json.modelTopology, weights, json.signature ?? json.userDefinedMetadata?.signature)
    : importLayersModel(modelJsonPath, json.modelTopology, weights);
  const g = e.g;
  if (!g.inputs.length) throw new ModelError(`${modelJsonPath}: the model has no input`);
  if (!g.outputs.length) throw new ModelError(`${modelJsonPath}: the model has no output`);
  pruneDead(g);
  g.layout = 'NHWC';
  return g;
}
