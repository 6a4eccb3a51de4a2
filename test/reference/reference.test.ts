// Acceptance 1: every case of test/fixtures/lrp-reference/manifest.json (CNNs) and of
// test/fixtures/lrp-reference-modern/manifest.json (ViT, ConvNeXt: spec section 7) through the built
// CLI (`explain --model --input --target --rules --out-relevance`), each within its tolerance.relL2.
// Needs `npm run build` (dist/cli.js) first; `npm test` does that.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { CLI, FIXTURES_DIR, REFERENCE_DIR, makeTmpDir, readNpyFile, relL2, runCli } from '../helpers';

interface Case {
  id: string;
  model: string;
  input: string;
  layout: string;
  target: number;
  rules: Record<string, unknown>;
  expected: string;
  logit: number;
  relevanceSum: number;
  tolerance: { relL2: number };
  float32Noise: number;
}

const MANIFEST_DIRS = [REFERENCE_DIR, path.join(FIXTURES_DIR, 'lrp-reference-modern')];
const CONCURRENCY = 2;

for (const dir of MANIFEST_DIRS) {
  const MANIFEST = path.join(dir, 'manifest.json');
  const manifest = JSON.parse(readFileSync(MANIFEST, 'utf8')) as { cases: Case[] };

  describe(`LRP reference fixtures (${path.relative(FIXTURES_DIR, MANIFEST)})`, { concurrency: CONCURRENCY }, () => {
    let tmp: { dir: string; cleanup: () => void };
    before(() => {
      assert.ok(existsSync(CLI), `${CLI} is missing: run \`npm run build\` first`);
      tmp = makeTmpDir('lrp-lens-ref-');
    });
    after(() => tmp?.cleanup());

    it('the manifest lists cases', () => {
      assert.ok(manifest.cases.length > 0, `${MANIFEST} has no cases`);
      assert.equal(new Set(manifest.cases.map((c) => c.id)).size, manifest.cases.length, 'case ids are unique');
    });

    manifest.cases.forEach((c, i) => {
      it(c.id, async (t) => {
        const rel = (p: string) => path.resolve(dir, p);
        const slug = `${i}-${c.id.replace(/[^A-Za-z0-9.-]+/g, '_')}`;
        const rulesFile = path.join(tmp.dir, `${slug}.rules.json`);
        const outFile = path.join(tmp.dir, `${slug}.relevance.npy`);
        writeFileSync(rulesFile, JSON.stringify(c.rules));
        const args = [
          'explain',
          '--model', rel(c.model),
          '--input', rel(c.input),
          '--target', String(c.target),
          '--rules', rulesFile,
          '--out-relevance', outFile,
        ];
        const r = await runCli(args);
        assert.equal(r.code, 0, `CLI failed (exit ${r.code}): ${r.stderr.trim()}\n  node ${CLI} ${args.join(' ')}`);
        const got = readNpyFile(outFile);
        const want = readNpyFile(rel(c.expected));
        assert.equal(got.dtype, 'float32', 'relevance dtype');
        assert.deepEqual(got.dims, want.dims, 'relevance shape');
        const err = relL2(got.data as Float32Array, want.data as Float32Array);
        let sum = 0;
        for (const v of got.data as Float32Array) sum += v;
        t.diagnostic(
          `relL2 ${err.toExponential(3)} (tolerance ${c.tolerance.relL2}); relevance sum ${sum.toFixed(5)} vs ${c.relevanceSum.toFixed(5)}`,
        );
        assert.ok(
          err <= c.tolerance.relL2,
          `${c.id}: relL2 ${err.toExponential(3)} exceeds tolerance ${c.tolerance.relL2} ` +
            `(engine relevance sum ${sum.toFixed(6)}, expected ${c.relevanceSum.toFixed(6)}, logit ${c.logit.toFixed(6)})`,
        );
      });
    });
  });
}
