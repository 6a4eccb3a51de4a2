// Issue 5 on the command line: `explain --method`, `evaluate` (JSON shape, --mask, errors).
// Needs `npm run build` (dist/cli.js) first; `npm test` does that.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { CLI, REFERENCE_DIR, makeTmpDir, readNpyFile, runCli } from '../helpers';

const RESNET = path.join(REFERENCE_DIR, 'shapes-resnet');
const DIGITS = path.join(REFERENCE_DIR, 'digits-cnn');

let tmp: { dir: string; cleanup: () => void };
before(() => {
  assert.ok(existsSync(CLI), `${CLI} is missing: run \`npm run build\` first`);
  tmp = makeTmpDir('lrp-lens-methods-cli-');
});
after(() => tmp?.cleanup());

describe('lrp-lens explain --method', () => {
  it('writes the Grad-CAM relevance, heatmap and JSON', async () => {
    const rel = path.join(tmp.dir, 'gc.npy');
    const json = path.join(tmp.dir, 'gc.json');
    const png = path.join(tmp.dir, 'gc.png');
    const r = await runCli(['explain', '--model', path.join(RESNET, 'model.onnx'), '--image', path.join(RESNET, 'inputs', 'sample0.png'),
      '--method', 'gradcam', '--out-relevance', rel, '--out-json', json, '--out-heatmap', png]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /gradcam at \/layer3\/relu2\/Relu/);
    assert.deepEqual(readNpyFile(rel).dims, [1, 3, 64, 64]);
    const s = JSON.parse(readFileSync(json, 'utf8'));
    assert.equal(s.method, 'gradcam');
    assert.equal(s.target, 2);
    assert.ok(existsSync(png));
  });

  it('takes an LRP composite as a method, and explains why cam does not apply', async () => {
    const ok = await runCli(['explain', '--model', path.join(DIGITS, 'model.onnx'), '--input', path.join(DIGITS, 'inputs', 'sample0.npy'), '--method', 'epsilon-gamma-box']);
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout, /epsilon-gamma-box/);
    const bad = await runCli(['explain', '--model', path.join(DIGITS, 'model.onnx'), '--input', path.join(DIGITS, 'inputs', 'sample0.npy'), '--method', 'cam']);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /^lrp-lens: .*digits-cnn[\\/]model\.onnx: cam is not applicable/);
    const unknown = await runCli(['explain', '--model', path.join(DIGITS, 'model.onnx'), '--input', path.join(DIGITS, 'inputs', 'sample0.npy'), '--method', 'nope']);
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /--method: unknown method 'nope'/);
  });
});

describe('lrp-lens evaluate', () => {
  it('prints and writes {target, methods: [{name, aopc, curve, localisation}]}', async () => {
    const json = path.join(tmp.dir, 'eval.json');
    const r = await runCli(['evaluate', '--model', path.join(RESNET, 'model.onnx'), '--input', path.join(RESNET, 'inputs', 'sample0.npy'),
      '--methods', 'epsilon-plus-flat,gradcam,random', '--steps', '10', '--mask', path.join(RESNET, 'inputs', 'sample0-mask.png'), '--out-json', json]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /epsilon-plus-flat/);
    // the share of the image the default parameters perturb is said (25% at every input size)
    assert.match(r.stdout, /: target 2, 64 of 256 4x4 patches replaced \(patch-mean\) over 10 steps: 25\.0% of the image perturbed by the last step\n/);
    const s = JSON.parse(readFileSync(json, 'utf8'));
    assert.equal(s.target, 2);
    assert.equal(s.share, 0.25);
    assert.deepEqual([s.patch, s.patches, s.patchCount, s.steps], [4, 64, 256, 10]);
    assert.deepEqual(s.methods.map((m: { name: string }) => m.name), ['epsilon-plus-flat', 'gradcam', 'random']);
    for (const m of s.methods) {
      assert.equal(m.curve.length, 11);
      assert.equal(typeof m.aopc, 'number');
      assert.equal(typeof m.localisation, 'number');
    }
  });

  it('--area sets the share of the image perturbed', async () => {
    const r = await runCli(['evaluate', '--model', path.join(DIGITS, 'model.onnx'), '--input', path.join(DIGITS, 'inputs', 'sample0.npy'),
      '--methods', 'epsilon,random', '--area', '0.5', '--patch', '4']);
    assert.equal(r.code, 0, r.stderr);
    // 28x28 in 4x4 patches: 49; half of them, 25 (rounded), over 25 steps
    assert.match(r.stdout, /25 of 49 4x4 patches replaced \(patch-mean\) over 25 steps: 51\.0% of the image/);
    const bad = await runCli(['evaluate', '--model', path.join(DIGITS, 'model.onnx'), '--input', path.join(DIGITS, 'inputs', 'sample0.npy'), '--area', '1.5']);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--area: expected the share of the image to perturb, above 0 and at most 1/);
  });

  it('reports usage errors on one line with exit code 2', async () => {
    const r = await runCli(['evaluate', '--model', path.join(DIGITS, 'model.onnx'), '--input', path.join(DIGITS, 'inputs', 'sample0.npy'), '--steps', '0']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /^lrp-lens: --steps: expected an integer >= 1, got '0'\n$/);
    const m = await runCli(['evaluate', '--model', path.join(DIGITS, 'model.onnx'), '--input', path.join(DIGITS, 'inputs', 'sample0.npy'), '--methods', 'epsilon,bogus']);
    assert.equal(m.code, 2);
    assert.match(m.stderr, /--methods: unknown method 'bogus'/);
  });
});
