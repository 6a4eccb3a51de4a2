// One package per platform: every target's file list (staged by scripts/package.mjs --list, the
// same staging `npm run package` zips) holds that platform's onnxruntime-node and sharp/libvips
// binaries and no other platform's; built .vsix files found in the repository root are checked
// the same way from their zip directory. Needs `npm run build` (dist/) and, on the first run, the
// npm registry (sharp's platform packages are fetched with `npm pack`, then cached in .cache/).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { REPO_DIR } from '../helpers';

const TARGETS: Record<string, { os: string; arch: string; sharp: RegExp }> = {
  'linux-x64': { os: 'linux', arch: 'x64', sharp: /^node_modules\/@img\/sharp-(libvips-)?linux-x64\// },
  'linux-arm64': { os: 'linux', arch: 'arm64', sharp: /^node_modules\/@img\/sharp-(libvips-)?linux-arm64\// },
  'darwin-arm64': { os: 'darwin', arch: 'arm64', sharp: /^node_modules\/@img\/sharp-(libvips-)?darwin-arm64\// },
  'win32-x64': { os: 'win32', arch: 'x64', sharp: /^node_modules\/@img\/sharp-win32-x64\// },
  'win32-arm64': { os: 'win32', arch: 'arm64', sharp: /^node_modules\/@img\/sharp-win32-arm64\// },
};

const NATIVE = /\.(node|dll|dylib)$|\.so(\.\d+)*$|\.dylib$/;

/** File names in a zip's central directory. */
function zipEntries(file: string): string[] {
  const b = readFileSync(file);
  let eocd = -1;
  for (let i = b.length - 22; i >= Math.max(0, b.length - 65557); i--)
    if (b.readUInt32LE(i) === 0x06054b50) {
      eocd = i;
      break;
    }
  assert.ok(eocd >= 0, `${file}: not a zip`);
  const count = b.readUInt16LE(eocd + 10);
  let p = b.readUInt32LE(eocd + 16);
  const names: string[] = [];
  for (let i = 0; i < count; i++) {
    assert.equal(b.readUInt32LE(p), 0x02014b50, `${file}: central directory entry ${i}`);
    const n = b.readUInt16LE(p + 28);
    const extra = b.readUInt16LE(p + 30);
    const comment = b.readUInt16LE(p + 32);
    names.push(b.toString('utf8', p + 46, p + 46 + n));
    p += 46 + n + extra + comment;
  }
  return names;
}

/** The checks on one package's files (paths relative to the extension folder). */
function checkFiles(target: string, files: string[]): string[] {
  const t = TARGETS[target];
  const native = files.filter((f) => NATIVE.test(f));
  const ortDir = new RegExp(`^node_modules/onnxruntime-node/bin/napi-v\\d+/${t.os}/${t.arch}/`);
  for (const f of native) assert.ok(ortDir.test(f) || t.sharp.test(f), `${target}: native file of another platform or module: ${f}`);
  assert.ok(native.some((f) => ortDir.test(f) && f.endsWith('/onnxruntime_binding.node')), `${target}: onnxruntime binding`);
  assert.ok(native.some((f) => t.sharp.test(f) && f.endsWith('.node')), `${target}: sharp binding`);
  assert.ok(native.some((f) => t.sharp.test(f) && /libvips/.test(f)), `${target}: libvips`);
  for (const other of Object.keys(TARGETS).filter((o) => o !== target)) {
    const o = TARGETS[other];
    assert.ok(!files.some((f) => f.includes(`/${o.os}/${o.arch}/`) || f.includes(`sharp-${other}`) || f.includes(`libvips-${other}`)), `${target}: holds files of ${other}`);
  }
  // what the extension needs at run time, on every platform
  for (const f of ['package.json', 'dist/extension.js', 'dist/engine.js', 'dist/engine-link.js', 'dist/webview.js', 'node_modules/sharp/package.json', 'node_modules/onnxruntime-common/package.json'])
    assert.ok(files.includes(f), `${target}: ${f}`);
  assert.ok(files.some((f) => f.startsWith('node_modules/@tensorflow/tfjs-backend-wasm/dist/') && f.endsWith('.wasm')), `${target}: tf.js wasm binaries`);
  // the dependency closure staged for npm's check stays out
  assert.ok(!files.some((f) => /^node_modules\/(global-agent|adm-zip|@tensorflow\/tfjs-core)\//.test(f)), `${target}: staged-only modules leaked in`);
  return native;
}

test('every platform package holds its own native binaries and no others (staged file lists)', { timeout: 600_000 }, (t) => {
  const r = spawnSync(process.execPath, [path.join(REPO_DIR, 'scripts', 'package.mjs'), '--list', '--skip-build'], { cwd: REPO_DIR, encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr + r.stdout);
  const report = JSON.parse(readFileSync(path.join(REPO_DIR, '.cache', 'package', 'files.json'), 'utf8')) as Record<string, { files: string[] }>;
  for (const target of Object.keys(TARGETS)) {
    assert.ok(report[target], `${target} staged`);
    const native = checkFiles(target, report[target].files);
    t.diagnostic(`${target}: ${report[target].files.length} files; native: ${native.map((f) => f.split('/').slice(-1)[0]).join(', ')}`);
  }
  assert.match(r.stdout, /not packaged: darwin-x64: onnxruntime-node 1\.30 ships no macOS x64 binary/);
});

test('built .vsix files (when present) hold their own native binaries only', (t) => {
  let seen = 0;
  for (const target of Object.keys(TARGETS)) {
    const vsix = path.join(REPO_DIR, `lrp-lens-${target}.vsix`);
    if (!existsSync(vsix)) continue;
    seen++;
    const entries = zipEntries(vsix);
    const manifest = entries.find((e) => e === 'extension.vsixmanifest');
    assert.ok(manifest, `${target}: vsix manifest`);
    const files = entries.filter((e) => e.startsWith('extension/')).map((e) => e.slice('extension/'.length));
    checkFiles(target, files);
    t.diagnostic(`${path.basename(vsix)}: ${files.length} files`);
  }
  if (!seen) t.skip('no lrp-lens-<target>.vsix built (npm run package)');
});
