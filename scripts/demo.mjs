// `npm run demo` (after `npm run build`): explain every image in demo/images with the demo model and
// write heatmaps and summaries to demo/out/ (git-ignored). Prints a table and the heatmap paths.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync } from 'node:fs';
import { basename, extname, join } from 'node:path';

const MODEL = 'demo/models/shapes-resnet.onnx';
const LABELS = 'demo/models/shapes-resnet.labels.txt';
const COMPOSITE = 'epsilon-plus-flat';
const IMAGES = 'demo/images';
const OUT = 'demo/out';
const IMAGE_EXT = new Set(['.png', '.jpg', '.jpeg', '.webp', '.gif', '.tif', '.tiff', '.bmp']);

function fail(msg) {
  process.stderr.write(`demo: ${msg}\n`);
  process.exit(1);
}

if (!existsSync('dist/cli.js')) fail('dist/cli.js is missing; run `npm run build` first (npm run demo does)');
for (const f of [MODEL, LABELS, IMAGES]) if (!existsSync(f)) fail(`${f} is missing`);
mkdirSync(OUT, { recursive: true });

const images = readdirSync(IMAGES)
  .filter((f) => IMAGE_EXT.has(extname(f).toLowerCase()))
  .sort();
if (!images.length) fail(`no images in ${IMAGES}`);

const rows = [];
let failed = 0;
for (const file of images) {
  const name = basename(file, extname(file));
  const heatmap = join(OUT, `${name}-heatmap.png`);
  const json = join(OUT, `${name}.json`);
  const args = [
    'dist/cli.js', 'explain',
    '--model', MODEL,
    '--image', join(IMAGES, file),
    '--labels', LABELS,
    '--composite', COMPOSITE,
    '--out-heatmap', heatmap,
    '--out-json', json,
  ];
  const r = spawnSync(process.execPath, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  if (r.status !== 0) {
    failed++;
    rows.push({ image: file, error: (r.stderr || `exit ${r.status ?? r.signal}`).trim().split('\n').pop() });
    continue;
  }
  const s = JSON.parse(readFileSync(json, 'utf8'));
  const top = s.top5[0];
  rows.push({
    image: file,
    prediction: `${top.label} ${(top.score * 100).toFixed(1)}%`,
    logit: s.logit.toFixed(3),
    relevanceSum: s.relevanceSum.toFixed(3),
    lrpMs: s.timings.lrpMs.toFixed(1),
    heatmap,
  });
}

const cols = [
  ['image', 'image'],
  ['prediction', 'prediction'],
  ['logit', 'logit'],
  ['relevanceSum', 'relevance sum'],
  ['lrpMs', 'LRP ms'],
];
const widths = cols.map(([k, h]) => Math.max(h.length, ...rows.map((r) => String(r[k] ?? '').length)));
const line = (cells) => cells.map((c, i) => String(c).padEnd(widths[i])).join('  ').trimEnd();
const out = [];
out.push(`${MODEL} (${COMPOSITE}), ${images.length} images`);
out.push('');
out.push(line(cols.map(([, h]) => h)));
out.push(line(widths.map((w) => '-'.repeat(w))));
for (const r of rows) out.push(r.error ? `${r.image.padEnd(widths[0])}  FAILED: ${r.error}` : line(cols.map(([k]) => r[k])));
out.push('');
out.push('Heatmaps (red: evidence for the predicted class, blue: against):');
for (const r of rows) if (r.heatmap) out.push(`  ${r.heatmap}`);
process.stdout.write(out.join('\n') + '\n');
if (failed) fail(`${failed} of ${images.length} images failed`);
