// `npm run package`: one .vsix per platform (vsce package --target), each holding only that
// platform's native binaries: onnxruntime-node's bin/napi-v*/<os>/<arch> and sharp's
// @img/sharp-<platform> (+ @img/sharp-libvips-<platform>) packages, fetched from the npm registry
// with `npm pack` when they are not the installed ones (cached in .cache/package/tarballs).
//
//   node scripts/package.mjs [--targets linux-x64,darwin-arm64] [--list] [--skip-build]
//
// Each target is staged in .cache/package/stage/<target> (files hard-linked where possible):
// the bundles, media, and a node_modules with the runtime modules the bundle keeps external;
// the modules npm needs to see for its dependency check are staged as package.json only and
// excluded from the package. Writes lrp-lens-<target>.vsix (and lrp-lens.vsix, the linux-x64
// one, which the end-to-end tests install) and .cache/package/files.json: every package's file
// list and size. `--list` stages and lists (vsce ls) without zipping.
import { execFileSync, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, linkSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const CACHE = path.join(ROOT, '.cache', 'package');
const NM = path.join(ROOT, 'node_modules');

/** vsce target -> onnxruntime-node bin folder and sharp's platform packages. */
export const TARGETS = {
  'linux-x64': { ort: 'linux/x64', sharp: ['@img/sharp-linux-x64', '@img/sharp-libvips-linux-x64'] },
  'linux-arm64': { ort: 'linux/arm64', sharp: ['@img/sharp-linux-arm64', '@img/sharp-libvips-linux-arm64'] },
  'darwin-arm64': { ort: 'darwin/arm64', sharp: ['@img/sharp-darwin-arm64', '@img/sharp-libvips-darwin-arm64'] },
  'win32-x64': { ort: 'win32/x64', sharp: ['@img/sharp-win32-x64'] },
  'win32-arm64': { ort: 'win32/arm64', sharp: ['@img/sharp-win32-arm64'] },
};

/** Targets VS Code knows that get no package, and why. */
export const MISSING = {
  'darwin-x64': 'onnxruntime-node 1.30 ships no macOS x64 binary (bin/napi-v6/darwin has arm64 only)',
  'linux-armhf': 'onnxruntime-node ships no 32-bit ARM binary',
  'alpine-x64': 'onnxruntime-node is built for glibc only (sharp has musl builds, onnxruntime does not)',
  'alpine-arm64': 'onnxruntime-node is built for glibc only',
  'win32-ia32': 'onnxruntime-node ships no 32-bit Windows binary',
};

const pkgJson = (dir) => JSON.parse(readFileSync(path.join(dir, 'package.json'), 'utf8'));

function args() {
  const a = process.argv.slice(2);
  const get = (flag) => {
    const i = a.indexOf(flag);
    return i >= 0 ? a[i + 1] : undefined;
  };
  const targets = (get('--targets') ?? Object.keys(TARGETS).join(',')).split(',').map((s) => s.trim()).filter(Boolean);
  for (const t of targets)
    if (!TARGETS[t]) throw new Error(`unknown target '${t}'${MISSING[t] ? ` (not packaged: ${MISSING[t]})` : ''}; known: ${Object.keys(TARGETS).join(', ')}`);
  return { targets, list: a.includes('--list'), skipBuild: a.includes('--skip-build') };
}

/** Hard-link (or copy) a file or a folder tree. */
function place(src, dst) {
  const st = statSync(src);
  if (st.isDirectory()) {
    mkdirSync(dst, { recursive: true });
    for (const e of readdirSync(src)) place(path.join(src, e), path.join(dst, e));
    return;
  }
  mkdirSync(path.dirname(dst), { recursive: true });
  try {
    linkSync(src, dst);
  } catch {
    copyFileSync(src, dst);
  }
}

/** Where Node would find module `name` from folder `from` (nested node_modules first). */
function findModule(name, from) {
  for (let dir = from; ; dir = path.dirname(dir)) {
    const p = path.join(dir, 'node_modules', name);
    if (existsSync(path.join(p, 'package.json'))) return p;
    if (dir === ROOT || path.dirname(dir) === dir) return undefined;
  }
}

/** A platform package of sharp: the installed one when it is there, else unpacked from `npm pack`. */
function sharpPackage(name, version) {
  const installed = path.join(NM, name);
  if (existsSync(installed) && pkgJson(installed).version === version) return installed;
  const dir = path.join(CACHE, 'tarballs', `${name.replace('/', '+')}-${version}`);
  if (existsSync(path.join(dir, 'package', 'package.json'))) return path.join(dir, 'package');
  mkdirSync(dir, { recursive: true });
  process.stderr.write(`fetching ${name}@${version} from the npm registry\n`);
  const out = execFileSync('npm', ['pack', `${name}@${version}`, '--pack-destination', dir, '--silent'], { cwd: dir, encoding: 'utf8' }).trim().split('\n').pop();
  execFileSync('tar', ['-xzf', path.join(dir, out), '-C', dir]);
  rmSync(path.join(dir, out));
  return path.join(dir, 'package');
}

/** Runtime modules staged in full (then filtered by the .vscodeignore patterns). */
const RUNTIME = ['onnxruntime-node', 'onnxruntime-common', 'sharp', '@img/colour', 'detect-libc', 'semver', '@tensorflow/tfjs-backend-wasm'];

function stage(target) {
  const spec = TARGETS[target];
  const dir = path.join(CACHE, 'stage', target);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const manifest = pkgJson(ROOT);
  const sharpVersion = pkgJson(path.join(NM, 'sharp')).optionalDependencies;
  // the package's own files
  for (const f of ['README.md', 'CHANGELOG.md', ...readdirSync(ROOT).filter((f) => /^LICENSE/.test(f))]) if (existsSync(path.join(ROOT, f))) place(path.join(ROOT, f), path.join(dir, f));
  for (const f of readdirSync(path.join(ROOT, 'dist')).filter((f) => /^(extension|engine|engine-link|webview|folder)\.js$|\.wasm$/.test(f))) place(path.join(ROOT, 'dist', f), path.join(dir, 'dist', f));
  place(path.join(ROOT, 'media'), path.join(dir, 'media'));
  // node_modules: the runtime modules, onnxruntime's binaries for this target only
  for (const name of RUNTIME) {
    const src = path.join(NM, name);
    if (name === 'onnxruntime-node') {
      for (const e of readdirSync(src).filter((e) => e !== 'bin')) place(path.join(src, e), path.join(dir, 'node_modules', name, e));
      for (const napi of readdirSync(path.join(src, 'bin'))) {
        const bin = path.join(src, 'bin', napi, spec.ort);
        if (!existsSync(bin)) throw new Error(`${target}: onnxruntime-node has no ${napi}/${spec.ort} binaries`);
        place(bin, path.join(dir, 'node_modules', name, 'bin', napi, spec.ort));
      }
    } else place(src, path.join(dir, 'node_modules', name));
  }
  for (const name of spec.sharp) place(sharpPackage(name, sharpVersion[name]), path.join(dir, 'node_modules', name));
  // what `npm ls` (run by vsce) expects to find: the rest of the dependency closure, package.json only
  const seen = new Set([...RUNTIME, ...spec.sharp]);
  const queue = RUNTIME.map((n) => [n, NM]);
  while (queue.length) {
    const [name, from] = queue.shift();
    const at = findModule(name, from);
    if (!at) continue;
    const pj = pkgJson(at);
    for (const dep of Object.keys({ ...pj.dependencies, ...pj.peerDependencies })) {
      const depAt = findModule(dep, at);
      if (!depAt) continue;
      const rel = path.relative(NM, depAt);
      if (!seen.has(rel)) {
        seen.add(rel);
        const dst = path.join(dir, 'node_modules', rel, 'package.json');
        if (!existsSync(dst)) place(path.join(depAt, 'package.json'), dst);
        queue.push([dep, depAt]);
      }
    }
  }
  const deps = Object.fromEntries(['onnxruntime-node', 'sharp', '@tensorflow/tfjs-backend-wasm'].map((n) => [n, pkgJson(path.join(NM, n)).version]));
  const staged = { ...manifest, dependencies: deps };
  for (const k of ['devDependencies', 'optionalDependencies', 'scripts']) delete staged[k];
  writeFileSync(path.join(dir, 'package.json'), JSON.stringify(staged, null, 2) + '\n');
  // the repository's .vscodeignore, its linux-x64 lines for this target
  const [os, arch] = spec.ort.split('/');
  const ignore = readFileSync(path.join(ROOT, '.vscodeignore'), 'utf8')
    .replaceAll('bin/napi-v6/linux/x64/', `bin/napi-v6/${os}/${arch}/`)
    .split('\n')
    .filter((l) => !/^!node_modules\/@img\/sharp-/.test(l))
    .concat(spec.sharp.map((n) => `!node_modules/${n}/**`))
    .join('\n');
  writeFileSync(path.join(dir, '.vscodeignore'), ignore + '\n');
  return dir;
}

const VSCE = path.join(NM, '@vscode', 'vsce', 'vsce');

function vsce(dir, argv) {
  const r = spawnSync(process.execPath, [VSCE, ...argv], { cwd: dir, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  if (r.status !== 0) throw new Error(`vsce ${argv[0]} failed in ${dir}:\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

function main() {
  const { targets, list, skipBuild } = args();
  if (!skipBuild) execFileSync(process.execPath, [path.join(ROOT, 'scripts', 'build.mjs'), '--production'], { cwd: ROOT, stdio: 'inherit' });
  const filesJson = path.join(CACHE, 'files.json');
  const report = existsSync(filesJson) ? JSON.parse(readFileSync(filesJson, 'utf8')) : {};
  for (const target of targets) {
    const dir = stage(target);
    const files = vsce(dir, ['ls', '--no-yarn']).split('\n').map((s) => s.trim()).filter(Boolean).sort();
    const entry = { target, files, missing: MISSING };
    if (!list) {
      const out = path.join(ROOT, `lrp-lens-${target}.vsix`);
      vsce(dir, ['package', '--no-yarn', '--target', target, '--allow-missing-repository', '--skip-license', '--no-rewrite-relative-links', '--out', out]);
      entry.vsix = path.basename(out);
      entry.bytes = statSync(out).size;
      if (target === 'linux-x64') copyFileSync(out, path.join(ROOT, 'lrp-lens.vsix'));
      process.stdout.write(`${path.basename(out)}: ${(entry.bytes / 1e6).toFixed(1)} MB (${(entry.bytes / 2 ** 20).toFixed(1)} MiB), ${files.length} files\n`);
    } else process.stdout.write(`${target}: ${files.length} files staged\n`);
    report[target] = entry;
  }
  mkdirSync(CACHE, { recursive: true });
  writeFileSync(filesJson, JSON.stringify(report, null, 1) + '\n');
  for (const [t, why] of Object.entries(MISSING)) process.stdout.write(`not packaged: ${t}: ${why}\n`);
}

main();
