// Concepts (CRP) through the engine process's service (issue 12, the panel's requests): the
// conditional maps of a layer's top channels with their shares and positive and negative parts,
// the layers that can be conditioned on, a folder index (relevance maximisation) with its cache,
// progress and cancel, and the reference crops drawn from it.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdirSync, readdirSync, utimesSync } from 'node:fs';
import * as path from 'node:path';
import { EngineService } from '../../src/explain/server/service';
import { EngineClient } from '../../src/host/engineClient';
import type { ImageSpec } from '../../src/explain/server/protocol';
import { Explainer } from '../../src/explain/explainer';
import { channelMask, conditionLayer, conditionalRelevance } from '../../src/explain/concepts';
import { ATLAS_CACHE_FILE, INDEX_META_FILE } from '../../src/explain/concept-atlas';
import { parseRulesConfig } from '../../src/engine/config';
import { inputBoundsFor, loadImageTensor } from '../../src/engine/io/image';
import { optionsFromSpec } from '../../src/engine/io/preprocessing-spec';
import { ENGINE_ERRORS } from '../../src/explain/server/protocol';
import { IMAGES_DIR, REFERENCE_DIR, REPO_DIR, makeTmpDir } from '../helpers';

const MODEL = path.join(REFERENCE_DIR, 'shapes-resnet', 'model.onnx');
const IMAGE = path.join(REFERENCE_DIR, 'shapes-resnet', 'inputs', 'sample0.png');
const LAYER = '/layer2/conv1/Conv';
const ENTRY = path.join(REPO_DIR, 'src', 'explain', 'server', 'main.ts');

let tmp: { dir: string; cleanup: () => void };
let folder: string;
const service = new EngineService();
const clients: EngineClient[] = [];

function spec(extra: Partial<ImageSpec> = {}): ImageSpec {
  return {
    modelPath: MODEL,
    backend: 'onnxruntime',
    preprocessing: { preset: 'imagenet' },
    rules: parseRulesConfig({ composite: 'epsilon-plus-flat' }),
    imagePath: IMAGE,
    ...extra,
  };
}

before(() => {
  tmp = makeTmpDir('lrp-lens-concepts-service-');
  folder = path.join(tmp.dir, 'images');
  mkdirSync(folder);
  copyFileSync(IMAGE, path.join(folder, 'resnet-sample.png'));
  copyFileSync(path.join(REFERENCE_DIR, 'shapes-vgg', 'inputs', 'sample0.png'), path.join(folder, 'vgg-sample.png'));
  copyFileSync(path.join(IMAGES_DIR, 'chelsea.png'), path.join(folder, 'chelsea.png'));
});

after(async () => {
  await service.dispose();
  for (const c of clients) await c.dispose();
  tmp?.cleanup();
});

test('conceptMaps: the top channels by relevance, each with its conditional map, share and positive and negative parts', async () => {
  const r = await service.handle('conceptMaps', { spec: spec(), layer: LAYER, top: 4 });
  assert.equal(r.layer, LAYER);
  assert.equal(r.channels.length, 4);
  // independently, in this process: every channel's relevance at the layer
  const ex = await Explainer.load(MODEL, { backend: 'onnxruntime' });
  try {
    const pre = optionsFromSpec({ preset: 'imagenet' }, { width: 64, height: 64, channels: 3, layout: 'NCHW' });
    const rules = parseRulesConfig({ composite: 'epsilon-plus-flat', inputBounds: inputBoundsFor(pre) });
    const { tensor } = await loadImageTensor(IMAGE, pre);
    const C = conditionLayer(ex, LAYER).channels;
    assert.equal(r.channelCount, C);
    const all = await conditionalRelevance(ex, tensor, { rules, layer: LAYER, masks: [channelMask(C, Array.from({ length: C }, (_, i) => i))] });
    assert.equal(r.target, all.target);
    assert.ok(Math.abs(r.layerRelevance - all.layerRelevance) < 1e-4 * (1 + Math.abs(all.layerRelevance)));
    const ranked = Array.from(all.channelRelevance, (v, c) => ({ v, c })).sort((a, b) => b.v - a.v || a.c - b.c);
    assert.deepEqual(r.channels.map((c) => c.channel), ranked.slice(0, 4).map((x) => x.c), 'the channels with the most relevance, largest first');
    for (const ch of r.channels) {
      assert.ok(ch.map.data instanceof Float32Array);
      assert.equal(ch.map.width * ch.map.height, ch.map.data.length);
      assert.deepEqual([ch.map.width, ch.map.height], [64, 64]);
      assert.ok(Math.abs(ch.relevance - all.channelRelevance[ch.channel]) < 1e-4 * (1 + Math.abs(ch.relevance)));
      assert.ok(Math.abs(ch.share - ch.relevance / r.layerRelevance) < 1e-6);
      let sum = 0;
      const distinct = new Set<number>();
      for (const v of ch.map.data) {
        sum += v;
        distinct.add(v);
      }
      assert.ok(distinct.size > 50, `channel ${ch.channel}: the map varies`);
      assert.ok(ch.positiveSum >= 0 && ch.negativeSum <= 0);
      assert.ok(Math.abs(ch.positiveSum + ch.negativeSum - sum) < 1e-3 * (1 + Math.abs(sum)), 'the parts add up to the map');
    }
    assert.ok(r.channels[0].share > 0 && r.channels[0].share < 1, `a share of the layer (${r.channels[0].share})`);
  } finally {
    await ex.dispose();
  }
  // given channels, for another class
  const two = await service.handle('conceptMaps', { spec: spec({ target: 2 }), layer: LAYER, channels: [5, 1] });
  assert.equal(two.target, 2);
  assert.deepEqual(two.channels.map((c) => c.channel), [5, 1]);
  await assert.rejects(service.handle('conceptMaps', { spec: spec(), layer: LAYER, channels: [999] }), /channel 999 is out of range: layer '\/layer2\/conv1\/Conv' has \d+ channels/);
  await assert.rejects(service.handle('conceptMaps', { spec: spec(), layer: 'no-such-layer', top: 3 }), /no layer 'no-such-layer' in the model/);
});

test('conceptLayers lists the convolutions with their channel counts', async () => {
  const { layers } = await service.handle('conceptLayers', { spec: spec() });
  const l = layers.find((x) => x.name === LAYER);
  assert.ok(l, JSON.stringify(layers.map((x) => x.name)));
  assert.equal(l.opType, 'Conv');
  assert.ok(l.channels > 1);
  assert.ok(layers.length >= 5);
});

test('conceptIndex scores a folder and caches it; conceptReferences crops each channel\'s reference images; a changed folder makes it stale', async () => {
  const root = path.join(tmp.dir, 'index-root');
  const progress: string[] = [];
  const ctx = { progress: (m: string) => progress.push(m), check: () => undefined };
  const none = await service.handle('conceptReferences', { spec: spec(), layer: LAYER, channels: [1], perChannel: 2, maxSide: 64, indexRoot: root });
  assert.equal(none.folder, undefined, 'no index yet');
  const r = await service.handle('conceptIndex', { spec: spec(), folder, layer: LAYER, indexRoot: root }, ctx);
  assert.equal(r.images, 3);
  assert.equal(r.cached, false);
  assert.deepEqual(r.errors, []);
  assert.ok(existsSync(path.join(r.indexDir, ATLAS_CACHE_FILE)) && existsSync(path.join(r.indexDir, INDEX_META_FILE)));
  assert.ok(progress.some((m) => /^3\/3 images scored/.test(m)), progress.join(' | '));
  const again = await service.handle('conceptIndex', { spec: spec(), folder, layer: LAYER, indexRoot: root });
  assert.equal(again.cached, true, 'the second index comes from the cache');

  const top = await service.handle('conceptMaps', { spec: spec(), layer: LAYER, top: 2 });
  const channels = top.channels.map((c) => c.channel);
  const refs = await service.handle('conceptReferences', { spec: spec(), layer: LAYER, channels, perChannel: 2, maxSide: 48, indexRoot: root });
  assert.equal(refs.folder, path.resolve(folder));
  assert.equal(refs.images, 3);
  assert.deepEqual(refs.channels.map((c) => c.channel), channels);
  for (const ch of refs.channels) {
    assert.equal(ch.refs.length, 2);
    assert.ok(ch.refs[0].relevance >= ch.refs[1].relevance, 'the image where the channel carries the most relevance first');
    for (const x of ch.refs) {
      assert.ok(['resnet-sample.png', 'vgg-sample.png', 'chelsea.png'].includes(x.file));
      assert.ok(x.crop.width <= 48 && x.crop.height <= 48 && x.crop.width > 0);
      assert.equal(x.crop.rgb.length, x.crop.width * x.crop.height * 3);
    }
  }
  // a folder changed since: the index is stale and says so
  const later = new Date(Date.now() + 5000);
  utimesSync(path.join(folder, 'chelsea.png'), later, later);
  const stale = await service.handle('conceptReferences', { spec: spec(), layer: LAYER, channels, perChannel: 2, maxSide: 48, indexRoot: root });
  assert.match(stale.stale ?? '', /out of date/);
  assert.deepEqual(stale.channels, []);
});

test('through the engine process: maps cross as typed arrays, indexing reports progress and stops on cancel', async () => {
  const c = new EngineClient({ entry: ENTRY, execArgv: ['--import', 'tsx'], memoryMb: () => 4096 });
  clients.push(c);
  const r = await c.request('conceptMaps', { spec: spec(), layer: LAYER, top: 3 }).result;
  assert.ok(r.channels.every((ch) => ch.map.data instanceof Float32Array));
  const root = path.join(tmp.dir, 'index-cancel');
  const seen: string[] = [];
  const call = c.request('conceptIndex', { spec: spec(), folder, layer: LAYER, indexRoot: root }, {
    onProgress: (m) => {
      seen.push(m);
      if (seen.length === 1) void call.cancel();
    },
  });
  await assert.rejects(call.result, (e: Error) => e.name === ENGINE_ERRORS.cancelled);
  assert.ok(seen.length >= 1);
  // nothing half-done is kept: no scores, no index
  const dirs = existsSync(root) ? readdirSync(root) : [];
  for (const d of dirs) assert.ok(!existsSync(path.join(root, d, ATLAS_CACHE_FILE)) && !existsSync(path.join(root, d, INDEX_META_FILE)), d);
});
