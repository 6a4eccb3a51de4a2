// `lrp-lens concepts`: relevance maximisation over a folder (issue 12, acceptance 3).
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdirSync, readFileSync, utimesSync } from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import sharp from 'sharp';
import { Explainer } from '../../src/explain/explainer';
import { channelMask, conditionLayer, conditionalRelevance } from '../../src/explain/concepts';
import { relevanceBox } from '../../src/explain/concept-atlas';
import type { ConceptsIndex } from '../../src/cli-concepts';
import { parseRulesConfig } from '../../src/engine/config';
import { inputBoundsFor, loadImageTensor } from '../../src/engine/io/image';
import { IMAGES_DIR, REFERENCE_DIR, makeTmpDir, runCli } from '../helpers';

const MODEL = path.join(REFERENCE_DIR, 'shapes-resnet', 'model.onnx');
const LAYER = '/layer2/conv1/Conv';

let tmp: { dir: string; cleanup: () => void };
let images: string;
before(() => {
  tmp = makeTmpDir('lrp-lens-atlas-');
  images = path.join(tmp.dir, 'images');
  mkdirSync(images);
  copyFileSync(path.join(REFERENCE_DIR, 'shapes-resnet', 'inputs', 'sample0.png'), path.join(images, 'resnet-sample.png'));
  copyFileSync(path.join(REFERENCE_DIR, 'shapes-vgg', 'inputs', 'sample0.png'), path.join(images, 'vgg-sample.png'));
  copyFileSync(path.join(IMAGES_DIR, 'chelsea.png'), path.join(images, 'chelsea.png'));
  copyFileSync(path.join(IMAGES_DIR, 'coffee.png'), path.join(images, 'coffee.png'));
});
after(() => tmp?.cleanup());

describe('relevanceBox', () => {
  it('finds the window where the positive relevance sits, the smallest size holding half of it', () => {
    const W = 40;
    const H = 20;
    const data = new Float32Array(W * H);
    for (let y = 4; y < 8; y++) for (let x = 30; x < 34; x++) data[y * W + x] = 1; // a 4x4 blob
    data[0] = -50; // negative relevance does not count
    const b = relevanceBox({ width: W, height: H, data });
    assert.equal(b.width, 5); // a quarter of the shorter side
    assert.ok(b.x <= 30 && b.x + b.width >= 34 && b.y <= 4 && b.y + b.height >= 8, JSON.stringify(b));
  });
});

describe('lrp-lens concepts', () => {
  it('ranks each channel\'s images by that channel\'s relevance, writes the crops, and reuses its cache', async () => {
    const out = path.join(tmp.dir, 'out');
    const r = await runCli(['concepts', '--model', MODEL, '--images', images, '--layer', LAYER, '--top', '3', '--per-channel', '4', '--out', out]);
    assert.equal(r.code, 0, r.stderr);
    const index = JSON.parse(readFileSync(path.join(out, 'concepts.json'), 'utf8')) as ConceptsIndex;
    assert.equal(index.layer, LAYER);
    assert.equal(index.cached, false);
    assert.equal(index.channels.length, 3);
    // independently: each image's relevance through the channel, for its own predicted class
    const ex = await Explainer.load(MODEL, { backend: 'onnxruntime' });
    try {
      const pre = { width: 64, height: 64, channels: 3 as const, layout: 'NCHW' as const, preset: 'imagenet' as const };
      const rules = parseRulesConfig({ composite: 'epsilon-plus-flat', inputBounds: inputBoundsFor(pre) });
      const { channels } = conditionLayer(ex, LAYER);
      for (const ch of index.channels) {
        assert.equal(ch.references.length, 4);
        const want: { file: string; rel: number }[] = [];
        for (const f of ['resnet-sample.png', 'vgg-sample.png', 'chelsea.png', 'coffee.png']) {
          const { tensor } = await loadImageTensor(path.join(images, f), pre);
          const c = await conditionalRelevance(ex, tensor, { rules, layer: LAYER, masks: [channelMask(channels, [ch.channel])] });
          want.push({ file: f, rel: c.maps[0].conditionRelevance });
        }
        want.sort((a, b) => b.rel - a.rel);
        assert.equal(ch.references[0].file, want[0].file, `channel ${ch.channel}: the image where it carries the most relevance comes first`);
        assert.deepEqual(ch.references.map((x) => x.file), want.map((w) => w.file));
        ch.references.forEach((x, i) => assert.ok(Math.abs(x.relevance - want[i].rel) < 1e-4 * (1 + Math.abs(want[i].rel))));
        for (const ref of ch.references) {
          assert.ok(existsSync(ref.png), ref.png);
          const meta = await sharp(ref.png).metadata();
          assert.equal(meta.width, ref.crop.width);
          assert.equal(meta.height, ref.crop.height);
        }
      }
    } finally {
      await ex.dispose();
    }
    // a second run reads the cache; touching an image invalidates it
    const again = await runCli(['concepts', '--model', MODEL, '--images', images, '--layer', LAYER, '--top', '3', '--out', out]);
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stdout, /from the cache/);
    const t = new Date(Date.now() + 5000);
    utimesSync(path.join(images, 'coffee.png'), t, t);
    const third = await runCli(['concepts', '--model', MODEL, '--images', images, '--layer', LAYER, '--top', '3', '--out', out]);
    assert.equal(third.code, 0, third.stderr);
    assert.doesNotMatch(third.stdout, /from the cache/);
  });

  it('says what is wrong: missing flags, an unknown layer, a channel out of range', async () => {
    const a = await runCli(['concepts', '--model', MODEL, '--images', images, '--out', path.join(tmp.dir, 'o2')]);
    assert.equal(a.code, 2);
    assert.match(a.stderr, /--layer is required/);
    const b = await runCli(['concepts', '--model', MODEL, '--images', images, '--layer', 'conv9', '--out', path.join(tmp.dir, 'o2')]);
    assert.equal(b.code, 2);
    assert.match(b.stderr, /no layer 'conv9'/);
    const c = await runCli(['concepts', '--model', MODEL, '--images', images, '--layer', LAYER, '--channels', '500', '--out', path.join(tmp.dir, 'o2')]);
    assert.equal(c.code, 2);
    assert.match(c.stderr, /channel 500 is out of range/);
  });
});
