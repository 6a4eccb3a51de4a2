// The compiled-program cache (engine/program-cache.ts): LRU by count and by weight bytes, failed
// builds dropped, and a program evicted while it runs released only after its run.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import type { CompiledGraph } from '../../src/backends/backend';
import { ProgramCache } from '../../src/explain/program-cache';
import { Explainer } from '../../src/explain/explainer';
import { parseRulesConfig } from '../../src/engine/config';
import { REFERENCE_DIR, readNpyFile, relL2 } from '../helpers';

interface Fake extends CompiledGraph {
  disposed: boolean;
  /** resolves the run in flight */
  finish?: () => void;
}

function fake(blockRuns = false): Fake {
  const f: Fake = {
    disposed: false,
    run() {
      if (f.disposed) return Promise.reject(new Error('run after dispose'));
      if (!blockRuns) return Promise.resolve({});
      return new Promise((resolve) => (f.finish = () => resolve({})));
    },
    dispose() {
      f.disposed = true;
      return Promise.resolve();
    },
  };
  return f;
}

const tick = () => new Promise((r) => setImmediate(r));

describe('ProgramCache', () => {
  it('keeps the most recently used programs up to the count limit', async () => {
    const cache = new ProgramCache({ count: 2, bytes: Infinity });
    const made: Record<string, Fake> = {};
    const get = (k: string) => cache.get(k, () => ({ bytes: 10, meta: undefined, compiled: Promise.resolve((made[k] = fake())) }));
    await get('a');
    await get('b');
    await get('a'); // a is now the most recent
    await get('c'); // evicts b
    await tick();
    assert.equal(cache.size, 2);
    assert.equal(made.b.disposed, true);
    assert.equal(made.a.disposed, false);
    assert.equal(made.c.disposed, false);
    const before = made.a;
    await get('a');
    assert.equal(made.a, before, 'a hit does not rebuild');
    const tagged = new ProgramCache<string>({ count: 2, bytes: Infinity });
    await tagged.get('t', () => ({ bytes: 1, meta: 'layers of t', compiled: Promise.resolve(fake()) }));
    const hit = await tagged.get('t', () => assert.fail('a hit does not build'));
    assert.equal(hit.meta, 'layers of t', 'the meta comes back with the program');
  });

  it('keeps the weight bytes under the budget, but always the newest program', async () => {
    const cache = new ProgramCache({ count: 10, bytes: 100 });
    const made: Record<string, Fake> = {};
    const get = (k: string, bytes: number) => cache.get(k, () => ({ bytes, meta: undefined, compiled: Promise.resolve((made[k] = fake())) }));
    await get('a', 40);
    await get('b', 40);
    assert.equal(cache.bytes, 80);
    await get('c', 40); // 120 > 100: a goes
    await tick();
    assert.deepEqual([cache.size, cache.bytes, made.a.disposed], [2, 80, true]);
    await get('huge', 500); // alone over the budget: it stays, the rest go
    await tick();
    assert.deepEqual([cache.size, cache.bytes, made.b.disposed, made.c.disposed, made.huge.disposed], [1, 500, true, true, false]);
  });

  it('does not keep a failed build', async () => {
    const cache = new ProgramCache({ count: 4, bytes: Infinity });
    await assert.rejects(cache.get('x', () => ({ bytes: 1, meta: undefined, compiled: Promise.reject(new Error('no kernel')) })), /no kernel/);
    await tick();
    assert.equal(cache.size, 0);
    const ok = fake();
    assert.ok(await cache.get('x', () => ({ bytes: 1, meta: undefined, compiled: Promise.resolve(ok) })));
    assert.equal(cache.size, 1);
  });

  it('releases a program evicted during a run only when the run ends', async () => {
    const cache = new ProgramCache({ count: 1, bytes: Infinity });
    const slow = fake(true);
    const { compiled: a } = await cache.get('a', () => ({ bytes: 1, meta: undefined, compiled: Promise.resolve(slow) }));
    const running = a.run({});
    await cache.get('b', () => ({ bytes: 1, meta: undefined, compiled: Promise.resolve(fake()) })); // evicts a mid-run
    await tick();
    assert.equal(slow.disposed, false, 'not released while running');
    slow.finish?.();
    await running;
    await tick();
    assert.equal(slow.disposed, true, 'released after the run');
    await assert.rejects(a.run({}), /released/);
  });
});

describe('Explainer program cache', () => {
  const file = path.join(REFERENCE_DIR, 'shapes-vgg', 'model.onnx');
  const x = readNpyFile(path.join(REFERENCE_DIR, 'shapes-vgg', 'inputs', 'sample0.npy'));
  const rules = ['epsilon', 'epsilon-plus-flat', 'epsilon-gamma-box'].map((composite) => parseRulesConfig({ composite, inputBounds: { low: [-3], high: [3] } }));

  it('a byte budget smaller than one program keeps one, and an evicted program is rebuilt with the same result', async () => {
    const small = await Explainer.load(file, { programCache: { bytes: 1 } });
    const roomy = await Explainer.load(file);
    try {
      const first = await small.explain(x, { rules: rules[0] });
      for (const r of rules.slice(1)) await small.explain(x, { rules: r });
      assert.equal(small.cacheUsage.programs, 1);
      const again = await small.explain(x, { rules: rules[0] });
      assert.equal(relL2(again.relevance.data as Float32Array, first.relevance.data as Float32Array), 0);
      for (const r of rules) await roomy.explain(x, { rules: r });
      assert.equal(roomy.cacheUsage.programs, 3);
      assert.ok(roomy.cacheUsage.bytes > small.cacheUsage.bytes, `bytes ${roomy.cacheUsage.bytes} vs ${small.cacheUsage.bytes}`);
    } finally {
      await small.dispose();
      await roomy.dispose();
    }
  });
});
