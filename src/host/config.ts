// Reads the `lrpLens.*` settings from VS Code for a resource and validates them.
import * as os from 'node:os';
import * as vscode from 'vscode';
import type { CompareMethod } from '../protocol';
import { compareOrDefault, parseSettings, resolveSettingPath, SECTION, type Settings } from './settings';

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
    heatmapView: c.get('heatmap.view'),
    heatmapPercentile: c.get('heatmap.percentile'),
    heatmapGamma: c.get('heatmap.gamma'),
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

/** Stores the compare grid's entries where `lrpLens.compare` is set now (default: user settings). */
export async function writeCompare(methods: readonly string[], scope?: vscode.Uri): Promise<void> {
  const c = vscode.workspace.getConfiguration(SECTION, scope);
  const i = c.inspect('compare');
  const target =
    i?.workspaceFolderValue !== undefined
      ? vscode.ConfigurationTarget.WorkspaceFolder
      : i?.workspaceValue !== undefined
        ? vscode.ConfigurationTarget.Workspace
        : vscode.ConfigurationTarget.Global;
  await c.update('compare', [...methods], target);
}

/** `lrpLens.compare` for a resource (the default entries plus a message when it is invalid). */
export function readCompare(scope?: vscode.Uri): { methods: CompareMethod[]; error?: string } {
  return compareOrDefault(vscode.workspace.getConfiguration(SECTION, scope).get('compare'));
}

/** The default of `lrpLens.engineMemoryMb`. */
export const DEFAULT_ENGINE_MEMORY_MB = 4096;

/** `lrpLens.engineMemoryMb`: the engine process's memory limit in MiB (window-wide: one engine). */
export function engineMemoryMb(): number {
  const v = vscode.workspace.getConfiguration(SECTION).get('engineMemoryMb');
  return typeof v === 'number' && Number.isFinite(v) && v >= 256 ? Math.round(v) : DEFAULT_ENGINE_MEMORY_MB;
}
