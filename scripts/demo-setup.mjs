// Prepares the demo workspace: copies the pretrained emotion model (a tf.js GraphModel, MIT, from
// the dev dependency @vladmandic/human) into demo/models/emotion/ as model.json + emotion.bin, and
// writes nsfwjs's pretrained MobileNetV2 (a tf.js LayersModel, MIT, from the dev dependency nsfwjs,
// which ships it as JavaScript bundles) into demo/models/mobilenet-v2/ as model.json + its shard.
// The copies are git-ignored; labels.txt and preprocessing.json beside them are committed.
//   node scripts/demo-setup.mjs        (idempotent; npm run demo and npm run demo:cli run it)
import { copyFileSync, existsSync, mkdirSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
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

const NSFWJS = join(ROOT, 'node_modules', 'nsfwjs', 'dist', 'models', 'mobilenet_v2');
const MOBILENET = join(ROOT, 'demo', 'models', 'mobilenet-v2');

/** nsfwjs's MobileNetV2: model.json and its weight shards out of the package's JavaScript bundles. */
export function setupMobileNet() {
  const modelJs = join(NSFWJS, 'model.min.js');
  if (!existsSync(modelJs)) throw new Error(`${modelJs} is missing: run \`npm ci\` (the model comes from the dev dependency nsfwjs)`);
  const target = join(MOBILENET, 'model.json');
  if (existsSync(target) && statSync(target).mtimeMs >= statSync(modelJs).mtimeMs) return MOBILENET;
  const require = createRequire(import.meta.url);
  const json = require(modelJs);
  for (const group of json.weightsManifest)
    for (const p of group.paths) {
      const mod = require(join(NSFWJS, `${p}.min.js`));
      writeFileSync(join(MOBILENET, p), Buffer.from(typeof mod === 'string' ? mod : mod.default, 'base64'));
    }
  writeFileSync(`${target}.tmp`, JSON.stringify(json));
  renameSync(`${target}.tmp`, target);
  return MOBILENET;
}

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
    process.stdout.write(`demo: MobileNetV2 ready in ${setupMobileNet()}\n`);
  } catch (err) {
    process.stderr.write(`demo: ${err.message}\n`);
    process.exit(1);
  }
}
