// Screenshots of the panel for the demo photos (for the README): media/screenshot-<name>.png.
//   node --import tsx test/e2e/shots.ts shape-triangle.png chelsea.png
import * as fs from 'node:fs';
import * as path from 'node:path';
import sharp from 'sharp';
import { CodeServer, ensureTools, ensureVsix, explorerCommand, launchBrowser, openWorkbench, ROOT, webviewFor } from './harness';

async function main(): Promise<void> {
  const files = process.argv.slice(2);
  if (!files.length) throw new Error('name one or more images in demo/images');
  ensureTools();
  const vsix = ensureVsix();
  const workspace = path.join(ROOT, 'demo');
  const server = new CodeServer({
    vsix,
    workspace,
    settings: {
      'lrpLens.labelsPath': path.join(workspace, 'models', 'shapes-resnet.labels.txt'),
      'workbench.colorTheme': 'Default Dark Modern',
      'git.enabled': false,
    },
  });
  await server.start();
  const browser = await launchBrowser();
  try {
    const page = await browser.newPage({ viewport: { width: 2100, height: 1050 } });
    await openWorkbench(page, server.url(), 'images');
    await page.locator('.explorer-folders-view .monaco-list-row[aria-label="images"]').click();
    for (const f of files) {
      await explorerCommand(page, f, 'Explain Prediction');
      const view = await webviewFor(page, f);
      await view.locator('#app[data-state="ready"]').waitFor({ timeout: 120_000 });
      await page.keyboard.press('Control+B'); // hide the side bar: the panel gets the width
      await page.waitForTimeout(800);
      const out = path.join(ROOT, 'media', `screenshot-${path.basename(f, path.extname(f))}.png`);
      const shot = await page.locator('.editor-group-container.active').screenshot();
      await sharp(shot).resize({ width: 1100 }).png({ compressionLevel: 9, palette: true }).toFile(out);
      process.stdout.write(`${out} (${fs.statSync(out).size} bytes)\n`);
      await page.keyboard.press('Control+B');
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
