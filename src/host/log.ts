// The "LRP Lens" output channel: one line per run and every error with its cause.
import * as vscode from 'vscode';

let channel: vscode.OutputChannel | undefined;

export function outputChannel(): vscode.OutputChannel {
  channel ??= vscode.window.createOutputChannel('LRP Lens');
  return channel;
}

function stamp(): string {
  return new Date().toISOString().replace('T', ' ').replace('Z', '');
}

export function logLine(line: string): void {
  outputChannel().appendLine(`[${stamp()}] ${line}`);
}

export function logError(context: string, err: unknown): void {
  const e = err instanceof Error ? err : new Error(String(err));
  logLine(`ERROR ${context}: ${e.message}`);
  let cause: unknown = (e as Error & { cause?: unknown }).cause;
  while (cause) {
    logLine(`  caused by: ${cause instanceof Error ? cause.message : String(cause)}`);
    cause = cause instanceof Error ? (cause as Error & { cause?: unknown }).cause : undefined;
  }
  if (e.stack) outputChannel().appendLine(e.stack.split('\n').slice(1, 6).join('\n'));
}

export function disposeLog(): void {
  channel?.dispose();
  channel = undefined;
}
