// End to end (issue 10): a real pretrained model (nsfwjs MobileNetV2, tf.js LayersModel) on a real
// photo in a real VS Code. The default heatmap is plainly visible over the photo; the panel offers
// the three views (over the photo, alone, side by side), the scale percentile and the contrast;
// the colour bar states the scale; Evaluate faithfulness says what share of the image it perturbs.
//   LRP_E2E_CACHE=... node --import tsx --test test/e2e/heatmap.test.ts
// Screenshots go to test-artifacts/e2e-heatmap-*.png.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { FrameLocator, Page } from 'playwright-core';
import { CodeServer, copyMobilenet, explorerCommand, openWorkbench, screenshot, startVsCode, waitReady, webviewFor, withEvidence, type VsCodeSession } from './harness';
import { extractNsfwjs } from '../unit/tfjs-util';

const IMAGES = path.resolve(__dirname, '../fixtures/images');

let server: CodeServer | undefined;
let session: VsCodeSession | undefined;
let page: Page;
let ws: string;

function makeWorkspace(root: string): string {
  ws = path.join(root, 'workspace');
  copyMobilenet(path.join(ws, 'mobilenet'), extractNsfwjs);
  fs.copyFileSync(path.join(IMAGES, 'chelsea.png'), path.join(ws, 'chelsea.png'));
  fs.mkdirSync(path.join(ws, '.vscode'));
  // a short compare list keeps Evaluate faithfulness quick on MobileNetV2
  fs.writeFileSync(path.join(ws, '.vscode', 'settings.json'), JSON.stringify({ 'lrpLens.compare': ['epsilon-plus-flat', 'epsilon-gamma-box', 'gradient'] }, null, 2));
  return ws;
}

interface Pixels {
  width: number;
  height: number;
  data: number[];
}

async function canvasPixels(view: FrameLocator): Promise<Pixels> {
  return view.locator('#heatmap').evaluate((c: HTMLCanvasElement) => {
    const ctx = c.getContext('2d');
    const d = ctx ? Array.from(ctx.getImageData(0, 0, c.width, c.height).data) : [];
    return { width: c.width, height: c.height, data: d };
  });
}

/** Share of pixels (RGBA, the same size) whose mean colour change is at least `levels`. */
function changedShare(a: Pixels, b: Pixels, levels: number): number {
  assert.equal(a.data.length, b.data.length);
  let n = 0;
  for (let i = 0; i < a.data.length; i += 4) {
    const d = (Math.abs(a.data[i] - b.data[i]) + Math.abs(a.data[i + 1] - b.data[i + 1]) + Math.abs(a.data[i + 2] - b.data[i + 2])) / 3;
    if (d >= levels) n++;
  }
  return n / (a.data.length / 4);
}

/** Share of opaque pixels at least `levels` (mean over R, G, B) away from white. */
function colouredShare(p: Pixels, levels: number): number {
  let n = 0;
  let all = 0;
  for (let i = 0; i < p.data.length; i += 4) {
    if (p.data[i + 3] === 0) continue;
    all++;
    if ((765 - p.data[i] - p.data[i + 1] - p.data[i + 2]) / 3 >= levels) n++;
  }
  return n / all;
}

async function setSelect(view: FrameLocator, id: string, value: string): Promise<void> {
  await view.locator(`#${id}`).evaluate((el: HTMLElement & { value: string }, v: string) => {
    el.value = v;
    el.dispatchEvent(new Event('change', { bubbles: true }));
  }, value);
}

async function setRange(view: FrameLocator, id: string, value: string): Promise<void> {
  await view.locator(`#${id}`).evaluate((el: HTMLInputElement, v: string) => {
    el.value = v;
    el.dispatchEvent(new Event('input', { bubbles: true }));
  }, value);
}

before(async () => {
  session = await startVsCode('lrp-e2e-heatmap-', makeWorkspace, { width: 1600, height: 1000 });
  ({ server, page } = session);
});

after(async () => {
  await session?.stop();
});

test('a real model on a real photo: the heatmap is plainly visible, in three views, with scale and contrast controls', { timeout: 300_000 }, async (t) => {
  await withEvidence(t, page, server, 'e2e-heatmap-failure', async () => {
    await openWorkbench(page, server!.url(ws), 'chelsea.png', 'model.json');
    await explorerCommand(page, 'chelsea.png', 'Explain Prediction');
    const view = await webviewFor(page, 'chelsea.png');
    await waitReady(view, 180_000);
    await page.waitForTimeout(300);
    await screenshot(page, 'e2e-heatmap-01-overlay');

    // the defaults: over the photo, 99.5th percentile, linear contrast; the colour bar says so
    assert.equal(await view.locator('#heatmap-mode').evaluate((el: HTMLElement & { value: string }) => el.value), 'overlay');
    assert.equal(await view.locator('#percentile').evaluate((el: HTMLElement & { value: string }) => el.value), '99.5');
    const scaleText = (await view.locator('#legend-scale').innerText()).trim();
    t.diagnostic(scaleText);
    assert.match(scaleText, /^Colour bar: full colour at the 99\.5th percentile of \|R\| = \S+ \(max \S+, [\d.]+% of pixels clipped\)\.$/);

    // how much the overlay changes the photo: opacity 0 shows the photo itself
    const overlay = await canvasPixels(view);
    await setRange(view, 'opacity', '0');
    const photo = await canvasPixels(view);
    await setRange(view, 'opacity', '0.8');
    const share30 = changedShare(overlay, photo, 30);
    t.diagnostic(`overlay: ${(share30 * 100).toFixed(1)}% of the pixels change by 30 levels or more`);
    assert.ok(share30 >= 0.02, `the explanation is visible over the photo (${(share30 * 100).toFixed(2)}% of pixels change by 30+)`);
    const again = await canvasPixels(view);
    assert.deepEqual(again.data.slice(0, 4000), overlay.data.slice(0, 4000), 'opacity back: the same picture');

    // by the maximum |R| (the old scaling) far less shows
    await setSelect(view, 'percentile', '100');
    const byMax = changedShare(await canvasPixels(view), photo, 30);
    t.diagnostic(`by the maximum: ${(byMax * 100).toFixed(2)}%`);
    assert.ok(byMax < share30 / 2, `scaling by the maximum hides most of the map (${byMax} vs ${share30})`);
    assert.match(await view.locator('#legend-scale').innerText(), /full colour at the maximum \|R\|/);
    await setSelect(view, 'percentile', '99.5');

    // alone: the map on its white background, the photo's size
    await setSelect(view, 'heatmap-mode', 'alone');
    const alone = await canvasPixels(view);
    assert.deepEqual([alone.width, alone.height], [photo.width, photo.height]);
    const coloured = colouredShare(alone, 40);
    t.diagnostic(`alone: ${(coloured * 100).toFixed(1)}% of the pixels coloured`);
    assert.ok(coloured >= 0.01 && coloured <= 0.6, `a map, neither empty nor a photo (${coloured})`);
    assert.ok(colouredShare(photo, 40) > 0.6, 'the photo itself is far from white');
    await screenshot(page, 'e2e-heatmap-02-alone');

    // contrast: gamma 0.5 brings out moderate relevance
    await setRange(view, 'contrast', '0.5');
    const brighter = colouredShare(await canvasPixels(view), 40);
    assert.ok(brighter > coloured * 1.5, `gamma 0.5 colours more pixels (${brighter} vs ${coloured})`);
    assert.match(await view.locator('#legend-scale').innerText(), /contrast γ 0\.5/);
    await screenshot(page, 'e2e-heatmap-03-alone-gamma05');
    await setRange(view, 'contrast', '1');

    // side by side: photo, gap, map
    await setSelect(view, 'heatmap-mode', 'side');
    const side = await canvasPixels(view);
    assert.equal(side.height, photo.height);
    assert.ok(side.width > 2 * photo.width, `side by side is wider than two photos (${side.width} vs ${photo.width})`);
    const W = photo.width;
    let leftDiff = 0;
    for (let y = 0; y < side.height; y += 7)
      for (let x = 0; x < W; x += 5)
        for (let c = 0; c < 3; c++) leftDiff += Math.abs(side.data[(y * side.width + x) * 4 + c] - photo.data[(y * W + x) * 4 + c]);
    assert.equal(leftDiff, 0, 'the left half is the photo');
    const gap = side.width - 2 * W;
    let rightDiff = 0;
    for (let y = 0; y < side.height; y += 7)
      for (let x = 0; x < W; x += 5)
        for (let c = 0; c < 3; c++) rightDiff += Math.abs(side.data[(y * side.width + W + gap + x) * 4 + c] - alone.data[(y * W + x) * 4 + c]);
    assert.equal(rightDiff, 0, 'the right half is the map alone');
    await page.waitForTimeout(200);
    await screenshot(page, 'e2e-heatmap-04-side');

    // the relevance flow thumbnails and the layer detail use the same scaling
    assert.ok((await view.locator('#flow canvas.thumb').count()) >= 10, 'layer thumbnails');
    await view.locator('#flow .layer[data-op="Conv"]').first().click();
    await view.locator('#layer-detail canvas.large').waitFor({ state: 'visible', timeout: 10_000 });
    assert.match(await view.locator('#layer-detail .detail-scale').innerText(), /full colour at the 99\.5th percentile of \|R\|/);
    await setSelect(view, 'heatmap-mode', 'overlay');
    await page.waitForTimeout(200);
    await screenshot(page, 'e2e-heatmap-05-layer-detail');
  });
});

test('compare grid states its scale; Evaluate faithfulness perturbs a quarter of the image and says so', { timeout: 300_000 }, async (t) => {
  await withEvidence(t, page, server, 'e2e-heatmap-failure-compare', async () => {
    const view = await webviewFor(page, 'chelsea.png');
    await view.locator('#tab-compare').click();
    const cells = view.locator('#compare-grid figure.cell[data-state="drawn"]');
    await view.locator('#compare-grid figure.cell[data-method="gradient"][data-state="drawn"]').waitFor({ timeout: 120_000 });
    assert.equal(await cells.count(), 3);
    assert.match(await view.locator('#compare-note').innerText(), /each map at full colour from its own 99\.5th percentile of \|R\|/);
    assert.match(await view.locator('#compare-grid figure.cell[data-method="epsilon-plus-flat"] .cell-foot').innerText(), /99\.5th percentile of \|R\| \S+/);
    await view.locator('#evaluate').click();
    await view.locator('#faith[data-state="done"]').waitFor({ timeout: 240_000 });
    const note = (await view.locator('#faith-note').innerText()).trim();
    t.diagnostic(note);
    assert.match(note, /(\d+)% of the image perturbed by the last step/);
    const pct = Number(/(\d+)% of the image perturbed/.exec(note)![1]);
    assert.ok(pct >= 20, `${pct}% of the image`);
    const legend = await view.locator('#faith-legend').innerText();
    t.diagnostic(legend.replace(/\n/g, ' | '));
    assert.match(legend, /random \(baseline\)/);
    await page.waitForTimeout(300);
    await screenshot(page, 'e2e-heatmap-06-compare-faithfulness');
  });
});
