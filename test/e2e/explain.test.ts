// End to end: the packaged extension in a real VS Code. Right-click a photo in the Explorer,
// Explain Prediction, and check the panel; then the two error paths.
//   node --import tsx --test test/e2e/explain.test.ts
// Installs what it needs on first use (test/e2e/setup.sh) and packages the extension
// (`npm run package`) unless LRP_E2E_VSIX names a .vsix. Screenshots go to test-artifacts/.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { onnx } from 'onnx-proto';
import type { FrameLocator, Page } from 'playwright-core';
import { CodeServer, explorerCommand, openWorkbench, screenshot, reloadWindow, startVsCode, waitReady, webviewFor, withEvidence, type VsCodeSession } from './harness';

const FIXTURES = path.resolve(__dirname, '../fixtures');
const VGG = path.join(FIXTURES, 'lrp-reference', 'shapes-vgg');
const LABELS = ['circle', 'square', 'triangle', 'cross'];

let server: CodeServer | undefined;
let session: VsCodeSession | undefined;
let page: Page;
let ws: string;
let wsUnsupported: string;

/** A tiny ONNX model: Conv then Einsum (an op the engine does not support). */
function unsupportedModel(): Uint8Array {
  const f = onnx.TensorProto.DataType.FLOAT;
  const valueInfo = (name: string, dims: number[]) =>
    onnx.ValueInfoProto.create({ name, type: { tensorType: { elemType: f, shape: { dim: dims.map((d) => ({ dimValue: d })) } } } });
  const w = Array.from({ length: 2 * 3 * 3 * 3 }, (_, i) => ((i * 37) % 11) / 11 - 0.5);
  const model = onnx.ModelProto.create({
    irVersion: 8,
    producerName: 'lrp-lens-e2e',
    opsetImport: [{ domain: '', version: 13 }],
    graph: {
      name: 'einsum-net',
      input: [valueInfo('input', [1, 3, 64, 64])],
      output: [valueInfo('logits', [1, 2])],
      initializer: [{ name: 'w', dims: [2, 3, 3, 3], dataType: f, floatData: w }],
      node: [
        { name: 'conv', opType: 'Conv', input: ['input', 'w'], output: ['c'], attribute: [] },
        {
          name: 'mix',
          opType: 'Einsum',
          input: ['c'],
          output: ['logits'],
          attribute: [{ name: 'equation', type: onnx.AttributeProto.AttributeType.STRING, s: Buffer.from('bchw->bc') }],
        },
      ],
    },
  });
  return onnx.ModelProto.encode(model).finish();
}

function makeWorkspaces(root: string): void {
  ws = path.join(root, 'workspace');
  fs.mkdirSync(path.join(ws, 'model'), { recursive: true });
  fs.copyFileSync(path.join(VGG, 'model.onnx'), path.join(ws, 'model', 'model.onnx'));
  fs.writeFileSync(path.join(ws, 'model', 'labels.txt'), LABELS.join('\n') + '\n');
  fs.copyFileSync(path.join(VGG, 'inputs', 'sample0.png'), path.join(ws, 'shape.png'));
  // Text in a .PNG file: the image cannot be decoded (and the menu matches upper case).
  fs.writeFileSync(path.join(ws, 'unreadable.PNG'), 'this is not an image\n');
  fs.mkdirSync(path.join(ws, '.vscode'));
  fs.writeFileSync(path.join(ws, '.vscode', 'settings.json'), JSON.stringify({ 'lrpLens.preprocessing': { preset: 'imagenet' } }, null, 2));

  wsUnsupported = path.join(root, 'workspace-unsupported');
  fs.mkdirSync(wsUnsupported, { recursive: true });
  fs.writeFileSync(path.join(wsUnsupported, 'einsum.onnx'), unsupportedModel());
  fs.copyFileSync(path.join(VGG, 'inputs', 'sample0.png'), path.join(wsUnsupported, 'shape.png'));
}

async function canvasStats(view: FrameLocator): Promise<{ width: number; height: number; distinct: number; hash: string }> {
  return view.locator('#heatmap').evaluate((c: HTMLCanvasElement) => {
    const ctx = c.getContext('2d');
    if (!ctx) return { width: 0, height: 0, distinct: 0, hash: '' };
    const d = ctx.getImageData(0, 0, c.width, c.height).data;
    const colours = new Set<number>();
    let h = 2166136261;
    for (let i = 0; i < d.length; i += 4) {
      colours.add((d[i] << 16) | (d[i + 1] << 8) | d[i + 2]);
      h = Math.imul(h ^ d[i] ^ (d[i + 1] << 8) ^ (d[i + 2] << 16), 16777619);
    }
    return { width: c.width, height: c.height, distinct: colours.size, hash: (h >>> 0).toString(16) };
  });
}

before(async () => {
  session = await startVsCode('lrp-e2e-ws-', (root) => {
    makeWorkspaces(root);
    return ws;
  }, { width: 1600, height: 1000 });
  ({ server, page } = session);
});

after(async () => {
  await session?.stop();
});

test('Explain Prediction from the Explorer shows the prediction, heatmap and relevance flow', { timeout: 240_000 }, async (t) => {
  await withEvidence(t, page, server, 'e2e-failure-explain', async () => {
    await openWorkbench(page, server!.url(ws), 'shape.png', 'model.onnx');
    await screenshot(page, 'e2e-01-workbench');
    await explorerCommand(page, 'shape.png', 'Explain Prediction');
    const view = await webviewFor(page, 'shape.png');
    await waitReady(view);
    await page.waitForTimeout(300);
    await screenshot(page, 'e2e-02-panel');

    const top = (await view.locator('#top5 .prediction .label').first().innerText()).trim();
    assert.equal(top, 'triangle', 'top prediction label');
    assert.equal(await view.locator('#top5 .prediction').count(), 4, 'four classes listed');

    const first = await canvasStats(view);
    t.diagnostic(`canvas ${first.width}x${first.height}, ${first.distinct} colours`);
    assert.ok(first.width >= 64 && first.height >= 64, 'canvas has the image size');
    assert.ok(first.distinct > 50, `heatmap pixels are not uniform (${first.distinct} colours)`);

    const convs = view.locator('#flow .layer[data-op="Conv"]');
    const gemms = view.locator('#flow .layer[data-op="Gemm"]');
    assert.ok((await convs.count()) >= 4, 'relevance flow lists the Conv layers');
    assert.ok((await gemms.count()) >= 2, 'relevance flow lists the Gemm layers');
    for (const row of [convs.first(), gemms.first()]) {
      const sum = (await row.locator('.sum').innerText()).trim();
      assert.ok(Number.isFinite(Number(sum)), `layer sum is a number: '${sum}'`);
    }
    assert.ok((await view.locator('#flow canvas.thumb').count()) >= 6, 'thumbnails drawn');

    // Click a layer: its map shows large.
    await convs.first().click();
    await view.locator('#layer-detail canvas.large').waitFor({ state: 'visible', timeout: 10_000 });

    // Another composite: the heatmap changes.
    const runBefore = await view.locator('#heatmap').getAttribute('data-run-id');
    await view.locator('#composite').evaluate((el: HTMLElement & { value: string }) => {
      el.value = 'epsilon';
      el.dispatchEvent(new Event('change', { bubbles: true }));
    });
    await view.locator(`#heatmap:not([data-run-id="${runBefore}"])`).waitFor({ state: 'attached', timeout: 60_000 });
    await waitReady(view);
    const second = await canvasStats(view);
    assert.notEqual(second.hash, first.hash, 'the heatmap changed with the composite');
    assert.ok(second.distinct > 50);
    await screenshot(page, 'e2e-03-composite-epsilon');

    // The float32 stability check of the shown LRP result.
    await view.locator('#check-stability').click();
    const stability = view.locator('#stability', { hasText: 'One float32 ulp' });
    await stability.waitFor({ state: 'visible', timeout: 60_000 });
    const text = (await stability.innerText()).trim();
    t.diagnostic(text);
    await screenshot(page, 'e2e-04-stability');
    assert.match(text, /moves this map by \d\.\de-\d+ \(relative L2, worst of 3\): stable\./);
  });
});

test('the panel is restored after a window reload', { timeout: 120_000 }, async (t) => {
  await withEvidence(t, page, server, 'e2e-failure-restore', async () => {
    await reloadWindow(page);
    const view = await webviewFor(page, 'shape.png');
    await waitReady(view);
    assert.equal((await view.locator('#top5 .prediction .label').first().innerText()).trim(), 'triangle');
    assert.ok((await canvasStats(view)).distinct > 50);
    assert.equal(await view.locator('#composite').evaluate((el: HTMLElement & { value: string }) => el.value), 'epsilon', 'the panel keeps its composite');
    await screenshot(page, 'e2e-03b-restored');
  });
});

test('an unreadable image shows its error in the panel and as a notification', { timeout: 120_000 }, async (t) => {
  await withEvidence(t, page, server, 'e2e-failure-unreadable', async () => {
    await explorerCommand(page, 'unreadable.PNG', 'Explain Prediction');
    const view = await webviewFor(page, 'unreadable.PNG');
    await view.locator('#error .error-title').waitFor({ state: 'visible', timeout: 60_000 });
    assert.equal((await view.locator('#error .error-title').innerText()).trim(), 'Unreadable image');
    assert.match(await view.locator('#error .error-message').innerText(), /unreadable\.PNG/);
    await page.locator('.notifications-toasts', { hasText: 'Unreadable image' }).first().waitFor({ state: 'visible', timeout: 10_000 });
    await screenshot(page, 'e2e-04-unreadable-image');
  });
});

test('a model with an unsupported op shows which node and op', { timeout: 120_000 }, async (t) => {
  await withEvidence(t, page, server, 'e2e-failure-unsupported', async () => {
    await openWorkbench(page, server!.url(wsUnsupported), 'shape.png', 'einsum.onnx');
    await explorerCommand(page, 'shape.png', 'Explain Prediction');
    const view = await webviewFor(page, 'shape.png');
    await view.locator('#error .error-title').waitFor({ state: 'visible', timeout: 60_000 });
    const title = (await view.locator('#error .error-title').innerText()).trim();
    const message = await view.locator('#error .error-message').innerText();
    t.diagnostic(`${title}: ${message}`);
    assert.equal(title, 'Unsupported operator');
    assert.match(message, /Einsum/);
    assert.match(message, /einsum\.onnx/);
    await screenshot(page, 'e2e-05-unsupported-op');
  });
});
