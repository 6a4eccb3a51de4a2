// `npm run demo:cli`: explain the photos in demo/images with the demo models through the CLI and
// write heatmaps and summaries to demo/out/<model>/ (git-ignored). Prints a table and the heatmap
// paths. Each model is a folder in demo/models with model.onnx or model.json, labels.txt and
// preprocessing.json (the same files the VS Code extension picks up).
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync } from 'node:fs';
import { basename, extname, join } from 'node:path';
import { setupDemo, setupMobileNet } from './demo-setup.mjs';

const COMPOSITE = 'epsilon-plus-flat';
const IMAGES = 'demo/images';
const OUT = 'demo/out';
const IMAGE_EXT = new Set(['.png', '.jpg', '.jpeg', '.webp', '.gif', '.tif', '.tiff', '.bmp']);
// Which photos each model explains: the shapes model every image (it only knows four shapes, so on
// photos it explains whichever shape it believes it sees); the emotion model the portraits;
// MobileNetV2 (nsfwjs's content classifier: drawing, hentai, neutral, porn, sexy) the photos.
const MODELS = [
  { name: 'shapes-resnet', images: () => true },
  { name: 'emotion', images: (f) => /^(astronaut|grace_hopper)/.test(f) },
  { name: 'mobilenet-v2', images: (f) => !/^shape-/.test(f) && !/-face\./.test(f) },
];

function fail(msg) {
  process.stderr.write(`demo: ${msg}\n`);
  process.exit(1);
}

if (!existsSync('dist/cli.js')) fail('dist/cli.js is missing; run `npm run build` first (npm run demo:cli does)');
try {
  setupDemo();
  setupMobileNet();
} catch (err) {
  fail(err.message);
}
if (!existsSync(IMAGES)) fail(`${IMAGES} is missing`);
const images = readdirSync(IMAGES)
  .filter((f) => IMAGE_EXT.has(extname(f).toLowerCase()))
  .sort();
if (!images.length) fail(`no images in ${IMAGES}`);

const rows = [];
let failed = 0;
let runs = 0;
for (const m of MODELS) {
  const dir = join('demo/models', m.name);
  const model = ['model.onnx', 'model.json'].map((f) => join(dir, f)).find((f) => existsSync(f));
  if (!model) fail(`${dir} holds no model.onnx or model.json`);
  const preset = JSON.parse(readFileSync(join(dir, 'preprocessing.json'), 'utf8')).preset;
  const out = join(OUT, m.name);
  mkdirSync(out, { recursive: true });
  for (const file of images.filter(m.images)) {
    runs++;
    const name = basename(file, extname(file));
    const heatmap = join(out, `${name}-heatmap.png`);
    const json = join(out, `${name}.json`);
    const args = [
      'dist/cli.js', 'explain',
      '--model', model,
      '--image', join(IMAGES, file),
      '--labels', join(dir, 'labels.txt'),
      '--preset', preset,
      '--composite', COMPOSITE,
      '--out-heatmap', heatmap,
      '--out-json', json,
    ];
    const r = spawnSync(process.execPath, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    if (r.status !== 0) {
      failed++;
      rows.push({ model: m.name, image: file, error: (r.stderr || `exit ${r.status ?? r.signal}`).trim().split('\n').pop() });
      continue;
    }
    const s = JSON.parse(readFileSync(json, 'utf8'));
    const top = s.top5[0];
    rows.push({
      model: m.name,
      image: file,
      prediction: `${top.label} ${(top.score * 100).toFixed(1)}%`,
      logit: s.logit.toFixed(3),
      relevanceSum: s.relevanceSum.toFixed(3),
      lrpMs: s.timings.lrpMs.toFixed(1),
      heatmap,
    });
  }
}

const cols = [
  ['model', 'model'],
  ['image', 'image'],
  ['prediction', 'prediction'],
  ['logit', 'logit'],
  ['relevanceSum', 'relevance sum'],
  ['lrpMs', 'LRP ms'],
];
const widths = cols.map(([k, h]) => Math.max(h.length, ...rows.map((r) => String(r[k] ?? '').length)));
const line = (cells) => cells.map((c, i) => String(c).padEnd(widths[i])).join('  ').trimEnd();
const out = [];
out.push(`${COMPOSITE}, ${runs} explanations`);
out.push('');
out.push(line(cols.map(([, h]) => h)));
out.push(line(widths.map((w) => '-'.repeat(w))));
for (const r of rows)
  out.push(r.error ? `${r.model.padEnd(widths[0])}  ${r.image.padEnd(widths[1])}  FAILED: ${r.error}` : line(cols.map(([k]) => r[k])));
out.push('');
out.push('Heatmaps (red: evidence for the predicted class, blue: against):');
for (const r of rows) if (r.heatmap) out.push(`  ${r.heatmap}`);
process.stdout.write(out.join('\n') + '\n');
if (failed) fail(`${failed} of ${runs} explanations failed`);
