// Preprocessing against the reference implementations: for every case of
// test/fixtures/preprocessing/cases.json (stretch, torchvision's preset, shorter side + centre crop
// from crop_pct, Hugging Face ConvNeXt / CLIP-like / ViT processors, timm center / squash / border;
// bilinear and bicubic) the CLI's --out-input, with the normalisation undone, must be within 2
// pixel levels on average of what torchvision / PIL computed (make_expected.py). Told by flags or
// by the model folder's own files, as the case says. Needs `npm run build`.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { FIXTURES_DIR, IMAGES_DIR, floatInput, makeTmpDir, mapLimit, node, readNpyFile, runCli, writeTinyModel } from '../helpers';
import { f32 } from '../../src/engine/graph/graph';
import { decodeImage, imageTensor, loadImageTensor } from '../../src/engine/io/image';
import { optionsFromSpec } from '../../src/engine/io/preprocessing-spec';
import { parseArgs } from 'node:util';
import { PREPROCESS_OPTIONS, userSpecFrom } from '../../src/cli-args';
import { resolveModelConfig } from '../../src/explain/model-config';

const DIR = path.join(FIXTURES_DIR, 'preprocessing');

interface Case {
  name: string;
  width: number;
  height: number;
  flags?: string[];
  files?: Record<string, unknown>;
  files_out: Record<string, string>;
  mean: number[];
  std: number[];
}
const manifest = JSON.parse(readFileSync(path.join(DIR, 'cases.json'), 'utf8')) as { photos: string[]; cases: Case[] };

/** A 3-channel W x H model (Conv, GlobalAveragePool, Flatten): only its input size matters here. */
function modelFolder(root: string, c: Case): string {
  const dir = path.join(root, c.name);
  mkdirSync(dir, { recursive: true });
  for (const [name, content] of Object.entries(c.files ?? {})) writeFileSync(path.join(dir, name), JSON.stringify(content, null, 2));
  return writeTinyModel(dir, 'model', {
    input: floatInput('input', [1, 3, c.height, c.width]),
    output: floatInput('logits', [1, 2]),
    nodes: [node('conv', 'Conv', ['input', 'w', 'b'], ['c'], { kernel_shape: { type: 'ints', value: [3, 3] }, pads: { type: 'ints', value: [1, 1, 1, 1] } }), node('gap', 'GlobalAveragePool', ['c'], ['g']), node('flat', 'Flatten', ['g'], ['logits'])],
    initializers: { w: f32([2, 3, 3, 3], Array.from({ length: 54 }, (_, i) => ((i * 7) % 5) / 10 - 0.2)), b: f32([2], [0.1, -0.1]) },
  });
}

/** Pixel levels of a normalised NCHW tensor: (x * std + mean) * 255. */
function levels(data: ArrayLike<number>, c: Case): Float64Array {
  const plane = c.width * c.height;
  const out = new Float64Array(data.length);
  for (let i = 0; i < data.length; i++) {
    const ch = Math.floor(i / plane) % 3;
    out[i] = (data[i] * c.std[ch] + c.mean[ch]) * 255;
  }
  return out;
}

function diff(a: ArrayLike<number>, b: ArrayLike<number>): { mean: number; max: number } {
  let sum = 0;
  let max = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - b[i]);
    sum += d;
    max = Math.max(max, d);
  }
  return { mean: sum / a.length, max };
}

function check(c: Case, photo: string, d: { mean: number; max: number }, source: string): void {
  assert.ok(d.mean <= 2, `${c.name} ${photo}: mean difference ${d.mean.toFixed(3)} levels`);
  // the resampling follows PIL's fixed-point arithmetic: what remains is float rounding
  assert.ok(d.max <= 1, `${c.name} ${photo}: largest difference ${d.max.toFixed(2)} levels`);
  if (c.files) {
    const file = Object.keys(c.files)[0];
    assert.ok(source.startsWith(file), `${c.name}: preprocessing source '${source}' names ${file}`);
  } else assert.equal(source, 'command line');
}

test('the preprocessing the CLI resolves matches torchvision / PIL for every case and photo', { timeout: 120_000 }, async (t) => {
  const tmp = makeTmpDir('lrp-prep-');
  try {
    for (const c of manifest.cases) {
      const model = modelFolder(tmp.dir, c);
      const { values } = parseArgs({ args: c.flags ?? [], options: PREPROCESS_OPTIONS, strict: true });
      const config = await resolveModelConfig({ modelPath: model, user: userSpecFrom(values) });
      const opts = optionsFromSpec(config.preprocessing, { width: c.width, height: c.height, channels: 3, layout: 'NCHW' });
      for (const photo of manifest.photos) {
        const { tensor } = await loadImageTensor(path.join(IMAGES_DIR, photo), opts);
        const want = readNpyFile(path.join(DIR, c.files_out[photo]));
        const d = diff(levels(tensor.data as Float32Array, c), want.data as Uint8Array);
        t.diagnostic(`${c.name} ${photo}: mean ${d.mean.toFixed(3)} max ${d.max.toFixed(2)} levels; ${config.preprocessingSource}`);
        check(c, photo, d, config.preprocessingSource);
      }
    }
  } finally {
    tmp.cleanup();
  }
});

test('--out-input matches torchvision / PIL (every case, photos alternating; mean within 2 levels)', { timeout: 300_000 }, async (t) => {
  const tmp = makeTmpDir('lrp-prep-');
  try {
    const jobs = manifest.cases.map((c, i) => ({ c, photo: manifest.photos[i % manifest.photos.length] }));
    const models = new Map(manifest.cases.map((c) => [c.name, modelFolder(tmp.dir, c)]));
    const results = await mapLimit(jobs, 2, async ({ c, photo }) => {
      const out = path.join(tmp.dir, `${c.name}-${photo}.npy`);
      const json = path.join(tmp.dir, `${c.name}-${photo}.json`);
      const r = await runCli(['explain', '--model', models.get(c.name)!, '--image', path.join(IMAGES_DIR, photo), ...(c.flags ?? []), '--out-input', out, '--out-json', json]);
      assert.equal(r.code, 0, `${c.name} ${photo}: ${r.stderr}`);
      const got = readNpyFile(out);
      assert.deepEqual(got.dims, [1, 3, c.height, c.width], `${c.name} ${photo}: input shape`);
      const want = readNpyFile(path.join(DIR, c.files_out[photo]));
      const d = diff(levels(got.data as Float32Array, c), want.data as Uint8Array);
      const summary = JSON.parse(readFileSync(json, 'utf8'));
      return { c, photo, d, source: summary.preprocessing.source as string, description: summary.preprocessing.description as string };
    });
    for (const { c, photo, d, source, description } of results) {
      t.diagnostic(`${c.name} ${photo}: mean ${d.mean.toFixed(3)} max ${d.max.toFixed(2)} levels; ${source}: ${description}`);
      check(c, photo, d, source);
    }
  } finally {
    tmp.cleanup();
  }
});

test("sharp's own resize (the path without a geometry) is further from PIL when shrinking: measured", async (t) => {
  // the reason the model input is resampled in TypeScript: measured on the stretch cases
  for (const name of ['stretch-bilinear', 'stretch-bicubic-wide']) {
    const c = manifest.cases.find((x) => x.name === name)!;
    for (const photo of manifest.photos) {
      const img = await decodeImage(path.join(IMAGES_DIR, photo));
      const opts = { width: c.width, height: c.height, channels: 3 as const, layout: 'NCHW' as const, preset: 'raw' as const };
      const want = readNpyFile(path.join(DIR, c.files_out[photo])).data as Uint8Array;
      const viaSharp = diff((await imageTensor(img, opts)).tensor.data as Float32Array, want);
      const ours = diff((await imageTensor(img, { ...opts, geometry: { resize: 'stretch', interpolation: name.includes('bicubic') ? 'bicubic' : 'bilinear' } })).tensor.data as Float32Array, want);
      t.diagnostic(`${name} ${photo}: sharp mean ${viaSharp.mean.toFixed(2)} max ${viaSharp.max} levels; PIL-convention resampling mean ${ours.mean.toFixed(3)} max ${ours.max}`);
      assert.ok(ours.mean < viaSharp.mean, `${name} ${photo}`);
    }
  }
});
