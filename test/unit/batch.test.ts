// `lrp-lens explain --images DIR --out DIR`: one heatmap per image, summary.csv, failed images
// reported in their row and in the exit code. Also the pure helpers of src/engine/batch.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import sharp from 'sharp';
import { BatchProgress, batchCsv, compareNames, csvField, heatmapNames, listImages } from '../../src/explain/batch';
import { IMAGES_DIR, REFERENCE_DIR, makeTmpDir, runCli } from '../helpers';

const VGG = path.join(REFERENCE_DIR, 'shapes-vgg');
const LABELS = ['circle', 'square', 'triangle', 'cross'];

/** Minimal CSV parser (quoted fields with "" escapes), enough for summary.csv. */
function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = '';
  let quoted = false;
  const endField = (): void => {
    row.push(field);
    field = '';
  };
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') {
        field += '"';
        i++;
      } else if (c === '"') quoted = false;
      else field += c;
    } else if (c === '"') quoted = true;
    else if (c === ',') endField();
    else if (c === '\n') {
      endField();
      rows.push(row);
      row = [];
    } else field += c;
  }
  if (field || row.length) {
    endField();
    rows.push(row);
  }
  return rows;
}

test('explain --images: heatmaps, summary.csv, a broken image reported and a non-zero exit', { timeout: 120_000 }, async () => {
  const { dir, cleanup } = makeTmpDir();
  try {
    const images = path.join(dir, 'images');
    const out = path.join(dir, 'out');
    mkdirSync(images);
    copyFileSync(path.join(VGG, 'inputs', 'sample0.png'), path.join(images, 'b-shape.png'));
    // the same picture as a JPEG with an upper-case extension, and a folder of other files
    await sharp(path.join(VGG, 'inputs', 'sample0.png')).jpeg({ quality: 95 }).toFile(path.join(images, 'a-shape.JPG'));
    copyFileSync(path.join(IMAGES_DIR, 'truncated.png'), path.join(images, 'c-broken.png'));
    writeFileSync(path.join(images, 'notes.txt'), 'not an image\n');
    const labels = path.join(dir, 'labels.txt');
    writeFileSync(labels, LABELS.join('\n') + '\n');

    const r = await runCli(['explain', '--model', path.join(VGG, 'model.onnx'), '--images', images, '--out', out, '--labels', labels]);
    assert.equal(r.code, 1, `exit code 1 when an image failed; stderr: ${r.stderr}`);
    assert.match(r.stderr, /lrp-lens: 1 of 3 images failed/);
    assert.match(r.stderr, /c-broken\.png: error: .*cannot decode image/, 'the broken image is named on stderr');
    assert.match(r.stderr, /\[1\/3\] a-shape\.JPG: /, 'plain progress lines when stderr is not a TTY');
    assert.match(r.stdout, /2 of 3 images explained/);

    const rows = parseCsv(readFileSync(path.join(out, 'summary.csv'), 'utf8'));
    assert.deepEqual(rows[0], ['file', 'label', 'score', 'target', 'relevance_sum', 'time_ms', 'heatmap', 'error']);
    assert.equal(rows.length, 4, 'a header and one row per image');
    assert.deepEqual(rows.slice(1).map((r) => r[0]), ['a-shape.JPG', 'b-shape.png', 'c-broken.png'], 'sorted, any case of extension');
    for (const row of rows.slice(1, 3)) {
      const [, label, score, target, relSum, ms, heatmap, error] = row;
      assert.equal(label, 'triangle');
      assert.ok(Number(score) > 0.5 && Number(score) <= 1, `score ${score}`);
      assert.equal(target, '2');
      assert.ok(Number.isFinite(Number(relSum)) && Number(relSum) !== 0, `relevance sum ${relSum}`);
      assert.ok(Number(ms) > 0);
      assert.equal(error, '');
      const png = path.join(out, heatmap);
      assert.ok(existsSync(png), `${heatmap} written`);
      const { data, info } = await sharp(png).raw().toBuffer({ resolveWithObject: true });
      assert.equal(info.width, 64, 'the heatmap has the photo size');
      const colours = new Set<number>();
      for (let i = 0; i < data.length; i += info.channels) colours.add((data[i] << 16) | (data[i + 1] << 8) | data[i + 2]);
      assert.ok(colours.size > 50, `the heatmap is not uniform (${colours.size} colours)`);
    }
    assert.deepEqual(rows[1].slice(6, 7), ['a-shape-heatmap.png']);
    const broken = rows[3];
    assert.deepEqual(broken.slice(1, 5), ['', '', '', '']);
    assert.equal(broken[6], '');
    assert.match(broken[7], /c-broken\.png: cannot decode image/);
    assert.ok(!existsSync(path.join(out, 'c-broken-heatmap.png')));
  } finally {
    cleanup();
  }
});

test('explain --images: all good gives exit 0; usage errors', { timeout: 120_000 }, async () => {
  const { dir, cleanup } = makeTmpDir();
  try {
    const images = path.join(dir, 'imgs');
    mkdirSync(images);
    copyFileSync(path.join(VGG, 'inputs', 'sample0.png'), path.join(images, 'one.png'));
    const model = path.join(VGG, 'model.onnx');
    const ok = await runCli(['explain', '--model', model, '--images', images, '--out', path.join(dir, 'o'), '--composite', 'epsilon', '--target', '1']);
    assert.equal(ok.code, 0, ok.stderr);
    const rows = parseCsv(readFileSync(path.join(dir, 'o', 'summary.csv'), 'utf8'));
    assert.equal(rows[1][3], '1', 'the given target is explained');

    const noOut = await runCli(['explain', '--model', model, '--images', images]);
    assert.equal(noOut.code, 2);
    assert.match(noOut.stderr, /--images DIR needs --out DIR/);
    const both = await runCli(['explain', '--model', model, '--images', images, '--out', path.join(dir, 'x'), '--image', 'a.png']);
    assert.equal(both.code, 2);
    assert.match(both.stderr, /--image cannot be combined with --images/);
    const missing = await runCli(['explain', '--model', model, '--images', path.join(dir, 'nope'), '--out', path.join(dir, 'x')]);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /nope: folder not found/);
    const empty = path.join(dir, 'empty');
    mkdirSync(empty);
    const none = await runCli(['explain', '--model', model, '--images', empty, '--out', path.join(dir, 'x')]);
    assert.equal(none.code, 2);
    assert.match(none.stderr, /no images/);
    const same = await runCli(['explain', '--model', model, '--images', images, '--out', images + '/']);
    assert.equal(same.code, 2);
    assert.match(same.stderr, /another folder/);
  } finally {
    cleanup();
  }
});

test('batch helpers: listing, sorting, names, CSV quoting, progress', () => {
  const { dir, cleanup } = makeTmpDir();
  try {
    for (const f of ['img10.png', 'img2.PNG', 'A.tiff', 'x.bmp', 'y.webp', 'z.gif', 'w.jpeg', '.hidden.png', 'readme.md'])
      writeFileSync(path.join(dir, f), '');
    mkdirSync(path.join(dir, 'sub.png'));
    assert.deepEqual(listImages(dir), ['A.tiff', 'img2.PNG', 'img10.png', 'w.jpeg', 'x.bmp', 'y.webp', 'z.gif']);
    assert.throws(() => listImages(path.join(dir, 'missing')), /missing: folder not found/);
  } finally {
    cleanup();
  }
  assert.ok(compareNames('a2', 'a10') < 0);
  assert.deepEqual(heatmapNames(['a.png', 'a.JPG', 'b.png']), ['a.png-heatmap.png', 'a.JPG-heatmap.png', 'b-heatmap.png']);
  assert.equal(csvField('plain'), 'plain');
  assert.equal(csvField('a, "b"'), '"a, ""b"""');
  assert.equal(
    batchCsv([{ file: 'x,y.png', timeMs: 1.234, error: 'bad\nthing' }]),
    'file,label,score,target,relevance_sum,time_ms,heatmap,error\n"x,y.png",,,,,1.2,,bad thing\n',
  );

  let text = '';
  const tty = new BatchProgress({ write: (s: string) => (text += s), isTTY: true, columns: 80 }, 2);
  tty.start('a.png');
  tty.finish('a.png', 'ok');
  tty.start('b.png');
  tty.finish('b.png', 'error: broken', true);
  tty.end();
  assert.match(text, /\r\x1b\[2K\[#{15}-{15}\] 1\/2 a\.png/);
  assert.match(text, /b\.png: error: broken\n/);
  assert.match(text, /\[#{30}\] 2\/2 \n$/);
  text = '';
  const plain = new BatchProgress({ write: (s: string) => (text += s) }, 1);
  plain.start('a.png');
  plain.finish('a.png', 'ok');
  plain.end();
  assert.equal(text, '[1/1] a.png: ok\n');
});
