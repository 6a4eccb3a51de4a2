// One build config for every bundle. Native and runtime-provided modules stay external.
import * as esbuild from 'esbuild';
import { chmodSync, existsSync } from 'node:fs';

const production = process.argv.includes('--production');
const shared = {
  bundle: true,
  sourcemap: !production,
  minify: production,
  logLevel: 'warning',
  external: ['vscode', 'onnxruntime-node', 'sharp', '@tensorflow/tfjs-node'],
};

const builds = [
  { ...shared, entryPoints: ['src/cli.ts'], outfile: 'dist/cli.js', platform: 'node', format: 'cjs', target: 'node20',
    banner: { js: '#!/usr/bin/env node' } },
];
if (existsSync('src/extension.ts'))
  builds.push({ ...shared, entryPoints: ['src/extension.ts'], outfile: 'dist/extension.js', platform: 'node', format: 'cjs', target: 'node20' });
// the engine process the extension forks (src/host/engineClient.ts)
if (existsSync('src/explain/server/main.ts'))
  builds.push({ ...shared, entryPoints: ['src/explain/server/main.ts'], outfile: 'dist/engine.js', platform: 'node', format: 'cjs', target: 'node20' });
// the worker thread that forks and talks to the engine process (src/host/engineLink.ts)
if (existsSync('src/host/engineLinkWorker.ts'))
  builds.push({ ...shared, entryPoints: ['src/host/engineLinkWorker.ts'], outfile: 'dist/engine-link.js', platform: 'node', format: 'cjs', target: 'node20' });
if (existsSync('webview/main.ts'))
  builds.push({ ...shared, entryPoints: ['webview/main.ts'], outfile: 'dist/webview.js', platform: 'browser', format: 'iife', target: 'es2022' });
if (existsSync('webview/folder.ts'))
  builds.push({ ...shared, entryPoints: ['webview/folder.ts'], outfile: 'dist/folder.js', platform: 'browser', format: 'iife', target: 'es2022' });

await Promise.all(builds.map((b) => esbuild.build(b)));
chmodSync('dist/cli.js', 0o755);
