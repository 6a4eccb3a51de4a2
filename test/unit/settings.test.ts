import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import { COMPOSITE_NAMES, DEFAULT_RULES } from '../../src/engine/config';
import { describeError, NoModelError } from '../../src/host/errors';
import {
  applyRuleChoice,
  isImagePath,
  parsePreprocessing,
  parsePreprocessingFile,
  parseSettings,
  parseSize,
  resolveSettingPath,
  SettingsError,
  viewFromSettings,
} from '../../src/host/settings';
import { Runner } from '../../src/host/runner';
import { modelConfigOf } from '../../src/explain/server/service';

function rejects(raw: Parameters<typeof parseSettings>[0], setting: string, detail: RegExp): void {
  assert.throws(
    () => parseSettings(raw),
    (e: unknown) => {
      assert.ok(e instanceof SettingsError, String(e));
      assert.equal(e.setting, setting);
      assert.match(e.message, new RegExp(`^Setting '${setting.replace(/\./g, '\\.')}': `));
      assert.match(e.message, detail);
      return true;
    },
  );
}

test('defaults: no settings give imagenet preprocessing, spec rules, auto backend, bwr', () => {
  const s = parseSettings({});
  assert.equal(s.modelPath, undefined);
  assert.equal(s.labelsPath, undefined);
  assert.deepEqual(s.preprocessing, { preset: 'imagenet', channelOrder: 'rgb' });
  assert.deepEqual(s.rules, DEFAULT_RULES);
  assert.equal(s.backend, 'auto');
  assert.equal(s.colormap, 'bwr');
});

test('empty path settings count as unset', () => {
  const s = parseSettings({ modelPath: '  ', labelsPath: '' });
  assert.equal(s.modelPath, undefined);
  assert.equal(s.labelsPath, undefined);
  assert.equal(parseSettings({ modelPath: ' models/a.onnx ' }).modelPath, 'models/a.onnx');
});

test('full preprocessing object', () => {
  const p = parsePreprocessing({ preset: 'unit', mean: [0.5, 0.5, 0.5], std: [0.25], scale: 1 / 255, size: '96x64', channelOrder: 'bgr' });
  assert.deepEqual(p, { preset: 'unit', mean: [0.5, 0.5, 0.5], std: [0.25], scale: 1 / 255, size: { width: 96, height: 64 }, channelOrder: 'bgr' });
  assert.deepEqual(parsePreprocessing('raw'), { preset: 'raw', channelOrder: 'rgb' });
});

test('sizes in every accepted spelling', () => {
  assert.deepEqual(parseSize('k', 224), { width: 224, height: 224 });
  assert.deepEqual(parseSize('k', [320, 240]), { width: 320, height: 240 });
  assert.deepEqual(parseSize('k', { width: 8, height: 9 }), { width: 8, height: 9 });
  assert.deepEqual(parseSize('k', ' 28 X 28 '), { width: 28, height: 28 });
  for (const bad of [0, -3, [1], [1, 2, 3], '12', 'axb', { width: 1 }, 2.5, 100000])
    assert.throws(() => parseSize('k', bad), /k.*must be a size/, JSON.stringify(bad));
});

test('invalid values name the setting and say what is wrong', () => {
  rejects({ modelPath: 42 }, 'lrpLens.modelPath', /must be a string/);
  rejects({ labelsPath: ['a'] }, 'lrpLens.labelsPath', /must be a string/);
  rejects({ backend: 'cuda' }, 'lrpLens.backend', /one of auto, onnxruntime, tfjs.*"cuda"/);
  rejects({ colormap: 'jet' }, 'lrpLens.colormap', /one of bwr, coldnhot, seismic, hot, gray/);
  rejects({ preprocessing: 7 }, 'lrpLens.preprocessing', /must be an object/);
  rejects({ preprocessing: { preset: 'caffe' } }, 'lrpLens.preprocessing.preset', /imagenet, unit, symmetric, raw/);
  rejects({ preprocessing: { mean: [1, 2] } }, 'lrpLens.preprocessing.mean', /1 or 3 numbers/);
  rejects({ preprocessing: { mean: [1, 'x', 3] } }, 'lrpLens.preprocessing.mean', /numbers only/);
  rejects({ preprocessing: { std: [0.2, 0, 0.2] } }, 'lrpLens.preprocessing.std', /positive/);
  rejects({ preprocessing: { scale: 0 } }, 'lrpLens.preprocessing.scale', /positive number/);
  rejects({ preprocessing: { size: 'big' } }, 'lrpLens.preprocessing.size', /like \[224, 224\]/);
  rejects({ preprocessing: { channelOrder: 'grb' } }, 'lrpLens.preprocessing.channelOrder', /"rgb" or "bgr"/);
  rejects({ preprocessing: { presets: 'unit' } }, 'lrpLens.preprocessing', /unknown key 'presets'/);
});

test('rules go through the spec config parser; its messages keep the detail', () => {
  const s = parseSettings({ rules: { composite: 'epsilon-gamma-box', gamma: 0.5, overrides: [{ opType: 'Gemm', rule: 'epsilon', epsilon: 0.25 }] } });
  assert.equal(s.rules.composite, 'epsilon-gamma-box');
  assert.equal(s.rules.gamma, 0.5);
  assert.equal(s.rules.epsilon, DEFAULT_RULES.epsilon);
  assert.deepEqual(s.rules.overrides, [{ opType: 'Gemm', rule: 'epsilon', epsilon: 0.25 }]);
  rejects({ rules: { composite: 'magic' } }, 'lrpLens.rules', /unknown composite 'magic'/);
  rejects({ rules: { epsilon: -1 } }, 'lrpLens.rules', /'epsilon' must not be negative/);
  rejects({ rules: { overrides: [{ layer: 'x', rule: 'alpha-beta', alpha: 2, beta: 2 }] } }, 'lrpLens.rules', /alpha - beta = 1/);
  rejects({ rules: { overrides: [{ rule: 'flat' }] } }, 'lrpLens.rules', /needs 'layer' and\/or 'opType'/);
  rejects({ rules: { colour: 1 } }, 'lrpLens.rules', /unknown key 'colour'/);
  rejects({ rules: [] }, 'lrpLens.rules', /must be a JSON object/);
});

test('the panel choice applies on top of the setting and keeps overrides', () => {
  const base = parseSettings({ rules: { composite: 'epsilon', overrides: [{ layer: '/conv/', rule: 'flat' }] } }).rules;
  const r = applyRuleChoice(base, { composite: 'gamma', gamma: 1 });
  assert.equal(r.composite, 'gamma');
  assert.equal(r.gamma, 1);
  assert.equal(r.epsilon, base.epsilon);
  assert.deepEqual(r.overrides, base.overrides);
  assert.notEqual(r.overrides, base.overrides, 'copied, not shared');
  assert.equal(applyRuleChoice(base, undefined), base);
  assert.throws(() => applyRuleChoice(base, { epsilon: -1 }), /lrpLens\.rules.*epsilon must not be negative/);
});

test('paths resolve against the workspace folder, ~ against home', () => {
  assert.equal(resolveSettingPath('models/m.onnx', '/ws', '/home/u'), path.resolve('/ws/models/m.onnx'));
  assert.equal(resolveSettingPath('/abs/m.onnx', '/ws', '/home/u'), '/abs/m.onnx');
  assert.equal(resolveSettingPath('~/m.onnx', '/ws', '/home/u'), '/home/u/m.onnx');
  assert.equal(resolveSettingPath('../m.onnx', '/ws/a', '/home/u'), path.resolve('/ws/m.onnx'));
});

test('image extensions match in any case', () => {
  for (const f of ['a.png', 'B.JPG', 'c.JpEg', 'd.webp', 'e.GIF', 'f.tif', 'g.TIFF', 'h.bmp']) assert.ok(isImagePath(f), f);
  for (const f of ['a.onnx', 'b.svg', 'png', 'c.png.txt']) assert.ok(!isImagePath(f), f);
});

test('errors map to titles and helpful actions', () => {
  assert.deepEqual(describeError(new NoModelError('none')).actions, ['selectModel', 'openSettings']);
  assert.equal(describeError(new SettingsError('lrpLens.rules', 'x')).title, 'Invalid setting');
  const unsupported = describeError(new Error("/w/m.onnx: node 'mix' (Einsum) is not supported: unsupported op"));
  assert.equal(unsupported.title, 'Unsupported operator');
  assert.ok(unsupported.actions.includes('selectModel'));
  assert.equal(describeError(new Error('/w/bad.png: cannot decode image: corrupt')).title, 'Unreadable image');
  assert.equal(describeError(new Error('input shape [1, 3, 64, 64] does not match')).title, 'Input shape mismatch');
  assert.equal(describeError('weird').title, 'Explanation failed');
});

test('package.json contributes every setting the parser reads, with schema', () => {
  const pkg = JSON.parse(readFileSync(path.join(__dirname, '../../package.json'), 'utf8'));
  const props = pkg.contributes.configuration.properties;
  for (const key of ['modelPath', 'labelsPath', 'preprocessing', 'rules', 'backend', 'colormap']) {
    const p = props[`lrpLens.${key}`];
    assert.ok(p, key);
    assert.ok(p.type, `${key} has a type`);
    assert.ok(p.markdownDescription || p.description, `${key} is described`);
    assert.ok('default' in p, `${key} has a default`);
    // The schema default parses.
    assert.doesNotThrow(() => parseSettings({ [key]: p.default }), key);
  }
  assert.deepEqual(props['lrpLens.rules'].properties.composite.enum, [...COMPOSITE_NAMES]);
  const cmd = pkg.contributes.commands.find((c: { command: string }) => c.command === 'lrpLens.explainImage');
  assert.equal(cmd.title, 'Explain Prediction');
  assert.equal(cmd.category, 'LRP Lens');
  const when: string = pkg.contributes.menus['explorer/context'][0].when;
  const re = new RegExp(/\/(.*)\/i/.exec(when)![1], 'i');
  for (const ext of ['.png', '.JPG', '.jpeg', '.WebP', '.gif', '.tif', '.TIFF', '.bmp']) assert.ok(re.test(ext), ext);
  assert.ok(!re.test('.onnx'));
});

test('preprocessing.json beside the model applies when the setting is not set', async () => {
  // the host sends the setting; the engine resolves it against the files beside the model
  const preprocessingFor = async (req: Parameters<typeof Runner.spec>[0]) => (await modelConfigOf(await Runner.spec(req))).preprocessing;
  assert.equal(parseSettings({}).preprocessingFromSetting, false);
  assert.equal(parseSettings({ preprocessing: { preset: 'unit' } }).preprocessingFromSetting, true);
  assert.deepEqual(parsePreprocessingFile('{"preset": "symmetric"}', 'p.json'), { preset: 'symmetric', channelOrder: 'rgb' });
  assert.throws(() => parsePreprocessingFile('{"preset": "caffe"}', '/m/preprocessing.json'), /^Error: \/m\/preprocessing\.json: 'preset' must be one of/);
  assert.throws(() => parsePreprocessingFile('{', '/m/preprocessing.json'), /\/m\/preprocessing\.json: not valid JSON/);

  const dir = mkdtempSync(path.join(os.tmpdir(), 'lrp-pre-'));
  try {
    const base = {
      imagePath: path.join(dir, 'x.png'),
      modelPath: path.join(dir, 'model.json'),
      backend: 'auto' as const,
      preprocessing: parsePreprocessing(undefined),
      rules: DEFAULT_RULES,
    };
    assert.equal((await preprocessingFor(base)).preset, 'imagenet'); // no file: the default
    writeFileSync(path.join(dir, 'preprocessing.json'), '{"preset": "symmetric", "size": [64, 64]}');
    const fromFile = await preprocessingFor(base);
    assert.equal(fromFile.preset, 'symmetric');
    assert.deepEqual(fromFile.size, { width: 64, height: 64 });
    // an explicit setting wins over the file
    const set = { ...base, preprocessing: parsePreprocessing({ preset: 'unit' }), preprocessingFromSetting: true };
    assert.equal((await preprocessingFor(set)).preset, 'unit');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('lrpLens.heatmap.*: the default view, the scale percentile and the contrast', () => {
  assert.deepEqual(parseSettings({}).heatmap, { view: 'overlay', percentile: 99.5, gamma: 1 });
  assert.deepEqual(parseSettings({ heatmapView: 'side', heatmapPercentile: 99, heatmapGamma: 0.5 }).heatmap, { view: 'side', percentile: 99, gamma: 0.5 });
  assert.deepEqual(viewFromSettings(parseSettings({ colormap: 'hot', heatmapView: 'alone' })), { colormap: 'hot', mode: 'alone', percentile: 99.5, gamma: 1 });
  rejects({ heatmapView: 'collage' }, 'lrpLens.heatmap.view', /must be one of overlay, alone, side/);
  rejects({ heatmapPercentile: 10 }, 'lrpLens.heatmap.percentile', /from 50 to 100/);
  rejects({ heatmapGamma: 0 }, 'lrpLens.heatmap.gamma', /from 0\.1 to 10/);
  const props = JSON.parse(readFileSync(path.join(__dirname, '../../package.json'), 'utf8')).contributes.configuration.properties;
  const raw = { heatmapView: props['lrpLens.heatmap.view'].default, heatmapPercentile: props['lrpLens.heatmap.percentile'].default, heatmapGamma: props['lrpLens.heatmap.gamma'].default };
  assert.deepEqual(parseSettings(raw).heatmap, parseSettings({}).heatmap, 'package.json defaults = the parser defaults');
  assert.deepEqual(props['lrpLens.heatmap.view'].enum, ['overlay', 'alone', 'side']);
  for (const k of ['view', 'percentile', 'gamma']) assert.ok(props[`lrpLens.heatmap.${k}`].markdownDescription, k);
});
