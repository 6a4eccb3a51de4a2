import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Explainer } from '../src/explain/explainer';
import { parseRulesConfig } from '../src/engine/config';
import { readNpy } from '../src/engine/io/npy';
const dir = process.argv[2];
const filter = process.argv[3] ?? '';
const m = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8'));
(async () => {
  const cache = new Map<string, Explainer>();
  for (const c of m.cases) {
    if (!c.id.includes(filter)) continue;
    let ex = cache.get(c.model);
    if (!ex) { ex = await Explainer.load(join(dir, c.model)); cache.set(c.model, ex); }
    const x = readNpy(readFileSync(join(dir, c.input)), c.input);
    const exp = readNpy(readFileSync(join(dir, c.expected)), c.expected);
    try {
      const e = await ex.explain(x, { target: c.target, rules: parseRulesConfig(c.rules) });
      const a = e.relevance.data as Float32Array, b = exp.data as Float32Array;
      let num = 0, den = 0;
      for (let i = 0; i < a.length; i++) { num += (a[i] - b[i]) ** 2; den += b[i] ** 2; }
      const rel = Math.sqrt(num / den);
      console.log(rel <= c.tolerance.relL2 ? 'PASS' : 'FAIL', c.id, rel.toExponential(3), 'tol', c.tolerance.relL2, 'sum', e.relevanceSum.toFixed(4), 'exp', c.relevanceSum.toFixed(4), 'logit', e.logit.toFixed(4), c.logit.toFixed(4));
    } catch (err) { console.log('ERR', c.id, (err as Error).stack); }
  }
  for (const ex of cache.values()) await ex.dispose();
})();
