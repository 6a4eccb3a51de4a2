// onnxruntime-node backend: a Graph is serialised to ONNX and run as one InferenceSession.
import type * as ortTypes from 'onnxruntime-node';
import { type ExternalFile, exportOnnxSplit } from '../engine/import/onnx';
import { Graph, Tensor } from '../engine/graph/graph';
import { Backend, CompiledGraph } from './backend';

type Ort = typeof ortTypes;

function loadOrt(): Ort {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return require('onnxruntime-node') as Ort;
}

function toOrt(ort: Ort, t: Tensor): ortTypes.Tensor {
  switch (t.dtype) {
    case 'float32':
      return new ort.Tensor('float32', t.data as Float32Array, t.dims);
    case 'int64':
      return new ort.Tensor('int64', t.data as BigInt64Array, t.dims);
    case 'int32':
      return new ort.Tensor('int32', t.data as Int32Array, t.dims);
    case 'uint8':
      return new ort.Tensor('uint8', t.data as Uint8Array, t.dims);
    default:
      throw new Error(`onnxruntime backend: cannot feed a ${t.dtype} tensor`);
  }
}

function fromOrt(v: ortTypes.Tensor): Tensor {
  const dims = [...v.dims];
  switch (v.type) {
    case 'float32':
      return { dtype: 'float32', dims, data: v.data as Float32Array };
    case 'int64':
      return { dtype: 'int64', dims, data: v.data as BigInt64Array };
    case 'int32':
      return { dtype: 'int32', dims, data: v.data as Int32Array };
    case 'bool':
    case 'uint8':
      return { dtype: v.type === 'bool' ? 'bool' : 'uint8', dims, data: v.data as Uint8Array };
    default:
      throw new Error(`onnxruntime backend: unexpected output type ${v.type}`);
  }
}

/** Initializers from this size on reach onnxruntime as in-memory external data (see exportOnnxSplit). */
const EXTERNAL_MIN_BYTES = 1 << 16;

async function createSession(ort: Ort, model: Uint8Array, files: ExternalFile[]): Promise<CompiledGraph> {
  // onnxruntime copies the external data while it builds the session; the views are dropped after
  const session = await ort.InferenceSession.create(model, { graphOptimizationLevel: 'all', externalData: files });
  return {
    async run(feeds) {
      const f: Record<string, ortTypes.Tensor> = {};
      for (const [k, v] of Object.entries(feeds)) f[k] = toOrt(ort, v);
      const out = await session.run(f);
      const res: Record<string, Tensor> = {};
      for (const [k, v] of Object.entries(out)) res[k] = fromOrt(v);
      return res;
    },
    async dispose() {
      await session.release();
    },
  };
}

export async function createOnnxruntimeBackend(): Promise<Backend> {
  const ort = loadOrt();
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const version = (require('onnxruntime-node/package.json') as { version: string }).version;
  return {
    name: 'onnxruntime',
    detail: `onnxruntime-node ${version} (cpu)`,
    compile(graph: Graph): Promise<CompiledGraph> {
      // serialise now, synchronously, so the graph itself is not referenced while the session is
      // built (only views of its large weights are); errors still arrive as a rejected promise
      let exported: { model: Uint8Array; files: ExternalFile[] };
      try {
        exported = exportOnnxSplit(graph, EXTERNAL_MIN_BYTES);
      } catch (e) {
        return Promise.reject(e);
      }
      return createSession(ort, exported.model, exported.files);
    },
  };
}
