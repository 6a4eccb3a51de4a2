// End to end (issue 9): the fixture ViT (ONNX) in a real VS Code. The relevance flow shows every
// token layer's patch tokens on the 8x8 patch grid with the class token's share; the layer view
// shows the token map large; the Attention selector shows for the ViT, re-explains under attnlrp
// and is kept over a window reload; for ConvNeXt (no attention) it stays hidden and the layers
// keep their spatial maps.
//   LRP_E2E_CACHE=... node --import tsx --test test/e2e/vit.test.ts
// Screenshots go to test-artifacts/e2e-vit-*.png; e2e-vit-readme.png is the README's (media/screenshot-vit.png).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { FrameLocator, Page } from 'playwright-core';
import sharp from 'sharp';
import { ARTIFACTS, CodeServer, explorerCommand, openWorkbench, reloadWindow, screenshot, startVsCode, waitReady, webviewFor, withEvidence, type VsCodeSession } from './harness';

const MODERN = path.resolve(__dirname, '../fixtures/lrp-reference-modern');
const LABELS = ['circle', 'square', 'triangle', 'cross'];
/** Token layers of the fixture ViT: 8 per encoder block (4 blocks) and the final LayerNorm. */
const TOKEN_LAYERS = 4 * 8 + 1;

let server: CodeServer | undefined;
let session: VsCodeSession | undefined;
let page: Page;
let wsVit: string;
let wsConvnext: string;

function modelWorkspace(root: string, name: string, model: string): string {
  const ws = path.join(root, name);
  fs.mkdirSync(path.join(ws, 'model'), { recursive: true });
  fs.copyFileSync(path.join(MODERN, model, 'model.onnx'), path.join(ws, 'model', 'model.onnx'));
  fs.writeFileSync(path.join(ws, 'model', 'labels.txt'), LABELS.join('\n') + '\n');
  fs.copyFileSync(path.join(MODERN, model, 'inputs', 'sample0.png'), path.join(ws, 'shape.png'));
  fs.mkdirSync(path.join(ws, '.vscode'));
  fs.writeFileSync(path.join(ws, '.vscode', 'settings.json'), JSON.stringify({ 'lrpLens.preprocessing': { preset: 'imagenet' } }, null, 2));
  return ws;
}

interface Thumb {
  index: number;
  /** The row's class share (data-share of its badge). */
  share: number;
  width: number;
  height: number;
  distinct: number;
  opaque: number;
}

/** The pixels of the flow thumbnails of the rows with a class-token badge. */
async function tokenThumbs(view: FrameLocator): Promise<Thumb[]> {
  return view.locator('#flow').evaluate((flow: HTMLElement) =>
    Array.from(flow.querySelectorAll<HTMLElement>('.layer'))
      .filter((row) => row.querySelector('.cls-share'))
      .map((row) => {
        const c = row.querySelector<HTMLCanvasElement>('canvas.thumb');
        const ctx = c?.getContext('2d');
        const share = Number(row.querySelector<HTMLElement>('.cls-share')?.dataset.share);
        if (!c || !ctx) return { index: Number(row.dataset.index), share, width: 0, height: 0, distinct: 0, opaque: 0 };
        const d = ctx.getImageData(0, 0, c.width, c.height).data;
        const colours = new Set<number>();
        let opaque = 0;
        for (let i = 0; i < d.length; i += 4) {
          colours.add((d[i] << 16) | (d[i + 1] << 8) | d[i + 2]);
          if (d[i + 3] > 0) opaque++;
        }
        return { index: Number(row.dataset.index), share, width: c.width, height: c.height, distinct: colours.size, opaque };
      }),
  );
}

/** The class shares of the token rows, from output to input. */
async function shares(view: FrameLocator): Promise<number[]> {
  return view.locator('#flow .cls-share').evaluateAll((els: HTMLElement[]) => els.map((e) => Number(e.dataset.share)));
}

async function heatmapHash(view: FrameLocator): Promise<string> {
  return view.locator('#heatmap').evaluate((c: HTMLCanvasElement) => {
    const d = c.getContext('2d')?.getImageData(0, 0, c.width, c.height).data ?? new Uint8ClampedArray();
    let h = 2166136261;
    for (let i = 0; i < d.length; i += 4) h = Math.imul(h ^ d[i] ^ (d[i + 1] << 8) ^ (d[i + 2] << 16), 16777619);
    return (h >>> 0).toString(16);
  });
}

const valueOf = (view: FrameLocator, id: string): Promise<string> => view.locator(`#${id}`).evaluate((el: HTMLElement & { value: string }) => el.value);

before(async () => {
  session = await startVsCode(
    'lrp-e2e-vit-',
    (root) => {
      wsVit = modelWorkspace(root, 'workspace-vit', 'shapes-vit');
      wsConvnext = modelWorkspace(root, 'workspace-convnext', 'shapes-convnext');
      return wsVit;
    },
    { width: 1600, height: 1000 },
    // the README's screenshots are dark
    { settings: { 'workbench.colorTheme': 'Default Dark Modern' } },
  );
  ({ server, page } = session);
});

after(async () => {
  await session?.stop();
});

test('the fixture ViT: token maps and class-token shares in the relevance flow, the attention selector re-explains', { timeout: 300_000 }, async (t) => {
  await withEvidence(t, page, server, 'e2e-vit-failure', async () => {
    await openWorkbench(page, server!.url(wsVit), 'shape.png', 'model.onnx');
    await explorerCommand(page, 'shape.png', 'Explain Prediction');
    const view = await webviewFor(page, 'shape.png');
    await waitReady(view);
    assert.equal((await view.locator('#top5 .prediction .label').first().innerText()).trim(), 'triangle');

    // the attention selector: shown for a model with attention, the setting's mode (cp by default)
    await view.locator('#attention-field').waitFor({ state: 'visible', timeout: 10_000 });
    assert.equal(await valueOf(view, 'attention'), 'cp');

    // every token layer: an 8x8 patch-grid thumbnail that is not flat, and its class share
    const thumbs = await tokenThumbs(view);
    t.diagnostic(`${thumbs.length} token rows; colours per thumbnail: ${thumbs.map((th) => th.distinct).join(' ')}`);
    assert.equal(thumbs.length, TOKEN_LAYERS);
    for (const th of thumbs) {
      assert.deepEqual([th.width, th.height], [8, 8], `row ${th.index}: the 8x8 patch grid`);
      assert.equal(th.opaque, 64, `row ${th.index}: drawn`);
    }
    // after the last block's attention only the class token reaches the head: there the patch
    // tokens hold nothing (share exactly 1, a blank map); before it the maps vary over the grid
    const patches = thumbs.filter((th) => th.share !== 1);
    t.diagnostic(`class share : colours ${thumbs.map((th) => `${th.share.toFixed(3)}:${th.distinct}`).join(' ')}`);
    assert.ok(patches.length >= 3 * 8, `${patches.length} token layers where the patches hold relevance`);
    for (const th of patches) assert.ok(th.distinct >= 4, `row ${th.index} (class share ${th.share}): the token map varies (${th.distinct} colours)`);
    assert.ok(thumbs.filter((th) => th.share === 1).every((th) => th.distinct === 1), 'layers whose relevance is all the class token\'s have a blank map');
    const cls = await view.locator('#flow .cls-share').allInnerTexts();
    t.diagnostic(`CLS badges: ${cls.join(' | ')}`);
    for (const text of cls) assert.match(text, /^CLS -?\d+(\.\d)?%$/);
    const cp = await shares(view);
    assert.equal(cls[0], 'CLS 100%', 'only the class token reaches the head: the final LayerNorm gives it everything');
    assert.ok(Math.abs(cp[cp.length - 1]) < 0.1, `by the first block the patches hold the relevance (${cp[cp.length - 1]})`);
    assert.match(await view.locator('#token-flow-note').innerText(), /patch tokens' relevance on the 8×8 patch grid; CLS is the class token's share/);

    // one cell per block (its output tokens on the grid, the class share), input to output;
    // the last block hands everything to the class token
    const blocks = view.locator('#token-blocks .token-block');
    assert.equal(await blocks.count(), 4);
    const blockTexts = await blocks.allInnerTexts();
    t.diagnostic(`blocks: ${blockTexts.map((b) => b.replace(/\n/g, ' ')).join(' | ')}`);
    blockTexts.forEach((b, k) => assert.match(b.replace(/\n/g, ' '), new RegExp(`^block ${k + 1} CLS -?\\d+(\\.\\d)?%$`)));
    assert.match(blockTexts[3], /CLS 100%/);
    const blockThumbs = await view.locator('#token-blocks canvas.thumb').evaluateAll((cs: HTMLCanvasElement[]) =>
      cs.map((c) => {
        const d = c.getContext('2d')?.getImageData(0, 0, c.width, c.height).data ?? new Uint8ClampedArray();
        const colours = new Set<number>();
        for (let i = 0; i < d.length; i += 4) colours.add((d[i] << 16) | (d[i + 1] << 8) | d[i + 2]);
        return [c.width, c.height, colours.size];
      }),
    );
    t.diagnostic(`block thumbnails (width, height, colours): ${JSON.stringify(blockThumbs)}`);
    for (const [w, hgt, colours] of blockThumbs.slice(0, 3)) assert.ok(w === 8 && hgt === 8 && colours >= 4, 'blocks 1-3: token maps that vary');

    // a block opens its layer: the token map large, the class token's relevance and share
    await blocks.nth(1).click();
    await view.locator('#flow .layer.selected', { hasText: 'encoder_layer_1/Add_1' }).waitFor({ timeout: 10_000 });
    const large = view.locator('#layer-detail canvas.large');
    await large.waitFor({ state: 'visible', timeout: 10_000 });
    assert.deepEqual(await large.evaluate((c: HTMLCanvasElement) => [c.width, c.height]), [8, 8]);
    const note = (await view.locator('#layer-detail .token-note').innerText()).trim();
    t.diagnostic(note);
    assert.match(note, /on the 8×8 patch grid .* class token R = \S+, -?\d+(\.\d)?% of this layer's relevance/);
    // the layer detail's top channels (features of the tokens) with their conditional maps
    await view.locator('#layer-detail .concept-channel').first().waitFor({ timeout: 30_000 });
    await page.waitForTimeout(300);
    await screenshot(page, 'e2e-vit-01-token-flow');

    // the README's picture: the whole panel (a tall window, the side bar hidden)
    await page.setViewportSize({ width: 1600, height: 1880 });
    await page.keyboard.press('Control+B');
    await page.waitForTimeout(800);
    await view.locator('#app').evaluate(() => window.scrollTo(0, 0));
    await page.mouse.move(1, 1); // no hover highlight in the picture
    await page.waitForTimeout(300);
    const shot = await page.locator('.editor-group-container.active').screenshot();
    await sharp(shot).resize({ width: 1100 }).png({ compressionLevel: 9, palette: true }).toFile(path.join(ARTIFACTS, 'e2e-vit-readme.png'));
    await page.keyboard.press('Control+B');
    await page.setViewportSize({ width: 1600, height: 1000 });

    // attnlrp: a new explanation, other token maps and another heatmap
    const hashCp = await heatmapHash(view);
    const runBefore = await view.locator('#heatmap').getAttribute('data-run-id');
    await view.locator('#attention').evaluate((el: HTMLElement & { value: string }) => {
      el.value = 'attnlrp';
      el.dispatchEvent(new Event('change', { bubbles: true }));
    });
    await view.locator(`#heatmap:not([data-run-id="${runBefore}"])`).waitFor({ state: 'attached', timeout: 60_000 });
    await waitReady(view);
    assert.equal(await valueOf(view, 'attention'), 'attnlrp');
    const attn = await shares(view);
    t.diagnostic(`class shares cp: ${cp.map((s) => s.toFixed(3)).join(' ')}`);
    t.diagnostic(`class shares attnlrp: ${attn.map((s) => s.toFixed(3)).join(' ')}`);
    assert.equal(attn.length, TOKEN_LAYERS);
    assert.notDeepEqual(attn, cp, 'the class shares changed with the attention rule');
    assert.notEqual(await heatmapHash(view), hashCp, 'the heatmap changed with the attention rule');
    assert.match(await view.locator('#status').innerText(), /Explained “triangle”/);
    await page.waitForTimeout(300);
    await screenshot(page, 'e2e-vit-02-attnlrp');
  });
});

test('the attention choice is kept over a window reload', { timeout: 120_000 }, async (t) => {
  await withEvidence(t, page, server, 'e2e-vit-failure-restore', async () => {
    await reloadWindow(page);
    const view = await webviewFor(page, 'shape.png');
    await waitReady(view);
    await view.locator('#attention-field').waitFor({ state: 'visible', timeout: 10_000 });
    assert.equal(await valueOf(view, 'attention'), 'attnlrp');
    assert.equal((await tokenThumbs(view)).length, TOKEN_LAYERS);
  });
});

test('ConvNeXt (no attention): no attention selector, no token rows, spatial maps as before', { timeout: 120_000 }, async (t) => {
  await withEvidence(t, page, server, 'e2e-vit-failure-convnext', async () => {
    await openWorkbench(page, server!.url(wsConvnext), 'shape.png', 'model.onnx');
    await explorerCommand(page, 'shape.png', 'Explain Prediction');
    const view = await webviewFor(page, 'shape.png');
    await waitReady(view);
    assert.equal((await view.locator('#top5 .prediction .label').first().innerText()).trim(), 'triangle');
    assert.equal(await view.locator('#attention-field').isHidden(), true, 'no attention selector');
    assert.equal(await view.locator('#flow .cls-share').count(), 0);
    assert.equal(await view.locator('#token-flow-note').isHidden(), true);
    assert.ok((await view.locator('#flow .layer[data-op="Conv"] canvas.thumb').count()) >= 4, 'Conv layers keep their maps');
    await screenshot(page, 'e2e-vit-03-convnext');
  });
});
