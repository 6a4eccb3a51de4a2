// Notices when a model file changes on disk (size or mtime, polled with fs.watchFile: works for
// files outside the workspace too). The engine checks the same on every request and reloads; this
// lets open panels offer to explain again. No `vscode` import.
import * as fs from 'node:fs';
import type { ModelStat } from '../explain/server/protocol';

interface Watch {
  listeners: Set<Listener>;
  onChange: (cur: fs.Stats) => void;
}

interface Listener {
  /** The stat the listener's result was computed with. */
  stat: ModelStat;
  changed: () => void;
  notified: boolean;
}

const watches = new Map<string, Watch>();

/** How often a watched model file is checked, in ms. */
export const MODEL_POLL_MS = 1000;

/**
 * Calls `changed` once when `file`'s size or mtime differs from `stat` (a file that disappears
 * counts). Returns the function that stops watching.
 */
export function watchModel(file: string, stat: ModelStat, changed: () => void): () => void {
  let w = watches.get(file);
  if (!w) {
    const listeners = new Set<Listener>();
    const onChange = (cur: fs.Stats): void => {
      for (const l of [...listeners]) {
        if (l.notified || (cur.size === l.stat.size && cur.mtimeMs === l.stat.mtimeMs)) continue;
        l.notified = true;
        try {
          l.changed();
        } catch {
          // a listener's failure does not stop the others
        }
      }
    };
    w = { listeners, onChange };
    watches.set(file, w);
    fs.watchFile(file, { interval: MODEL_POLL_MS, persistent: false }, onChange);
  }
  const listener: Listener = { stat, changed, notified: false };
  w.listeners.add(listener);
  const watch = w;
  return () => {
    watch.listeners.delete(listener);
    if (!watch.listeners.size && watches.get(file) === watch) {
      watches.delete(file);
      fs.unwatchFile(file, watch.onChange);
    }
  };
}
