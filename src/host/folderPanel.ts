// Explain All Images in Folder: one webview panel per folder with a grid of thumbnails (photo with
// its heatmap blended in, top-1 label and score), filled as the results arrive. One engine session
// (the runner's cache) explains every image; progress is a cancellable notification. Clicking an
// image opens its full explain panel.
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import { webviewHtml } from './webviewHtml';
import { listImages } from '../explain/batch';
import {
  FOLDER_PROTOCOL_VERSION,
  parseFolderPersistedState,
  parseFolderWebviewMessage,
  type FolderHostMessage,
  type FolderItemResult,
  type FolderRunState,
  type IndexState,
} from '../protocol';
import { readSettings, resolvePath } from './config';
import { CancelledError, describeError, isCancelled, UntrustedError } from './errors';
import { logError, logLine } from './log';
import { ExplainPanel, notifyError, type PanelDeps } from './panel';
import { ENGINE_ERRORS } from '../explain/server/protocol';
import type { Job, RunRequest } from './runner';
import type { Settings } from './settings';

export const FOLDER_VIEW_TYPE = 'lrpLens.folder';

/** Longest side of a grid thumbnail, in pixels. */
export const THUMB_MAX_SIDE = 192;

type Outcome = { kind: 'item'; result: FolderItemResult } | { kind: 'error'; error: FolderHostMessage & { type: 'itemError' } };

export class FolderPanel implements vscode.Disposable {
  private static readonly panels = new Map<string, FolderPanel>();

  private readonly disposables: vscode.Disposable[] = [];
  private files: string[] = [];
  private outcomes: (Outcome | undefined)[] = [];
  private status: FolderHostMessage & { type: 'status' } = { type: 'status', runId: 0, state: 'starting', done: 0, failed: 0, total: 0 };
  private runId = 0;
  private ready = false;
  private disposed = false;
  private cancelRunning: ((hard?: boolean) => void) | undefined;
  /** Cancels the running concept indexing (Index Concepts). */
  private cancelIndex: (() => void) | undefined;
  private indexStatus: (FolderHostMessage & { type: 'indexStatus' }) | undefined;

  static all(): FolderPanel[] {
    return [...FolderPanel.panels.values()];
  }

  /** Opens (or reveals and re-runs) the grid of a folder. */
  static show(deps: PanelDeps, folderUri: vscode.Uri): FolderPanel {
    const existing = FolderPanel.panels.get(folderUri.fsPath);
    if (existing) {
      existing.panel.reveal(undefined, false);
      void existing.run();
      return existing;
    }
    const panel = vscode.window.createWebviewPanel(
      FOLDER_VIEW_TYPE,
      `Explain: ${path.basename(folderUri.fsPath)}/`,
      { viewColumn: vscode.ViewColumn.Active, preserveFocus: false },
      FolderPanel.webviewOptions(deps.extensionUri, folderUri),
    );
    return new FolderPanel(deps, panel, folderUri);
  }

  /** Restores a grid after a window reload (WebviewPanelSerializer): explains the folder again. */
  static restore(deps: PanelDeps, panel: vscode.WebviewPanel, folderUri: vscode.Uri): FolderPanel {
    FolderPanel.panels.get(folderUri.fsPath)?.dispose();
    panel.webview.options = FolderPanel.webviewOptions(deps.extensionUri, folderUri);
    return new FolderPanel(deps, panel, folderUri);
  }

  static webviewOptions(extensionUri: vscode.Uri, folderUri: vscode.Uri): vscode.WebviewOptions & vscode.WebviewPanelOptions {
    return {
      enableScripts: true,
      enableCommandUris: false,
      localResourceRoots: [vscode.Uri.joinPath(extensionUri, 'dist'), vscode.Uri.joinPath(extensionUri, 'media'), folderUri],
    };
  }

  private constructor(
    private readonly deps: PanelDeps,
    readonly panel: vscode.WebviewPanel,
    readonly folderUri: vscode.Uri,
  ) {
    FolderPanel.panels.set(folderUri.fsPath, this);
    panel.iconPath = vscode.Uri.joinPath(deps.extensionUri, 'media', 'icon.png');
    panel.webview.html = this.html();
    this.disposables.push(
      panel.onDidDispose(() => this.dispose()),
      panel.webview.onDidReceiveMessage((raw) => {
        this.onMessage(raw).catch((err) => logError('folder panel message', err));
      }),
    );
  }

  get folderPath(): string {
    return this.folderUri.fsPath;
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.cancelRunning?.();
    this.cancelIndex?.();
    if (FolderPanel.panels.get(this.folderPath) === this) FolderPanel.panels.delete(this.folderPath);
    for (const d of this.disposables) d.dispose();
    this.panel.dispose();
  }

  private post(msg: FolderHostMessage): void {
    if (this.disposed) return;
    this.panel.webview.postMessage(msg).then(undefined, (err) => logError('postMessage', err));
  }

  private html(): string {
    return webviewHtml(this.panel.webview, this.deps.extensionUri, { css: 'folder.css', script: 'folder.js' });
  }


  private async onMessage(raw: unknown): Promise<void> {
    const msg = parseFolderWebviewMessage(raw);
    if (!msg) {
      logLine(`ignored a malformed message from the folder panel: ${JSON.stringify(raw)?.slice(0, 200)}`);
      return;
    }
    switch (msg.type) {
      case 'ready':
        this.ready = true;
        if (this.status.runId > 0) this.replay();
        else await this.run();
        break;
      case 'open': {
        const file = this.files[msg.index];
        if (file !== undefined) ExplainPanel.show(this.deps, vscode.Uri.file(path.join(this.folderPath, file)));
        break;
      }
      case 'cancel':
        this.cancelRunning?.(true);
        break;
      case 'rerun':
        await this.run();
        break;
      case 'indexConcepts':
        await this.indexConcepts();
        break;
      case 'cancelIndex':
        this.cancelIndex?.();
        break;
    }
  }

  private postIndex(state: IndexState, message: string, extra: { done?: number; total?: number; layer?: string } = {}): void {
    this.indexStatus = { type: 'indexStatus', state, message, ...extra };
    this.post(this.indexStatus);
  }

  /**
   * Index Concepts: the user picks a layer of the model; every image of the folder is scored by
   * the relevance each channel of the layer carries for its predicted class (in the engine
   * process, with progress and Cancel), cached in the extension's storage per model, layer and
   * folder. Explain panels then show each channel's reference crops in their layer detail.
   */
  private async indexConcepts(): Promise<void> {
    if (this.cancelIndex) return; // one indexing at a time; Cancel stops it
    let cancelled = false;
    let job: Job<unknown> | undefined;
    const cancel = (): void => {
      cancelled = true;
      void job?.cancel(true);
    };
    this.cancelIndex = cancel;
    const folderName = path.basename(this.folderPath);
    try {
      if (!vscode.workspace.isTrusted) throw new UntrustedError();
      const settings = readSettings(this.folderUri);
      const modelPath = await this.deps.models.resolve(this.folderUri);
      const req = this.requestFor(settings, modelPath);
      this.postIndex('running', `Reading the layers of ${path.basename(modelPath)}…`);
      const layersJob = this.deps.runner.conceptLayers(req);
      job = layersJob;
      const { layers } = await layersJob.result;
      if (cancelled) throw new CancelledError();
      if (!layers.length) throw new Error(`${modelPath} has no layer with channels to index (Conv, Gemm or MatMul)`);
      // the layers nearest the output first: their channels are the most abstract concepts
      const pick = await vscode.window.showQuickPick(
        [...layers].reverse().map((l) => ({ label: l.name, description: `${l.opType}, ${l.channels} channels`, layer: l.name })),
        { title: `Index Concepts of ${folderName}/`, placeHolder: 'The layer whose channels get reference examples', matchOnDescription: true },
      );
      if (!pick || cancelled) throw new CancelledError();
      const total = this.files.length || undefined;
      const t0 = performance.now();
      const r = await vscode.window.withProgress(
        { location: vscode.ProgressLocation.Notification, title: `LRP Lens: indexing ${folderName}/ for ${pick.layer}`, cancellable: true },
        async (progress, token) => {
          token.onCancellationRequested(cancel);
          this.postIndex('running', `Indexing for ${pick.layer}…`, { layer: pick.layer, done: 0, ...(total ? { total } : {}) });
          const indexJob = this.deps.runner.conceptIndex(req, this.folderPath, pick.layer, this.deps.conceptIndexRoot, (message) => {
            if (cancelled) return;
            progress.report({ message });
            const m = /^(\d+)\/(\d+)/.exec(message);
            this.postIndex('running', `Indexing for ${pick.layer}: ${message}`, { layer: pick.layer, ...(m ? { done: Number(m[1]), total: Number(m[2]) } : {}) });
          });
          job = indexJob;
          return indexJob.result;
        },
      );
      const ok = r.images - r.errors.length;
      logLine(
        `concept index ${this.folderPath} model=${modelPath} layer=${r.layer} images=${r.images} failed=${r.errors.length} ` +
          `${r.cached ? 'cached' : 'scored'} in ${r.indexDir} total=${(performance.now() - t0).toFixed(0)}ms`,
      );
      this.postIndex(
        'done',
        `${ok} of ${r.images} images indexed for ${r.layer}${r.cached ? ' (unchanged since the last index)' : ''}` +
          `${r.errors.length ? `; ${r.errors.map((e) => `${e.file}: ${e.error}`).join('; ')}` : ''}. ` +
          `An image's layer detail for ${r.layer} now shows each channel's reference examples.`,
        { layer: r.layer, done: r.images, total: r.images },
      );
      for (const p of ExplainPanel.all()) p.conceptIndexChanged();
    } catch (err) {
      if (isCancelled(err) || cancelled) {
        if (!this.disposed) this.postIndex('cancelled', 'Indexing cancelled.');
        return;
      }
      const error = describeError(err);
      logError(`indexing ${this.folderPath} for concepts`, err);
      this.postIndex('error', `${error.title}: ${error.message}`);
    } finally {
      if (this.cancelIndex === cancel) this.cancelIndex = undefined;
    }
  }

  /** The engine request of the folder's settings (the image path is set per image). */
  private requestFor(settings: Settings, modelPath: string): RunRequest {
    return {
      imagePath: this.folderPath,
      modelPath,
      labelsPath: settings.labelsPath ? resolvePath(settings.labelsPath, this.folderUri) : undefined,
      backend: settings.backend,
      preprocessing: settings.preprocessing,
      preprocessingFromSetting: settings.preprocessingFromSetting,
      rules: settings.rules,
    };
  }

  /** The webview was re-created (hidden and shown again): send what is known so far. */
  private replay(): void {
    const runId = this.status.runId;
    this.post({ type: 'init', version: FOLDER_PROTOCOL_VERSION, folderPath: this.folderPath, folderName: path.basename(this.folderPath), files: this.files, runId });
    this.outcomes.forEach((o, index) => {
      if (o?.kind === 'item') this.post({ type: 'item', runId, index, result: o.result });
      else if (o?.kind === 'error') this.post(o.error);
    });
    this.post(this.status);
    if (this.indexStatus) this.post(this.indexStatus);
  }

  private setStatus(runId: number, state: FolderRunState, extra: { message?: string; model?: string } = {}): void {
    if (runId !== this.runId) return;
    const done = this.outcomes.filter((o) => o).length;
    const failed = this.outcomes.filter((o) => o?.kind === 'error').length;
    this.status = { type: 'status', runId, state, done, failed, total: this.files.length, model: extra.model ?? this.status.model, ...(extra.message ? { message: extra.message } : {}) };
    this.post(this.status);
  }

  /** Explains every image of the folder (again); replaces a running batch. */
  async run(): Promise<void> {
    if (!this.ready || this.disposed) return;
    this.cancelRunning?.();
    const runId = ++this.runId;
    let cancelled = false;
    let job: Job<unknown> | undefined;
    // the user's Cancel stops the engine's current image (terminating the engine if it does not stop in time)
    const cancel = (hard = false): void => {
      cancelled = true;
      void job?.cancel(hard);
    };
    this.cancelRunning = cancel;
    const check = (): void => {
      if (cancelled || runId !== this.runId || this.disposed) throw new CancelledError();
    };
    const folderName = path.basename(this.folderPath);
    this.status = { type: 'status', runId, state: 'starting', done: 0, failed: 0, total: 0 };
    try {
      this.files = listImages(this.folderPath);
    } catch (err) {
      this.files = [];
      this.outcomes = [];
      this.post({ type: 'init', version: FOLDER_PROTOCOL_VERSION, folderPath: this.folderPath, folderName, files: [], runId });
      this.setStatus(runId, 'error', { message: (err as Error).message });
      return;
    }
    this.outcomes = new Array(this.files.length).fill(undefined);
    this.post({ type: 'init', version: FOLDER_PROTOCOL_VERSION, folderPath: this.folderPath, folderName, files: this.files, runId });
    if (!this.files.length) {
      this.setStatus(runId, 'done', { message: 'No images in this folder (png, jpg, jpeg, webp, gif, tif, tiff, bmp).' });
      return;
    }
    this.setStatus(runId, 'starting', { message: 'Finding the model…' });
    const t0 = performance.now();
    try {
      await vscode.window.withProgress(
        { location: vscode.ProgressLocation.Notification, title: `LRP Lens: ${folderName}/`, cancellable: true },
        async (progress, token) => {
          token.onCancellationRequested(() => cancel(true));
          if (!vscode.workspace.isTrusted) throw new UntrustedError();
          const settings = readSettings(this.folderUri);
          const modelPath = await this.deps.models.resolve(this.folderUri);
          check();
          progress.report({ message: `loading ${path.basename(modelPath)}…` });
          this.setStatus(runId, 'starting', { message: `Loading ${path.basename(modelPath)}…`, model: modelPath });
          const req = this.requestFor(settings, modelPath);
          const loading = this.deps.runner.load(req, (message) => progress.report({ message }));
          job = loading;
          const { backend } = await loading.result;
          check();
          const total = this.files.length;
          this.setStatus(runId, 'running', { model: modelPath });
          for (let index = 0; index < total; index++) {
            check();
            const file = this.files[index];
            progress.report({ message: `${index + 1}/${total} ${file}`, increment: index === 0 ? 0 : 100 / total });
            const t = performance.now();
            try {
              const picture = { colormap: settings.colormap, view: settings.heatmap.view, percentile: settings.heatmap.percentile, gamma: settings.heatmap.gamma };
              const thumbJob = this.deps.runner.thumbnail({ ...req, imagePath: path.join(this.folderPath, file) }, picture, THUMB_MAX_SIDE);
              job = thumbJob;
              const r = await thumbJob.result;
              check();
              const result: FolderItemResult = {
                label: r.label,
                score: r.score,
                target: r.target,
                relevanceSum: r.relevanceSum,
                timeMs: performance.now() - t,
                thumb: { width: r.thumb.width, height: r.thumb.height, rgb: r.thumb.rgb.slice().buffer },
              };
              this.outcomes[index] = { kind: 'item', result };
              this.post({ type: 'item', runId, index, result });
            } catch (err) {
              if (isCancelled(err) || cancelled) throw new CancelledError();
              // the engine died: every further image would fail the same way
              if ((err as Error)?.name === ENGINE_ERRORS.crashed || (err as Error)?.name === ENGINE_ERRORS.memory) throw err;
              const error = describeError(err);
              logError(`explaining ${file}`, err);
              const msg: FolderHostMessage & { type: 'itemError' } = { type: 'itemError', runId, index, error };
              this.outcomes[index] = { kind: 'error', error: msg };
              this.post(msg);
            }
            this.setStatus(runId, 'running');
          }
          const failed = this.outcomes.filter((o) => o?.kind === 'error').length;
          logLine(
            `explain folder ${this.folderPath} model=${modelPath} backend=${backend} rules=${req.rules.composite} ` +
              `images=${total} failed=${failed} total=${(performance.now() - t0).toFixed(0)}ms`,
          );
          this.setStatus(runId, 'done', failed ? { message: `${failed} of ${total} images could not be explained.` } : {});
          void this.deps.models.refreshStatus(this.folderUri);
        },
      );
    } catch (err) {
      if (isCancelled(err)) {
        if (runId === this.runId && !this.disposed) {
          logLine(`cancelled: ${this.folderPath}`);
          this.setStatus(runId, 'cancelled', { message: 'Cancelled.' });
        }
        return;
      }
      if (runId !== this.runId || this.disposed) return;
      const error = describeError(err);
      logError(`explaining the folder ${this.folderPath}`, err);
      this.setStatus(runId, 'error', { message: `${error.title}: ${error.message}` });
      notifyError(error, this.deps.models, this.folderUri, () => this.run());
    } finally {
      if (this.cancelRunning === cancel) this.cancelRunning = undefined;
    }
  }
}

/** Registers `lrpLens.explainFolder` and the grid's serializer (restored panels explain the folder again). */
export function registerFolderCommand(
  context: vscode.ExtensionContext,
  deps: PanelDeps,
  safe: <A extends unknown[]>(name: string, fn: (...args: A) => unknown) => (...args: A) => Promise<void>,
): void {
  const explainFolder = async (uri?: vscode.Uri, selected?: vscode.Uri[]): Promise<void> => {
    let targets = selected?.length ? selected : uri instanceof vscode.Uri ? [uri] : [];
    if (!targets.length) {
      const picked = await vscode.window.showOpenDialog({
        canSelectFiles: false,
        canSelectFolders: true,
        canSelectMany: false,
        openLabel: 'Explain All Images',
        defaultUri: vscode.workspace.workspaceFolders?.[0]?.uri,
      });
      if (!picked?.length) return;
      targets = picked;
    }
    if (!vscode.workspace.isTrusted) {
      const manage = 'Manage Workspace Trust';
      const choice = await vscode.window.showWarningMessage(`LRP Lens: ${new UntrustedError().message}`, manage);
      if (choice === manage) await vscode.commands.executeCommand('workbench.trust.manage');
      return;
    }
    for (const t of targets) {
      let isDir = false;
      try {
        isDir = t.scheme === 'file' && fs.statSync(t.fsPath).isDirectory();
      } catch {
        // reported below
      }
      if (!isDir) {
        void vscode.window.showErrorMessage(`LRP Lens: ${t.scheme === 'file' ? t.fsPath : t.toString()} is not a folder on disk.`);
        continue;
      }
      FolderPanel.show(deps, t);
    }
  };
  context.subscriptions.push(
    vscode.commands.registerCommand('lrpLens.explainFolder', safe('explainFolder', explainFolder)),
    vscode.window.registerWebviewPanelSerializer(FOLDER_VIEW_TYPE, {
      async deserializeWebviewPanel(panel: vscode.WebviewPanel, state: unknown): Promise<void> {
        try {
          const s = parseFolderPersistedState(state);
          logLine(`restoring a folder panel: ${s?.folderPath ?? '(no state)'}`);
          let isDir = false;
          try {
            isDir = !!s && fs.statSync(s.folderPath).isDirectory();
          } catch {
            // gone
          }
          if (!s || !isDir) {
            panel.dispose();
            return;
          }
          FolderPanel.restore(deps, panel, vscode.Uri.file(s.folderPath));
        } catch (err) {
          logError('restoring a folder panel', err);
          panel.dispose();
        }
      },
    }),
    { dispose: () => FolderPanel.all().forEach((p) => p.dispose()) },
  );
}
