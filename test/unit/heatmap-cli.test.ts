// Issue 10 through the CLI, on a real pretrained model (nsfwjs MobileNetV2, tf.js LayersModel,
// 224x224) and real photos: the default --out-heatmap shows the explanation plainly, the
// --heatmap-mode views write what they say, and the raw relevance (.npy) is never scaled.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import sharp from 'sharp';
import { decodeImage } from '../../src/engine/io/image';
import { relevanceMap, resizeMap, type RelevanceMap } from '../../src/engine/io/heatmap';
import { sideGap } from '../../src/engine/io/render';
import { IMAGES_DIR, makeTmpDir, readNpyFile, runCli } from '../helpers';
import { extractNsfwjs } from './tfjs-util';

const IMAGES = ['chelsea.png', 'coffee.png', 'astronaut.png'];
const COMPOSITES = ['epsilon-plus-flat', 'epsilon-gamma-box'];

interface Raw {
  width: number;
  height: number;
  channels: number;
  data: Buffer;
}

async function readPng(file: string): Promise<Raw> {
  const { data, info } = await sharp(file).raw().toBuffer({ resolveWithObject: true });
  return { width: info.width, height: info.height, channels: info.channels, data };
}

/** Pixel indices of the photo-size map, by |R| descending. */
function rankByRelevance(map: RelevanceMap): number[] {
  const abs = Float64Array.from(map.data, (v) => Math.abs(v));
  return Array.from({ length: abs.length }, (_, i) => i).sort((a, b) => abs[b] - abs[a] || a - b);
}

/** Mean absolute change (over R, G, B, 0..255) of the given pixels between two RGB(A) buffers. */
function meanChange(a: Raw, rgb: ArrayLike<number>, pixels: number[]): number {
  let s = 0;
  for (const p of pixels) for (let c = 0; c < 3; c++) s += Math.abs(a.data[p * a.channels + c] - rgb[p * 3 + c]);
  return s / pixels.length / 3;
}

describe('heatmap pictures of a real model on real photos (CLI)', () => {
  let model: string;
  const tmp = makeTmpDir('lrp-heatmap-cli-');
  const runs = new Map<string, { png: string; npy: string; json: string; stdout: string }>();

  const explain = async (key: string, image: string, composite: string, extra: string[] = []) => {
    const png = path.join(tmp.dir, `${key}.png`);
    const npy = path.join(tmp.dir, `${key}.npy`);
    const json = path.join(tmp.dir, `${key}.json`);
    const r = await runCli(
      ['explain', '--model', model, '--image', path.join(IMAGES_DIR, image), '--preset', 'unit', '--composite', composite,
        '--out-heatmap', png, '--out-relevance', npy, '--out-json', json, ...extra],
      { timeoutMs: 240_000 },
    );
    assert.equal(r.code, 0, r.stderr);
    runs.set(key, { png, npy, json, stdout: r.stdout });
    return runs.get(key)!;
  };

  before(async () => {
    model = extractNsfwjs('mobilenet_v2');
  });
  after(() => tmp.cleanup());

  for (const image of IMAGES)
    for (const composite of COMPOSITES)
      it(`${image}, ${composite}: the pixels holding the top 5% of |R| change by at least 40 levels more than the half holding the least`, async () => {
        const out = await explain(`${image}-${composite}`, image, composite);
        const photo = await decodeImage(path.join(IMAGES_DIR, image));
        const pic = await readPng(out.png);
        assert.deepEqual([pic.width, pic.height], [photo.width, photo.height], 'the overlay has the photo size');
        const map = resizeMap(relevanceMap(readNpyFile(out.npy), 'NHWC'), photo.width, photo.height);
        const order = rankByRelevance(map);
        const n = order.length;
        const top = meanChange(pic, photo.rgb, order.slice(0, Math.floor(n * 0.05)));
        const bottom = meanChange(pic, photo.rgb, order.slice(n - Math.floor(n / 2)));
        assert.ok(top - bottom >= 40, `${image} ${composite}: top 5% change ${top.toFixed(1)}, bottom half ${bottom.toFixed(1)}`);
        // the scale is stated, in the printed line and the JSON
        assert.match(out.stdout, /heatmap .*\(overlay\): full colour at the 99\.5th percentile of \|R\| = \S+ \(max \S+, [\d.]+% of pixels clipped\)/);
        const h = JSON.parse(readFileSync(out.json, 'utf8')).heatmap;
        assert.equal(h.view, 'overlay');
        assert.equal(h.percentile, 99.5);
        assert.ok(h.scale > 0 && h.scale < h.maxAbs, `scale ${h.scale} below the maximum ${h.maxAbs}`);
      });

  it('--heatmap-mode alone: the map on its own (white) background at the photo size', async () => {
    const out = await explain('alone', 'chelsea.png', 'epsilon-plus-flat', ['--heatmap-mode', 'alone']);
    const photo = await decodeImage(path.join(IMAGES_DIR, 'chelsea.png'));
    const pic = await readPng(out.png);
    assert.deepEqual([pic.width, pic.height], [photo.width, photo.height]);
    const order = rankByRelevance(resizeMap(relevanceMap(readNpyFile(out.npy), 'NHWC'), photo.width, photo.height));
    const n = order.length;
    const white = new Uint8Array(photo.rgb.length).fill(255);
    const bottom = order.slice(n - Math.floor(n / 2));
    const top = order.slice(0, Math.floor(n * 0.05));
    assert.ok(meanChange(pic, white, bottom) < 15, `little relevance: near the white background (${meanChange(pic, white, bottom).toFixed(1)})`);
    assert.ok(meanChange(pic, white, top) > 60, `much relevance: strong colour (${meanChange(pic, white, top).toFixed(1)})`);
    assert.ok(meanChange(pic, photo.rgb, bottom) > 40, 'the photo is not in the picture');
    assert.equal(JSON.parse(readFileSync(out.json, 'utf8')).heatmap.view, 'alone');
  });

  it('--heatmap-mode side: the photo unchanged, a transparent gap, and the map alone', async () => {
    const alone = runs.get('alone') ?? (await explain('alone', 'chelsea.png', 'epsilon-plus-flat', ['--heatmap-mode', 'alone']));
    const out = await explain('side', 'chelsea.png', 'epsilon-plus-flat', ['--heatmap-mode', 'side']);
    const photo = await decodeImage(path.join(IMAGES_DIR, 'chelsea.png'));
    const pic = await readPng(out.png);
    const map = await readPng(alone.png);
    const W = photo.width;
    const gap = sideGap(W);
    assert.deepEqual([pic.width, pic.height, pic.channels], [2 * W + gap, photo.height, 4]);
    let photoDiff = 0;
    let mapDiff = 0;
    for (let y = 0; y < photo.height; y++) {
      for (let x = 0; x < W; x++)
        for (let c = 0; c < 3; c++) {
          photoDiff += Math.abs(pic.data[(y * pic.width + x) * 4 + c] - photo.rgb[(y * W + x) * 3 + c]);
          mapDiff += Math.abs(pic.data[(y * pic.width + W + gap + x) * 4 + c] - map.data[(y * W + x) * map.channels + c]);
        }
      for (let x = W; x < W + gap; x++) assert.equal(pic.data[(y * pic.width + x) * 4 + 3], 0, 'gap transparent');
    }
    assert.equal(photoDiff, 0, 'left: the photo');
    assert.equal(mapDiff, 0, 'right: the same picture as --heatmap-mode alone');
  });

  it('the .npy keeps the raw relevance: the same bytes whatever the picture, values beyond the clip kept', async () => {
    const a = runs.get('chelsea.png-epsilon-plus-flat') ?? (await explain('chelsea.png-epsilon-plus-flat', 'chelsea.png', 'epsilon-plus-flat'));
    const b = await explain('scaled', 'chelsea.png', 'epsilon-plus-flat', ['--heatmap-mode', 'side', '--heatmap-percentile', '90', '--heatmap-gamma', '0.5', '--colormap', 'hot']);
    assert.ok(readFileSync(a.npy).equals(readFileSync(b.npy)), 'identical .npy files');
    assert.ok(!readFileSync(a.png).equals(readFileSync(b.png)), 'different pictures');
    const rel = readNpyFile(a.npy);
    assert.deepEqual(rel.dims, [1, 224, 224, 3], 'model layout, channels kept');
    const summary = JSON.parse(readFileSync(a.json, 'utf8'));
    let sum = 0;
    for (const v of rel.data as Float32Array) sum += v;
    assert.ok(Math.abs(sum - summary.relevanceSum) <= 1e-3 * Math.max(1, Math.abs(summary.relevanceSum)), `sum ${sum} vs ${summary.relevanceSum}`);
    const map = relevanceMap(rel, 'NHWC');
    let max = 0;
    for (const v of map.data) max = Math.max(max, Math.abs(v));
    assert.ok(Math.abs(max - summary.heatmap.maxAbs) <= 1e-6 * max, 'the JSON maximum is the .npy maximum');
    assert.ok(max > 1.5 * summary.heatmap.scale, `values beyond the picture's scale stay in the .npy (max ${max}, scale ${summary.heatmap.scale})`);
    const bs = JSON.parse(readFileSync(b.json, 'utf8')).heatmap;
    assert.deepEqual([bs.view, bs.percentile, bs.gamma, bs.colormap], ['side', 90, 0.5, 'hot']);
  });

  it('bad heatmap flags are usage errors', async () => {
    const photo = path.join(IMAGES_DIR, 'chelsea.png');
    for (const [flags, msg] of [
      [['--heatmap-mode', 'collage'], /--heatmap-mode: unknown 'collage' \(overlay, alone, side\)/],
      [['--heatmap-percentile', '20'], /--heatmap-percentile: expected a percentile from 50 to 100/],
      [['--heatmap-gamma', '-1'], /--heatmap-gamma: expected a number from 0\.1 to 10/],
      [['--colormap', 'jet'], /--colormap: unknown 'jet'/],
    ] as const) {
      const r = await runCli(['explain', '--model', model, '--image', photo, ...flags, '--out-heatmap', path.join(tmp.dir, 'x.png')]);
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, msg);
    }
  });
});
