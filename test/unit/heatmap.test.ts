import { test } from 'node:test';
import assert from 'node:assert/strict';
import sharp from 'sharp';
import { f32 } from '../../src/engine/graph/graph';
import {
  blendHeatmap, blendPixels, colormap, COLORMAPS, heatmapPng, normaliseMap, relevanceMap, renderHeatmap, type RelevanceMap,
} from '../../src/engine/io/heatmap';
import { decodeImage } from '../../src/engine/io/image';
import { join } from 'node:path';
import { IMAGES_DIR } from '../helpers';

test('bwr endpoints: -1 blue, 0 white, +1 red', () => {
  assert.deepEqual(colormap('bwr', -1), [0, 0, 255]);
  assert.deepEqual(colormap('bwr', 0), [255, 255, 255]);
  assert.deepEqual(colormap('bwr', 1), [255, 0, 0]);
  assert.deepEqual(colormap('bwr', 0.5), [255, 128, 128]);
  assert.deepEqual(colormap('bwr', 7), [255, 0, 0], 'clamped');
});

test('other colormaps: endpoints and centres', () => {
  assert.deepEqual(colormap('seismic', 0), [255, 255, 255]);
  assert.deepEqual(colormap('seismic', 1), [128, 0, 0]);
  assert.deepEqual(colormap('coldnhot', 0), [0, 0, 0]);
  assert.deepEqual(colormap('coldnhot', 1), [255, 255, 0]);
  assert.deepEqual(colormap('coldnhot', -1), [0, 255, 255]);
  assert.deepEqual(colormap('hot', 0), [0, 0, 0]);
  assert.deepEqual(colormap('hot', 1), [255, 255, 255]);
  assert.deepEqual(colormap('gray', 0.5), [128, 128, 128]);
  assert.deepEqual(colormap('gray', -1), [0, 0, 0], 'unsigned maps clamp at 0');
  assert.deepEqual([...COLORMAPS].sort(), ['bwr', 'coldnhot', 'gray', 'hot', 'seismic']);
  assert.throws(() => colormap('nope' as never, 0), /unknown colormap/);
});

test('relevanceMap sums channels in NCHW and NHWC', () => {
  // two channels, 1x2 image: channel 0 = [1, 2], channel 1 = [10, 20]
  const nchw = relevanceMap(f32([1, 2, 1, 2], [1, 2, 10, 20]), 'NCHW');
  assert.deepEqual({ w: nchw.width, h: nchw.height, d: Array.from(nchw.data) }, { w: 2, h: 1, d: [11, 22] });
  const nhwc = relevanceMap(f32([1, 1, 2, 2], [1, 10, 2, 20]), 'NHWC');
  assert.deepEqual({ w: nhwc.width, h: nhwc.height, d: Array.from(nhwc.data) }, { w: 2, h: 1, d: [11, 22] });
});

test('normaliseMap at the 100th percentile divides by the absolute maximum and filters by mode', () => {
  assert.deepEqual(Array.from(normaliseMap([2, -4, 0], 'both', 100)), [0.5, -1, 0]);
  assert.deepEqual(Array.from(normaliseMap([2, -4, 0], 'positive', 100)), [0.5, 0, 0]);
  assert.deepEqual(Array.from(normaliseMap([2, -4, 0], 'negative', 100)), [0, -1, 0]);
  assert.deepEqual(Array.from(normaliseMap([0, 0])), [0, 0]);
});

test('normaliseMap by default scales by the 99.5th percentile of |R| and clips the outliers', () => {
  // 999 values 1..999 and one outlier of 1e6: the maximum would leave everything below 0.001
  const data = Float32Array.from({ length: 1000 }, (_, i) => (i === 999 ? 1e6 : i + 1));
  const n = normaliseMap(data);
  // sorted |R|: position 0.995 * 999 = 994.005, between the values 995 and 996
  const p995 = 995.005;
  assert.ok(Math.abs(n[0] - 1 / p995) < 1e-6, `${n[0]} vs ${1 / p995}`);
  assert.equal(n[999], 1, 'the outlier is clipped to full strength');
  assert.equal(n[998], 1, '999 > the 99.5th percentile: clipped');
  assert.ok(n[499] > 0.49 && n[499] < 0.51, `the median is drawn at half strength (${n[499]})`);
  assert.ok(normaliseMap(data, 'both', 100)[499] < 0.001, 'by the maximum it would be invisible');
});

const MAP: RelevanceMap = { width: 3, height: 1, data: new Float32Array([-2, 0, 1]) };

test('renderHeatmap: symmetric normalisation, zero stays white', () => {
  const px = renderHeatmap(MAP, { colormap: 'bwr', mode: 'both', percentile: 100 });
  assert.deepEqual(Array.from(px), [0, 0, 255, 255, 255, 255, 255, 255, 255, 128, 128, 255]);
  const pos = renderHeatmap(MAP, { colormap: 'bwr', mode: 'positive', percentile: 100 });
  assert.deepEqual(Array.from(pos.subarray(0, 4)), [255, 255, 255, 255]);
});

test('blendPixels: original shows through where relevance is zero', () => {
  const original = { rgb: new Uint8Array([10, 20, 30, 10, 20, 30, 10, 20, 30]), width: 3, height: 1 };
  const out = blendPixels(original, MAP, { alpha: 0.5, percentile: 100 });
  assert.deepEqual(Array.from(out.subarray(3, 6)), [10, 20, 30]);
  // full negative relevance: half blue (142.5 rounds half to even)
  assert.deepEqual(Array.from(out.subarray(0, 3)), [5, 10, 142]);
});

test('blendHeatmap returns a PNG of the original size with varied pixels', async () => {
  const original = await decodeImage(join(IMAGES_DIR, 'chelsea.png'));
  const data = new Float32Array(28 * 28);
  for (let y = 0; y < 28; y++) for (let x = 0; x < 28; x++) data[y * 28 + x] = Math.sin(x / 4) * Math.cos(y / 5);
  const png = await blendHeatmap(original, { width: 28, height: 28, data }, { colormap: 'bwr' });
  assert.deepEqual(Array.from(png.subarray(0, 8)), [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  const { data: pixels, info } = await sharp(png).raw().toBuffer({ resolveWithObject: true });
  assert.equal(info.width, 451);
  assert.equal(info.height, 300);
  assert.ok(new Set(Array.from(pixels.subarray(0, 3000))).size > 10);
  assert.ok(!pixels.equals(Buffer.from(original.rgb)), 'overlay changed the photo');
});

test('heatmapPng encodes the map alone, optionally upsampled', async () => {
  const png = await heatmapPng(MAP, { colormap: 'hot', width: 30, height: 10 });
  const meta = await sharp(png).metadata();
  assert.equal(meta.format, 'png');
  assert.equal(meta.width, 30);
  assert.equal(meta.height, 10);
  assert.equal(meta.channels, 4);
});
