// The one place pictures of relevance are made (src/engine/io/render.ts): the robust scale, the
// contrast curve, the overlay weight and the three views, shared by the CLI, the exported PNG and
// the panel.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  composeHeatmap,
  composedSize,
  describeScale,
  imageColumnAt,
  mapScale,
  normalise,
  overlayWeight,
  percentileAbs,
  renderMapRgba,
  sideGap,
} from '../../src/engine/io/render';
import { blendOverImage, renderMap } from '../../webview/colormap';
import { blendPixels } from '../../src/engine/io/heatmap';

test('percentileAbs interpolates over |v| and skips non-finite values', () => {
  assert.equal(percentileAbs([-4, 1, 2, 3, NaN], 100), 4);
  assert.equal(percentileAbs([-4, 1, 2, 3], 0), 1);
  assert.equal(percentileAbs([-4, 1, 2, 3], 50), 2.5);
  assert.equal(percentileAbs([], 99), 0);
});

test('mapScale: the percentile, what it clips, and the maximum when the percentile is 0', () => {
  const data = Float32Array.from({ length: 300 }, (_, i) => (i < 298 ? 1 : 100));
  const s = mapScale(data, 99);
  assert.equal(s.value, 1);
  assert.equal(s.max, 100);
  assert.equal(s.clipped, 2 / 300);
  assert.match(describeScale(s), /^full colour at the 99th percentile of \|R\| = 1 \(max 100, 0\.7% of pixels clipped\)$/);
  assert.match(describeScale(mapScale(data, 100), 0.5), /^full colour at the maximum \|R\| = 100, contrast γ 0\.5$/);
  // a map that is zero almost everywhere (a sharp Grad-CAM): the percentile is 0, the maximum is used
  const sparse = new Float32Array(1000);
  sparse[3] = -7;
  assert.equal(mapScale(sparse, 99.5).value, 7);
  assert.equal(mapScale(new Float32Array(4)).value, 0);
});

test('normalise: gamma below 1 raises moderate relevance, the sign survives', () => {
  assert.deepEqual(normalise(1, 4, 'bwr', 'both'), { t: 0.625, strength: 0.25 });
  assert.deepEqual(normalise(-1, 4, 'bwr', 'both', 0.5), { t: 0.25, strength: 0.5 });
  assert.deepEqual(normalise(1, 4, 'hot', 'both', 0.5), { t: 0.5, strength: 0.5 });
  assert.deepEqual(normalise(9, 4, 'bwr', 'both', 2), { t: 1, strength: 1 }, 'clipped at the scale');
});

test('overlay weight: zero keeps the photo, a quarter of the scale gets half the opacity', () => {
  assert.equal(overlayWeight(0, 0.8), 0);
  assert.equal(overlayWeight(0.25, 0.8), 0.4);
  assert.equal(overlayWeight(1, 0.8), 0.8);
  assert.equal(overlayWeight(4, 2), 1, 'clamped');
});

const IMAGE = { width: 4, height: 2, rgb: new Uint8Array(4 * 2 * 3).fill(100) };
const MAP = { width: 4, height: 2, data: [0, 1, 2, 4, 0, -1, -2, -4] };

test('overlay: the photo where relevance is 0, the colour at the opacity where it reaches the scale', () => {
  const { width, height, rgba } = composeHeatmap(IMAGE, MAP, { view: 'overlay', colormap: 'bwr', sign: 'both', percentile: 100, opacity: 0.5 });
  assert.deepEqual([width, height], [4, 2]);
  const px = (x: number, y: number) => Array.from(rgba.slice((y * 4 + x) * 4, (y * 4 + x) * 4 + 4));
  assert.deepEqual(px(0, 0), [100, 100, 100, 255]);
  assert.deepEqual(px(3, 0), [178, 50, 50, 255]); // half photo, half red
  assert.deepEqual(px(3, 1), [50, 50, 178, 255]); // half photo, half blue
  // a quarter of the scale: weight 0.5 * sqrt(0.25) = 0.25 over the colour at t = 0.625 (255, 191, 191)
  const q = px(1, 0);
  assert.ok(Math.abs(q[0] - (0.75 * 100 + 0.25 * 255)) <= 1 && Math.abs(q[1] - (0.75 * 100 + 0.25 * 191)) <= 1, String(q));
});

test('alone: the map on its own background at the photo size; side: photo, gap, map', () => {
  const alone = composeHeatmap(IMAGE, MAP, { view: 'alone', colormap: 'bwr', sign: 'both', percentile: 100 });
  assert.deepEqual(Array.from(alone.rgba.slice(0, 4)), [255, 255, 255, 255], 'zero relevance is the colormap background (white)');
  assert.deepEqual(Array.from(alone.rgba.slice(12, 16)), [255, 0, 0, 255]);
  assert.deepEqual(Array.from(alone.rgba), Array.from(renderMapRgba(MAP, { colormap: 'bwr', sign: 'both', percentile: 100 })));
  const side = composeHeatmap(IMAGE, MAP, { view: 'side', colormap: 'bwr', sign: 'both', percentile: 100 });
  const gap = sideGap(4);
  assert.deepEqual([side.width, side.height], [8 + gap, 2]);
  assert.deepEqual(composedSize('side', 4, 2), { width: 8 + gap, height: 2 });
  const at = (x: number, y: number) => Array.from(side.rgba.slice((y * side.width + x) * 4, (y * side.width + x) * 4 + 4));
  for (let x = 0; x < 4; x++) assert.deepEqual(at(x, 1), [100, 100, 100, 255], 'left: the photo unchanged');
  assert.equal(at(4, 0)[3], 0, 'the gap is transparent');
  for (let x = 0; x < 4; x++) for (let y = 0; y < 2; y++) assert.deepEqual(at(4 + gap + x, y), Array.from(alone.rgba.slice((y * 4 + x) * 4, (y * 4 + x) * 4 + 4)));
  assert.equal(imageColumnAt('side', 2, 4), 2);
  assert.equal(imageColumnAt('side', 4, 4), -1);
  assert.equal(imageColumnAt('side', 4 + gap + 3, 4), 3);
  assert.equal(imageColumnAt('overlay', 3, 4), 3);
});

test('the panel and the engine draw the same pixels (one implementation)', () => {
  const image = { width: 6, height: 3, rgb: Uint8Array.from({ length: 54 }, (_, i) => (i * 37) % 256) };
  const map = { width: 3, height: 2, data: Float32Array.from([0.1, -3, 0.5, 20, 0, -0.2]) };
  const panel = blendOverImage(image, map, { colormap: 'coldnhot', opacity: 0.7, sign: 'both', gamma: 0.6 });
  const engine = blendPixels(image, map, { colormap: 'coldnhot', alpha: 0.7, gamma: 0.6 });
  for (let p = 0; p < 18; p++) for (let c = 0; c < 3; c++) assert.equal(panel[p * 4 + c], engine[p * 3 + c], `pixel ${p}`);
  assert.deepEqual(Array.from(renderMap(map, { colormap: 'hot', sign: 'positive', percentile: 90 })), Array.from(renderMapRgba(map, { colormap: 'hot', sign: 'positive', percentile: 90 })));
});
