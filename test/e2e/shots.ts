// Screenshots of the panel for demo photos (for the README): media/screenshot-<image>.png.
// Each argument is an image in demo/images and the demo model (folder in demo/models) to explain
// it with, selected with the status bar item as a user would, optionally a composite chosen in
// the panel, and optionally a heatmap view (overlay, alone, side; the file name then ends in it):
//   node --import tsx test/e2e/shots.ts shape-triangle.png=shapes-resnet astronaut-face.png=emotion=epsilon-gamma-box \
//       chelsea.png=mobilenet-v2 chelsea.png=mobilenet-v2=epsilon-gamma-box=side
// (the demo's pretrained models are written by `node scripts/demo-setup.mjs` first)
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Page } from 'playwright-core';
import sharp from 'sharp';
import { CodeServer, ensureTools, ensureVsix, explorerCommand, launchBrowser, openWorkbench, ROOT, webviewFor } from './harness';

/** Clicks the LRP Lens status bar item (it opens the model choice). */
async function clickModelStatus(page: Page): Promise<void> {
  await page.keyboard.press('Escape');
  const item = page.locator('.statusbar-item', { hasText: /model\.(onnx|json)|Select LRP model/ }).first();
  await item.waitFor({ state: 'visible', timeout: 60_000 });
  await item.click();
}

/** Picks the model whose label contains `name` in the open quick pick. */
async function pickModel(page: Page, name: string): Promise<void> {
  const input = page.locator('.quick-input-widget input');
  await input.waitFor({ state: 'visible', timeout: 30_000 });
  await input.fill(name);
  await page.locator('.quick-input-list .monaco-list-row', { hasText: `${name}/model.` }).first().waitFor({ timeout: 10_000 });
  await page.keyboard.press('Enter');
  await page.locator('.statusbar-item', { hasText: 'model.' }).first().waitFor({ state: 'visible', timeout: 10_000 });
}

async function main(): Promise<void> {
  const jobs = process.argv.slice(2).map((a) => {
    const [image, model, composite, mode] = a.split('=');
    if (!image || !model) throw new Error(`expected IMAGE=MODEL[=COMPOSITE[=VIEW]], got '${a}'`);
    return { image, model, composite, mode };
  });
  if (!jobs.length) throw new Error('name one or more IMAGE=MODEL pairs (demo/images, demo/models)');
  ensureTools();
  const vsix = ensureVsix();
  const workspace = path.join(ROOT, 'demo');
  const server = new CodeServer({
    vsix,
    workspace,
    settings: { 'workbench.colorTheme': 'Default Dark Modern', 'git.enabled': false },
  });
  await server.start();
  const browser = await launchBrowser();
  try {
    const page = await browser.newPage({ viewport: { width: 2100, height: 1050 } });
    await openWorkbench(page, server.url(), 'images');
    await page.locator('.explorer-folders-view .monaco-list-row[aria-label="images"]').click();
    for (const { image, model, composite, mode } of jobs) {
      await clickModelStatus(page);
      await pickModel(page, model);
      await explorerCommand(page, image, 'Explain Prediction');
      const view = await webviewFor(page, image);
      await view.locator('#app[data-state="ready"]').waitFor({ timeout: 120_000 });
      if (composite) {
        const runBefore = await view.locator('#heatmap').getAttribute('data-run-id');
        await view.locator('#composite').evaluate((el: HTMLElement & { value: string }, c: string) => {
          el.value = c;
          el.dispatchEvent(new Event('change', { bubbles: true }));
        }, composite);
        await view.locator(`#heatmap:not([data-run-id="${runBefore}"])`).waitFor({ state: 'attached', timeout: 60_000 });
        await view.locator('#app[data-state="ready"]').waitFor({ timeout: 120_000 });
      }
      if (mode)
        await view.locator('#heatmap-mode').evaluate((el: HTMLElement & { value: string }, m: string) => {
          el.value = m;
          el.dispatchEvent(new Event('change', { bubbles: true }));
        }, mode);
      await page.keyboard.press('Control+B'); // hide the side bar: the panel gets the width
      await page.waitForTimeout(800);
      const out = path.join(ROOT, 'media', `screenshot-${path.basename(image, path.extname(image))}${mode ? `-${mode}` : ''}.png`);
      const shot = await page.locator('.editor-group-container.active').screenshot();
      await sharp(shot).resize({ width: 1100 }).png({ compressionLevel: 9, palette: true }).toFile(out);
      process.stdout.write(`${out} (${fs.statSync(out).size} bytes)\n`);
      await page.keyboard.press('Control+B');
      // close the panel: the next one opens in the same editor group, full width
      await page.locator('.tab.active .tab-actions .action-label').first().click();
    }
  } finally {
    await browser.close();
    await server.stop();
    server.cleanup();
  }
}

main().catch((err) => {
  process.stderr.write(`shots: ${(err as Error).stack}\n`);
  process.exit(1);
});
