// What every panel script needs: the VS Code webview API (acquired once) and a tiny DOM helper.

export interface VsCodeApi {
  postMessage(msg: unknown): void;
  getState(): unknown;
  setState(state: unknown): void;
}
declare function acquireVsCodeApi(): VsCodeApi;

let api: VsCodeApi | undefined;

/** The webview API; VS Code allows acquiring it only once per page. */
export function vscodeApi(): VsCodeApi {
  api ??= acquireVsCodeApi();
  return api;
}

export type Child = Node | string | null | undefined | false;

/** An element with attributes (`class` sets className) and children (falsy ones skipped). */
export function h<K extends keyof HTMLElementTagNameMap>(tag: K, props?: Record<string, string>, ...children: Child[]): HTMLElementTagNameMap[K];
export function h(tag: string, props?: Record<string, string>, ...children: Child[]): HTMLElement;
export function h(tag: string, props: Record<string, string> = {}, ...children: Child[]): HTMLElement {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k === 'class') el.className = v;
    else el.setAttribute(k, v);
  }
  for (const c of children) if (c !== null && c !== undefined && c !== false) el.append(c);
  return el;
}

/** A vscode-single-select element's value. */
export interface SelectEl extends HTMLElement {
  value: string;
}

/** A vscode-single-select with its options (a description shows beside an option in the list). */
export function select(id: string, options: readonly { value: string; label: string; description?: string }[], value: string): SelectEl {
  const el = h('vscode-single-select', { id }) as SelectEl;
  for (const o of options) {
    const opt = h('vscode-option', { value: o.value }, o.label);
    if (o.description) opt.setAttribute('description', o.description);
    el.append(opt);
  }
  el.value = value;
  return el;
}
