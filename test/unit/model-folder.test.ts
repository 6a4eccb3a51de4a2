// Model folders from the ecosystem: Hugging Face (Optimum layout), timm and ONNX metadata give
// preprocessing and labels (test/fixtures/model-folders, made by make_folders.py from a tiny
// torchvision-style CNN); the order against the user's own settings and files; the readers'
// rules; geometry planning and placing a map back on the photo. The CLI part needs `npm run build`.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { FIXTURES_DIR, IMAGES_DIR, makeTmpDir, mapLimit, runCli } from '../helpers';
import { onnxMetadata, parseNameList, readModelFolder, specFromHfProcessor, specFromTimm } from '../../src/engine/io/model-folder';
import { INTERPOLATIONS, RESIZE_MODES, applyGeometry, planGeometry, photoRegion, roundHalfEven } from '../../src/engine/io/preprocess';
import { SPEC_PRESETS, optionsFromSpec } from '../../src/engine/io/preprocessing-spec';
import { dimOutside, photoToInput, placeMap } from '../../src/engine/io/placement';
import { resolveModelConfig } from '../../src/explain/model-config';
import { parsePreprocessing } from '../../src/host/settings';

const FOLDERS = path.join(FIXTURES_DIR, 'model-folders');
const expected = JSON.parse(readFileSync(path.join(FOLDERS, 'expected.json'), 'utf8')) as {
  labels: string[];
  folders: Record<string, { model: string; photos: Record<string, { logits: number[]; top: number }> }>;
};

const SOURCES: Record<string, { preprocessing: RegExp; labels: RegExp }> = {
  'hf-convnext': { preprocessing: /^preprocessor_config\.json \(Hugging Face ConvNextImageProcessor\)$/, labels: /^config\.json id2label/ },
  timm: { preprocessing: /^config\.json pretrained_cfg \(timm\)$/, labels: /^config\.json label_names \(timm\)$/ },
  'onnx-metadata': { preprocessing: /^model\.onnx metadata \(Image\.\*\)$/, labels: /^model\.onnx metadata 'names'$/ },
};

test('CLI: each model folder explains with its own labels and preprocessing, logits as PyTorch computes them', { timeout: 180_000 }, async (t) => {
  const tmp = makeTmpDir('lrp-folders-');
  try {
    const jobs = Object.entries(expected.folders).flatMap(([name, f]) => Object.keys(f.photos).map((photo) => ({ name, f, photo })));
    const runs = await mapLimit(jobs, 2, async ({ name, f, photo }) => {
      const json = path.join(tmp.dir, `${name}-${photo}.json`);
      const r = await runCli(['explain', '--model', path.join(FOLDERS, f.model), '--image', path.join(IMAGES_DIR, photo), '--out-json', json]);
      assert.equal(r.code, 0, r.stderr);
      return { name, f, photo, stdout: r.stdout, summary: JSON.parse(readFileSync(json, 'utf8')) };
    });
    for (const { name, f, photo, stdout, summary } of runs) {
      const want = f.photos[photo];
      t.diagnostic(`${name} ${photo}: ${summary.label}; ${summary.preprocessing.source}: ${summary.preprocessing.description}; labels ${summary.labels.source}`);
      assert.equal(summary.target, want.top, `${name} ${photo}: top class`);
      assert.equal(summary.label, expected.labels[want.top], `${name} ${photo}: label from the folder`);
      assert.match(stdout, new RegExp(`\\(${expected.labels[want.top]}\\)`));
      assert.match(summary.preprocessing.source, SOURCES[name].preprocessing);
      assert.match(summary.labels.source, SOURCES[name].labels);
      const top5 = summary.top5 as { index: number; label: string }[];
      for (const p of top5) assert.equal(p.label, expected.labels[p.index]);
      // same input as the reference preprocessing gives => the same logit
      assert.ok(Math.abs(summary.logit - want.logits[want.top]) < 1e-4, `${name} ${photo}: logit ${summary.logit} vs ${want.logits[want.top]}`);
    }
  } finally {
    tmp.cleanup();
  }
});

test("the user's own preprocessing and labels come first; then preprocessing.json / labels.txt; then the folder", async () => {
  const tmp = makeTmpDir('lrp-order-');
  try {
    cpSync(path.join(FOLDERS, 'hf-convnext'), path.join(tmp.dir, 'hf'), { recursive: true });
    const model = path.join(tmp.dir, 'hf', 'onnx', 'model.onnx');
    let c = await resolveModelConfig({ modelPath: model });
    assert.match(c.preprocessingSource, /preprocessor_config\.json/);
    assert.equal(c.preprocessing.interpolation, 'bicubic');
    assert.deepEqual(c.labels, expected.labels);

    c = await resolveModelConfig({ modelPath: model, user: { spec: parsePreprocessing({ preset: 'torchvision' }), source: 'setting lrpLens.preprocessing' } });
    assert.equal(c.preprocessingSource, 'setting lrpLens.preprocessing');
    assert.equal(c.preprocessing.preset, 'torchvision');
    assert.match(c.labelsSource, /id2label/, 'labels still from the folder');

    writeFileSync(path.join(tmp.dir, 'hf', 'onnx', 'preprocessing.json'), '{"preset": "unit", "resize": "pad"}');
    writeFileSync(path.join(tmp.dir, 'hf', 'onnx', 'labels.txt'), 'a\nb\nc\nd\n');
    c = await resolveModelConfig({ modelPath: model });
    assert.equal(c.preprocessingSource, 'preprocessing.json');
    assert.equal(c.preprocessing.resize, 'pad');
    assert.equal(c.labelsSource, 'labels.txt');
    assert.deepEqual(c.labels, ['a', 'b', 'c', 'd']);

    const explicit = path.join(tmp.dir, 'mine.json');
    writeFileSync(explicit, '["w", "x", "y", "z"]');
    c = await resolveModelConfig({ modelPath: model, labelsPath: explicit });
    assert.equal(c.labelsSource, explicit);

    // a broken folder file is a warning, and the next source applies
    writeFileSync(path.join(tmp.dir, 'hf', 'preprocessor_config.json'), '{"resample": 9, "size": {"shortest_edge": 224}}');
    const f = await readModelFolder(model);
    assert.equal(f.preprocessing, undefined);
    assert.match(f.warnings.join('\n'), /preprocessor_config\.json: 'resample' should be a PIL filter code/);

    // nothing anywhere: the defaults, named as such
    const none = await resolveModelConfig({ modelPath: path.join(tmp.dir, 'nothing', 'model.onnx') });
    assert.equal(none.preprocessingSource, 'default');
    assert.equal(none.labelsSource, 'class indices');
  } finally {
    tmp.cleanup();
  }
});

test('Hugging Face processors: ConvNeXt at 384 stretches; shortest_edge + crop_size; do_rescale / do_normalize off', () => {
  const big = specFromHfProcessor({ image_processor_type: 'ConvNextImageProcessor', size: { shortest_edge: 384 }, resample: 3 }, 'p.json').spec;
  assert.equal(big.resize, 'stretch');
  assert.equal(big.resizeTo, 384);
  assert.deepEqual(big.size, { width: 384, height: 384 });
  const small = specFromHfProcessor({ image_processor_type: 'ConvNextImageProcessor', size: { shortest_edge: 224 }, crop_pct: 0.9 }, 'p.json').spec;
  assert.equal(small.resize, 'shorter-side');
  assert.equal(small.resizeTo, 248); // int(224 / 0.9)
  assert.equal(small.interpolation, 'bilinear'); // PIL code 2 when not given
  const beit = specFromHfProcessor({ size: { height: 256, width: 256 }, do_center_crop: true, crop_size: { height: 224, width: 224 }, do_normalize: false, do_rescale: false }, 'p.json').spec;
  assert.deepEqual(beit.resizeTo, [256, 256]);
  assert.deepEqual(beit.size, { width: 224, height: 224 });
  assert.equal(beit.scale, 1);
  assert.deepEqual([beit.mean, beit.std], [[0], [1]]);
  assert.equal(beit.cropRounding, 'floor');
  assert.throws(() => specFromHfProcessor({ size: { longest_edge: 3 } }, 'p.json'), /p\.json: unsupported 'size'/);
});

test('timm pretrained_cfg: center, squash, border (fill = round(255 * mean)); bad values name the file', () => {
  assert.equal(specFromTimm({ crop_mode: 'squash', input_size: [3, 160, 192] }, 'c.json').resize, 'stretch');
  const border = specFromTimm({ crop_mode: 'border', mean: [0.5, 0.25, 0], interpolation: 'bicubic' }, 'c.json');
  assert.equal(border.resize, 'pad');
  assert.deepEqual(border.fill, [128, 64, 0]);
  const center = specFromTimm({ input_size: [3, 160, 192] }, 'c.json');
  assert.deepEqual([center.resize, center.cropPct, center.interpolation, center.size], ['shorter-side', 0.875, 'bilinear', { width: 192, height: 160 }]);
  assert.throws(() => specFromTimm({ crop_mode: 'zoom' }, 'c.json'), /c\.json: pretrained_cfg\.crop_mode "zoom"/);
  assert.throws(() => specFromTimm({ interpolation: 'area' }, 'c.json'), /c\.json: pretrained_cfg\.interpolation "area"/);
});

test('ONNX metadata_props are read without decoding the model; class name lists in several spellings', () => {
  const meta = onnxMetadata(new Uint8Array(readFileSync(path.join(FOLDERS, 'onnx-metadata', 'model.onnx'))));
  assert.equal(meta['Image.NominalPixelRange'], 'Normalized_0_1');
  assert.equal(meta['Image.BitmapPixelFormat'], 'Rgb8');
  assert.deepEqual(parseNameList(meta.names), expected.labels);
  assert.deepEqual(parseNameList('["a", "b"]'), ['a', 'b']);
  assert.deepEqual(parseNameList('{"1": "b", "0": "a"}'), ['a', 'b']);
  assert.deepEqual(parseNameList("{0: 'it\\'s', 2: \"c\"}"), ["it's", 'class 1', 'c']);
  assert.deepEqual(parseNameList('a\nb\n'), ['a', 'b']);
  assert.deepEqual(parseNameList('a, b'), ['a', 'b']);
  assert.equal(parseNameList('yolov8n'), undefined);
  assert.deepEqual(onnxMetadata(new Uint8Array(readFileSync(path.join(FOLDERS, 'timm', 'model.onnx')))), {});
});

test('geometry: sizes, crop offsets (round half to even vs floor), padding, the photo region', () => {
  assert.deepEqual([0.5, 1.5, 2.5, -1.5, 2.4].map(roundHalfEven), [0, 2, 2, -2, 2]);
  // torchvision: Resize(256) of 451x300 -> 384x256 (int(256 * 451 / 300) = 384), crop offsets 80, 16
  const p = planGeometry(451, 300, 224, 224, { resize: 'shorter-side', resizeTo: 256, interpolation: 'bilinear' });
  assert.deepEqual(p, { resizedWidth: 384, resizedHeight: 256, left: 80, top: 16, width: 224, height: 224 });
  // odd leftovers: 225 - 224 = 1 -> round(0.5) = 0 (torchvision), 3 -> round(1.5) = 2; floor gives 0 and 1
  const odd = (r: 'round' | 'floor', w: number) => planGeometry(w, 224, 224, 224, { resize: 'stretch', resizeTo: [w, 224], interpolation: 'bilinear', cropRounding: r }).left;
  assert.deepEqual([odd('round', 225), odd('round', 227), odd('floor', 225), odd('floor', 227)], [0, 2, 0, 1]);
  // pad: the longer side fits, padded on both sides ((224 - 149) // 2 = 37 before)
  const pad = planGeometry(451, 300, 224, 224, { resize: 'pad', interpolation: 'bilinear' });
  assert.deepEqual(pad, { resizedWidth: 224, resizedHeight: 149, left: 0, top: -37, width: 224, height: 224 });
  const region = photoRegion(451, 300, pad);
  assert.ok(Math.abs(region.y + 37 * (300 / 149)) < 1e-9 && region.height > 300, 'the region reaches outside the photo');
  // the padded rows hold the fill colour, the photo is in between
  const img = { width: 451, height: 300, rgb: new Uint8Array(451 * 300 * 3).fill(200) };
  const out = applyGeometry(img, 224, 224, { resize: 'pad', interpolation: 'bicubic', fill: [1, 2, 3] });
  assert.deepEqual([...out.image.rgb.subarray(0, 3)], [1, 2, 3]);
  assert.deepEqual([...out.image.rgb.subarray((112 * 224 + 5) * 3, (112 * 224 + 5) * 3 + 3)], [200, 200, 200]);
  assert.deepEqual([...out.image.rgb.subarray((223 * 224 + 223) * 3)], [1, 2, 3]);
  // the pad fill defaults to the colour that normalises to 0
  const opts = optionsFromSpec({ preset: 'imagenet', resize: 'pad' }, { width: 224, height: 224, channels: 3, layout: 'NCHW' });
  assert.deepEqual(opts.geometry?.fill, [124, 116, 104]);
  assert.throws(() => planGeometry(10, 10, 5, 5, { resize: 'stretch', cropPct: 0, interpolation: 'box' }), /cropPct must be in \(0, 1\]/);
});

test('placing a map on the photo: inside the region sampled from the map, outside 0 and dimmed', () => {
  const region = { x: 100, y: 0, width: 200, height: 200 };
  assert.deepEqual(photoToInput(100, 0, region, 2, 2), { x: -0.5, y: -0.5 });
  assert.equal(photoToInput(99.9, 10, region, 2, 2), undefined);
  assert.equal(photoToInput(300, 10, region, 2, 2), undefined);
  const map = { width: 2, height: 2, data: [1, 2, 3, 4] };
  const placed = placeMap(map, region, 400, 200, 4, 2); // photo 400x200 drawn at 4x2: columns 1 and 2 are inside
  assert.deepEqual([...placed], [0, 1, 2, 0, 0, 3, 4, 0]);
  const rgb = new Uint8Array(4 * 2 * 3).fill(100);
  const dimmed = dimOutside(rgb, 4, 2, region, 400, 200);
  assert.equal(dimmed[0], 40);
  assert.equal(dimmed[3], 100);
  assert.equal(dimmed[9], 40);
});

test('the preprocessing setting takes resize, resizeTo, cropPct, interpolation and the torchvision preset; bad values name the key', () => {
  assert.deepEqual(parsePreprocessing({ preset: 'torchvision', resize: 'pad', resizeTo: [256, 240], cropPct: 0.9, interpolation: 'bicubic' }), {
    preset: 'torchvision',
    channelOrder: 'rgb',
    resize: 'pad',
    resizeTo: [256, 240],
    cropPct: 0.9,
    interpolation: 'bicubic',
  });
  assert.equal(parsePreprocessing({ resizeTo: 256 }).resizeTo, 256);
  assert.deepEqual(parsePreprocessing({ resizeTo: '320x240' }).resizeTo, [320, 240]);
  assert.throws(() => parsePreprocessing({ resize: 'crop' }), /lrpLens\.preprocessing\.resize': must be one of stretch, shorter-side, pad/);
  assert.throws(() => parsePreprocessing({ cropPct: 0 }), /lrpLens\.preprocessing\.cropPct': must be a number in \(0, 1\]/);
  assert.throws(() => parsePreprocessing({ cropPct: 1.2 }), /cropPct/);
  assert.throws(() => parsePreprocessing({ interpolation: 'area' }), /lrpLens\.preprocessing\.interpolation': must be one of bilinear, bicubic/);
  assert.throws(() => parsePreprocessing({ resizeTo: 0 }), /lrpLens\.preprocessing\.resizeTo'/);
  // the torchvision preset: imagenet values, shorter side to input / 0.875, bilinear, round-half-even crop
  const o = optionsFromSpec(parsePreprocessing({ preset: 'torchvision' }), { width: 224, height: 224, channels: 3, layout: 'NCHW' });
  assert.equal(o.preset, 'imagenet');
  assert.deepEqual(o.geometry, { resize: 'shorter-side', cropPct: 0.875, interpolation: 'bilinear', cropRounding: 'round' });
});

test('CLI: the preprocessing flags are checked before the model loads (exit 2, the flag named)', { timeout: 60_000 }, async () => {
  const model = path.join(FOLDERS, 'timm', 'model.onnx');
  const image = path.join(IMAGES_DIR, 'chelsea.png');
  for (const [flags, re] of [
    [['--resize', 'diagonal'], /--resize: unknown mode 'diagonal' \(stretch, shorter-side, pad\)/],
    [['--crop-pct', '1.5'], /--crop-pct: expected a number in \(0, 1\], got '1\.5'/],
    [['--resize-to', '12y'], /--resize-to: expected N or WxH, got '12y'/],
    [['--interpolation', 'area'], /--interpolation: unknown 'area'/],
    [['--preset', 'caffe'], /--preset: unknown preset 'caffe' \(imagenet, unit, symmetric, raw, torchvision\)/],
    [['--preprocessing', '/nonexistent/p.json'], /\/nonexistent\/p\.json: preprocessing file not found/],
  ] as const) {
    const r = await runCli(['explain', '--model', model, '--image', image, ...flags]);
    assert.equal(r.code, 2, `${flags.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, re);
  }
});

test('package.json settings schema lists the presets, resize modes and interpolations the code accepts', () => {
  const pkg = JSON.parse(readFileSync(path.join(FIXTURES_DIR, '..', '..', 'package.json'), 'utf8'));
  const props = pkg.contributes.configuration.properties['lrpLens.preprocessing'].properties;
  assert.deepEqual(props.preset.enum, [...SPEC_PRESETS]);
  assert.equal(props.preset.enumDescriptions.length, SPEC_PRESETS.length);
  assert.deepEqual(props.resize.enum, [...RESIZE_MODES]);
  assert.deepEqual(props.interpolation.enum, [...INTERPOLATIONS]);
  for (const k of ['resizeTo', 'cropPct']) assert.ok(props[k], k);
});
