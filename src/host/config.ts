// Reads the `lrpLens.*` settings from VS Code for a resource and validates them.
import * as os from 'node:os';
import * as vscode from 'vscode';
import { parseSettings, resolveSettingPath, SECTION, type Settings } from './settings';

export function readSettings(scope?: vscode.Uri): Settings {
  const c = vscode.workspace.getConfiguration(SECTION, scope);
  // Only a value the user set counts: the contributed default must not hide a model's
  // preprocessing.json.
  const pre = c.inspect('preprocessing');
  const preSet =
    pre !== undefined &&
    [pre.globalValue, pre.workspaceValue, pre.workspaceFolderValue, pre.globalLanguageValue, pre.workspaceLanguageValue, pre.workspaceFolderLanguageValue].some(
      (v) => v !== undefined,
    );
  return parseSettings({
    modelPath: c.get('modelPath'),
    labelsPath: c.get('labelsPath'),
    preprocessing: preSet ? c.get('preprocessing') : undefined,
    rules: c.get('rules'),
    backend: c.get('backend'),
    colormap: c.get('colormap'),
  });
}

/** Resolves a path setting against the workspace folder of `scope` (or the first folder). */
export function resolvePath(p: string, scope?: vscode.Uri): string {
  const folder = (scope && vscode.workspace.getWorkspaceFolder(scope)) ?? vscode.workspace.workspaceFolders?.[0];
  return resolveSettingPath(p, folder?.uri.fsPath, os.homedir());
}

export function openSettings(query = SECTION): Thenable<unknown> {
  return vscode.commands.executeCommand('workbench.action.openSettings', query);
}
