// Prepares the demo workspace: copies the pretrained emotion model (a tf.js GraphModel, MIT, from
// the dev dependency @vladmandic/human) into demo/models/emotion/ as model.json + emotion.bin.
// The copies are git-ignored; labels.txt and preprocessing.json beside them are committed.
//   node scripts/demo-setup.mjs        (idempotent; npm run demo and npm run demo:cli run it)
import { copyFileSync, existsSync, mkdirSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const SOURCE = join(ROOT, 'node_modules', '@vladmandic', 'human', 'models');
const TARGET = join(ROOT, 'demo', 'models', 'emotion');
// model.json's weightsManifest names emotion.bin, so the weights keep their name.
const FILES = [
  ['emotion.json', 'model.json'],
  ['emotion.bin', 'emotion.bin'],
];

export function setupDemo() {
  if (!existsSync(join(SOURCE, 'emotion.json')))
    throw new Error(`${SOURCE}/emotion.json is missing: run \`npm ci\` (the model comes from the dev dependency @vladmandic/human)`);
  mkdirSync(TARGET, { recursive: true });
  for (const [from, to] of FILES) {
    const src = join(SOURCE, from);
    const dst = join(TARGET, to);
    if (existsSync(dst) && statSync(dst).size === statSync(src).size && statSync(dst).mtimeMs >= statSync(src).mtimeMs) continue;
    copyFileSync(src, dst);
  }
  return TARGET;
}

if (resolve(process.argv[1] ?? '') === fileURLToPath(import.meta.url)) {
  try {
    const dir = setupDemo();
    process.stdout.write(`demo: emotion model ready in ${dir}\n`);
  } catch (err) {
    process.stderr.write(`demo: ${err.message}\n`);
    process.exit(1);
  }
}
