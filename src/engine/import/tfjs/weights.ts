// tf.js weights manifests: shards read from inside the model's folder only, then decoded
// (float32, int32, bool, float16, and the uint8/uint16 affine quantisation: v * scale + min).
import { readFile } from 'node:fs/promises';
import * as path from 'node:path';
import { ModelError, type Tensor, numel } from '../../graph/graph';

export interface ManifestWeight {
  name: string;
  shape: number[];
  dtype: string;
  quantization?: { dtype: string; min?: number; scale?: number; original_dtype?: string };
}

export interface ManifestGroup {
  paths: string[];
  weights: ManifestWeight[];
}

const BYTES: Record<string, number> = { float32: 4, int32: 4, bool: 1, uint8: 1, uint16: 2, float16: 2, int8: 1, int16: 2 };

/** Resolve a manifest path inside the model's folder; anything leaving it is an error, not a read. */
export function shardPath(modelJsonPath: string, p: string): string {
  const dir = path.resolve(path.dirname(modelJsonPath));
  const bad = () => new ModelError(`${modelJsonPath}: weight file '${p}' lies outside the model's folder; refusing to read it`);
  if (typeof p !== 'string' || p === '' || path.isAbsolute(p) || path.win32.isAbsolute(p) || /^[a-z][a-z0-9+.-]*:/i.test(p)) throw bad();
  let decoded = p;
  try {
    decoded = decodeURIComponent(p);
  } catch {
    // keep it as written
  }
  for (const cand of new Set([p, decoded])) {
    if (cand.split(/[\\/]/).includes('..') || path.isAbsolute(cand)) throw bad();
    const rel = path.relative(dir, path.resolve(dir, cand));
    if (rel.startsWith('..') || path.isAbsolute(rel)) throw bad();
  }
  return path.resolve(dir, p);
}

function halfToFloat(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const f = h & 0x3ff;
  if (e === 0) return s * f * 2 ** -24;
  if (e === 31) return f ? NaN : s * Infinity;
  return s * (1 + f / 1024) * 2 ** (e - 15);
}

function decode(w: ManifestWeight, bytes: Uint8Array, where: string): Tensor {
  const n = numel(w.shape);
  const dims = [...w.shape];
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const q = w.quantization;
  const outInt = w.dtype === 'int32';
  const store = (get: (i: number) => number): Tensor => {
    if (outInt) {
      const o = new Int32Array(n);
      for (let i = 0; i < n; i++) o[i] = Math.round(get(i));
      return { dtype: 'int32', dims, data: o };
    }
    if (w.dtype === 'bool') {
      const o = new Uint8Array(n);
      for (let i = 0; i < n; i++) o[i] = get(i) ? 1 : 0;
      return { dtype: 'bool', dims, data: o };
    }
    const o = new Float32Array(n);
    for (let i = 0; i < n; i++) o[i] = get(i);
    return { dtype: 'float32', dims, data: o };
  };
  if (q) {
    if (q.dtype === 'float16') return store((i) => halfToFloat(dv.getUint16(2 * i, true)));
    const scale = q.scale ?? 1;
    const min = q.min ?? 0;
    if (q.dtype === 'uint8') return store((i) => bytes[i] * scale + min);
    if (q.dtype === 'uint16') return store((i) => dv.getUint16(2 * i, true) * scale + min);
    throw new ModelError(`${where}: weight '${w.name}' has unsupported quantization dtype '${q.dtype}'`);
  }
  switch (w.dtype) {
    case 'float32':
      return { dtype: 'float32', dims, data: new Float32Array(bytes.slice().buffer, 0, n) };
    case 'int32':
      return { dtype: 'int32', dims, data: new Int32Array(bytes.slice().buffer, 0, n) };
    case 'bool':
      return { dtype: 'bool', dims, data: bytes.slice() };
    case 'float16':
      return { dtype: 'float32', dims, data: Float32Array.from({ length: n }, (_, i) => halfToFloat(dv.getUint16(2 * i, true))) };
    default:
      throw new ModelError(`${where}: weight '${w.name}' has unsupported dtype '${w.dtype}'`);
  }
}

function byteSize(w: ManifestWeight, where: string): number {
  const t = w.quantization?.dtype ?? w.dtype;
  const b = BYTES[t];
  if (b === undefined) throw new ModelError(`${where}: weight '${w.name}' has unsupported dtype '${t}'`);
  return b * numel(w.shape);
}

/** Read and decode every weight of a manifest. */
export async function loadWeights(modelJsonPath: string, manifest: unknown): Promise<Map<string, Tensor>> {
  const out = new Map<string, Tensor>();
  if (manifest === undefined) return out;
  if (!Array.isArray(manifest)) throw new ModelError(`${modelJsonPath}: weightsManifest is not a list`);
  const groups = manifest as ManifestGroup[];
  // validate every path before reading anything
  const files = groups.map((g, gi) => {
    if (!g || !Array.isArray(g.paths) || !Array.isArray(g.weights))
      throw new ModelError(`${modelJsonPath}: weightsManifest group ${gi} lacks paths or weights`);
    return g.paths.map((p) => shardPath(modelJsonPath, p));
  });
  for (let gi = 0; gi < groups.length; gi++) {
    const g = groups[gi];
    const parts: Uint8Array[] = [];
    for (let k = 0; k < files[gi].length; k++) {
      try {
        parts.push(new Uint8Array(await readFile(files[gi][k])));
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        throw new ModelError(
          `${modelJsonPath}: weight file '${g.paths[k]}' ${code === 'ENOENT' ? 'not found' : `cannot be read (${code ?? (e as Error).message})`}`,
        );
      }
    }
    const total = parts.reduce((a, p) => a + p.length, 0);
    const needed = g.weights.reduce((a, w) => a + byteSize(w, modelJsonPath), 0);
    if (total !== needed)
      throw new ModelError(
        `${modelJsonPath}: weight files ${g.paths.map((p) => `'${p}'`).join(', ')} hold ${total} bytes but the manifest needs ${needed}` +
          (total < needed ? ' (truncated or missing shard?)' : ''),
      );
    const all = new Uint8Array(total);
    let off = 0;
    for (const p of parts) {
      all.set(p, off);
      off += p.length;
    }
    off = 0;
    for (const w of g.weights) {
      const size = byteSize(w, modelJsonPath);
      out.set(w.name, decode(w, all.subarray(off, off + size), modelJsonPath));
      off += size;
    }
  }
  return out;
}
