// The compare view's setting, protocol messages and plot helpers.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { COMPOSITE_NAMES } from '../../src/engine/config';
import { METHOD_NAMES } from '../../src/explain/methods';
import { compareOrDefault, parseCompare, SettingsError } from '../../src/host/settings';
import {
  ATTRIBUTION_METHODS,
  COMPARE_METHODS,
  DEFAULT_COMPARE,
  MAX_COMPARE,
  parseCompareMethods,
  parsePersistedState,
  parseWebviewMessage,
  type WebviewMessage,
} from '../../src/protocol';
import { curvePaths, niceTicks, sharedScale } from '../../webview/plot';

test('the protocol lists exactly the engine methods and composites', () => {
  assert.deepEqual([...ATTRIBUTION_METHODS], [...METHOD_NAMES]);
  assert.deepEqual([...COMPARE_METHODS], [...COMPOSITE_NAMES, ...METHOD_NAMES]);
});

test('package.json documents lrpLens.compare with the same enum and default', () => {
  const pkg = JSON.parse(readFileSync(path.join(__dirname, '../../package.json'), 'utf8'));
  const s = pkg.contributes.configuration.properties['lrpLens.compare'];
  assert.equal(s.type, 'array');
  assert.deepEqual(s.default, [...DEFAULT_COMPARE]);
  assert.deepEqual(s.items.enum, [...COMPARE_METHODS]);
  assert.equal(s.items.enumDescriptions.length, COMPARE_METHODS.length);
  assert.equal(s.maxItems, MAX_COMPARE);
  assert.ok(s.markdownDescription.length > 40);
});

test('lrpLens.compare: default, valid lists, trimming and duplicates', () => {
  assert.deepEqual(parseCompare(undefined), [...DEFAULT_COMPARE]);
  assert.deepEqual(parseCompare(null), [...DEFAULT_COMPARE]);
  assert.deepEqual(parseCompare([]), []);
  assert.deepEqual(parseCompare(['gradcam', ' epsilon ', 'random', 'gradcam']), ['gradcam', 'epsilon', 'random']);
  assert.deepEqual(parseCompare([...COMPARE_METHODS]), [...COMPARE_METHODS]);
  assert.equal(DEFAULT_COMPARE.length, 7);
});

test('lrpLens.compare: invalid values name the setting', () => {
  const bad: [unknown, RegExp][] = [
    ['gradcam', /must be an array/],
    [{ a: 1 }, /must be an array/],
    [['gradcam', 'lrp-magic'], /unknown method "lrp-magic".*known: epsilon/],
    [[1], /unknown method 1/],
    [['lrp'], /unknown method "lrp"/],
  ];
  for (const [v, re] of bad) {
    assert.throws(
      () => parseCompare(v),
      (e: unknown) => e instanceof SettingsError && e.setting === 'lrpLens.compare' && /^Setting 'lrpLens\.compare': /.test(e.message) && re.test(e.message),
      JSON.stringify(v),
    );
  }
  const r = compareOrDefault(['nope']);
  assert.deepEqual(r.methods, [...DEFAULT_COMPARE]);
  assert.match(r.error ?? '', /^Setting 'lrpLens\.compare': unknown method "nope"/);
  assert.deepEqual(compareOrDefault(['cam']), { methods: ['cam'] });
});

test('compare messages: valid ones pass unchanged', () => {
  const ok: WebviewMessage[] = [
    { type: 'compare', compareId: 1, methods: ['epsilon', 'gradcam'] },
    { type: 'compare', compareId: 0, methods: [], target: 2 },
    { type: 'setCompareMethods', methods: [] },
    { type: 'setCompareMethods', methods: ['random', 'cam', 'epsilon-gamma-box'] },
    { type: 'openMethod', method: 'gradient-input' },
    { type: 'openMethod', method: 'alpha1-beta0', target: 3 },
    { type: 'evaluate', methods: ['epsilon-plus-flat'] },
    { type: 'evaluate', methods: ['epsilon-plus-flat', 'random'], target: 0 },
    { type: 'cancelEvaluate' },
    { type: 'explain', method: 'gradcam' },
    { type: 'explain', target: 1, rules: { composite: 'epsilon' }, method: 'lrp' },
  ];
  for (const m of ok) assert.deepEqual(parseWebviewMessage(JSON.parse(JSON.stringify(m))), m, JSON.stringify(m));
});

test('compare messages: malformed ones are rejected', () => {
  const bad: unknown[] = [
    { type: 'compare', methods: ['epsilon'] },
    { type: 'compare', compareId: -1, methods: ['epsilon'] },
    { type: 'compare', compareId: 1, methods: 'epsilon' },
    { type: 'compare', compareId: 1, methods: ['epsilon', 'epsilon'] },
    { type: 'compare', compareId: 1, methods: ['lrp'] },
    { type: 'compare', compareId: 1, methods: ['epsilon'], target: 1.5 },
    { type: 'compare', compareId: 1, methods: Array(MAX_COMPARE + 1).fill('epsilon') },
    { type: 'setCompareMethods', methods: ['nope'] },
    { type: 'setCompareMethods' },
    { type: 'openMethod', method: 'lrp' },
    { type: 'openMethod', method: 'gradcam', target: 'x' },
    { type: 'evaluate', methods: [] },
    { type: 'evaluate', methods: ['gradcam'], target: -2 },
    { type: 'explain', method: 'epsilon' },
    { type: 'explain', method: 7 },
  ];
  for (const m of bad) assert.equal(parseWebviewMessage(m), undefined, JSON.stringify(m));
  assert.deepEqual(parseCompareMethods(['cam', 'random']), ['cam', 'random']);
  assert.equal(parseCompareMethods({}), undefined);
});

test('persisted state keeps the method, tab and normalisation; ignores bad values', () => {
  assert.deepEqual(parsePersistedState({ imagePath: '/a.png', method: 'gradcam', tab: 'compare', compareNorm: 'shared' }), {
    imagePath: '/a.png',
    method: 'gradcam',
    tab: 'compare',
    compareNorm: 'shared',
  });
  assert.deepEqual(parsePersistedState({ imagePath: '/a.png', method: 'epsilon', tab: 'other', compareNorm: 3 }), { imagePath: '/a.png' });
});

test('plot helpers: shared scale, ticks and curve paths', () => {
  assert.equal(sharedScale([0.5, 3, Number.NaN, 2]), 3);
  assert.equal(sharedScale([]), 0);
  assert.deepEqual(niceTicks(0, 50, 5), [0, 10, 20, 30, 40, 50]);
  assert.deepEqual(niceTicks(-1, 1, 4), [-1, -0.5, 0, 0.5, 1]);
  const box = { width: 110, height: 60, left: 10, right: 0, top: 0, bottom: 10 };
  const g = curvePaths([[2, 1, 0], undefined, []], box);
  assert.equal(g.xMax, 2);
  assert.equal(g.paths[1], '');
  assert.equal(g.paths[2], '');
  const pts = g.paths[0].split(' ');
  assert.equal(pts.length, 3);
  assert.match(pts[0], /^M10\.0,/);
  assert.match(pts[2], /^L110\.0,/);
  // y grows upwards: the first (largest) value is highest on screen
  const y = pts.map((p) => Number(p.split(',')[1]));
  assert.ok(y[0] < y[1] && y[1] < y[2]);
  assert.ok(y[0] >= 0 && y[2] <= 50);
  // a flat curve still gets a y range
  const flat = curvePaths([[1, 1, 1]], box);
  assert.ok(flat.yMax > flat.yMin);
});
