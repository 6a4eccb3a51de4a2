// Shared helpers for the tf.js tests: run a Graph on onnxruntime-node (via exportOnnx) and compare.
import type * as ortTypes from 'onnxruntime-node';
import { exportOnnx } from '../../src/engine/import/onnx';
import type { Graph, Tensor } from '../../src/engine/graph/graph';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const ort = require('onnxruntime-node') as typeof ortTypes;

export async function runOrt(g: Graph, feeds: Record<string, Tensor>): Promise<Record<string, Tensor>> {
  const session = await ort.InferenceSession.create(exportOnnx(g), { graphOptimizationLevel: 'disabled' });
  try {
    const f: Record<string, ortTypes.Tensor> = {};
    for (const [k, v] of Object.entries(feeds))
      f[k] = new ort.Tensor(v.dtype === 'int64' ? 'int64' : v.dtype === 'int32' ? 'int32' : 'float32', v.data as Float32Array, v.dims);
    const out = await session.run(f);
    const res: Record<string, Tensor> = {};
    for (const [k, v] of Object.entries(out)) {
      const dtype = v.type === 'float32' ? 'float32' : v.type === 'int64' ? 'int64' : v.type === 'int32' ? 'int32' : 'bool';
      res[k] = { dtype, dims: [...v.dims], data: v.data as Float32Array };
    }
    return res;
  } finally {
    await session.release();
  }
}

export function numbersOf(t: Tensor): number[] {
  return Array.from(t.data as ArrayLike<number | bigint>, (x) => Number(x));
}

export { seededRandom as rng } from '../../src/engine/random';
export { relL2, maxRelErr } from '../helpers';

export function randn(dims: number[], r: () => number, scale = 1): Tensor {
  let n = 1;
  for (const d of dims) n *= d;
  const data = new Float32Array(n);
  for (let i = 0; i < n; i++) data[i] = (r() * 2 - 1) * scale;
  return { dtype: 'float32', dims: [...dims], data };
}

// ---------- real tf.js models from npm packages (extracted to a temp folder, never committed) ----------

import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

const ROOT = path.resolve(__dirname, '../..');

/** nsfwjs ships its models as browserify bundles: write model.json and binary shards to a temp dir. */
export function extractNsfwjs(model: 'mobilenet_v2' | 'mobilenet_v2_mid' | 'inception_v3'): string {
  const src = path.join(ROOT, 'node_modules/nsfwjs/dist/models', model);
  const dir = path.join(os.tmpdir(), 'lrp-lens-tfjs-models', `nsfwjs-${model}`);
  const modelJson = path.join(dir, 'model.json');
  if (fs.existsSync(modelJson)) return modelJson;
  fs.mkdirSync(dir, { recursive: true });
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const json = require(path.join(src, 'model.min.js')) as { weightsManifest: { paths: string[] }[] };
  for (const g of json.weightsManifest)
    for (const p of g.paths) {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      const mod = require(path.join(src, `${p}.min.js`)) as string | { default: string };
      const b64 = typeof mod === 'string' ? mod : mod.default;
      fs.writeFileSync(path.join(dir, p), Buffer.from(b64, 'base64'));
    }
  fs.writeFileSync(modelJson + '.tmp', JSON.stringify(json));
  fs.renameSync(modelJson + '.tmp', modelJson);
  return modelJson;
}

export function emotionModel(): string {
  return path.join(ROOT, 'node_modules/@vladmandic/human/models/emotion.json');
}

/** A tf.js IOHandler reading model.json and its shards from disk (tfjs without tfjs-node has no file://). */
export function fileHandler(modelJsonPath: string): import('@tensorflow/tfjs').io.IOHandler {
  return {
    load: async () => {
      const json = JSON.parse(fs.readFileSync(modelJsonPath, 'utf8')) as {
        modelTopology: object;
        format?: string;
        generatedBy?: string;
        convertedBy?: string;
        signature?: object;
        userDefinedMetadata?: { signature?: object };
        weightsManifest: { paths: string[]; weights: import('@tensorflow/tfjs').io.WeightsManifestEntry[] }[];
      };
      const specs = json.weightsManifest.flatMap((g) => g.weights);
      const bufs = json.weightsManifest.flatMap((g) => g.paths.map((p) => fs.readFileSync(path.join(path.dirname(modelJsonPath), p))));
      const all = Buffer.concat(bufs);
      return {
        modelTopology: json.modelTopology,
        format: json.format,
        generatedBy: json.generatedBy,
        convertedBy: json.convertedBy,
        signature: json.signature ?? json.userDefinedMetadata?.signature,
        userDefinedMetadata: json.userDefinedMetadata,
        weightSpecs: specs,
        weightData: all.buffer.slice(all.byteOffset, all.byteOffset + all.byteLength),
      };
    },
  };
}
