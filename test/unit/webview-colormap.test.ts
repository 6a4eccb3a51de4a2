import { test } from 'node:test';
import assert from 'node:assert/strict';
import { colormap as hostColormap } from '../../src/engine/io/heatmap';
import { COLORMAP_NAMES } from '../../src/protocol';
import {
  blendOverImage,
  colormap,
  filterSign,
  formatValue,
  mapValueAt,
  maxAbs,
  normalise,
  renderMap,
  sampleBilinear,
  SIGNED_COLORMAPS,
} from '../../webview/colormap';
import { flowBar, ruleFieldState } from '../../webview/view';

test('bwr: blue at -max, white at 0, red at +max', () => {
  assert.deepEqual(colormap('bwr', 0), [0, 0, 255]);
  assert.deepEqual(colormap('bwr', 0.5), [255, 255, 255]);
  assert.deepEqual(colormap('bwr', 1), [255, 0, 0]);
  assert.deepEqual(colormap('bwr', 0.75), [255, 128, 128]);
  assert.deepEqual(colormap('bwr', 9), [255, 0, 0], 'clamped');
  assert.deepEqual(colormap('bwr', Number.NaN), [255, 255, 255], 'NaN shows as zero');
});

test('webview colormaps agree with the engine colormaps (exported PNG = panel view)', () => {
  for (const name of COLORMAP_NAMES) {
    for (let i = 0; i <= 40; i++) {
      const n = i / 40; // normalised relevance magnitude or position
      const signed = SIGNED_COLORMAPS.has(name);
      const hostT = signed ? 2 * n - 1 : n;
      const a = colormap(name, n);
      const b = hostColormap(name, hostT);
      for (let c = 0; c < 3; c++) assert.ok(Math.abs(a[c] - b[c]) <= 1, `${name} at ${n}: ${a} vs ${b}`);
    }
  }
});

test('normalise: signed maps centre zero, magnitude maps use |v|; sign filter hides a side', () => {
  assert.deepEqual(normalise(2, 4, 'bwr', 'both'), { t: 0.75, strength: 0.5 });
  assert.deepEqual(normalise(-4, 4, 'bwr', 'both'), { t: 0, strength: 1 });
  assert.deepEqual(normalise(-4, 4, 'hot', 'both'), { t: 1, strength: 1 });
  assert.deepEqual(normalise(-4, 4, 'bwr', 'positive'), { t: 0.5, strength: 0 });
  assert.deepEqual(normalise(3, 4, 'gray', 'negative'), { t: 0, strength: 0 });
  assert.deepEqual(normalise(8, 4, 'bwr', 'both'), { t: 1, strength: 1 }, 'clamped');
  assert.deepEqual(normalise(1, 0, 'bwr', 'both'), { t: 0.5, strength: 0 }, 'all-zero map');
  assert.equal(filterSign(-1, 'both'), -1);
  assert.equal(filterSign(-1, 'positive'), 0);
  assert.equal(filterSign(2, 'negative'), 0);
});

test('maxAbs ignores non-finite values', () => {
  assert.equal(maxAbs([1, -3, Number.NaN, Infinity, 2]), 3);
  assert.equal(maxAbs([]), 0);
});

test('bilinear sampling and stretched lookup', () => {
  const map = { width: 2, height: 2, data: [0, 1, 2, 3] };
  assert.equal(sampleBilinear(map, 0, 0), 0);
  assert.equal(sampleBilinear(map, 1, 1), 3);
  assert.equal(sampleBilinear(map, 0.5, 0.5), 1.5);
  assert.equal(sampleBilinear(map, -5, 9), 2, 'clamped to the border');
  // A 2x2 map over a 4x4 image: the top-left output pixel sits at map (-0.25, -0.25) -> clamped.
  assert.equal(mapValueAt(map, 0, 0, 4, 4), 0);
  assert.equal(mapValueAt(map, 3, 3, 4, 4), 3);
});

test('blend: zero relevance leaves the photo, the maximum shows the colour at the opacity', () => {
  const image = { width: 2, height: 1, rgb: [100, 100, 100, 100, 100, 100] };
  const map = { width: 2, height: 1, data: [0, 5] };
  const out = blendOverImage(image, map, { colormap: 'bwr', opacity: 0.5, sign: 'both' });
  assert.deepEqual(Array.from(out.slice(0, 4)), [100, 100, 100, 255]);
  assert.deepEqual(Array.from(out.slice(4, 8)), [178, 50, 50, 255]); // 0.5*100 + 0.5*red (rounded)
  const none = blendOverImage(image, map, { colormap: 'bwr', opacity: 0, sign: 'both' });
  assert.deepEqual(Array.from(none.slice(4, 8)), [100, 100, 100, 255]);
  const negOnly = blendOverImage(image, map, { colormap: 'bwr', opacity: 1, sign: 'negative' });
  assert.deepEqual(Array.from(negOnly.slice(4, 8)), [100, 100, 100, 255], 'positive relevance hidden');
});

test('blend output has the image size and upsamples the map', () => {
  const image = { width: 8, height: 4, rgb: new Uint8Array(8 * 4 * 3).fill(200) };
  const map = { width: 2, height: 2, data: [1, -1, 0, 0] };
  const out = blendOverImage(image, map, { colormap: 'seismic', opacity: 1, sign: 'both' });
  assert.equal(out.length, 8 * 4 * 4);
  const px = (x: number, y: number): number[] => Array.from(out.slice((y * 8 + x) * 4, (y * 8 + x) * 4 + 3));
  assert.ok(px(0, 0)[0] > px(0, 0)[2], 'top-left is red-ish (positive)');
  assert.ok(px(7, 0)[2] > px(7, 0)[0], 'top-right is blue-ish (negative)');
  assert.deepEqual(px(0, 3), [200, 200, 200], 'zero row keeps the photo');
});

test('renderMap is opaque and coloured per value', () => {
  const out = renderMap({ width: 3, height: 1, data: [-2, 0, 2] }, { colormap: 'bwr', sign: 'both' });
  assert.deepEqual(Array.from(out), [0, 0, 255, 255, 255, 255, 255, 255, 255, 0, 0, 255]);
});

test('value formatting', () => {
  assert.equal(formatValue(0), '0');
  assert.equal(formatValue(1200), '1200');
  assert.equal(formatValue(12.5), '12.5');
  assert.equal(formatValue(0.5), '0.5');
  assert.equal(formatValue(1e-6), '1.00e-6');
  assert.equal(formatValue(-123456), '-1.23e+5');
});

test('flow bars and rule fields', () => {
  assert.deepEqual(flowBar(5, 10), { leftPct: 0, widthPct: 50, negative: false });
  assert.deepEqual(flowBar(-5, 10, true), { leftPct: 25, widthPct: 25, negative: true });
  assert.deepEqual(flowBar(20, 10, true), { leftPct: 50, widthPct: 50, negative: false });
  assert.deepEqual(flowBar(1, 0), { leftPct: 0, widthPct: 0, negative: false });
  assert.deepEqual(ruleFieldState(' 0.25 ', 'ε'), { value: 0.25 });
  assert.deepEqual(ruleFieldState('1e-6', 'ε'), { value: 1e-6 });
  assert.match(ruleFieldState('-1', 'γ').error!, /not be negative/);
  assert.match(ruleFieldState('abc', 'γ').error!, /must be a number/);
  assert.match(ruleFieldState('', 'γ').error!, /empty/);
});
