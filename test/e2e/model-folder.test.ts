// End to end: a Hugging Face model folder (Optimum layout, test/fixtures/model-folders/hf-convnext)
// explains in the panel with the labels of its config.json and the ConvNeXt preprocessing of its
// preprocessor_config.json, and the panel says so; the heatmap sits on the centre crop the model
// saw (the rest dimmed, the hover says where the model did not look) and "what the model saw"
// shows the 224x224 input. Then a timm folder (chosen with lrpLens.modelPath) the same way.
//   node --import tsx --test test/e2e/model-folder.test.ts
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Page } from 'playwright-core';
import { CodeServer, explorerCommand, openWorkbench, screenshot, startVsCode, waitReady, webviewFor, withEvidence, type VsCodeSession } from './harness';

const FIXTURES = path.resolve(__dirname, '../fixtures');
const FOLDER = path.join(FIXTURES, 'model-folders', 'hf-convnext');
const expected = JSON.parse(fs.readFileSync(path.join(FIXTURES, 'model-folders', 'expected.json'), 'utf8')) as {
  labels: string[];
  folders: Record<string, { photos: Record<string, { top: number }> }>;
};

let server: CodeServer | undefined;
let session: VsCodeSession | undefined;
let page: Page;
let ws: string;

before(async () => {
  session = await startVsCode(
    'lrp-e2e-folder-',
    (root) => {
      ws = path.join(root, 'workspace');
      fs.cpSync(FOLDER, path.join(ws, 'hf-convnext'), { recursive: true });
      fs.copyFileSync(path.join(FIXTURES, 'images', 'chelsea.png'), path.join(ws, 'chelsea.png'));
      return ws;
    },
    { width: 1600, height: 1000 },
  );
  ({ server, page } = session);
});

after(async () => {
  await session?.stop();
});

test('a Hugging Face folder explains with its labels and preprocessing, named in the panel; the map sits on the crop', { timeout: 240_000 }, async (t) => {
  await withEvidence(t, page, server, 'e2e-failure-model-folder', async () => {
    await openWorkbench(page, server!.url(ws), 'chelsea.png', 'model.onnx');
    await explorerCommand(page, 'chelsea.png', 'Explain Prediction');
    const view = await webviewFor(page, 'chelsea.png');
    await waitReady(view);
    await page.waitForTimeout(300);
    await screenshot(page, 'e2e-folder-01-panel');

    const want = expected.labels[expected.folders['hf-convnext'].photos['chelsea.png'].top];
    const labels = (await view.locator('#top5 .prediction .label').allInnerTexts()).map((s) => s.trim());
    assert.equal(labels[0], want, 'top label from config.json id2label');
    assert.deepEqual([...labels].sort(), [...expected.labels].sort(), 'all four classes by name');
    const pre = (await view.locator('#preprocessing-source').innerText()).trim();
    const desc = (await view.locator('#preprocessing-description').innerText()).trim();
    const lab = (await view.locator('#labels-source').innerText()).trim();
    t.diagnostic(`${pre}: ${desc}; labels: ${lab}`);
    assert.equal(pre, 'preprocessor_config.json (Hugging Face ConvNextImageProcessor)');
    assert.match(desc, /^shorter side to 256, centre crop 224x224, bicubic; scale 0.003922, mean 0.485, 0.456, 0.406, std 0.229, 0.224, 0.225$/);
    assert.equal(lab, 'config.json id2label (Hugging Face)');

    // the photo view: 451x300 shown whole, the map on the centre crop
    const canvas = view.locator('#heatmap');
    assert.equal(await canvas.getAttribute('data-view'), 'photo-region');
    const size = await canvas.evaluate((c: HTMLCanvasElement) => ({ w: c.width, h: c.height }));
    assert.equal(size.w * 300, size.h * 451, `canvas keeps the photo's aspect ratio (${size.w}x${size.h})`);
    // shorter side 300 -> 256: the crop covers x from 80 / 384 * 451 = 94 to 357 photo pixels
    const box = await canvas.boundingBox();
    assert.ok(box);
    await page.mouse.move(box.x + box.width * 0.05, box.y + box.height * 0.5);
    await view.locator('#hover', { hasText: 'outside the part of the photo the model saw' }).waitFor({ timeout: 5_000 });
    await page.mouse.move(box.x + box.width * 0.5, box.y + box.height * 0.5);
    const centre = (await view.locator('#hover').innerText()).trim();
    t.diagnostic(centre);
    const m = /input pixel \((\d+), (\d+)\)/.exec(centre);
    assert.ok(m, centre);
    assert.ok(Math.abs(Number(m[1]) - 112) <= 2 && Math.abs(Number(m[2]) - 112) <= 2, `photo centre is the input's centre: ${centre}`);
    // outside the crop the photo is dimmed: the left strip is darker than the same strip of the photo
    const dim = await canvas.evaluate((c: HTMLCanvasElement) => {
      const d = c.getContext('2d')!.getImageData(0, 0, Math.floor(c.width * 0.1), c.height).data;
      let s = 0;
      for (let i = 0; i < d.length; i += 4) s += d[i] + d[i + 1] + d[i + 2];
      return s / (d.length / 4) / 3;
    });
    t.diagnostic(`mean level of the left 10% (outside the crop): ${dim.toFixed(1)}`);
    assert.ok(dim < 0.5 * 255 * 0.5, 'left strip dimmed');
    await screenshot(page, 'e2e-folder-02-photo-region');

    // what the model saw: the 224x224 input (enlarged 2x on the canvas)
    await view.locator('#show-model-input').check();
    await view.locator('#heatmap[data-view="model-input"]').waitFor({ state: 'attached', timeout: 5_000 });
    const mi = await canvas.evaluate((c: HTMLCanvasElement) => ({ w: c.width, h: c.height }));
    assert.deepEqual(mi, { w: 448, h: 448 });
    await screenshot(page, 'e2e-folder-03-model-input');

    // a timm folder: chosen with lrpLens.modelPath (changing the setting re-runs the open panel)
    fs.cpSync(path.join(FIXTURES, 'model-folders', 'timm'), path.join(ws, 'timm'), { recursive: true });
    fs.mkdirSync(path.join(ws, '.vscode'), { recursive: true });
    fs.writeFileSync(path.join(ws, '.vscode', 'settings.json'), JSON.stringify({ 'lrpLens.modelPath': 'timm/model.onnx' }, null, 2));
    await view.locator('#preprocessing-source', { hasText: 'config.json pretrained_cfg (timm)' }).waitFor({ timeout: 90_000 });
    await waitReady(view);
    const timmTop = expected.labels[expected.folders.timm.photos['chelsea.png'].top];
    assert.equal((await view.locator('#top5 .prediction .label').first().innerText()).trim(), timmTop, 'top label from label_names');
    assert.equal((await view.locator('#labels-source').innerText()).trim(), 'config.json label_names (timm)');
    assert.match((await view.locator('#preprocessing-description').innerText()).trim(), /^shorter side to 235, centre crop 224x224, bicubic; scale 0.003922, mean 0.5, 0.5, 0.5, std 0.5, 0.5, 0.5$/);
    await screenshot(page, 'e2e-folder-04-timm');
  });
});
