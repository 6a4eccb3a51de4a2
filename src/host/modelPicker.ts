// Which model explains an image: the `lrpLens.modelPath` setting, else the model remembered for
// the workspace folder, else the workspace's *.onnx / tf.js model.json files (one: used; several:
// quick pick, remembered). Also the status bar item that shows and switches the active model.
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import { readSettings, resolvePath } from './config';
import { NoModelError } from './errors';

const MEMENTO_KEY = 'lrpLens.selectedModels';
const EXCLUDE = '{**/node_modules/**,**/.git/**,**/.cache/**,**/dist/**}';

function folderKey(scope?: vscode.Uri): string {
  const folder = (scope && vscode.workspace.getWorkspaceFolder(scope)) ?? vscode.workspace.workspaceFolders?.[0];
  return folder?.uri.toString() ?? '(no folder)';
}

/** A tf.js model.json is a JSON file with modelTopology or a weightsManifest. */
function looksLikeTfjsModel(file: string): boolean {
  try {
    const fd = fs.openSync(file, 'r');
    try {
      const buf = Buffer.alloc(4096);
      const n = fs.readSync(fd, buf, 0, buf.length, 0);
      const head = buf.subarray(0, n).toString('utf8');
      return head.includes('"modelTopology"') || head.includes('"weightsManifest"') || head.includes('"format"');
    } finally {
      fs.closeSync(fd);
    }
  } catch {
    return false;
  }
}

export class ModelPicker implements vscode.Disposable {
  private readonly status: vscode.StatusBarItem;
  private readonly disposables: vscode.Disposable[] = [];
  private readonly changed = new vscode.EventEmitter<void>();
  /** Fires when the active model changes by selection. */
  readonly onDidChange = this.changed.event;

  constructor(private readonly state: vscode.Memento) {
    this.status = vscode.window.createStatusBarItem('lrpLens.model', vscode.StatusBarAlignment.Right, 100);
    this.status.name = 'LRP Lens Model';
    this.status.command = 'lrpLens.selectModel';
    this.disposables.push(this.status, this.changed);
    void this.refreshStatus();
  }

  dispose(): void {
    for (const d of this.disposables) d.dispose();
  }

  private remembered(scope?: vscode.Uri): string | undefined {
    const all = this.state.get<Record<string, string>>(MEMENTO_KEY, {});
    const p = all[folderKey(scope)];
    return p && fs.existsSync(p) ? p : undefined;
  }

  private async remember(modelPath: string, scope?: vscode.Uri): Promise<void> {
    const all = { ...this.state.get<Record<string, string>>(MEMENTO_KEY, {}) };
    all[folderKey(scope)] = modelPath;
    await this.state.update(MEMENTO_KEY, all);
    this.changed.fire();
    await this.refreshStatus(scope);
  }

  /** Model files in the workspace, sorted by path. */
  async findModels(): Promise<string[]> {
    if (!vscode.workspace.workspaceFolders?.length) return [];
    const [onnx, json] = await Promise.all([
      vscode.workspace.findFiles('**/*.onnx', EXCLUDE, 200),
      vscode.workspace.findFiles('**/model.json', EXCLUDE, 200),
    ]);
    const files = [...onnx.map((u) => u.fsPath), ...json.map((u) => u.fsPath).filter(looksLikeTfjsModel)];
    return [...new Set(files)].sort();
  }

  /** The configured model path, if the setting is set (resolved, not checked). */
  configured(scope?: vscode.Uri): string | undefined {
    const s = readSettings(scope);
    return s.modelPath ? resolvePath(s.modelPath, scope) : undefined;
  }

  /** The model to use without asking, if it is determined. */
  async current(scope?: vscode.Uri): Promise<string | undefined> {
    const configured = this.configured(scope);
    if (configured) return configured;
    const remembered = this.remembered(scope);
    if (remembered) return remembered;
    const found = await this.findModels();
    return found.length === 1 ? found[0] : undefined;
  }

  /** The model for an explanation; asks when there are several. Throws NoModelError when none. */
  async resolve(scope?: vscode.Uri): Promise<string> {
    const configured = this.configured(scope);
    if (configured) {
      if (!fs.existsSync(configured))
        throw new NoModelError(`The model in setting 'lrpLens.modelPath' does not exist: ${configured}`);
      return configured;
    }
    const remembered = this.remembered(scope);
    if (remembered) return remembered;
    const found = await this.findModels();
    if (found.length === 1) return found[0];
    if (found.length === 0)
      throw new NoModelError(
        "No model found: set 'lrpLens.modelPath' or add an .onnx file or a TensorFlow.js model.json to the workspace.",
      );
    const picked = await this.pick(found, scope, 'Several models in the workspace: which one explains images?');
    if (!picked) throw new NoModelError('No model selected.');
    return picked;
  }

  private async pick(found: string[], scope: vscode.Uri | undefined, placeHolder: string): Promise<string | undefined> {
    const browse = '$(folder-opened) Browse…';
    const items: vscode.QuickPickItem[] = found.map((f) => ({
      label: path.basename(path.dirname(f)) + '/' + path.basename(f),
      description: vscode.workspace.asRelativePath(f),
      detail: f,
    }));
    items.push({ label: browse, description: 'Choose a model file outside the workspace' });
    const choice = await vscode.window.showQuickPick(items, { placeHolder, matchOnDescription: true });
    if (!choice) return undefined;
    let file = choice.detail;
    if (choice.label === browse) {
      const uris = await vscode.window.showOpenDialog({
        canSelectMany: false,
        openLabel: 'Use Model',
        filters: { 'Models (ONNX, TensorFlow.js)': ['onnx', 'json'] },
      });
      file = uris?.[0]?.fsPath;
    }
    if (!file) return undefined;
    await this.remember(file, scope);
    return file;
  }

  /** The Select Model command. */
  async select(scope?: vscode.Uri): Promise<string | undefined> {
    const found = await this.findModels();
    const configured = this.configured(scope);
    const picked = await this.pick(found, scope, 'Select the model LRP Lens explains images with');
    if (picked && configured && configured !== picked) {
      const open = 'Open Settings';
      void vscode.window
        .showWarningMessage(
          `'lrpLens.modelPath' is set to ${configured} and takes precedence over the selection.`,
          open,
        )
        .then((a) => a === open && vscode.commands.executeCommand('workbench.action.openSettings', 'lrpLens.modelPath'));
    }
    return picked;
  }

  async refreshStatus(scope?: vscode.Uri): Promise<void> {
    try {
      if (!vscode.workspace.isTrusted) {
        this.status.hide();
        return;
      }
      const model = await this.current(scope);
      const found = model ? [] : await this.findModels();
      if (!model && found.length === 0) {
        this.status.hide();
        return;
      }
      this.status.text = `$(layers) ${model ? path.basename(model) : 'Select LRP model'}`;
      this.status.tooltip = model ? `LRP Lens model: ${model}\nClick to switch` : 'LRP Lens: choose a model';
      this.status.show();
    } catch {
      this.status.text = '$(layers) LRP Lens: check settings';
      this.status.show();
    }
  }
}
