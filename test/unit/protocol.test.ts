import { test } from 'node:test';
import assert from 'node:assert/strict';
import { COMPOSITE_NAMES } from '../../src/engine/config';
import {
  COMPOSITES,
  float32Buffer,
  packMap,
  parsePersistedState,
  parseViewOptions,
  parseWebviewMessage,
  toFloat32,
  toUint8,
  unpackMap,
  type WebviewMessage,
} from '../../src/protocol';
import { softmax, topK } from '../../src/engine/scores';

test('the protocol lists exactly the engine composites', () => {
  assert.deepEqual([...COMPOSITES], [...COMPOSITE_NAMES]);
});

test('valid webview messages pass unchanged', () => {
  const view = { colormap: 'seismic', opacity: 0.4, sign: 'positive', mode: 'side', percentile: 99, gamma: 0.5 } as const;
  const ok: WebviewMessage[] = [
    { type: 'ready' },
    { type: 'explain' },
    { type: 'explain', target: 3 },
    { type: 'explain', target: 0, rules: { composite: 'epsilon-gamma-box', epsilon: 0.25, gamma: 0 } },
    { type: 'export', kind: 'png', view },
    { type: 'export', kind: 'npy', view },
    { type: 'export', kind: 'json', view },
    { type: 'action', action: 'selectModel' },
    { type: 'action', action: 'openSettings' },
    { type: 'viewChanged', view },
    { type: 'stability', runId: 4 },
    { type: 'concepts', runId: 3, index: 2, view: 'detail', top: 8 },
    { type: 'concepts', runId: 3, index: 0, view: 'atlas', top: 32 },
    { type: 'conceptRefs', runId: 3, index: 0, channels: [7, 1] },
  ];
  for (const m of ok) assert.deepEqual(parseWebviewMessage(JSON.parse(JSON.stringify(m))), m, JSON.stringify(m));
});

test('malformed webview messages are rejected', () => {
  const bad: unknown[] = [
    null,
    42,
    'ready',
    [],
    {},
    { type: 'nope' },
    { type: 'explain', target: -1 },
    { type: 'explain', target: 1.5 },
    { type: 'explain', target: '2' },
    { type: 'explain', rules: { composite: 'lrp-magic' } },
    { type: 'explain', rules: { epsilon: -1 } },
    { type: 'explain', rules: { gamma: Number.NaN } },
    { type: 'explain', rules: 'epsilon' },
    { type: 'export', kind: 'gif', view: { colormap: 'bwr', opacity: 0.5, sign: 'both' } },
    { type: 'export', kind: 'png' },
    { type: 'export', kind: 'png', view: { colormap: 'jet', opacity: 0.5, sign: 'both' } },
    { type: 'export', kind: 'png', view: { colormap: 'bwr', opacity: 2, sign: 'both' } },
    { type: 'export', kind: 'png', view: { colormap: 'bwr', opacity: 0.5, sign: 'up' } },
    { type: 'action', action: 'rm -rf' },
    { type: 'layerDetail', runId: 1 },
    { type: 'viewChanged' },
    { type: 'stability' },
    { type: 'stability', runId: -1 },
    { type: 'stability', runId: '3' },
    { type: 'concepts', runId: 3, index: 2, view: 'grid', top: 8 },
    { type: 'concepts', runId: 3, index: 2, view: 'atlas', top: 0 },
    { type: 'concepts', runId: 3, index: 2, view: 'atlas', top: 33 },
    { type: 'concepts', runId: 3, index: -1, view: 'detail', top: 8 },
    { type: 'concepts', index: 1, view: 'detail', top: 8 },
    { type: 'conceptRefs', runId: 3, index: 0, channels: [] },
    { type: 'conceptRefs', runId: 3, index: 0, channels: [1, -2] },
    { type: 'conceptRefs', runId: 3, index: 0, channels: '1' },
  ];
  for (const m of bad) assert.equal(parseWebviewMessage(m), undefined, JSON.stringify(m));
});

test('extra fields are dropped from accepted messages', () => {
  assert.deepEqual(parseWebviewMessage({ type: 'ready', evil: true }), { type: 'ready' });
  assert.deepEqual(parseWebviewMessage({ type: 'explain', target: 1, x: 1, rules: { gamma: 1, y: 2 } }), {
    type: 'explain',
    target: 1,
    rules: { gamma: 1 },
  });
});

test('view options are validated', () => {
  // mode, percentile and gamma default when missing (the panel's defaults: overlay, 99.5th percentile, linear)
  assert.deepEqual(parseViewOptions({ colormap: 'hot', opacity: 1, sign: 'negative' }), {
    colormap: 'hot', opacity: 1, sign: 'negative', mode: 'overlay', percentile: 99.5, gamma: 1,
  });
  assert.deepEqual(parseViewOptions({ colormap: 'hot', opacity: 1, sign: 'both', mode: 'alone', percentile: 100, gamma: 0.3 }), {
    colormap: 'hot', opacity: 1, sign: 'both', mode: 'alone', percentile: 100, gamma: 0.3,
  });
  assert.equal(parseViewOptions({ colormap: 'hot', opacity: -0.1, sign: 'negative' }), undefined);
  // wrong values are refused, not defaulted
  assert.equal(parseViewOptions({ colormap: 'hot', opacity: 1, sign: 'both', mode: 'collage' }), undefined);
  assert.equal(parseViewOptions({ colormap: 'hot', opacity: 1, sign: 'both', percentile: 20 }), undefined);
  assert.equal(parseViewOptions({ colormap: 'hot', opacity: 1, sign: 'both', percentile: 100.5 }), undefined);
  assert.equal(parseViewOptions({ colormap: 'hot', opacity: 1, sign: 'both', gamma: 0 }), undefined);
  assert.equal(parseViewOptions(undefined), undefined);
});

test('persisted state: image path required, invalid view parts dropped', () => {
  assert.deepEqual(parsePersistedState({ imagePath: '/w/cat.png' }), { imagePath: '/w/cat.png' });
  assert.deepEqual(parsePersistedState({ imagePath: '/w/cat.png', view: { colormap: 'gray', opacity: 9, sign: 'both' } }), {
    imagePath: '/w/cat.png',
    view: { colormap: 'gray', sign: 'both' },
  });
  assert.deepEqual(parsePersistedState({ imagePath: '/w/cat.png', view: { mode: 'side', percentile: 99, gamma: 40 } }), {
    imagePath: '/w/cat.png',
    view: { mode: 'side', percentile: 99 },
  });
  assert.deepEqual(parsePersistedState({ imagePath: '/w/a.png', rules: { composite: 'gamma', gamma: 0.5 } }), {
    imagePath: '/w/a.png',
    rules: { composite: 'gamma', gamma: 0.5 },
  });
  assert.deepEqual(parsePersistedState({ imagePath: '/w/a.png', rules: { composite: 'bogus' } }), { imagePath: '/w/a.png' });
  assert.deepEqual(parsePersistedState({ imagePath: '/w/a.png', tab: 'concepts', atlasLayer: '/features/Conv', atlasTop: 8 }), {
    imagePath: '/w/a.png',
    tab: 'concepts',
    atlasLayer: '/features/Conv',
    atlasTop: 8,
  });
  assert.deepEqual(parsePersistedState({ imagePath: '/w/a.png', atlasLayer: 3, atlasTop: 99 }), { imagePath: '/w/a.png' });
  assert.equal(parsePersistedState({ imagePath: '' }), undefined);
  assert.equal(parsePersistedState({}), undefined);
  assert.equal(parsePersistedState(undefined), undefined);
});

test('maps cross as standalone ArrayBuffers and come back intact', () => {
  const big = new Float32Array([9, 9, 1, -2.5, 3, 4, 9]);
  const view = big.subarray(2, 6); // a view into a larger buffer
  const wire = packMap({ width: 2, height: 2, data: view });
  assert.ok(wire.data instanceof ArrayBuffer);
  assert.equal(wire.data.byteLength, 16);
  const back = unpackMap(structuredClone(wire));
  assert.deepEqual(Array.from(back.data), [1, -2.5, 3, 4]);
  assert.equal(back.width, 2);
  assert.throws(() => packMap({ width: 3, height: 2, data: view }), /3x2 has 4 values/);
  assert.throws(() => unpackMap({ width: 3, height: 3, data: float32Buffer([1, 2]) }), /arrived with 2 values/);
});

test('toFloat32 / toUint8 accept what a transport may hand over', () => {
  const src = new Float32Array([0.5, -1, 2]);
  assert.deepEqual(Array.from(toFloat32(src.buffer)), [0.5, -1, 2]);
  assert.deepEqual(Array.from(toFloat32(src)), [0.5, -1, 2]);
  assert.deepEqual(Array.from(toFloat32([0.5, -1, 2])), [0.5, -1, 2]);
  assert.deepEqual(Array.from(toFloat32(JSON.parse(JSON.stringify(src)))), [0.5, -1, 2]);
  const bytes = new Uint8Array(src.buffer, 4, 8); // unaligned-safe copy of the last two floats
  assert.deepEqual(Array.from(toFloat32(bytes)), [-1, 2]);
  assert.equal(toFloat32(undefined).length, 0);
  assert.deepEqual(Array.from(toUint8(new Uint8Array([1, 2, 255]).buffer)), [1, 2, 255]);
  assert.deepEqual(Array.from(toUint8([3, 4])), [3, 4]);
  assert.deepEqual(Array.from(toUint8({ 0: 7, 1: 8 })), [7, 8]);
});

test('softmax is stable and sums to one; topK orders by value then index', () => {
  const p = softmax([1000, 1000, 999]);
  assert.ok(Math.abs(p[0] + p[1] + p[2] - 1) < 1e-12);
  assert.ok(Math.abs(p[0] - p[1]) < 1e-15);
  assert.ok(p[2] < p[0]);
  assert.deepEqual(topK([0.1, 3, 3, -2, 7], 3), [4, 1, 2]);
  assert.deepEqual(topK([1, 2], 5), [1, 0]);
});
