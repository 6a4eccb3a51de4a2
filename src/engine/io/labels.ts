// Class label files: plain text (one label per line), a JSON array, or a JSON object index -> label.

function fail(source: string, what: string): never {
  throw new Error(`${source}: ${what}`);
}

/** A label value from a JSON object: a string, or an array whose last element is the name (ImageNet style). */
function labelValue(v: unknown, key: string, source: string): string {
  if (typeof v === 'string') return v;
  if (Array.isArray(v) && v.length > 0 && typeof v[v.length - 1] === 'string') return v[v.length - 1] as string;
  if (typeof v === 'number') return String(v);
  return fail(source, `label for class "${key}" should be a string or an array ending in a string`);
}

function fromArray(arr: unknown[], source: string): string[] {
  return arr.map((v, i) => labelValue(v, String(i), source));
}

function fromObject(obj: Record<string, unknown>, source: string): string[] {
  const out: string[] = [];
  for (const [key, v] of Object.entries(obj)) {
    if (!/^\d+$/.test(key)) fail(source, `label keys should be class indices ("0", "1", ...), found "${key}"`);
    out[parseInt(key, 10)] = labelValue(v, key, source);
  }
  for (let i = 0; i < out.length; i++) if (out[i] === undefined) out[i] = `class ${i}`;
  return out;
}

function fromJson(text: string, source: string): string[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    return fail(source, `invalid JSON in label file: ${(err as Error).message}`);
  }
  if (Array.isArray(parsed)) return fromArray(parsed, source);
  if (parsed !== null && typeof parsed === 'object') return fromObject(parsed as Record<string, unknown>, source);
  return fail(source, 'a JSON label file should hold an array of labels or an object mapping class index to label');
}

function fromLines(text: string): string[] {
  const lines = text.split(/\r?\n/).map((l) => l.trim());
  if (lines.length > 0 && lines[lines.length - 1] === '') lines.pop();
  return lines;
}

/** Parse class labels. `source` names the file in error messages. */
export function parseLabels(text: string, source: string): string[] {
  const body = text.replace(/^\uFEFF/, '');
  const first = body.trimStart()[0];
  return first === '[' || first === '{' ? fromJson(body, source) : fromLines(body);
}

/** The label of class i, or `class i` when there is none. */
export function labelFor(labels: readonly string[] | undefined, i: number): string {
  const l = labels?.[i];
  return l !== undefined && l !== '' ? l : `class ${i}`;
}
