// End to end: the Compare view of the explain panel in a real VS Code. The grid of methods is
// drawn, an entry is added (an error cell) and removed (the setting follows), the faithfulness
// curves are plotted with AOPC in the legend, a cell opens in the main view, and the view comes
// back after a window reload.
//   node --import tsx --test test/e2e/compare.test.ts
// Screenshots go to test-artifacts/; LRP_E2E_README_SHOT=1 also writes media/screenshot-compare.png.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import sharp from 'sharp';
import type { FrameLocator, Page } from 'playwright-core';
import { ARTIFACTS, CodeServer, explorerCommand, openWorkbench, ROOT, screenshot, reloadWindow, startVsCode, waitReady, webviewFor, withEvidence, type VsCodeSession } from './harness';

const FIXTURES = path.resolve(__dirname, '../fixtures');
const VGG = path.join(FIXTURES, 'lrp-reference', 'shapes-vgg');
const LABELS = ['circle', 'square', 'triangle', 'cross'];
const DEFAULTS = ['epsilon', 'epsilon-plus-flat', 'epsilon-gamma-box', 'alpha1-beta0', 'epsilon-alpha2-beta1-flat', 'gradcam', 'gradient-input'];

let server: CodeServer | undefined;
let session: VsCodeSession | undefined;
let page: Page;
let ws: string;

function makeWorkspace(root: string): string {
  ws = path.join(root, 'workspace');
  fs.mkdirSync(path.join(ws, 'model'), { recursive: true });
  fs.copyFileSync(path.join(VGG, 'model.onnx'), path.join(ws, 'model', 'model.onnx'));
  fs.writeFileSync(path.join(ws, 'model', 'labels.txt'), LABELS.join('\n') + '\n');
  fs.copyFileSync(path.join(VGG, 'inputs', 'sample0.png'), path.join(ws, 'shape.png'));
  return ws;
}

before(async () => {
  session = await startVsCode('lrp-e2e-cmp-', makeWorkspace, { width: 1600, height: 1000 });
  ({ server, page } = session);
});

after(async () => {
  await session?.stop();
});

/** Distinct colours of every drawn cell canvas, by method. */
async function cellColours(view: FrameLocator): Promise<Record<string, number>> {
  return view.locator('#compare-grid').evaluate((grid: HTMLElement) => {
    const out: Record<string, number> = {};
    grid.querySelectorAll<HTMLCanvasElement>('figure.cell canvas.cell-map').forEach((c) => {
      const ctx = c.getContext('2d');
      const m = (c.closest('figure') as HTMLElement).dataset.method ?? '?';
      if (!ctx || c.dataset.drawn !== 'true') return;
      const d = ctx.getImageData(0, 0, c.width, c.height).data;
      const colours = new Set<number>();
      for (let i = 0; i < d.length; i += 4) colours.add((d[i] << 16) | (d[i + 1] << 8) | d[i + 2]);
      out[m] = colours.size;
    });
    return out;
  });
}

async function until<T>(what: string, f: () => Promise<T | undefined | false>, timeout = 120_000): Promise<T> {
  const deadline = Date.now() + timeout;
  for (;;) {
    const v = await f().catch(() => undefined);
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 300));
  }
}

function userCompareSetting(): unknown {
  const file = path.join(server!.userDataDir, 'User', 'settings.json');
  return (JSON.parse(fs.readFileSync(file, 'utf8')) as Record<string, unknown>)['lrpLens.compare'];
}

const cellState = (view: FrameLocator, m: string) => view.locator(`#compare-grid figure.cell[data-method="${m}"]`).getAttribute('data-state');

test('Compare view: the grid of methods, an error cell, the setting, the faithfulness curves', { timeout: 420_000 }, async (t) => {
  await withEvidence(t, page, server, 'e2e-failure-compare', async () => {
    await openWorkbench(page, server!.url(ws), 'shape.png', 'model.onnx');
    await explorerCommand(page, 'shape.png', 'Explain Prediction');
    const view = await webviewFor(page, 'shape.png');
    await waitReady(view);

    await view.locator('#tab-compare').click();
    await view.locator('#compare-view').waitFor({ state: 'visible', timeout: 10_000 });
    const names = await view.locator('#compare-grid figure.cell').evaluateAll((els) => els.map((e) => (e as HTMLElement).dataset.method));
    assert.deepEqual(names, DEFAULTS, 'the default methods, in order');
    await until('all cells drawn', async () => {
      const states = await Promise.all(DEFAULTS.map((m) => cellState(view, m)));
      return states.every((s) => s === 'drawn') && states;
    });
    const colours = await cellColours(view);
    t.diagnostic(`distinct colours per cell: ${JSON.stringify(colours)}`);
    const varied = Object.entries(colours).filter(([, n]) => n > 20);
    assert.ok(varied.length >= 3, `at least 3 cells are not uniform: ${JSON.stringify(colours)}`);
    assert.equal(Object.keys(colours).length, DEFAULTS.length, 'every default cell has a canvas');
    const note = await view.locator('#compare-note').innerText();
    assert.match(note, /Colormap bwr/);
    assert.match(note, /each map at full colour from its own 99\.5th percentile of \|R\|/);

    // The shared maximum: the note says so and the pixels change.
    await view.locator('#compare-norm').evaluate((el: HTMLElement & { value: string }) => {
      el.value = 'shared';
      el.dispatchEvent(new Event('change', { bubbles: true }));
    });
    assert.match(await view.locator('#compare-note').innerText(), /all maps at full colour from one shared \|R\| = /);
    const shared = await cellColours(view);
    assert.notDeepEqual(shared, colours, 'the shared normalisation redraws the cells');
    await view.locator('#compare-norm').evaluate((el: HTMLElement & { value: string }) => {
      el.value = 'own';
      el.dispatchEvent(new Event('change', { bubbles: true }));
    });

    // Add cam: not applicable to this VGG, the cell says why; the setting follows.
    await view.locator('#compare-add').evaluate((el: HTMLElement & { value: string }) => {
      el.value = 'cam';
    });
    await view.locator('#compare-add-button').click();
    await until('the cam cell error', async () => (await cellState(view, 'cam')) === 'error');
    assert.match(await view.locator('figure.cell[data-method="cam"] .cell-error').innerText(), /not applicable/);
    await until('lrpLens.compare written', async () => JSON.stringify(userCompareSetting()) === JSON.stringify([...DEFAULTS, 'cam']), 15_000);
    await screenshot(page, 'e2e-06-compare-grid');

    // Remove it again (the other cells stay as they are).
    await view.locator('figure.cell[data-method="cam"] .cell-remove').click();
    await view.locator('figure.cell[data-method="cam"]').waitFor({ state: 'detached', timeout: 10_000 });
    await until('lrpLens.compare written', async () => JSON.stringify(userCompareSetting()) === JSON.stringify(DEFAULTS), 15_000);
    assert.equal(await cellState(view, 'gradcam'), 'drawn');

    // Faithfulness: one curve per method plus the random baseline, AOPC in the legend.
    await view.locator('#evaluate').click();
    await until('the evaluation', async () => (await view.locator('#faith').getAttribute('data-state')) === 'done', 240_000);
    const paths = await view.locator('#faith-plot path.series').evaluateAll((els) => els.map((e) => [e.getAttribute('data-method'), (e.getAttribute('d') ?? '').length]));
    t.diagnostic(`curves: ${JSON.stringify(paths)}`);
    assert.equal(paths.length, DEFAULTS.length + 1, 'a curve per method and the random baseline');
    for (const [m, len] of paths) assert.ok((len as number) > 50, `the curve of ${m} has points`);
    const legend = await view.locator('#faith-legend li').allInnerTexts();
    t.diagnostic(legend.join(' | '));
    assert.equal(legend.length, DEFAULTS.length + 1);
    for (const line of legend) assert.match(line, /AOPC\s+-?[\d.]+(e[-+]?\d+)?/, line);
    await view.locator('#faith').scrollIntoViewIfNeeded();
    await page.waitForTimeout(300);
    await screenshot(page, 'e2e-07-compare-faithfulness');
    // The README picture: a taller window, so the grid and the curves fit in one view.
    await page.setViewportSize({ width: 1500, height: 1420 });
    await view.locator('#compare-view').evaluate(() => window.scrollTo(0, 0));
    await page.waitForTimeout(600);
    const shot = path.join(ARTIFACTS, 'e2e-08-compare-panel.png');
    const frame = await page.locator('iframe.webview.ready').filter({ visible: true }).last().boundingBox();
    const bottom = await view.locator('#faith').evaluate((e) => e.getBoundingClientRect().bottom);
    assert.ok(frame, 'the webview frame has a box');
    await page.screenshot({ path: shot, clip: { x: frame.x, y: frame.y, width: frame.width, height: Math.min(frame.height, bottom + 16) } });
    if (process.env.LRP_E2E_README_SHOT) {
      await sharp(shot).resize({ width: 1000, withoutEnlargement: true }).png({ compressionLevel: 9, palette: true }).toFile(path.join(ROOT, 'media', 'screenshot-compare.png'));
    }
    await page.setViewportSize({ width: 1600, height: 1000 });
    await page.waitForTimeout(300);

    // Click a cell: the main view shows that method.
    const runBefore = await view.locator('#heatmap').getAttribute('data-run-id');
    await view.locator('figure.cell[data-method="gradcam"] canvas').click();
    await view.locator('#explain-view').waitFor({ state: 'visible', timeout: 10_000 });
    await view.locator(`#heatmap:not([data-run-id="${runBefore}"])`).waitFor({ state: 'attached', timeout: 60_000 });
    await waitReady(view);
    assert.equal(await view.locator('#method').evaluate((el: HTMLElement & { value: string }) => el.value), 'gradcam');
    assert.match(await view.locator('#status').innerText(), /with gradcam/);
    await screenshot(page, 'e2e-09-gradcam-main-view');
    // And an LRP composite from the grid switches the composite.
    await view.locator('#tab-compare').click();
    await view.locator('figure.cell[data-method="alpha1-beta0"]').click();
    await until('alpha1-beta0 in the main view', async () => /with alpha1-beta0/.test(await view.locator('#status').innerText()), 60_000);
    assert.equal(await view.locator('#composite').evaluate((el: HTMLElement & { value: string }) => el.value), 'alpha1-beta0');
    assert.equal(await view.locator('#method').evaluate((el: HTMLElement & { value: string }) => el.value), 'lrp');
  });
});

test('the Compare view and its selection come back after a window reload', { timeout: 180_000 }, async (t) => {
  await withEvidence(t, page, server, 'e2e-failure-compare-restore', async () => {
    let view = await webviewFor(page, 'shape.png');
    await view.locator('#tab-compare').click();
    // A changed selection (written to lrpLens.compare) is what the restored view shows.
    await view.locator('figure.cell[data-method="epsilon"] .cell-remove').click();
    await until('lrpLens.compare written', async () => JSON.stringify(userCompareSetting()) === JSON.stringify(DEFAULTS.slice(1)), 15_000);
    await reloadWindow(page);
    view = await webviewFor(page, 'shape.png');
    await waitReady(view);
    await view.locator('#compare-view').waitFor({ state: 'visible', timeout: 30_000 });
    const names = await view.locator('#compare-grid figure.cell').evaluateAll((els) => els.map((e) => (e as HTMLElement).dataset.method));
    assert.deepEqual(names, DEFAULTS.slice(1));
    await until('cells drawn after the reload', async () => (await view.locator('#compare-grid figure.cell[data-state="drawn"]').count()) === DEFAULTS.length - 1);
    await screenshot(page, 'e2e-10-compare-restored');
  });
});
