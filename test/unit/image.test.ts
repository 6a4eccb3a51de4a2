import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeImage, inputBoundsFor, loadImageTensor, preprocess, type RgbImage, type PreprocessOptions } from '../../src/engine/io/image';
import { IMAGES_DIR } from '../helpers';

const IMG = IMAGES_DIR;

const SIZES: Record<string, [number, number]> = {
  'chelsea.png': [451, 300],
  'astronaut.png': [512, 512],
  'coffee.png': [600, 400],
  'grace_hopper.jpg': [512, 600],
  'chelsea-gray.png': [451, 300],
  'chelsea-rgba.png': [451, 300],
  'coffee-16bit.png': [600, 400],
  'tiny-1x1.png': [1, 1],
  'huge-6000x4000.jpg': [6000, 4000],
  'chelsea-exif-orientation6.jpg': [451, 300],
};

for (const [file, [w, h]] of Object.entries(SIZES)) {
  test(`decodes ${file} to ${w}x${h} RGB`, async () => {
    const img = await decodeImage(`${IMG}/${file}`);
    assert.equal(img.width, w);
    assert.equal(img.height, h);
    assert.equal(img.rgb.length, w * h * 3);
  });
}

const BROKEN: Record<string, RegExp> = {
  'truncated.png': /corrupt or truncated/,
  'corrupt-crc.png': /corrupt or truncated/,
  'fake.png': /not an image/,
  'does-not-exist.png': /file not found/,
};

for (const [file, reason] of Object.entries(BROKEN)) {
  test(`rejects ${file} with an error naming the file`, async () => {
    const path = `${IMG}/${file}`;
    await assert.rejects(decodeImage(path), (err: Error) => {
      assert.ok(err.message.startsWith(path), err.message);
      assert.match(err.message, reason);
      return true;
    });
  });
}

const px = (img: RgbImage, x: number, y: number): number[] => Array.from(img.rgb.subarray((y * img.width + x) * 3, (y * img.width + x) * 3 + 3));

test('tiny-1x1.png is the pixel (200, 30, 30)', async () => {
  assert.deepEqual(px(await decodeImage(`${IMG}/tiny-1x1.png`), 0, 0), [200, 30, 30]);
});

test('grey PNG becomes three equal channels', async () => {
  const img = await decodeImage(`${IMG}/chelsea-gray.png`);
  for (let p = 0; p < img.width * img.height; p += 97) {
    assert.equal(img.rgb[p * 3], img.rgb[p * 3 + 1]);
    assert.equal(img.rgb[p * 3], img.rgb[p * 3 + 2]);
  }
});

test('RGBA PNG is composited over white: transparent corners are white', async () => {
  const img = await decodeImage(`${IMG}/chelsea-rgba.png`);
  for (const [x, y] of [[0, 0], [img.width - 1, 0], [0, img.height - 1], [img.width - 1, img.height - 1]]) {
    assert.deepEqual(px(img, x, y), [255, 255, 255]);
  }
  const plain = await decodeImage(`${IMG}/chelsea.png`);
  const cx = Math.floor(img.width / 2);
  const cy = Math.floor(img.height / 2);
  assert.deepEqual(px(img, cx, cy), px(plain, cx, cy), 'opaque centre unchanged');
});

test('16-bit PNG reduces to exactly the 8-bit coffee', async () => {
  const a = await decodeImage(`${IMG}/coffee-16bit.png`);
  const b = await decodeImage(`${IMG}/coffee.png`);
  assert.ok(Buffer.from(a.rgb).equals(Buffer.from(b.rgb)));
});

test('EXIF orientation 6 comes out upright, close to chelsea.png', async () => {
  const a = await decodeImage(`${IMG}/chelsea-exif-orientation6.jpg`);
  const b = await decodeImage(`${IMG}/chelsea.png`);
  assert.equal(a.width, 451);
  assert.equal(a.height, 300);
  let sum = 0;
  for (let i = 0; i < a.rgb.length; i++) sum += Math.abs(a.rgb[i] - b.rgb[i]);
  assert.ok(sum / a.rgb.length < 8, `mean abs difference ${sum / a.rgb.length}`);
});

// A 2x1 image: pixel 0 = (0, 128, 255), pixel 1 = (255, 0, 10).
const TWO: RgbImage = { rgb: new Uint8Array([0, 128, 255, 255, 0, 10]), width: 2, height: 1 };
const base: PreprocessOptions = { width: 2, height: 1, channels: 3, layout: 'NCHW' };

const close = (actual: ArrayLike<number>, expected: number[], eps = 1e-5): void => {
  assert.equal(actual.length, expected.length);
  for (let i = 0; i < expected.length; i++) assert.ok(Math.abs(actual[i] - expected[i]) < eps, `[${i}] ${actual[i]} vs ${expected[i]}`);
};

test('presets: unit, symmetric, raw, imagenet (NCHW)', () => {
  const data = (o: Partial<PreprocessOptions>): Float32Array => preprocess(TWO, { ...base, ...o }).data as Float32Array;
  close(data({ preset: 'unit' }), [0, 1, 128 / 255, 0, 1, 10 / 255]);
  close(data({ preset: 'symmetric' }), [-1, 1, 128 / 127.5 - 1, -1, 1, 10 / 127.5 - 1]);
  close(data({ preset: 'raw' }), [0, 255, 128, 0, 255, 10]);
  close(data({ preset: 'imagenet' }), [
    (0 - 0.485) / 0.229, (1 - 0.485) / 0.229,
    (128 / 255 - 0.456) / 0.224, (0 - 0.456) / 0.224,
    (1 - 0.406) / 0.225, (10 / 255 - 0.406) / 0.225,
  ]);
});

test('explicit mean/std/scale override the preset', () => {
  const t = preprocess(TWO, { ...base, preset: 'imagenet', scale: 1, mean: [100, 0, 0], std: [2] });
  close(t.data as Float32Array, [-50, 77.5, 64, 0, 127.5, 5]);
});

test('NHWC layout and bgr', () => {
  const nhwc = preprocess(TWO, { ...base, layout: 'NHWC', preset: 'raw' });
  assert.deepEqual(nhwc.dims, [1, 1, 2, 3]);
  close(nhwc.data as Float32Array, [0, 128, 255, 255, 0, 10]);
  const bgr = preprocess(TWO, { ...base, layout: 'NHWC', preset: 'raw', bgr: true });
  close(bgr.data as Float32Array, [255, 128, 0, 10, 0, 255]);
  const nchw = preprocess(TWO, { ...base, preset: 'raw' });
  assert.deepEqual(nchw.dims, [1, 3, 1, 2]);
  assert.equal(nchw.dtype, 'float32');
});

test('bgr with imagenet preset keeps mean/std with their colours', () => {
  const t = preprocess(TWO, { ...base, layout: 'NHWC', preset: 'imagenet', bgr: true });
  close(Array.from(t.data as Float32Array).slice(0, 3), [(1 - 0.406) / 0.225, (128 / 255 - 0.456) / 0.224, (0 - 0.485) / 0.229]);
});

test('channels 1 uses ITU-R 601 luminance', () => {
  const t = preprocess(TWO, { ...base, channels: 1, preset: 'raw' });
  assert.deepEqual(t.dims, [1, 1, 1, 2]);
  close(t.data as Float32Array, [0.587 * 128 + 0.114 * 255, 0.299 * 255 + 0.114 * 10], 1e-3);
});

test('preprocess resizes when the image is not the requested size', () => {
  const t = preprocess(TWO, { width: 4, height: 2, channels: 3, layout: 'NCHW', preset: 'raw' });
  assert.deepEqual(t.dims, [1, 3, 2, 4]);
  const d = t.data as Float32Array;
  assert.equal(d[0], 0); // left edge red
  assert.equal(d[3], 255); // right edge red
});

test('inputBoundsFor gives what 0 and 255 map to', () => {
  const b = inputBoundsFor({ ...base, preset: 'imagenet' });
  close(b.low, [-0.485 / 0.229, -0.456 / 0.224, -0.406 / 0.225]);
  close(b.high, [(1 - 0.485) / 0.229, (1 - 0.456) / 0.224, (1 - 0.406) / 0.225]);
  assert.deepEqual(inputBoundsFor({ ...base, preset: 'unit' }), { low: [0, 0, 0], high: [1, 1, 1] });
  assert.deepEqual(inputBoundsFor({ ...base, preset: 'symmetric', channels: 1 }), { low: [-1], high: [1] });
  assert.deepEqual(inputBoundsFor({ ...base, preset: 'raw' }).high, [255, 255, 255]);
});

test('bad mean length is an error', () => {
  assert.throws(() => preprocess(TWO, { ...base, mean: [1, 2] }), /mean has 2 values/);
});

test('loadImageTensor resizes in sharp and returns the original', async () => {
  const { tensor, original } = await loadImageTensor(`${IMG}/chelsea.png`, { width: 224, height: 224, channels: 3, layout: 'NHWC', preset: 'imagenet' });
  assert.deepEqual(tensor.dims, [1, 224, 224, 3]);
  assert.equal(original.width, 451);
  assert.equal(original.height, 300);
  const d = tensor.data as Float32Array;
  assert.ok(d.every(Number.isFinite));
  const bounds = inputBoundsFor({ width: 224, height: 224, channels: 3, layout: 'NHWC', preset: 'imagenet' });
  for (let i = 0; i < d.length; i++) {
    assert.ok(d[i] >= bounds.low[i % 3] - 1e-5 && d[i] <= bounds.high[i % 3] + 1e-5);
  }
});

test('decodes WebP, TIFF and GIF (first frame of an animation); rejects a truncated JPEG', async () => {
  const { mkdtemp, writeFile, rm } = await import('node:fs/promises');
  const { tmpdir } = await import('node:os');
  const { join } = await import('node:path');
  const sharp = (await import('sharp')).default;
  const dir = await mkdtemp(join(tmpdir(), 'lrp-image-'));
  try {
    const src = sharp(`${IMG}/chelsea.png`);
    for (const [ext, bytes] of [
      ['webp', await src.clone().webp().toBuffer()],
      ['tiff', await src.clone().tiff().toBuffer()],
      ['gif', await src.clone().gif().toBuffer()],
    ] as const) {
      await writeFile(join(dir, `c.${ext}`), bytes);
      const img = await decodeImage(join(dir, `c.${ext}`));
      assert.deepEqual([img.width, img.height], [451, 300], ext);
    }
    // two 4x4 frames stacked vertically: red, then blue
    const frames = new Uint8Array(4 * 8 * 3);
    for (let p = 0; p < 32; p++) frames.set(p < 16 ? [255, 0, 0] : [0, 0, 255], p * 3);
    const gif = await sharp(frames, { raw: { width: 4, height: 8, channels: 3, pageHeight: 4 } }).gif().toBuffer();
    await writeFile(join(dir, 'anim.gif'), gif);
    const anim = await decodeImage(join(dir, 'anim.gif'));
    assert.deepEqual([anim.width, anim.height], [4, 4]);
    assert.ok(anim.rgb[0] > 200 && anim.rgb[2] < 50, 'first frame is red');
    const jpeg = await src.clone().jpeg().toBuffer();
    const cut = join(dir, 'cut.jpg');
    await writeFile(cut, jpeg.subarray(0, Math.floor(jpeg.length / 2)));
    await assert.rejects(decodeImage(cut), (err: Error) => err.message.startsWith(cut));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
