// `lrp-lens explain --condition` through the built CLI (issue 12).
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { REFERENCE_DIR, makeTmpDir, readNpyFile, relL2, runCli } from '../helpers';
import { parseConditionArg, channelFile } from '../../src/cli-concepts';

const RESNET = path.join(REFERENCE_DIR, 'shapes-resnet');
const MODEL = path.join(RESNET, 'model.onnx');
const X = path.join(RESNET, 'inputs', 'sample0.npy');
const LAYER = '/layer2/conv1/Conv';

let tmp: { dir: string; cleanup: () => void };
before(() => (tmp = makeTmpDir('lrp-lens-concepts-cli-')));
after(() => tmp?.cleanup());

describe('explain --condition', () => {
  it('parses LAYER:c1,c2 and LAYER:topK, the last colon splitting', () => {
    assert.deepEqual(parseConditionArg('a/b:3,5'), { layer: 'a/b', channels: [3, 5] });
    assert.deepEqual(parseConditionArg('x:y:top8'), { layer: 'x:y', top: 8 });
    assert.throws(() => parseConditionArg('conv1'), /expected LAYER:c1,c2 or LAYER:topK/);
    assert.throws(() => parseConditionArg('conv1:a,b'), /channel indices/);
    assert.equal(channelFile('/o/h.png', 12), '/o/h-c12.png');
  });

  it('topK writes one map per channel, largest first, with shares; a channel set is the sum of its channels', async () => {
    const json = path.join(tmp.dir, 'top.json');
    const r = await runCli(['explain', '--model', MODEL, '--input', X, '--condition', `${LAYER}:top4`, '--out-relevance', path.join(tmp.dir, 'r.npy'), '--out-heatmap', path.join(tmp.dir, 'h.png'), '--out-json', json]);
    assert.equal(r.code, 0, r.stderr);
    const s = JSON.parse(readFileSync(json, 'utf8')) as { target: number; condition: { layer: string; layerRelevance: number; channels: number; maps: { channels: number[]; relevance: number; share: number; inputRelevanceSum: number; relevanceFile: string; heatmapFile: string }[] } };
    const c = s.condition;
    assert.equal(c.layer, LAYER);
    assert.equal(c.maps.length, 4);
    for (let i = 1; i < 4; i++) assert.ok(c.maps[i - 1].relevance >= c.maps[i].relevance, 'largest first');
    for (const m of c.maps) {
      assert.equal(m.channels.length, 1);
      assert.ok(existsSync(m.heatmapFile) && existsSync(m.relevanceFile));
      assert.ok(m.relevanceFile.endsWith(`-c${m.channels[0]}.npy`));
      assert.ok(Math.abs(m.share - m.relevance / c.layerRelevance) < 1e-9);
    }
    // the same four channels as one set: one map, the sum of the four
    const set = c.maps.map((m) => m.channels[0]);
    const one = path.join(tmp.dir, 'set.npy');
    const r2 = await runCli(['explain', '--model', MODEL, '--input', X, '--target', String(s.target), '--condition', `${LAYER}:${set.join(',')}`, '--out-relevance', one]);
    assert.equal(r2.code, 0, r2.stderr);
    const got = readNpyFile(one).data as Float32Array;
    const want = new Float32Array(got.length);
    for (const m of c.maps) (readNpyFile(m.relevanceFile).data as Float32Array).forEach((v, i) => (want[i] += v));
    assert.ok(relL2(got, want) < 1e-5);
    assert.match(r2.stdout, new RegExp(`${LAYER.replace(/\//g, '\\/')} channels ${set.join(',')}`));
  });

  it('says what is wrong: an unknown layer (listing layers), a channel out of range', async () => {
    const a = await runCli(['explain', '--model', MODEL, '--input', X, '--condition', 'conv9:1']);
    assert.equal(a.code, 2);
    assert.match(a.stderr, /no layer 'conv9'.*linear layers: \/stem/);
    const b = await runCli(['explain', '--model', MODEL, '--input', X, '--condition', `${LAYER}:999`]);
    assert.equal(b.code, 2);
    assert.match(b.stderr, /channel 999 is out of range: layer '\/layer2\/conv1\/Conv' has \d+ channels/);
  });
});
