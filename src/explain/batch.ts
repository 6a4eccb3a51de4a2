// Batch explanations of a folder of images: listing the images, naming the outputs, the
// summary.csv rows and a progress display. No engine imports: the CLI and the VS Code folder view
// both use it.
import { readdirSync, statSync } from 'node:fs';
import * as path from 'node:path';

/** Image file extensions a batch picks up (compared case-insensitively). */
export const BATCH_IMAGE_EXTENSIONS = ['png', 'jpg', 'jpeg', 'webp', 'gif', 'tif', 'tiff', 'bmp'] as const;

export function isBatchImage(name: string): boolean {
  return (BATCH_IMAGE_EXTENSIONS as readonly string[]).includes(path.extname(name).slice(1).toLowerCase());
}

/** Natural order (img2 before img10), case-insensitive, then by code point so the order is total. */
export function compareNames(a: string, b: string): number {
  return a.localeCompare(b, 'en', { numeric: true, sensitivity: 'base' }) || (a < b ? -1 : a > b ? 1 : 0);
}

/**
 * The image files directly inside `dir` (not recursive, hidden files skipped), sorted by name.
 * Throws an Error naming the folder when it cannot be read.
 */
export function listImages(dir: string): string[] {
  let entries: import('node:fs').Dirent[];
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'folder not found' : code === 'ENOTDIR' ? 'not a folder' : (err as Error).message;
    throw new Error(`${dir}: ${why}`);
  }
  const names: string[] = [];
  for (const e of entries) {
    if (e.name.startsWith('.') || !isBatchImage(e.name)) continue;
    let file = e.isFile();
    if (e.isSymbolicLink()) {
      try {
        file = statSync(path.join(dir, e.name)).isFile();
      } catch {
        file = true; // a dangling link: listed, and its row reports the error
      }
    }
    if (file) names.push(e.name);
  }
  return names.sort(compareNames);
}

/**
 * Output file names for the heatmaps: `<name>-heatmap.png`; names that would collide
 * (`a.png` and `a.jpg`) keep their extension: `a.png-heatmap.png`, `a.jpg-heatmap.png`.
 */
export function heatmapNames(files: readonly string[]): string[] {
  const stem = (f: string): string => path.basename(f, path.extname(f));
  const counts = new Map<string, number>();
  for (const f of files) counts.set(stem(f).toLowerCase(), (counts.get(stem(f).toLowerCase()) ?? 0) + 1);
  return files.map((f) => ((counts.get(stem(f).toLowerCase()) ?? 0) > 1 ? `${f}-heatmap.png` : `${stem(f)}-heatmap.png`));
}

export interface BatchRow {
  file: string;
  /** Top-1 class of the model. */
  label?: string;
  /** Softmax probability of the top-1 class. */
  score?: number;
  /** The explained class (the top-1 class unless a target was given). */
  target?: number;
  relevanceSum?: number;
  timeMs: number;
  /** File name of the heatmap PNG (in the output folder). */
  heatmap?: string;
  error?: string;
}

export const CSV_HEADER = ['file', 'label', 'score', 'target', 'relevance_sum', 'time_ms', 'heatmap', 'error'] as const;

/** One CSV field (RFC 4180): quoted when it holds a comma, quote or line break. */
export function csvField(v: string | number | undefined): string {
  if (v === undefined) return '';
  const s = typeof v === 'number' ? (Number.isFinite(v) ? String(v) : '') : v;
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

export function csvLine(fields: readonly (string | number | undefined)[]): string {
  return fields.map(csvField).join(',') + '\n';
}

export function batchRowCsv(r: BatchRow): string {
  const num = (v: number | undefined, digits: number): string | undefined =>
    v === undefined ? undefined : Number(v.toPrecision(digits)).toString();
  return csvLine([
    r.file,
    r.label,
    num(r.score, 6),
    r.target,
    num(r.relevanceSum, 6),
    r.timeMs.toFixed(1),
    r.heatmap,
    r.error?.replace(/\s*\n\s*/g, ' '),
  ]);
}

/** The whole summary.csv for `rows`. */
export function batchCsv(rows: readonly BatchRow[]): string {
  return csvLine(CSV_HEADER) + rows.map(batchRowCsv).join('');
}

interface ProgressStream {
  write(s: string): unknown;
  isTTY?: boolean;
  columns?: number;
}

/**
 * Progress on a stream: on a TTY one bar redrawn in place (`[#####-----] 5/10 name.png`),
 * otherwise one plain line per finished item.
 */
export class BatchProgress {
  private done = 0;
  private drawn = false;

  constructor(
    private readonly stream: ProgressStream,
    private readonly total: number,
  ) {}

  get tty(): boolean {
    return !!this.stream.isTTY;
  }

  /** Before an item starts (TTY only: shows its name). */
  start(name: string): void {
    if (this.tty) this.draw(name);
  }

  /** After an item; `line` is the plain-text outcome (`label 0.93, 41 ms` or `error: ...`). */
  finish(name: string, line: string, failed = false): void {
    this.done++;
    if (this.tty) {
      if (failed) {
        this.clear();
        this.stream.write(`${name}: ${line}\n`);
      }
      this.draw(this.done === this.total ? '' : name);
    } else this.stream.write(`[${this.done}/${this.total}] ${name}: ${line}\n`);
  }

  /** Ends the bar's line (TTY). */
  end(): void {
    if (this.tty && this.drawn) {
      this.stream.write('\n');
      this.drawn = false;
    }
  }

  private clear(): void {
    if (this.drawn) this.stream.write('\r\x1b[2K');
  }

  private draw(name: string): void {
    const cols = Math.max(40, this.stream.columns ?? 80);
    const width = Math.min(30, Math.max(10, cols - 40));
    const filled = this.total ? Math.round((width * this.done) / this.total) : width;
    const count = `${this.done}/${this.total}`;
    const room = cols - width - count.length - 5;
    const label = name.length > room ? '…' + name.slice(name.length - room + 1) : name;
    this.clear();
    this.stream.write(`[${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${count} ${label}`);
    this.drawn = true;
  }
}
