// The repository stands alone: no test, script or source file reaches a path outside it (a fresh
// clone in an empty folder has nothing beside it), and the engine imports no backend.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { REPO_DIR } from '../helpers';

/** Every tracked or new (not ignored) file under the given folders, repository-relative. */
function repoFiles(...dirs: string[]): string[] {
  const out = execFileSync('git', ['ls-files', '--cached', '--others', '--exclude-standard', '--', ...dirs], {
    cwd: REPO_DIR,
    encoding: 'utf8',
  });
  // test/fixtures holds data; this file holds the patterns themselves.
  return out.split('\n').filter((f) => f && !f.startsWith('test/fixtures/') && f !== 'test/unit/standalone.test.ts');
}

const CODE = /\.(ts|mts|mjs|js|cjs|sh|json)$/;

/** A string literal or path fragment that leaves the repository. */
const OUTSIDE = [
  /\.\.\/shared\b/, // the steering folder beside the clone
  /['"`]\.\.['"`]\s*,\s*['"`]shared['"`]/, // path.join(ROOT, '..', 'shared')
  /['"`]\/work\//, // this machine's absolute layout
  /(\.\.\/){3,}(?!node_modules)/, // three levels up from a test file is outside test/, src/ or scripts/
];

test('no test, script or source file refers to a path outside the repository', () => {
  const files = repoFiles('test', 'scripts', 'src', 'webview', '.ci').filter((f) => CODE.test(f) || f.startsWith('.ci/'));
  assert.ok(files.length > 50, `found only ${files.length} files to check`);
  const hits: string[] = [];
  for (const f of files) {
    const lines = readFileSync(path.join(REPO_DIR, f), 'utf8').split('\n');
    lines.forEach((line, i) => {
      for (const re of OUTSIDE) if (re.test(line)) hits.push(`${f}:${i + 1}: ${line.trim()}`);
    });
  }
  assert.deepEqual(hits, [], `paths outside the repository:\n${hits.join('\n')}`);
});

test('the checker itself catches a path outside the repository', () => {
  const up = '..';
  const examples = [`readFileSync('${up}/shared/docs/a.md')`, `path.join(ROOT, '${up}', 'shared')`, `'/work/shared/a'`];
  const caught = examples.filter((l) =>
    OUTSIDE.some((re) => re.test(l)),
  );
  assert.equal(caught.length, 3);
});

test('no file under src/engine imports from src/backends or from src/explain', () => {
  const files = repoFiles('src/engine').filter((f) => f.endsWith('.ts'));
  assert.ok(files.length > 10);
  const hits: string[] = [];
  for (const f of files) {
    const src = readFileSync(path.join(REPO_DIR, f), 'utf8');
    for (const m of src.matchAll(/(?:from|import|require)\s*\(?\s*['"](\.[^'"]+)['"]/g)) {
      const target = path.relative(REPO_DIR, path.resolve(REPO_DIR, path.dirname(f), m[1]));
      if (target.startsWith('src/backends') || target.startsWith('src/explain') || !target.startsWith('src/engine'))
        hits.push(`${f} imports ${m[1]}`);
    }
  }
  assert.deepEqual(hits, []);
});

test('the extension host loads no engine: src/host and src/extension.ts import no backend, explainer or model code', () => {
  const files = [...repoFiles('src/host'), 'src/extension.ts'].filter((f) => f.endsWith('.ts'));
  assert.ok(files.length > 5);
  // what the host may load at run time: the engine protocol, the rules config (settings
  // validation), the folder listing (explain/batch.ts has no engine import) and the .npy writer
  // (the export), and the preprocessing vocabulary the settings validate against (pure modules
  // without imports of their own: resize modes, interpolations, spec presets); everything else,
  // the model folder's preprocessing and labels included, runs in the engine process
  const allowed = [
    'src/explain/server/protocol',
    'src/engine/config',
    'src/explain/batch',
    'src/engine/io/npy',
    'src/engine/io/preprocess',
    'src/engine/io/preprocessing-spec',
  ];
  const hits: string[] = [];
  for (const f of files) {
    const src = readFileSync(path.join(REPO_DIR, f), 'utf8');
    for (const m of src.matchAll(/(?:^|\n)\s*(?:import|export)\s+(?!type\b)[^'"]*?from\s+['"](\.[^'"]+)['"]|import\(\s*['"](\.[^'"]+)['"]\s*\)/g)) {
      const spec = m[1] ?? m[2];
      const target = path.relative(REPO_DIR, path.resolve(REPO_DIR, path.dirname(f), spec));
      const engineSide = ['src/engine', 'src/explain', 'src/backends'].some((d) => target.startsWith(d));
      if (engineSide && !allowed.includes(target)) hits.push(`${f} imports ${spec}`);
    }
  }
  assert.deepEqual(hits, []);
});
