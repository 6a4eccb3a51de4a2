// The float32 stability measure (engine/stability.ts) and `lrp-lens explain --stability`.
// Needs `npm run build` (dist/cli.js) first; `npm test` does that.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { f32 } from '../../src/engine/graph/graph';
import { relL2, ulpPerturbed, ulpSensitivity } from '../../src/explain/stability';
import { CLI, REFERENCE_DIR, makeTmpDir, runCli } from '../helpers';

const VGG = path.join(REFERENCE_DIR, 'shapes-vgg');

let tmp: { dir: string; cleanup: () => void };
before(() => {
  assert.ok(existsSync(CLI), `${CLI} is missing: run \`npm run build\` first`);
  tmp = makeTmpDir('lrp-lens-stability-');
});
after(() => tmp?.cleanup());

describe('one-ulp perturbation', () => {
  it('moves each value by at most one float32 ulp, most of them by exactly one, zeros stay', () => {
    const x = f32([1, 6], [1, -3.5, 1e-20, 123456.789, 0, 0.1]);
    const y = ulpPerturbed(x, 1).data as Float32Array;
    const xs = x.data as Float32Array;
    let moved = 0;
    for (let i = 0; i < xs.length; i++) {
      const ulp = Math.abs(Math.fround(xs[i] * (1 + 2 ** -23)) - xs[i]) || Number.MIN_VALUE;
      assert.ok(Math.abs(y[i] - xs[i]) <= ulp, `element ${i}: ${xs[i]} -> ${y[i]}`);
      if (y[i] !== xs[i]) moved++;
    }
    assert.equal(y[4], 0);
    assert.ok(moved >= 3, `${moved} values moved`);
    assert.notDeepEqual(Array.from(ulpPerturbed(x, 2).data as Float32Array), Array.from(y), 'the seed picks the signs');
  });

  it('ulpSensitivity is the worst relL2 change over the draws, 0 for an insensitive function', async () => {
    const x = f32([1, 3], [1.5, 2.5, 3.5]);
    assert.equal(await ulpSensitivity(async () => [1, 2, 3], x), 0);
    // an amplifier: 1 / (t - 1.5 + 1e-9) near t = 1.5 blows a one-ulp change (1.2e-7) up
    const s = await ulpSensitivity(async (v) => Array.from(v.data as Float32Array, (t) => 1 / (t - 1.5 + 1e-9)), x);
    assert.ok(s > 0.1, `sensitivity ${s}`);
    assert.equal(relL2([1, 1], [1, 1]), 0);
    assert.ok(Math.abs(relL2([1, 2], [1, 1]) - Math.SQRT1_2) < 1e-12);
  });
});

describe('lrp-lens explain --stability', () => {
  const explain = async (rules: object, extra: string[] = []) => {
    const rulesFile = path.join(tmp.dir, `rules-${Math.random().toString(36).slice(2)}.json`);
    writeFileSync(rulesFile, JSON.stringify(rules));
    const json = path.join(tmp.dir, `out-${Math.random().toString(36).slice(2)}.json`);
    const r = await runCli(['explain', '--model', path.join(VGG, 'model.onnx'), '--input', path.join(VGG, 'inputs', 'sample0.npy'),
      '--target', '2', '--rules', rulesFile, '--out-json', json, ...extra]);
    return { r, json: r.code === 0 && existsSync(json) ? JSON.parse(readFileSync(json, 'utf8')) : undefined };
  };

  it('reports a small change for a well-conditioned explanation, without a warning', async () => {
    const { r, json } = await explain({ composite: 'epsilon-plus-flat' }, ['--stability']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(json.stability.draws, 3);
    assert.ok(json.stability.ulpRelL2 < 1e-4, `ulpRelL2 ${json.stability.ulpRelL2}`);
    assert.match(r.stdout, /one-ulp input noise moves it by \d\.\de-\d+/);
    assert.doesNotMatch(r.stderr, /warning/);
  });

  it('warns when float32 rounding shapes the map (epsilon 1e-6 with zeroBias on shapes-vgg)', async () => {
    const { r, json } = await explain({ composite: 'epsilon', epsilon: 1e-6, zeroBias: true }, ['--stability']);
    assert.equal(r.code, 0, r.stderr);
    assert.ok(json.stability.ulpRelL2 >= 1e-2, `ulpRelL2 ${json.stability.ulpRelL2}`);
    assert.match(r.stderr, /warning: .*sample0\.npy: one float32 ulp of input noise moves the relevance by \d+(\.\d+)?% .*float32 rounding shapes this map/);
  });

  it('leaves the JSON without a stability entry unless asked', async () => {
    const { r, json } = await explain({ composite: 'epsilon-plus-flat' });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(json.stability, undefined);
  });

  it('is refused with --method and with --images', async () => {
    const m = await explain({ composite: 'epsilon' }, ['--stability', '--method', 'gradient']);
    assert.equal(m.r.code, 2, m.r.stderr);
    assert.match(m.r.stderr, /--stability measures LRP explanations, not --method gradient/);
    const f = await runCli(['explain', '--model', path.join(VGG, 'model.onnx'), '--images', path.join(VGG, 'inputs'), '--out', tmp.dir, '--stability']);
    assert.notEqual(f.code, 0);
    assert.match(f.stderr, /--stability cannot be combined with --images/);
  });
});
