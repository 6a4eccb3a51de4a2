// Shared test helpers: where things are, running the built CLI, .npy files, tiny ONNX models.
//
// Tests read only files inside the repository: the fixtures live in test/fixtures (see its
// README for where each file came from), and every path is derived from the repository root.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { Graph, Node, Tensor, ValueInfo, f32 } from '../src/engine/graph/graph';
import { readNpy, writeNpy } from '../src/engine/io/npy';
import { seededRandom } from '../src/engine/random';
import { exportOnnx } from '../src/engine/import/onnx';
import { parseRulesConfig } from '../src/engine/config';
import type { Explanation } from '../src/engine/types';
import { Explainer } from '../src/explain/explainer';

/** The repository root. */
export const REPO_DIR = path.resolve(__dirname, '..');
/** The test fixtures (reference models and relevance, photos, odd image files). */
export const FIXTURES_DIR = path.join(REPO_DIR, 'test', 'fixtures');
export const REFERENCE_DIR = path.join(FIXTURES_DIR, 'lrp-reference');
export const IMAGES_DIR = path.join(FIXTURES_DIR, 'images');
/** The reference fixtures' ONNX models, relative to REFERENCE_DIR. */
export const REFERENCE_MODELS = [
  'digits-cnn/model.onnx',
  'shapes-vgg/model.onnx',
  'shapes-vgg/model-bn.onnx',
  'shapes-resnet/model.onnx',
  'shapes-resnet/model-bn.onnx',
  'shapes-resnet/model-dynbatch.onnx',
];
/** The built CLI (`npm run build` first). */
export const CLI = path.join(REPO_DIR, 'dist', 'cli.js');

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Run `node dist/cli.js ...args`. */
export function runCli(args: string[], opts: { cwd?: string; timeoutMs?: number } = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], {
      cwd: opts.cwd ?? REPO_DIR,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, LRP_LENS_DEBUG: '' },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 120_000);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** A fresh temporary folder; call the returned cleanup when done. */
export function makeTmpDir(prefix = 'lrp-lens-test-'): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(path.join(tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

export function readNpyFile(file: string): Tensor {
  return readNpy(new Uint8Array(readFileSync(file)), file);
}

/** A float32 .npy file as dims and data. */
export function readNpyF32(file: string): { dims: number[]; data: Float32Array } {
  const t = readNpyFile(file);
  if (t.dtype !== 'float32') throw new Error(`${file}: expected float32, got ${t.dtype}`);
  return { dims: t.dims, data: t.data as Float32Array };
}

export function writeNpyFile(file: string, t: Tensor): void {
  writeFileSync(file, writeNpy(t));
}

/** max_i |a_i - b_i| / max_i |b_i|. */
export function maxRelErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`maxRelErr: lengths differ (${a.length} vs ${b.length})`);
  let num = 0;
  let den = 0;
  for (let i = 0; i < b.length; i++) {
    num = Math.max(num, Math.abs(a[i] - b[i]));
    den = Math.max(den, Math.abs(b[i]));
  }
  return den === 0 ? num : num / den;
}

export { relL2, ulpSensitivity } from '../src/explain/stability';

/** Run `fn` over `items` with at most `limit` in flight; results in input order. */
export async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T, i: number) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i], i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}


export { seededRandom as rng };

// ---------- tiny ONNX models ----------

/** A node with the given op, inputs and one or more outputs (`name` also names its first output by default). */
export function node(
  name: string,
  opType: string,
  inputs: string[],
  outputs: string[] = [name],
  attrs: Node['attrs'] = {},
): Node {
  return { name, opType, inputs, outputs, attrs };
}

export interface TinyModel {
  input: ValueInfo;
  output: ValueInfo;
  nodes: Node[];
  initializers: Record<string, Tensor>;
}

/** Build a Graph for a tiny single-input, single-output model. */
export function tinyGraph(m: TinyModel, source = 'tiny.onnx'): Graph {
  return {
    inputs: [m.input],
    outputs: [m.output],
    nodes: m.nodes,
    initializers: new Map(Object.entries(m.initializers)),
    layout: 'NCHW',
    source,
  };
}

/** Write a tiny model as an .onnx file (opset 17) and return its path. */
export function writeTinyModel(dir: string, name: string, m: TinyModel): string {
  const file = path.join(dir, name.endsWith('.onnx') ? name : `${name}.onnx`);
  writeFileSync(file, exportOnnx(tinyGraph(m, file)));
  return file;
}

let tinyCount = 0;

/** Writes `m` into `dir`, explains `x` with `rules` (a rules config object) on onnxruntime, unloads it. */
export async function explainTiny(dir: string, m: TinyModel, x: Tensor, rules: unknown, target?: number): Promise<Explanation> {
  const file = writeTinyModel(dir, `model${tinyCount++}`, m);
  const ex = await Explainer.load(file, { backend: 'onnxruntime' });
  try {
    return await ex.explain(x, { target, rules: parseRulesConfig(rules, 'test rules') });
  } finally {
    await ex.dispose();
  }
}

/** The input relevance as numbers. */
export const relOf = (e: Explanation): number[] => Array.from(e.relevance.data as Float32Array);
export const sumOf = (v: ArrayLike<number>): number => Array.from(v).reduce((a, b) => a + b, 0);

/** Asserts a maximal relative error of at most `tol`, printing both vectors when not. */
export function assertClose(got: ArrayLike<number>, want: ArrayLike<number>, tol: number, what: string): void {
  assert.equal(got.length, want.length, `${what}: length`);
  const err = maxRelErr(got, want);
  assert.ok(
    err <= tol,
    `${what}: max relative error ${err.toExponential(3)} > ${tol}\n  got      [${Array.from(got, (v) => v.toPrecision(7)).join(', ')}]\n  expected [${Array.from(want, (v) => v.toPrecision(7)).join(', ')}]`,
  );
}

export function floatInput(name: string, dims: number[]): ValueInfo {
  return { name, dtype: 'float32', shape: dims };
}

/** A float32 tensor from a row-major 2-D array of numbers. */
export function matrix(rows: number[][]): Tensor {
  return f32([rows.length, rows[0].length], rows.flat());
}
