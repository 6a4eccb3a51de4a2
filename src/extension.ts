// LRP Lens: right-click an image, Explain Prediction, see where the classifier's evidence is.
import * as path from 'node:path';
import * as vscode from 'vscode';
import { parsePersistedState } from './protocol';
import { openSettings } from './host/config';
import { describeError, UntrustedError } from './host/errors';
import { disposeLog, logError, logLine } from './host/log';
import { ModelPicker } from './host/modelPicker';
import { ExplainPanel, fileExists, notifyError, VIEW_TYPE, type PanelDeps } from './host/panel';
import { registerFolderCommand } from './host/folderPanel';
import { Runner } from './host/runner';
import { EngineLink } from './host/engineLink';
import { engineMemoryMb } from './host/config';
import { IMAGE_EXTENSIONS, isImagePath, SECTION } from './host/settings';

/** The settings that change an explanation (all but `lrpLens.compare`). */
const OTHER_KEYS = ['modelPath', 'labelsPath', 'preprocessing', 'rules', 'backend', 'colormap', 'heatmap'];
// `engineMemoryMb` applies from the engine's next start (engineClient.ts) and re-runs nothing.

let runner: Runner | undefined;

/** Wraps a command so that no error escapes to the extension host. */
function safe<A extends unknown[]>(name: string, fn: (...args: A) => unknown): (...args: A) => Promise<void> {
  return async (...args: A) => {
    try {
      await fn(...args);
    } catch (err) {
      logError(name, err);
      void vscode.window.showErrorMessage(`LRP Lens: ${(err as Error)?.message ?? String(err)}`);
    }
  };
}

async function pickImage(): Promise<vscode.Uri | undefined> {
  const active = vscode.window.activeTextEditor?.document.uri;
  const tabInput = vscode.window.tabGroups.activeTabGroup.activeTab?.input;
  const tabUri = tabInput && typeof tabInput === 'object' && 'uri' in tabInput ? (tabInput as { uri: vscode.Uri }).uri : undefined;
  for (const u of [tabUri, active]) if (u?.scheme === 'file' && isImagePath(u.fsPath)) return u;
  const uris = await vscode.window.showOpenDialog({
    canSelectMany: false,
    openLabel: 'Explain Prediction',
    filters: { Images: IMAGE_EXTENSIONS.flatMap((e) => [e, e.toUpperCase()]) },
    defaultUri: vscode.workspace.workspaceFolders?.[0]?.uri,
  });
  return uris?.[0];
}

export function activate(context: vscode.ExtensionContext): void {
  // The engine runs in its own process (dist/engine.js), started on the first explanation by a
  // worker thread (dist/engine-link.js), so that the fork never stalls the extension host's thread.
  const engine = new EngineLink({
    entry: path.join(context.extensionPath, 'dist', 'engine.js'),
    worker: path.join(context.extensionPath, 'dist', 'engine-link.js'),
    memoryMb: engineMemoryMb,
    log: logLine,
  });
  runner = new Runner(engine);
  const models = new ModelPicker(context.workspaceState);
  // concept indexes of folders (relevance maximisation), one folder per model, layer and image folder
  const conceptIndexRoot = path.join(context.globalStorageUri.fsPath, 'concepts');
  const deps: PanelDeps = { extensionUri: context.extensionUri, runner, models, conceptIndexRoot };
  context.subscriptions.push(models);

  const explainImage = async (uri?: vscode.Uri, selected?: vscode.Uri[]): Promise<void> => {
    const targets = selected?.length ? selected : uri instanceof vscode.Uri ? [uri] : [];
    if (!targets.length) {
      const picked = await pickImage();
      if (!picked) return;
      targets.push(picked);
    }
    if (!vscode.workspace.isTrusted) {
      const err = describeError(new UntrustedError());
      logLine(`refused in Restricted Mode: ${targets.map((t) => t.fsPath).join(', ')}`);
      const manage = 'Manage Workspace Trust';
      const choice = await vscode.window.showWarningMessage(`LRP Lens: ${err.message}`, manage);
      if (choice === manage) await vscode.commands.executeCommand('workbench.trust.manage');
      return;
    }
    for (const t of targets) {
      if (t.scheme !== 'file') {
        void vscode.window.showErrorMessage(`LRP Lens: only files on disk can be explained (got ${t.toString()}).`);
        continue;
      }
      if (!isImagePath(t.fsPath)) {
        void vscode.window.showErrorMessage(
          `LRP Lens: ${path.basename(t.fsPath)} is not an image (${IMAGE_EXTENSIONS.join(', ')}).`,
        );
        continue;
      }
      if (!fileExists(t.fsPath)) {
        const e = describeError(new Error(`${t.fsPath}: cannot read image: file not found`));
        notifyError(e, models, t, () => explainImage(t));
        continue;
      }
      ExplainPanel.show(deps, t);
    }
  };

  registerFolderCommand(context, deps, safe);
  context.subscriptions.push(
    vscode.commands.registerCommand('lrpLens.explainImage', safe('explainImage', explainImage)),
    vscode.commands.registerCommand(
      'lrpLens.selectModel',
      safe('selectModel', async () => {
        if (!vscode.workspace.isTrusted) {
          void vscode.window.showWarningMessage(`LRP Lens: ${new UntrustedError().message}`);
          return;
        }
        const picked = await models.select(vscode.window.activeTextEditor?.document.uri);
        if (picked) for (const p of ExplainPanel.all()) void p.explain();
      }),
    ),
    vscode.commands.registerCommand('lrpLens.openSettings', safe('openSettings', () => openSettings())),
    vscode.window.registerWebviewPanelSerializer(VIEW_TYPE, {
      async deserializeWebviewPanel(panel: vscode.WebviewPanel, state: unknown): Promise<void> {
        try {
          const s = parsePersistedState(state);
          logLine(`restoring a panel: ${s?.imagePath ?? "(no state)"}`);
          if (!s || !fileExists(s.imagePath)) {
            panel.dispose();
            return;
          }
          ExplainPanel.restore(deps, panel, vscode.Uri.file(s.imagePath), s.view, s.rules, s.method);
        } catch (err) {
          logError('restoring a panel', err);
          panel.dispose();
        }
      },
    }),
    vscode.workspace.onDidChangeConfiguration((e) => {
      try {
        if (!e.affectsConfiguration(SECTION)) return;
        void models.refreshStatus();
        for (const p of ExplainPanel.all()) {
          if (!e.affectsConfiguration(SECTION, p.imageUri)) continue;
          // Adding or removing a grid entry writes lrpLens.compare: no new explanation for that.
          const others = OTHER_KEYS.some((k) => e.affectsConfiguration(`${SECTION}.${k}`, p.imageUri));
          p.onSettingsChanged(!others);
        }
      } catch (err) {
        logError('settings change', err);
      }
    }),
    vscode.workspace.onDidGrantWorkspaceTrust(() => void models.refreshStatus()),
    vscode.workspace.onDidChangeWorkspaceFolders(() => void models.refreshStatus()),
    { dispose: () => ExplainPanel.all().forEach((p) => p.dispose()) },
  );

  const watcher = vscode.workspace.createFileSystemWatcher('**/{*.onnx,model.json}');
  const refresh = (): void => void models.refreshStatus();
  context.subscriptions.push(watcher, watcher.onDidCreate(refresh), watcher.onDidDelete(refresh));
}

export async function deactivate(): Promise<void> {
  try {
    await runner?.dispose();
  } catch {
    // shutting down
  }
  runner = undefined;
  disposeLog();
}
