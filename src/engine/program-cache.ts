// The compiled programs of one Explainer (LRP per rule config, gradient programs, batched forward
// passes): least recently used first out, bounded by count and by the weight bytes the programs
// hold (a ResNet-50 LRP program holds 170 to 270 MB of weights, its session several times that).
// A program evicted while it runs is released when its last run ends.
import type { CompiledGraph } from '../backends/backend';
import type { Graph } from './graph';

export interface CacheLimits {
  /** Most programs kept at once (at least 1). */
  count: number;
  /** Most weight bytes kept at once; the newest program stays even when it alone is larger. */
  bytes: number;
}

interface Entry {
  compiled: Promise<CompiledGraph>;
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

export class ProgramCache {
  private readonly entries = new Map<string, Entry>();

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
   * program holds and the compiling promise. A failed build is not kept.
   */
  get(key: string, build: () => { bytes: number; compiled: Promise<CompiledGraph> }): Promise<CompiledGraph> {
    const hit = this.entries.get(key);
    if (hit) {
      this.entries.delete(key);
      this.entries.set(key, hit); // most recently used last
      return hit.compiled;
    }
    const made = build();
    const entry: Entry = { bytes: made.bytes, compiled: made.compiled.then(guarded) };
    entry.compiled.catch(() => {
      if (this.entries.get(key) === entry) this.entries.delete(key);
    });
    this.entries.set(key, entry);
    this.evict();
    return entry.compiled;
  }

  private evict(): void {
    let total = this.bytes;
    const count = Math.max(1, this.limits.count);
    while (this.entries.size > 1 && (this.entries.size > count || total > this.limits.bytes)) {
      const [key, oldest] = this.entries.entries().next().value as [string, Entry];
      this.entries.delete(key);
      total -= oldest.bytes;
      void oldest.compiled.then((c) => c.dispose()).catch(() => undefined);
    }
  }

  /** Release every program (runs in flight finish first). */
  async clear(): Promise<void> {
    const all = [...this.entries.values()];
    this.entries.clear();
    for (const e of all) await e.compiled.then((c) => c.dispose()).catch(() => undefined);
  }
}
