// Issue 9, acceptance 2: small versions of the transformer-era torchvision families (a ViT in two
// opsets, a Swin, a ConvNeXt; test/fixtures/small-families, made by
// scripts/coverage/small_families.py) explain with three composites under both attention modes:
// finite relevance with a finite, non-zero sum, and the engine's logits equal torch's within
// 1e-4 * max(1, |logit|). The same checks as the torchvision coverage table (scripts/coverage/run.ts).
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { Explainer } from '../../src/explain/explainer';
import { Tensor } from '../../src/engine/graph/graph';
import { FIXTURES_DIR, readNpyFile } from '../helpers';
import { ATTENTION, COMPOSITES, LOGIT_TOL, checkExplanation, coverageRules } from '../../scripts/coverage/run';

const DIR = path.join(FIXTURES_DIR, 'small-families');
interface Entry {
  id: string;
  model: string;
  input: string;
  logits: string;
}
const manifest = JSON.parse(readFileSync(path.join(DIR, 'manifest.json'), 'utf8')) as { models: Entry[] };

describe('small torchvision families (ViT, Swin, ConvNeXt)', () => {
  it('the manifest lists the four models', () => {
    assert.deepEqual(manifest.models.map((m) => m.id).sort(), ['convnext-op17', 'swin-op17', 'vit-op14', 'vit-op17']);
  });

  for (const m of manifest.models)
    describe(m.id, () => {
      let ex: Explainer;
      let x: Tensor;
      let want: Float32Array;
      let target = 0;
      before(async () => {
        ex = await Explainer.load(path.join(DIR, m.model));
        x = readNpyFile(path.join(DIR, m.input));
        want = readNpyFile(path.join(DIR, m.logits)).data as Float32Array;
        for (let i = 1; i < want.length; i++) if (want[i] > want[target]) target = i;
      });
      after(() => ex?.dispose());

      if (m.id.startsWith('swin'))
        it('the shape arithmetic folds away: pad amounts, the shifted-window mask (ScatterND), bias tables', () => {
          const ops = new Set(ex.graph.nodes.map((n) => n.opType));
          for (const op of ['Shape', 'ScatterND', 'Mod', 'Range', 'Where', 'Equal', 'ConstantOfShape'])
            assert.ok(!ops.has(op), `a ${op} node is left after canonisation`);
          const pads = ex.graph.nodes.filter((n) => n.opType === 'Pad');
          assert.ok(pads.length > 0, 'the padded token grid keeps its Pad nodes');
          for (const p of pads) assert.ok(ex.graph.initializers.has(p.inputs[1]), `${p.name}: pads are not a constant`);
        });

      for (const composite of COMPOSITES)
        for (const attention of ATTENTION)
          it(`${composite}, attention ${attention}`, async (t) => {
            const rules = coverageRules(composite, attention, x.data as Float32Array);
            const e = await ex.explain(x, { rules, target });
            const c = checkExplanation(e.relevance.data as Float32Array, e.logits, want, target);
            t.diagnostic(`relevance sum ${c.sum.toPrecision(5)}, logit ${e.logit.toPrecision(5)}, logit error ${c.logitErr.toExponential(2)}`);
            assert.deepEqual(c.failures, []);
            // these small models are well conditioned: every logit agrees, not only the target's
            assert.ok(c.logitErr <= LOGIT_TOL, `largest logit error ${c.logitErr.toExponential(2)}`);
            for (const l of e.layers) assert.ok(Number.isFinite(l.relevanceSum), `layer ${l.name}: relevance sum ${l.relevanceSum}`);
          });
    });
});
