// End to end: Explain All Images in Folder in a real VS Code. Right-click a folder of three images
// (one broken), check the grid fills with labels and heatmap thumbnails, that it comes back after a
// window reload, and that clicking a cell opens the image's full panel.
//   node --import tsx --test test/e2e/folder.test.ts
// Same harness as explain.test.ts (setup.sh on first use; LRP_E2E_VSIX to skip packaging).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { FrameLocator, Page } from 'playwright-core';
import { CodeServer, explorerCommand, openWorkbench, screenshot, reloadWindow, startVsCode, waitAppState, webviewFor, withEvidence, type VsCodeSession } from './harness';

const FIXTURES = path.resolve(__dirname, '../fixtures');
const VGG = path.join(FIXTURES, 'lrp-reference', 'shapes-vgg');
const LABELS = ['circle', 'square', 'triangle', 'cross'];

let server: CodeServer | undefined;
let session: VsCodeSession | undefined;
let page: Page;
let ws: string;

function makeWorkspace(root: string): void {
  ws = path.join(root, 'workspace');
  fs.mkdirSync(path.join(ws, 'model'), { recursive: true });
  fs.copyFileSync(path.join(VGG, 'model.onnx'), path.join(ws, 'model', 'model.onnx'));
  fs.writeFileSync(path.join(ws, 'model', 'labels.txt'), LABELS.join('\n') + '\n');
  const shapes = path.join(ws, 'shapes');
  fs.mkdirSync(shapes);
  fs.copyFileSync(path.join(VGG, 'inputs', 'sample0.png'), path.join(shapes, 'a-vgg.png'));
  fs.copyFileSync(path.join(FIXTURES, 'lrp-reference', 'shapes-resnet', 'inputs', 'sample0.png'), path.join(shapes, 'b-resnet.PNG'));
  fs.copyFileSync(path.join(FIXTURES, 'images', 'truncated.png'), path.join(shapes, 'c-broken.png'));
  fs.writeFileSync(path.join(shapes, 'notes.txt'), 'not an image\n');
  fs.mkdirSync(path.join(ws, '.vscode'));
  fs.writeFileSync(path.join(ws, '.vscode', 'settings.json'), JSON.stringify({ 'lrpLens.preprocessing': { preset: 'imagenet' } }, null, 2));
}

/** Waits until the grid has finished; an error or cancel fails. */
function waitDone(view: FrameLocator, timeout = 90_000): Promise<void> {
  return waitAppState(view, 'done', ['error', 'cancelled'], '#message', 'grid', timeout);
}

/** Distinct colours of each done cell's thumbnail canvas. */
async function thumbStats(view: FrameLocator): Promise<{ width: number; distinct: number }[]> {
  return view.locator('.cell[data-state="done"] canvas.thumb').evaluateAll((canvases: HTMLCanvasElement[]) =>
    canvases.map((c) => {
      const ctx = c.getContext('2d');
      if (!ctx) return { width: 0, distinct: 0 };
      const d = ctx.getImageData(0, 0, c.width, c.height).data;
      const colours = new Set<number>();
      for (let i = 0; i < d.length; i += 4) colours.add((d[i] << 16) | (d[i + 1] << 8) | d[i + 2]);
      return { width: c.width, distinct: colours.size };
    }),
  );
}

async function checkGrid(view: FrameLocator): Promise<void> {
  await waitDone(view);
  const cells = view.locator('.cell');
  assert.equal(await cells.count(), 3, 'one cell per image (notes.txt is skipped)');
  assert.deepEqual(await view.locator('.cell .name').allInnerTexts(), ['a-vgg.png', 'b-resnet.PNG', 'c-broken.png']);
  assert.equal(await view.locator('.cell[data-state="done"]').count(), 2);
  const labels = (await view.locator('.cell[data-state="done"] .label').allInnerTexts()).map((s) => s.trim());
  for (const l of labels) assert.ok(LABELS.includes(l), `a class label: '${l}'`);
  assert.equal(labels[0], 'triangle');
  for (const s of await view.locator('.cell[data-state="done"] .score').allInnerTexts()) assert.match(s, /^\d+\.\d %$/);
  const stats = await thumbStats(view);
  assert.equal(stats.length, 2);
  for (const s of stats) assert.ok(s.width >= 32 && s.distinct > 30, `the thumbnail is not uniform (${s.width} px, ${s.distinct} colours)`);
  assert.equal((await view.locator('.cell[data-state="error"] .label').innerText()).trim(), 'Unreadable image');
  assert.match(await view.locator('#status').innerText(), /3 images explained, 1 failed/);
}

before(async () => {
  session = await startVsCode('lrp-e2e-folder-', (root) => {
    makeWorkspace(root);
    return ws;
  }, { width: 1400, height: 900 });
  ({ server, page } = session);
});

after(async () => {
  await session?.stop();
});

test('Explain All Images in Folder fills a grid with labels and heatmap thumbnails', { timeout: 240_000 }, async (t) => {
  await withEvidence(t, page, server, 'e2e-failure-folder', async () => {
    await openWorkbench(page, server!.url(ws), 'shapes', 'model.onnx');
    await explorerCommand(page, 'shapes', 'Explain All Images in Folder');
    const view = await webviewFor(page, 'shapes/');
    await checkGrid(view);
    await page.waitForTimeout(300);
    await screenshot(page, 'e2e-folder-01-grid');
  });
});

test('the grid is restored after a window reload', { timeout: 120_000 }, async (t) => {
  await withEvidence(t, page, server, 'e2e-failure-folder-restore', async () => {
    await reloadWindow(page);
    const view = await webviewFor(page, 'shapes/');
    await checkGrid(view);
  });
});

test('clicking a cell opens the full explain panel of that image', { timeout: 120_000 }, async (t) => {
  await withEvidence(t, page, server, 'e2e-failure-folder-open', async () => {
    const grid = await webviewFor(page, 'shapes/');
    await grid.locator('.cell[data-index="0"]').click();
    const view = await webviewFor(page, 'a-vgg.png');
    await view.locator('#top5 .prediction .label').first().waitFor({ state: 'visible', timeout: 90_000 });
    assert.equal((await view.locator('#top5 .prediction .label').first().innerText()).trim(), 'triangle');
    await page.waitForTimeout(300);
    await screenshot(page, 'e2e-folder-02-opened');
  });
});
