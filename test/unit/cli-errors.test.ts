// Acceptance 3: every CLI error case exits non-zero with ONE line on stderr that says what went
// wrong and where; plus one full successful run with --image, --labels, --out-heatmap, --out-json.
// Needs `npm run build` (dist/cli.js) first; `npm test` does that.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import sharp from 'sharp';
import { A, f32, i64 } from '../../src/engine/graph/graph';
import { CLI, IMAGES_DIR, REFERENCE_DIR, floatInput, makeTmpDir, node, runCli, writeNpyFile, writeTinyModel } from '../helpers';

const DIGITS = path.join(REFERENCE_DIR, 'digits-cnn', 'model.onnx');
const DIGITS_X = path.join(REFERENCE_DIR, 'digits-cnn', 'inputs', 'sample0.npy');
const SHAPES = path.join(REFERENCE_DIR, 'shapes-vgg', 'model.onnx');
const SHAPES_X = path.join(REFERENCE_DIR, 'shapes-vgg', 'inputs', 'sample0.npy');
const SHAPES_PNG = path.join(REFERENCE_DIR, 'shapes-vgg', 'inputs', 'sample0.png');

let tmp: { dir: string; cleanup: () => void };
before(() => {
  assert.ok(existsSync(CLI), `${CLI} is missing: run \`npm run build\` first`);
  tmp = makeTmpDir('lrp-lens-cli-');
});
after(() => tmp?.cleanup());

const inTmp = (name: string): string => path.join(tmp.dir, name);

function writeRules(name: string, rules: unknown): string {
  const file = inTmp(name);
  writeFileSync(file, typeof rules === 'string' ? rules : JSON.stringify(rules));
  return file;
}

/**
 * Run the CLI expecting failure: non-zero exit, nothing but one line on stderr, and that line
 * matching every pattern (what went wrong and where).
 */
async function expectError(args: string[], patterns: (RegExp | string)[]): Promise<string> {
  const r = await runCli(['explain', ...args]);
  const shown = `exit ${r.code}, stderr ${JSON.stringify(r.stderr)}`;
  assert.notEqual(r.code, 0, `expected a non-zero exit (${shown})`);
  assert.ok(r.stderr.endsWith('\n'), `stderr ends with a newline (${shown})`);
  const lines = r.stderr.split('\n').filter((l) => l !== '');
  assert.equal(lines.length, 1, `exactly one line on stderr (${shown})`);
  for (const p of patterns) {
    if (typeof p === 'string') assert.ok(lines[0].includes(p), `stderr names '${p}' (${shown})`);
    else assert.match(lines[0], p, `stderr matches ${p} (${shown})`);
  }
  return lines[0];
}

describe('CLI errors: one line on stderr saying what and where, non-zero exit', () => {
  describe('model file', { concurrency: 4 }, () => {
    it('missing', async () => {
      const missing = inTmp('no-such-model.onnx');
      await expectError(['--model', missing, '--input', DIGITS_X], [missing, /not found|no such file|does not exist/i]);
    });

    it('a folder instead of a file', async () => {
      await expectError(['--model', tmp.dir, '--input', DIGITS_X], [tmp.dir, /folder|directory/i]);
    });

    it('not an ONNX model: a PNG image', async () => {
      const png = path.join(IMAGES_DIR, 'chelsea.png');
      await expectError(['--model', png, '--input', DIGITS_X], [png, /not an ONNX model/i]);
    });

    it('not an ONNX model: a text file', async () => {
      const txt = writeRules('notes.onnx', 'hello, this is not a model\n');
      await expectError(['--model', txt, '--input', DIGITS_X], [txt, /not an ONNX model/i]);
    });

    it('not an ONNX model: an empty file', async () => {
      const empty = writeRules('empty.onnx', '');
      await expectError(['--model', empty, '--input', DIGITS_X], [empty, /not an ONNX model|empty|truncated/i]);
    });

    for (const frac of [0.5, 0.02]) {
      it(`truncated protobuf (first ${frac * 100}% of a real model)`, async () => {
        const bytes = readFileSync(DIGITS);
        const cut = inTmp(`truncated-${frac}.onnx`);
        writeFileSync(cut, bytes.subarray(0, Math.floor(bytes.length * frac)));
        await expectError(['--model', cut, '--input', DIGITS_X], [cut, /truncated|corrupt/i]);
      });
    }

    it('corrupt protobuf (garbage in the middle of a real model)', async () => {
      const bytes = Buffer.from(readFileSync(DIGITS));
      for (let i = 0; i < 64; i++) bytes[40 + i] = 0xff;
      const bad = inTmp('corrupt.onnx');
      writeFileSync(bad, bytes);
      await expectError(['--model', bad, '--input', DIGITS_X], [bad, /truncated|corrupt|not an ONNX/i]);
    });
  });

  describe('input', { concurrency: 4 }, () => {
    it('shape mismatch (an .npy of another model)', async () => {
      await expectError(['--model', DIGITS, '--input', SHAPES_X], [DIGITS, '[1, 3, 64, 64]', '[1, 1, 28, 28]', /does not match|mismatch/i]);
    });

    it('shape mismatch (no batch axis)', async () => {
      const x = inTmp('nobatch.npy');
      writeNpyFile(x, f32([1, 28, 28]));
      await expectError(['--model', DIGITS, '--input', x], [/\[1, 28, 28\]/, '[1, 1, 28, 28]']);
    });

    it('dtype mismatch (an int64 .npy)', async () => {
      const x = inTmp('int64.npy');
      writeNpyFile(x, i64([1, 1, 28, 28], new Array<number>(784).fill(1)));
      await expectError(['--model', DIGITS, '--input', x], [/float32/, /int64/]);
    });

    it('dtype mismatch (a uint8 .npy)', async () => {
      const x = inTmp('uint8.npy');
      writeNpyFile(x, { dtype: 'uint8', dims: [1, 1, 28, 28], data: new Uint8Array(784) });
      await expectError(['--model', DIGITS, '--input', x], [/float32/, /uint8/]);
    });

    it('input file missing', async () => {
      const x = inTmp('no-such-input.npy');
      await expectError(['--model', DIGITS, '--input', x], [x, /not found/i]);
    });

    it('input file not an .npy', async () => {
      const x = writeRules('not-npy.npy', 'plain text');
      await expectError(['--model', DIGITS, '--input', x], [x, /npy/i]);
    });

    for (const name of ['truncated.png', 'corrupt-crc.png', 'fake.png']) {
      it(`unreadable image: ${name}`, async () => {
        const img = path.join(IMAGES_DIR, name);
        await expectError(['--model', SHAPES, '--image', img], [img, /cannot|corrupt|truncated|not an image/i]);
      });
    }

    it('image file missing', async () => {
      const img = inTmp('no-such-image.png');
      await expectError(['--model', SHAPES, '--image', img], [img, /not found/i]);
    });
  });

  describe('unsupported op', { concurrency: 4 }, () => {
    for (const [op, attrs] of [
      ['Einsum', { equation: A.string('bi,bi->bi') }],
      ['Hardmax', {}],
    ] as const) {
      it(`${op}: the message names the node, its op type and the model file`, async () => {
        const file = writeTinyModel(tmp.dir, `unsupported-${op}`, {
          input: floatInput('input', [1, 4]),
          output: floatInput('logits', [1, 3]),
          nodes: [
            node('strange_node', op, op === 'Einsum' ? ['input', 'input'] : ['input'], ['u'], attrs),
            node('fc', 'Gemm', ['u', 'W'], ['logits']),
          ],
          initializers: { W: f32([4, 3], new Array<number>(12).fill(0.5)) },
        });
        const x = inTmp(`x-${op}.npy`);
        writeNpyFile(x, f32([1, 4], [1, 2, 3, 4]));
        await expectError(['--model', file, '--input', x], [file, 'strange_node', op, /not supported|unsupported/i]);
      });
    }

    it('LSTM: the message names the node, its op type and the model file', async () => {
      const file = writeTinyModel(tmp.dir, 'unsupported-lstm', {
        input: floatInput('input', [1, 1, 2]),
        output: floatInput('logits', [1, 1, 1, 3]),
        nodes: [node('my_lstm', 'LSTM', ['input', 'W', 'R'], ['logits'], { hidden_size: A.int(3) })],
        initializers: { W: f32([1, 12, 2], new Array<number>(24).fill(0.1)), R: f32([1, 12, 3], new Array<number>(36).fill(0.1)) },
      });
      const x = inTmp('x-lstm.npy');
      writeNpyFile(x, f32([1, 1, 2], [1, 2]));
      await expectError(['--model', file, '--input', x], [file, 'my_lstm', 'LSTM', /not supported|unsupported/i]);
    });
  });

  describe('target', { concurrency: 4 }, () => {
    it('out of range (10 on a 10-class model)', async () => {
      await expectError(['--model', DIGITS, '--input', DIGITS_X, '--target', '10'], [DIGITS, /target 10/, /out of range/i, /10 classes|0 to 9/]);
    });

    it('negative (--target=-1)', async () => {
      await expectError(['--model', DIGITS, '--input', DIGITS_X, '--target=-1'], ['--target', '-1']);
    });

    it('negative, written as two arguments (--target -1)', async () => {
      await expectError(['--model', DIGITS, '--input', DIGITS_X, '--target', '-1'], ['--target', '-1']);
    });

    it('not an integer', async () => {
      await expectError(['--model', DIGITS, '--input', DIGITS_X, '--target', 'cat'], ['--target', 'cat']);
    });
  });

  describe('rule config', { concurrency: 4 }, () => {
    it('unknown composite (in --rules)', async () => {
      const r = writeRules('unknown-composite.json', { composite: 'epsilon-delta' });
      await expectError(['--model', DIGITS, '--input', DIGITS_X, '--rules', r], [r, /unknown composite/i, 'epsilon-delta']);
    });

    it('unknown composite (--composite)', async () => {
      await expectError(['--model', DIGITS, '--input', DIGITS_X, '--composite', 'nope'], [/unknown composite/i, 'nope']);
    });

    it('unknown rule in overrides', async () => {
      const r = writeRules('unknown-rule.json', { composite: 'epsilon', overrides: [{ opType: 'Conv', rule: 'lrp-max' }] });
      await expectError(['--model', DIGITS, '--input', DIGITS_X, '--rules', r], [r, 'overrides[0]', /unknown rule/i, 'lrp-max']);
    });

    it('alpha-beta whose alpha and beta do not differ by 1', async () => {
      const r = writeRules('alpha-beta.json', { overrides: [{ opType: 'Conv', rule: 'alpha-beta', alpha: 2, beta: 2 }] });
      await expectError(['--model', DIGITS, '--input', DIGITS_X, '--rules', r], [r, /alpha/, /beta/, /= 1|by 1/]);
    });

    it('negative epsilon (in --rules)', async () => {
      const r = writeRules('neg-eps.json', { composite: 'epsilon', epsilon: -0.1 });
      await expectError(['--model', DIGITS, '--input', DIGITS_X, '--rules', r], [r, 'epsilon', /negative/i]);
    });

    it('negative epsilon in an override', async () => {
      const r = writeRules('neg-eps-override.json', { overrides: [{ layer: '/.*/', rule: 'epsilon', epsilon: -1 }] });
      await expectError(['--model', DIGITS, '--input', DIGITS_X, '--rules', r], [r, 'overrides[0]', 'epsilon', /negative/i]);
    });

    it('negative epsilon (--epsilon=-0.5)', async () => {
      await expectError(['--model', DIGITS, '--input', DIGITS_X, '--epsilon=-0.5'], ['epsilon', /negative/i]);
    });

    it('negative epsilon, written as two arguments (--epsilon -0.5)', async () => {
      await expectError(['--model', DIGITS, '--input', DIGITS_X, '--epsilon', '-0.5'], ['epsilon', /negative|-0\.5/i]);
    });

    it('unknown init', async () => {
      const r = writeRules('init.json', { init: 'zeros' });
      await expectError(['--model', DIGITS, '--input', DIGITS_X, '--rules', r], [r, 'init', 'zeros']);
    });

    it('rules file not valid JSON', async () => {
      const r = writeRules('broken.json', '{"composite": ');
      await expectError(['--model', DIGITS, '--input', DIGITS_X, '--rules', r], [r, /JSON/]);
    });

    it('rules file missing', async () => {
      const r = inTmp('no-such-rules.json');
      await expectError(['--model', DIGITS, '--input', DIGITS_X, '--rules', r], [r, /not found/i]);
    });
  });
});

describe('CLI success: --image with --labels, --out-heatmap and --out-json', () => {
  const classes = ['circle', 'square', 'triangle', 'cross'];

  async function explainImage(image: string, tag: string): Promise<{ json: Record<string, unknown>; heatmap: string; stdout: string }> {
    const labels = inTmp(`labels-${tag}.txt`);
    writeFileSync(labels, classes.join('\n') + '\n');
    const heatmap = inTmp(`heatmap-${tag}.png`);
    const jsonFile = inTmp(`summary-${tag}.json`);
    const relFile = inTmp(`relevance-${tag}.npy`);
    const r = await runCli([
      'explain',
      '--model', SHAPES,
      '--image', image,
      '--labels', labels,
      '--composite', 'epsilon-plus-flat',
      '--out-heatmap', heatmap,
      '--out-json', jsonFile,
      '--out-relevance', relFile,
    ]);
    assert.equal(r.code, 0, `exit ${r.code}: ${r.stderr}`);
    assert.equal(r.stderr, '', 'nothing on stderr');
    assert.ok(existsSync(relFile), 'relevance written');
    return { json: JSON.parse(readFileSync(jsonFile, 'utf8')) as Record<string, unknown>, heatmap, stdout: r.stdout };
  }

  it('the shapes fixture image: summary JSON fields, top-5 labels, heatmap at the original size', async () => {
    const manifest = JSON.parse(readFileSync(path.join(REFERENCE_DIR, 'manifest.json'), 'utf8')) as {
      models: Record<string, { samples: Record<string, { logits: number[]; argmax: number }> }>;
    };
    const sample = manifest.models['shapes-vgg'].samples.sample0;
    const { json, heatmap } = await explainImage(SHAPES_PNG, 'shapes');

    assert.equal(json.model, SHAPES);
    assert.equal(typeof json.backend, 'string');
    assert.ok((json.backend as string).length > 0, 'backend named');
    assert.equal(json.target, sample.argmax, 'target defaults to the top class');
    assert.equal(typeof json.logit, 'number');
    assert.ok(
      Math.abs((json.logit as number) - sample.logits[sample.argmax]) <= 1e-3 * Math.max(1, Math.abs(sample.logits[sample.argmax])),
      `logit ${json.logit} vs the reference ${sample.logits[sample.argmax]} (the .npy was made from this PNG)`,
    );

    const top5 = json.top5 as { index: number; label: string; score: number }[];
    assert.ok(Array.isArray(top5));
    assert.equal(top5.length, 4, 'four classes: top-5 lists all four');
    assert.equal(top5[0].index, sample.argmax);
    for (const t of top5) {
      assert.equal(t.label, classes[t.index], `label of class ${t.index}`);
      assert.ok(t.score >= 0 && t.score <= 1, `score ${t.score} in [0, 1]`);
    }
    for (let i = 1; i < top5.length; i++) assert.ok(top5[i - 1].score >= top5[i].score, 'top5 sorted by score');
    const scoreSum = top5.reduce((a, t) => a + t.score, 0);
    assert.ok(Math.abs(scoreSum - 1) < 1e-5, `softmax scores of all classes sum to 1 (got ${scoreSum})`);
    // softmax of the reference logits
    const m = Math.max(...sample.logits);
    const ex = sample.logits.map((v) => Math.exp(v - m));
    const s = ex.reduce((a, b) => a + b, 0);
    assert.ok(Math.abs(top5[0].score - ex[sample.argmax] / s) < 1e-3, 'top score is the softmax of the logits');

    assert.equal(typeof json.relevanceSum, 'number');
    assert.ok(Number.isFinite(json.relevanceSum as number));

    const layers = json.layers as Record<string, unknown>[];
    assert.ok(Array.isArray(layers) && layers.length > 0, 'layers listed');
    for (const l of layers) {
      assert.equal(typeof l.name, 'string');
      assert.equal(typeof l.opType, 'string');
      assert.equal(typeof l.rule, 'string');
      assert.ok(Array.isArray(l.outputShape) && (l.outputShape as unknown[]).every((d) => Number.isInteger(d)), `outputShape of ${l.name}`);
      for (const k of ['relevanceSum', 'positiveSum', 'negativeSum'])
        assert.ok(typeof l[k] === 'number' && Number.isFinite(l[k]), `${k} of ${l.name}`);
      assert.ok((l.positiveSum as number) >= 0 && (l.negativeSum as number) <= 0, `signs of the sums of ${l.name}`);
      assert.ok(
        Math.abs((l.positiveSum as number) + (l.negativeSum as number) - (l.relevanceSum as number)) <=
          1e-4 * Math.max(1, Math.abs(l.positiveSum as number)),
        `positive + negative = total for ${l.name}`,
      );
      assert.ok(!('map' in l), 'no relevance maps in the JSON summary');
    }
    const convs = layers.filter((l) => l.opType === 'Conv');
    const gemms = layers.filter((l) => l.opType === 'Gemm');
    assert.equal(convs.length, 4, 'four Conv layers reported');
    assert.equal(gemms.length, 2, 'two Gemm layers reported');
    // layers run from the output to the input: the last Conv listed is the first of the network
    assert.equal(convs[convs.length - 1].rule, 'flat', 'epsilon-plus-flat: flat on the first conv');
    for (const c of convs.slice(0, -1)) assert.equal(c.rule, 'zplus');
    for (const g of gemms) assert.match(g.rule as string, /^epsilon/);
    assert.deepEqual(gemms[0].outputShape, [1, 4], 'the head outputs the 4 logits');

    const timings = json.timings as Record<string, unknown>;
    for (const k of ['loadMs', 'forwardMs', 'lrpMs'])
      assert.ok(typeof timings[k] === 'number' && (timings[k] as number) >= 0, `timings.${k}`);

    const meta = await sharp(heatmap).metadata();
    const orig = await sharp(SHAPES_PNG).metadata();
    assert.equal(meta.format, 'png');
    assert.equal(meta.width, orig.width);
    assert.equal(meta.height, orig.height);
  });

  it('a larger photo (451x300): the heatmap keeps the original size, not the model input size', async () => {
    const photo = path.join(IMAGES_DIR, 'chelsea.png');
    const { json, heatmap } = await explainImage(photo, 'chelsea');
    assert.ok(Number.isInteger(json.target) && (json.target as number) >= 0 && (json.target as number) < 4);
    const meta = await sharp(heatmap).metadata();
    assert.equal(meta.format, 'png');
    assert.equal(meta.width, 451);
    assert.equal(meta.height, 300);
  });
});
