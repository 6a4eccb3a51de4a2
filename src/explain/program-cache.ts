// The compiled programs of one Explainer (LRP per rule config, gradient programs, batched forward
// passes): least recently used first out, bounded by count and by the weight bytes the programs
// hold (a ResNet-50 LRP program holds 170 to 270 MB of weights, its session several times that).
// A program evicted while it runs is released when its last run ends.
import type { CompiledGraph } from '../backends/backend';
import type { Graph } from '../engine/graph/graph';

export interface CacheLimits {
  /** Most programs kept at once (at least 1). */
  count: number;
  /** Most weight bytes kept at once; the newest program stays even when it alone is larger. */
  bytes: number;
}

/** A compiled program and what its builder noted about it (e.g. an LRP program's layer table). */
export interface CachedProgram<M> {
  compiled: CompiledGraph;
  meta: M;
}

interface Entry<M> {
  program: Promise<CachedProgram<M>>;
  bytes: number;
}

/** Bytes of the initializers a program graph holds. */
export function weightBytes(g: Graph): number {
  let n = 0;
  for (const t of g.initializers.values()) n += t.data.byteLength;
  return n;
}

/** Wraps a compiled graph so that dispose() waits for runs in flight. */
function guarded(c: CompiledGraph): CompiledGraph {
  let running = 0;
  let disposeWanted = false;
  let disposed: Promise<void> | undefined;
  const dispose = (): Promise<void> => (disposed ??= c.dispose());
  return {
    async run(feeds) {
      if (disposeWanted) throw new Error('the compiled program was released');
      running++;
      try {
        return await c.run(feeds);
      } finally {
        running--;
        if (disposeWanted && running === 0) void dispose().catch(() => undefined);
      }
    },
    dispose() {
      disposeWanted = true;
      return running === 0 ? dispose() : Promise.resolve();
    },
  };
}

export class ProgramCache<M = undefined> {
  private readonly entries = new Map<string, Entry<M>>();

  constructor(private readonly limits: CacheLimits) {}

  get size(): number {
    return this.entries.size;
  }

  get bytes(): number {
    let n = 0;
    for (const e of this.entries.values()) n += e.bytes;
    return n;
  }

  /**
   * The program under `key`, built with `build` when missing: it returns the weight bytes the
   * program holds, the compiling promise and the program's meta. A failed build is not kept.
   */
  get(key: string, build: () => { bytes: number; compiled: Promise<CompiledGraph>; meta: M }): Promise<CachedProgram<M>> {
    const hit = this.entries.get(key);
    if (hit) {
      this.entries.delete(key);
      this.entries.set(key, hit); // most recently used last
      return hit.program;
    }
    const made = build();
    const entry: Entry<M> = { bytes: made.bytes, program: made.compiled.then((c) => ({ compiled: guarded(c), meta: made.meta })) };
    entry.program.catch(() => {
      if (this.entries.get(key) === entry) this.entries.delete(key);
    });
    this.entries.set(key, entry);
    this.evict();
    return entry.program;
  }

  private evict(): void {
    let total = this.bytes;
    const count = Math.max(1, this.limits.count);
    while (this.entries.size > 1 && (this.entries.size > count || total > this.limits.bytes)) {
      const [key, oldest] = this.entries.entries().next().value as [string, Entry<M>];
      this.entries.delete(key);
      total -= oldest.bytes;
      void oldest.program.then((p) => p.compiled.dispose()).catch(() => undefined);
    }
  }

  /** Release every program (runs in flight finish first). */
  async clear(): Promise<void> {
    const all = [...this.entries.values()];
    this.entries.clear();
    for (const e of all) await e.program.then((p) => p.compiled.dispose()).catch(() => undefined);
  }
}
