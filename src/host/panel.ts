// One webview panel per image: builds the HTML (nonce CSP, local resources only), answers the
// webview's messages, runs explanations (replacing a running one) and handles exports.
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import { webviewHtml } from './webviewHtml';
import {
  COMPOSITES,
  DEFAULT_VIEW,
  parseWebviewMessage,
  PROTOCOL_VERSION,
  type CompareMethod,
  type Composite,
  type ConceptView,
  type ExportKind,
  type FaithfulnessPayload,
  type FaithfulnessScore,
  type MainMethod,
  type HostMessage,
  type PanelError,
  type RuleChoice,
  type ViewOptions,
} from '../protocol';
import { openSettings, readCompare, readSettings, resolvePath, writeCompare } from './config';
import { ACTION_TITLES, CancelledError, describeError, isCancelled, UntrustedError } from './errors';
import { logError, logLine, outputChannel } from './log';
import type { ModelPicker } from './modelPicker';
import { watchModel } from './modelWatch';
import type { CancelOutcome } from './engineClient';
import type { Job, Runner, RunRequest, RunOutput } from './runner';
import { applyRuleChoice, ruleChoiceOf, viewFromSettings, type Settings } from './settings';

export const VIEW_TYPE = 'lrpLens.explain';

export interface PanelDeps {
  extensionUri: vscode.Uri;
  runner: Runner;
  models: ModelPicker;
  /** Where the folder command keeps concept indexes (the extension's storage); the layer detail reads them. */
  conceptIndexRoot: string;
}

export class ExplainPanel implements vscode.Disposable {
  private static readonly panels = new Map<string, ExplainPanel>();

  private readonly disposables: vscode.Disposable[] = [];
  private runId = 0;
  private last: RunOutput | undefined;
  private lastRunId = 0;
  /** The panel's own rule choice (composite/epsilon/gamma); undefined = the setting's. */
  private ruleChoice: Partial<RuleChoice> | undefined;
  private target: number | undefined;
  private view: ViewOptions;
  private ready = false;
  private disposed = false;
  private cancelRunning: (() => void) | undefined;
  /** Stops watching the model file of the shown result. */
  private unwatchModel: (() => void) | undefined;
  /** The main view's method ('lrp' = under the rule choice). */
  private method: MainMethod = 'lrp';
  /** The latest compare request; older ones stop between cells. */
  private compareId = 0;
  private evalId = 0;
  private cancelEval: (() => void) | undefined;
  /** The running concepts request of the layer detail, of the atlas and of the reference crops (a new one replaces it). */
  private readonly conceptJobs: Partial<Record<ConceptView | 'refs', Job<unknown>>> = {};

  static all(): ExplainPanel[] {
    return [...ExplainPanel.panels.values()];
  }

  /** Opens (or reveals) the panel of an image and explains it. */
  static show(deps: PanelDeps, imageUri: vscode.Uri): ExplainPanel {
    const key = imageUri.fsPath;
    const existing = ExplainPanel.panels.get(key);
    if (existing) {
      existing.panel.reveal(undefined, false);
      void existing.explain();
      return existing;
    }
    const panel = vscode.window.createWebviewPanel(
      VIEW_TYPE,
      `Explain: ${path.basename(key)}`,
      { viewColumn: vscode.ViewColumn.Beside, preserveFocus: false },
      ExplainPanel.webviewOptions(deps.extensionUri, imageUri),
    );
    return new ExplainPanel(deps, panel, imageUri);
  }

  /** Restores a panel after a window reload (WebviewPanelSerializer). */
  static restore(
    deps: PanelDeps,
    panel: vscode.WebviewPanel,
    imageUri: vscode.Uri,
    view?: Partial<ViewOptions>,
    rules?: Partial<RuleChoice>,
    method?: MainMethod,
  ): ExplainPanel {
    ExplainPanel.panels.get(imageUri.fsPath)?.dispose();
    panel.webview.options = ExplainPanel.webviewOptions(deps.extensionUri, imageUri);
    const p = new ExplainPanel(deps, panel, imageUri, view);
    p.ruleChoice = rules;
    if (method) p.method = method;
    return p;
  }

  static webviewOptions(extensionUri: vscode.Uri, imageUri: vscode.Uri): vscode.WebviewOptions & vscode.WebviewPanelOptions {
    return {
      enableScripts: true,
      enableCommandUris: false,
      localResourceRoots: [
        vscode.Uri.joinPath(extensionUri, 'dist'),
        vscode.Uri.joinPath(extensionUri, 'media'),
        vscode.Uri.file(path.dirname(imageUri.fsPath)),
      ],
    };
  }

  private constructor(
    private readonly deps: PanelDeps,
    readonly panel: vscode.WebviewPanel,
    readonly imageUri: vscode.Uri,
    view?: Partial<ViewOptions>,
  ) {
    ExplainPanel.panels.set(imageUri.fsPath, this);
    let fromSettings: Partial<ViewOptions> = {};
    try {
      fromSettings = viewFromSettings(readSettings(imageUri));
    } catch {
      // reported when the run reads the settings
    }
    this.view = { ...DEFAULT_VIEW, ...fromSettings, ...view };
    panel.iconPath = vscode.Uri.joinPath(deps.extensionUri, 'media', 'icon.png');
    panel.webview.html = this.html();
    this.disposables.push(
      panel.onDidDispose(() => this.dispose()),
      panel.webview.onDidReceiveMessage((raw) => {
        this.onMessage(raw).catch((err) => logError('panel message', err));
      }),
    );
  }

  get imagePath(): string {
    return this.imageUri.fsPath;
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.cancelRunning?.();
    this.cancelEval?.();
    for (const j of Object.values(this.conceptJobs)) void j?.cancel();
    this.unwatchModel?.();
    this.compareId++;
    if (ExplainPanel.panels.get(this.imagePath) === this) ExplainPanel.panels.delete(this.imagePath);
    for (const d of this.disposables) d.dispose();
    this.panel.dispose();
  }

  private post(msg: HostMessage): void {
    if (this.disposed) return;
    this.panel.webview.postMessage(msg).then(undefined, (err) => logError('postMessage', err));
  }

  private html(): string {
    return webviewHtml(this.panel.webview, this.deps.extensionUri, { css: 'panel.css', script: 'webview.js' });
  }


  private settings(): Settings {
    return readSettings(this.imageUri);
  }

  private async onMessage(raw: unknown): Promise<void> {
    const msg = parseWebviewMessage(raw);
    if (!msg) {
      logLine(`ignored a malformed message from the panel: ${JSON.stringify(raw)?.slice(0, 200)}`);
      return;
    }
    switch (msg.type) {
      case 'ready':
        this.ready = true;
        this.sendInit();
        if (this.last) this.sendResult(this.last);
        else await this.explain();
        break;
      case 'explain':
        if (msg.rules) this.ruleChoice = { ...this.ruleChoice, ...msg.rules };
        if (msg.method) this.method = msg.method;
        this.target = msg.target;
        await this.explain();
        break;
      case 'openMethod':
        if ((COMPOSITES as readonly string[]).includes(msg.method)) {
          this.method = 'lrp';
          this.ruleChoice = { ...this.ruleChoice, composite: msg.method as Composite };
        } else this.method = msg.method as MainMethod;
        this.target = msg.target;
        await this.explain();
        break;
      case 'compare':
        await this.compare(msg.compareId, msg.methods, msg.target);
        break;
      case 'setCompareMethods':
        try {
          await writeCompare(msg.methods, this.imageUri);
        } catch (err) {
          logError('saving lrpLens.compare', err);
          void vscode.window.showErrorMessage(`LRP Lens: cannot save the setting 'lrpLens.compare': ${(err as Error).message}`);
        }
        break;
      case 'evaluate':
        await this.evaluate(msg.methods, msg.target);
        break;
      case 'cancelEvaluate':
        this.cancelEval?.();
        break;
      case 'viewChanged':
        this.view = msg.view;
        break;
      case 'export':
        this.view = msg.view;
        await this.export(msg.kind);
        break;
      case 'action':
        await runAction(msg.action, this.deps.models, this.imageUri, () => this.explain());
        break;
      case 'stability':
        await this.checkStability(msg.runId);
        break;
      case 'concepts':
        await this.concepts(msg.runId, msg.index, msg.view, msg.top);
        break;
      case 'conceptRefs':
        await this.conceptRefs(msg.runId, msg.index, msg.channels);
        break;
    }
  }

  private sendInit(): void {
    let rules: RuleChoice = { composite: 'epsilon-plus-flat', epsilon: 1e-6, gamma: 0.25, attention: 'cp' };
    try {
      rules = ruleChoiceOf(applyRuleChoice(this.settings().rules, this.ruleChoice));
    } catch {
      // shown by the run
    }
    this.post({
      type: 'init',
      version: PROTOCOL_VERSION,
      imagePath: this.imagePath,
      imageName: path.basename(this.imagePath),
      view: this.view,
      rules,
      trusted: vscode.workspace.isTrusted,
    });
    this.sendCompareMethods();
  }

  private sendCompareMethods(stale = false): void {
    const { methods, error } = readCompare(this.imageUri);
    if (error) logLine(error);
    this.post({ type: 'compareMethods', methods, ...(error ? { error } : {}), ...(stale ? { stale } : {}) });
  }

  /** The request of the current settings and panel choices (the model resolved). */
  private async request(target: number | undefined): Promise<RunRequest> {
    if (!vscode.workspace.isTrusted) throw new UntrustedError();
    const settings = this.settings(); // invalid settings are reported before any model pick
    return this.requestFor(settings, await this.deps.models.resolve(this.imageUri), target);
  }

  private requestFor(settings: Settings, modelPath: string, target: number | undefined): RunRequest {
    return {
      imagePath: this.imagePath,
      modelPath,
      labelsPath: settings.labelsPath ? resolvePath(settings.labelsPath, this.imageUri) : undefined,
      backend: settings.backend,
      preprocessing: settings.preprocessing,
      preprocessingFromSetting: settings.preprocessingFromSetting,
      rules: applyRuleChoice(settings.rules, this.ruleChoice),
      target,
    };
  }

  /**
   * Fills the compare grid: one attribution per method on the cached session, posted as it
   * arrives; a newer request (or closing the panel) stops this one between cells.
   */
  private async compare(compareId: number, methods: CompareMethod[], target: number | undefined): Promise<void> {
    this.compareId = compareId;
    const current = (): boolean => compareId === this.compareId && !this.disposed;
    const failAll = (message: string): void => {
      for (const m of methods) this.post({ type: 'compareCellError', compareId, method: m, message });
    };
    let req: RunRequest;
    try {
      req = await this.request(target);
    } catch (err) {
      if (current()) failAll(describeError(err).message);
      return;
    }
    await vscode.window.withProgress({ location: vscode.ProgressLocation.Window, title: 'LRP Lens: compare' }, async (progress) => {
      for (const [i, method] of methods.entries()) {
        if (!current()) return;
        progress.report({ message: `${method} (${i + 1}/${methods.length})` });
        try {
          const a = await this.deps.runner.attribute(req, method).result;
          if (!current()) return;
          this.post({
            type: 'compareCell',
            cell: { compareId, method, target: a.target, map: a.map, logit: a.logit, ms: a.ms, ...(a.layer ? { layer: a.layer } : {}) },
          });
          logLine(`compare ${path.basename(this.imagePath)} ${method}: target=${a.target} ${a.ms.toFixed(0)}ms`);
        } catch (err) {
          if (!current()) return;
          const message = describeError(err).message;
          logLine(`compare ${path.basename(this.imagePath)} ${method}: ${message}`);
          this.post({ type: 'compareCellError', compareId, method, message });
        }
      }
    });
  }

  /**
   * Region perturbation of the compared methods (plus `random` as the baseline), one method at a
   * time so progress, partial curves and Cancel work between methods.
   */
  private async evaluate(methods: CompareMethod[], target: number | undefined): Promise<void> {
    this.cancelEval?.();
    const evalId = ++this.evalId;
    let cancelled = false;
    let running: Job<unknown> | undefined;
    const cancel = (): void => {
      cancelled = true;
      void running?.cancel(true);
    };
    this.cancelEval = cancel;
    const all: CompareMethod[] = methods.includes('random') ? [...methods] : [...methods, 'random'];
    const payload: FaithfulnessPayload = { evalId, state: 'running', target: target ?? 0, targetLabel: '', steps: 0, patch: 0, patches: 0, patchCount: 0, share: 0, methods: [], total: all.length };
    const post = (): void => {
      if (evalId === this.evalId) this.post({ type: 'faithfulness', result: { ...payload, methods: [...payload.methods] } });
    };
    const stopped = (): boolean => cancelled || evalId !== this.evalId || this.disposed;
    try {
      await vscode.window.withProgress(
        { location: vscode.ProgressLocation.Notification, title: 'LRP Lens: faithfulness', cancellable: true },
        async (progress, token) => {
          token.onCancellationRequested(cancel);
          post();
          const req = await this.request(target);
          for (const [i, method] of all.entries()) {
            if (stopped()) throw new CancelledError();
            progress.report({ message: `${method} (${i + 1}/${all.length})`, increment: 100 / all.length });
            // the first method fixes the target (the top class when none was given)
            const job = this.deps.runner.evaluate(i === 0 ? req : { ...req, target: payload.target }, method);
            running = job;
            const r = await job.result;
            running = undefined;
            if (stopped()) throw new CancelledError();
            payload.target = r.target;
            payload.targetLabel = r.targetLabel;
            const score: FaithfulnessScore = { ...r.methods[0], name: method };
            payload.steps = r.steps;
            payload.patch = r.patch;
            payload.patches = r.patches;
            payload.patchCount = r.patchCount;
            payload.share = payload.share ? Math.min(payload.share, r.share) : r.share;
            payload.methods.push(score);
            logLine(
              `faithfulness ${path.basename(this.imagePath)} ${method}: ` +
                (score.error ? score.error : `AOPC=${score.aopc?.toPrecision(4)} (steps=${r.steps}, patch=${r.patch}, ${(r.share * 100).toFixed(1)}% of the image, target=${r.target})`),
            );
            post();
          }
          payload.state = 'done';
          post();
        },
      );
    } catch (err) {
      if (evalId !== this.evalId || this.disposed) return;
      if (isCancelled(err) || cancelled) {
        payload.state = 'cancelled';
        payload.message = 'Cancelled.';
      } else {
        payload.state = 'error';
        payload.message = describeError(err).message;
        logError('faithfulness', err);
      }
      post();
    } finally {
      if (this.cancelEval === cancel) this.cancelEval = undefined;
    }
  }

  private sendResult(out: RunOutput): void {
    this.post({ type: 'image', image: out.image });
    this.post({ type: 'result', result: { ...out.payload, runId: this.lastRunId } });
  }

  /** Recomputes the shown LRP result under one-ulp input noise and reports how far it moves. */
  private async checkStability(runId: number): Promise<void> {
    const last = this.last;
    if (!last || runId !== this.lastRunId) return;
    if (last.payload.method !== 'lrp') {
      this.post({ type: 'stability', runId, error: 'The stability check measures LRP explanations.' });
      return;
    }
    try {
      const r = await vscode.window.withProgress({ location: vscode.ProgressLocation.Window, title: 'LRP Lens: float32 stability' }, () =>
        this.deps.runner.stability(last).result,
      );
      logLine(`stability ${path.basename(this.imagePath)}: one-ulp input noise moves the relevance by ${r.ulpRelL2.toExponential(2)} (relative L2, ${r.draws} draws)`);
      if (runId === this.lastRunId && !this.disposed) this.post({ type: 'stability', runId, ...r });
    } catch (err) {
      if (runId === this.lastRunId && !this.disposed) this.post({ type: 'stability', runId, error: describeError(err).message });
    }
  }

  /** A folder was indexed for concepts: the panel asks again for the reference crops it shows. */
  conceptIndexChanged(): void {
    this.post({ type: 'conceptIndexChanged' });
  }

  /** The reference crops of channels of layer `index` of the shown run, from the newest valid index of its model and layer. */
  private async conceptRefs(runId: number, index: number, channels: number[]): Promise<void> {
    const last = this.last;
    const layer = last?.payload.layers[index];
    if (!last || runId !== this.lastRunId || !layer) return;
    void this.conceptJobs.refs?.cancel();
    const job = this.deps.runner.conceptReferences(last, layer.name, channels, this.deps.conceptIndexRoot);
    this.conceptJobs.refs = job;
    try {
      const refs = await job.result;
      if (this.conceptJobs.refs !== job || runId !== this.lastRunId || this.disposed) return;
      logLine(`reference examples of ${layer.name}: ${refs.folder ? `${refs.folder}${refs.stale ? ' (out of date)' : ''}` : 'no index'}`);
      this.post({
        type: 'conceptRefs',
        refs: {
          runId,
          index,
          ...(refs.folder ? { folder: refs.folder } : {}),
          ...(refs.stale ? { stale: refs.stale } : {}),
          channels: refs.channels.map((c) => ({
            channel: c.channel,
            refs: c.refs.map((x) => ({ file: x.file, relevance: x.relevance, crop: { width: x.crop.width, height: x.crop.height, rgb: x.crop.rgb.slice().buffer } })),
          })),
        },
      });
    } catch (err) {
      if (isCancelled(err) || this.conceptJobs.refs !== job) return;
      logError(`reference examples of ${layer.name}`, err);
      this.post({ type: 'conceptRefs', refs: { runId, index, error: describeError(err).message, channels: [] } });
    }
  }

  /** Concepts (CRP) of layer `index` of the shown run: its top channels' conditional maps, shares and positive and negative parts. */
  private async concepts(runId: number, index: number, view: ConceptView, top: number): Promise<void> {
    const last = this.last;
    const layer = last?.payload.layers[index];
    if (!last || runId !== this.lastRunId || !layer) return;
    const fail = (message: string): void => this.post({ type: 'conceptsError', runId, index, view, message });
    if (last.payload.method !== 'lrp') {
      fail('Concepts condition an LRP explanation: choose LRP as the method.');
      return;
    }
    void this.conceptJobs[view]?.cancel();
    const job = this.deps.runner.conceptMaps(last, layer.name, top);
    this.conceptJobs[view] = job;
    const current = (): boolean => this.conceptJobs[view] === job && runId === this.lastRunId && !this.disposed;
    try {
      const r = await vscode.window.withProgress({ location: vscode.ProgressLocation.Window, title: `LRP Lens: concepts of ${layer.name}` }, () => job.result);
      if (!current()) return;
      logLine(
        `concepts ${path.basename(this.imagePath)} ${r.layer}: top ${r.channels.length} of ${r.channelCount} channels ` +
          `${r.channels.map((c) => `${c.channel} (${(c.share * 100).toFixed(1)}%)`).join(', ')} ${r.batched ? 'batched' : 'one run each'} ${r.ms.toFixed(0)}ms`,
      );
      this.post({
        type: 'concepts',
        result: { runId, index, view, layer: r.layer, opType: r.opType, channelCount: r.channelCount, layerRelevance: r.layerRelevance, channels: r.channels, ms: r.ms },
      });
    } catch (err) {
      if (isCancelled(err) || !current()) return;
      logError(`concepts of ${layer.name}`, err);
      fail(describeError(err).message);
    }
  }

  /** Settings changed: re-run (only if the panel has shown something). */
  onSettingsChanged(onlyCompare = false): void {
    this.sendCompareMethods(!onlyCompare);
    if (onlyCompare) return;
    try {
      this.view = { ...this.view, ...viewFromSettings(this.settings()) };
      this.post({ type: 'view', view: this.view });
    } catch {
      // reported by the run
    }
    if (this.ready) void this.explain();
  }

  /** Runs an explanation with the current settings and the panel's choices; replaces a running one. */
  async explain(): Promise<void> {
    if (!this.ready || this.disposed) return;
    const runId = ++this.runId;
    this.cancelRunning?.(); // a replaced run stops at its next step in the engine
    let cancelled = false;
    let job: Job<RunOutput> | undefined;
    let rejectCancelled: (e: Error) => void = () => undefined;
    // Settles as soon as the run is cancelled or replaced: the progress closes at once and the
    // engine's late result is dropped.
    const cancelledP = new Promise<never>((_, reject) => (rejectCancelled = reject));
    cancelledP.catch(() => undefined);
    const cancel = (hard = false): void => {
      if (cancelled) return;
      cancelled = true;
      rejectCancelled(new CancelledError());
      const outcome = job ? job.cancel(hard) : Promise.resolve('idle' as const);
      if (hard) void outcome.then((o) => this.reportCancel(runId, o));
    };
    this.cancelRunning = cancel;
    const check = (): void => {
      if (cancelled || runId !== this.runId || this.disposed) throw new CancelledError();
    };
    const name = path.basename(this.imagePath);
    try {
      await vscode.window.withProgress(
        { location: vscode.ProgressLocation.Notification, title: `LRP Lens: ${name}`, cancellable: true },
        async (progress, token) => {
          token.onCancellationRequested(() => cancel(true));
          if (!vscode.workspace.isTrusted) throw new UntrustedError();
          const settings = this.settings();
          this.post({ type: 'busy', message: 'Finding the model…' });
          const modelPath = await Promise.race([this.deps.models.resolve(this.imageUri), cancelledP]);
          check();
          progress.report({ message: `${path.basename(modelPath)}…` });
          this.post({ type: 'busy', message: `Explaining with ${path.basename(modelPath)}…` });
          job = this.deps.runner.run({ ...this.requestFor(settings, modelPath, this.target), method: this.method }, (message) => {
            if (cancelled || runId !== this.runId) return;
            progress.report({ message });
            this.post({ type: 'busy', message: message.charAt(0).toUpperCase() + message.slice(1) });
          });
          const out = await Promise.race([job.result, cancelledP]);
          check();
          this.last = out;
          this.lastRunId = runId;
          logLine(out.logLine);
          this.sendResult(out);
          this.watchModelOf(out);
          void this.deps.models.refreshStatus(this.imageUri);
        },
      );
    } catch (err) {
      if (isCancelled(err)) {
        if (runId === this.runId && !this.disposed) {
          logLine(`cancelled: ${name}`);
          if (this.last) this.sendResult(this.last);
          else this.post({ type: 'error', error: { title: 'Cancelled', message: 'The explanation was cancelled.', actions: ['retry'] } });
        }
        return;
      }
      if (runId !== this.runId) return; // a newer run replaced this one
      this.showError(err);
    } finally {
      if (this.cancelRunning === cancel) this.cancelRunning = undefined;
    }
  }

  /** Tells the panel what Cancel did to the engine. */
  private reportCancel(runId: number, outcome: CancelOutcome): void {
    const text: Record<CancelOutcome, string> = {
      idle: 'Cancelled before the engine started working.',
      stopping: 'Cancelled; the engine stops at its next step.',
      stopped: 'Cancelled; the engine stopped the explanation.',
      terminated:
        'Cancelled; the engine did not stop within half a second, so its process was terminated. The next explanation starts a new one (the model is loaded again).',
    };
    logLine(`cancel ${path.basename(this.imagePath)}: ${outcome}`);
    if (runId === this.runId && !this.disposed) this.post({ type: 'notice', notice: { kind: 'cancelled', message: text[outcome] } });
  }

  /** Watches the shown result's model file: when it changes on disk, the panel offers to explain again. */
  private watchModelOf(out: RunOutput): void {
    this.unwatchModel?.();
    const model = out.request.modelPath;
    this.unwatchModel = watchModel(model, out.modelStat, () => {
      logLine(`${model} changed on disk; ${path.basename(this.imagePath)} offers to explain again`);
      this.post({
        type: 'notice',
        notice: { kind: 'modelChanged', message: `${path.basename(model)} changed on disk since this explanation.`, action: 'explain' },
      });
    });
  }

  private showError(err: unknown): void {
    const error: PanelError = describeError(err);
    logError(`explaining ${this.imagePath}`, err);
    this.post({ type: 'error', error });
    notifyError(error, this.deps.models, this.imageUri, () => this.explain());
  }

  private async export(kind: ExportKind): Promise<void> {
    const out = this.last;
    if (!out) {
      void vscode.window.showWarningMessage('LRP Lens: nothing to export yet.');
      return;
    }
    const base = path.basename(this.imagePath, path.extname(this.imagePath));
    const names: Record<ExportKind, [string, Record<string, string[]>]> = {
      png: [`${base}.lrp.png`, { 'PNG image': ['png'] }],
      npy: [`${base}.relevance.npy`, { 'NumPy array': ['npy'] }],
      json: [`${base}.lrp.json`, { JSON: ['json'] }],
    };
    const [file, filters] = names[kind];
    const target = await vscode.window.showSaveDialog({
      defaultUri: vscode.Uri.file(path.join(path.dirname(this.imagePath), file)),
      filters,
      saveLabel: 'Export',
    });
    if (!target) return;
    try {
      let bytes: Uint8Array;
      if (kind === 'png') bytes = await this.deps.runner.heatmapPng(out, this.view);
      else if (kind === 'npy') {
        const { writeNpy } = await import('../engine/io/npy');
        bytes = writeNpy({ dtype: 'float32', dims: out.relevance.dims, data: out.relevance.data });
      } else bytes = Buffer.from(out.summaryJson, 'utf8');
      await vscode.workspace.fs.writeFile(target, bytes);
      logLine(`exported ${kind} to ${target.fsPath}`);
      const reveal = 'Open';
      void vscode.window.showInformationMessage(`LRP Lens: saved ${path.basename(target.fsPath)}`, reveal).then((a) => {
        if (a === reveal) void vscode.commands.executeCommand('vscode.open', target);
      });
    } catch (err) {
      logError(`export ${kind}`, err);
      void vscode.window.showErrorMessage(`LRP Lens: export failed: ${(err as Error).message}`);
    }
  }
}

/** Performs an error action (from the panel or a notification). */
export async function runAction(
  action: PanelError['actions'][number],
  models: ModelPicker,
  scope: vscode.Uri | undefined,
  retry: () => Promise<void>,
): Promise<void> {
  switch (action) {
    case 'selectModel':
      if (await models.select(scope)) await retry();
      break;
    case 'openSettings':
      await openSettings();
      break;
    case 'showOutput':
      outputChannel().show(true);
      break;
    case 'retry':
      await retry();
      break;
  }
}

export function notifyError(error: PanelError, models: ModelPicker, scope: vscode.Uri | undefined, retry: () => Promise<void>): void {
  const actions = error.actions.filter((a) => a !== 'retry').map((a) => ACTION_TITLES[a]);
  void vscode.window.showErrorMessage(`LRP Lens: ${error.title}: ${error.message}`, ...actions).then((choice) => {
    const action = error.actions.find((a) => ACTION_TITLES[a] === choice);
    if (action) runAction(action, models, scope, retry).catch((err) => logError('action', err));
  });
}

/** True if the path is a readable file (used before opening a panel). */
export function fileExists(p: string): boolean {
  try {
    return fs.statSync(p).isFile();
  } catch {
    return false;
  }
}
