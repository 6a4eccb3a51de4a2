// Token layers of a vision transformer as the panel gets them: the patch tokens laid out on the
// patch grid, the class token's share, the engine's `hasAttention`; CNNs, Swin and ConvNeXt keep
// their spatial maps and get no token maps.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { tokenRelevance } from '../../src/explain/tokens';
import { EngineService } from '../../src/explain/server/service';
import type { ImageSpec } from '../../src/explain/server/protocol';
import { parseRulesConfig } from '../../src/engine/config';
import { parsePersistedState, parseWebviewMessage } from '../../src/protocol';
import { applyRuleChoice, parseSettings, ruleChoiceOf } from '../../src/host/settings';
import { blockOutputs, formatShare } from '../../webview/token-flow';
import { FIXTURES_DIR, REFERENCE_DIR } from '../helpers';

const MODERN = path.join(FIXTURES_DIR, 'lrp-reference-modern');
const VIT = path.join(MODERN, 'shapes-vit', 'model.onnx');
const VIT14 = path.join(MODERN, 'shapes-vit', 'model-opset14.onnx');
const CONVNEXT = path.join(MODERN, 'shapes-convnext', 'model.onnx');
const SWIN = path.join(FIXTURES_DIR, 'small-families', 'swin-op17.onnx');
const RESNET = path.join(REFERENCE_DIR, 'shapes-resnet', 'model.onnx');
const IMAGE = path.join(MODERN, 'shapes-vit', 'inputs', 'sample0.png');

const service = new EngineService();
after(() => service.dispose());

function spec(modelPath: string, attention: 'cp' | 'attnlrp' = 'cp'): ImageSpec {
  return { modelPath, backend: 'onnxruntime', preprocessing: { preset: 'imagenet', channelOrder: 'rgb' }, rules: parseRulesConfig({ composite: 'epsilon', attention }), imagePath: IMAGE };
}

test('tokenRelevance: leading tokens apart, the patch tokens row by row on the grid, the class share signed', () => {
  // class token 2, then a 2x3 grid 0..5, total 17
  const t = tokenRelevance(Float32Array.from([2, 0, 1, 2, 3, 4, 5]), { skip: 1, height: 2, width: 3 });
  assert.ok(t);
  assert.deepEqual(t.map.width, 3);
  assert.deepEqual(t.map.height, 2);
  assert.deepEqual(Array.from(t.map.data), [0, 1, 2, 3, 4, 5]);
  assert.deepEqual(t.leading, [2]);
  assert.ok(Math.abs((t.classShare ?? NaN) - 2 / 17) < 1e-12);
  // a negative class token against a positive total: a negative share
  assert.ok(Math.abs((tokenRelevance([-1, 2, 3, 3, 3], { skip: 1, height: 2, width: 2 })?.classShare ?? NaN) + 0.1) < 1e-12);
  // two leading tokens (class, distillation)
  const d = tokenRelevance([3, 1, 1, 1, 1, 1], { skip: 2, height: 2, width: 2 });
  assert.deepEqual(d?.leading, [3, 1]);
  assert.equal(d?.classShare, 3 / 8);
});

test('tokenRelevance: no share without a class token or when the tokens cancel; undefined for a token count off the grid', () => {
  const none = tokenRelevance([1, 2, 3, 4], { skip: 0, height: 2, width: 2 });
  assert.deepEqual(Array.from(none?.map.data ?? []), [1, 2, 3, 4]);
  assert.equal(none?.classShare, undefined);
  assert.equal(tokenRelevance([1, -1, 2, -2, 0], { skip: 1, height: 2, width: 2 })?.classShare, undefined);
  assert.equal(tokenRelevance([1, 2, 3, 4], { skip: 1, height: 2, width: 2 }), undefined);
  assert.equal(tokenRelevance(new Float32Array(144), { skip: 0, height: 10, width: 10 }), undefined);
});

test('formatShare: whole percent from 10%, one decimal below, no negative zero', () => {
  assert.equal(formatShare(1), '100%');
  assert.equal(formatShare(0.4249), '42%');
  assert.equal(formatShare(0.0994), '9.9%');
  assert.equal(formatShare(0.0996), '10%');
  assert.equal(formatShare(0.003), '0.3%');
  assert.equal(formatShare(-0.0004), '0.0%');
  assert.equal(formatShare(-0.25), '-25%');
  assert.equal(formatShare(Number.NaN), '–');
});

test('blockOutputs: every second token Add from the output side ends a block; none when they do not pair up', () => {
  const tok = { skip: 1, leading: [1] };
  const L = (opType: string, tokens = true) => ({ opType, ...(tokens ? { tokens: tok } : {}) });
  // output first: head, final norm, [Add_1, Gemm, Add, Gemm] x 2 blocks, Conv
  const layers = [L('Gemm', false), L('LayerNormalization'), L('Add'), L('Gemm'), L('Add'), L('Gemm'), L('Add'), L('Gemm'), L('Add'), L('Gemm'), L('Conv', false)];
  assert.deepEqual(blockOutputs(layers), [2, 6]);
  assert.deepEqual(blockOutputs(layers.slice(0, 7)), [], 'three token Adds: no pairing');
  assert.deepEqual(blockOutputs([L('Add', false), L('Add', false)]), [], 'spatial Adds (CNN) are no blocks');
});

test('the attention mode crosses the panel protocol and applies on top of the setting', () => {
  assert.deepEqual(parseWebviewMessage({ type: 'explain', rules: { attention: 'attnlrp' } }), { type: 'explain', rules: { attention: 'attnlrp' } });
  assert.equal(parseWebviewMessage({ type: 'explain', rules: { attention: 'softmax' } }), undefined);
  assert.deepEqual(parsePersistedState({ imagePath: '/w/a.png', rules: { attention: 'attnlrp' } })?.rules, { attention: 'attnlrp' });
  const base = parseSettings({ rules: { composite: 'epsilon', attention: 'attnlrp' } }).rules;
  assert.equal(ruleChoiceOf(base).attention, 'attnlrp', 'the panel shows the setting');
  assert.equal(applyRuleChoice(base, { attention: 'cp' }).attention, 'cp');
  assert.equal(applyRuleChoice(base, { composite: 'gamma' }).attention, 'attnlrp', 'kept when the panel does not choose');
});

test('the fixture ViT: every token layer has its patch tokens on the 8x8 grid and a class share; hasAttention', async () => {
  for (const model of [VIT, VIT14]) {
    const r = await service.handle('explain', { spec: spec(model), method: 'lrp', displayMaxSide: 256 });
    assert.equal(r.hasAttention, true, model);
    const tokenLayers = r.layers.filter((l) => l.tokens);
    // 4 blocks: LayerNorm, q/k/v projection, output projection, residual Add, LayerNorm, 2 MLP Linears, residual Add; and the final LayerNorm
    assert.equal(tokenLayers.length, 4 * 8 + 1, `${model}: ${tokenLayers.map((l) => l.name).join(', ')}`);
    for (const l of tokenLayers) {
      assert.equal(l.tokens?.skip, 1);
      assert.deepEqual([l.map?.width, l.map?.height], [8, 8], l.name);
      const share = l.tokens?.classShare;
      assert.ok(share !== undefined && Number.isFinite(share), l.name);
      // the map and the class token hold the layer's relevance
      const total = (l.tokens?.leading[0] ?? 0) + Array.from(l.map?.data ?? []).reduce((a, b) => a + b, 0);
      assert.ok(Math.abs(total - l.relevanceSum) <= 1e-3 * Math.max(1, Math.abs(l.relevanceSum)), `${l.name}: ${total} vs ${l.relevanceSum}`);
    }
    // only the class token reaches the head: at the final LayerNorm the class token holds it all
    const ln = tokenLayers[0];
    assert.match(ln.name, /encoder\/ln/);
    assert.ok(Math.abs((ln.tokens?.classShare ?? 0) - 1) < 1e-3, `final LayerNorm share ${ln.tokens?.classShare}`);
    // by the first block's first LayerNorm, attention has moved the relevance to the patches
    const first = tokenLayers[tokenLayers.length - 1];
    assert.ok(Math.abs(first.tokens?.classShare ?? 1) < 0.1, `first LayerNorm share ${first.tokens?.classShare}`);
    assert.deepEqual(
      blockOutputs(r.layers).map((i) => r.layers[i].name),
      [3, 2, 1, 0].map((b) => `/encoder/layers/encoder_layer_${b}/Add_1`),
    );
    // the patch-embedding Conv keeps its spatial map at the input size
    const conv = r.layers[r.layers.length - 1];
    assert.equal(conv.opType, 'Conv');
    assert.deepEqual([conv.map?.width, conv.map?.height, conv.tokens], [64, 64, undefined]);
  }
});

test('the ViT under attnlrp: other token maps than under cp', async () => {
  const cp = await service.handle('explain', { spec: spec(VIT, 'cp'), method: 'lrp', displayMaxSide: 256 });
  const attn = await service.handle('explain', { spec: spec(VIT, 'attnlrp'), method: 'lrp', displayMaxSide: 256 });
  assert.equal(attn.rules.attention, 'attnlrp');
  const shares = (r: typeof cp): number[] => r.layers.filter((l) => l.tokens).map((l) => l.tokens?.classShare ?? NaN);
  assert.notDeepEqual(shares(attn), shares(cp));
});

test('CNNs, ConvNeXt and Swin: no token maps, spatial maps as before; hasAttention only for Swin', async () => {
  const cases: [string, boolean][] = [
    [RESNET, false],
    [CONVNEXT, false],
    [SWIN, true],
  ];
  for (const [model, attention] of cases) {
    const r = await service.handle('explain', { spec: spec(model), method: 'lrp', displayMaxSide: 256 });
    assert.equal(r.hasAttention, attention, model);
    assert.ok(r.layers.every((l) => !l.tokens), `${model}: no token layers`);
    const conv = r.layers.filter((l) => l.opType === 'Conv' && l.map);
    assert.ok(conv.length > 0, `${model}: Conv maps`);
  }
});
