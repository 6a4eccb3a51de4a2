// Turns any error into what the user sees: a short title, the message and the actions that help.
// Pure (no `vscode` import).
import type { ErrorAction, PanelError } from '../protocol';
import { ENGINE_ERRORS } from '../explain/server/protocol';
import { SettingsError } from './settings';

/** No model configured or found. */
export class NoModelError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'NoModelError';
  }
}

/** The workspace is not trusted: models are files from the workspace. */
export class UntrustedError extends Error {
  constructor() {
    super(
      'LRP Lens is disabled in Restricted Mode: explaining runs model files from this workspace. Trust the workspace to enable it.',
    );
    this.name = 'UntrustedError';
  }
}

export class CancelledError extends Error {
  constructor() {
    super('Cancelled');
    this.name = 'CancelledError';
  }
}

/** A cancellation, from this host or answered by the engine process. */
export function isCancelled(err: unknown): boolean {
  return err instanceof CancelledError || (err instanceof Error && err.name === ENGINE_ERRORS.cancelled);
}

export function describeError(err: unknown): PanelError {
  const e = err instanceof Error ? err : new Error(String(err));
  const msg = e.message || String(err);
  const lower = msg.toLowerCase();
  const make = (title: string, actions: ErrorAction[]): PanelError => ({ title, message: msg, actions });
  if (e instanceof UntrustedError) return make('Restricted Mode', []);
  // errors of the engine process, by name (they cross the process boundary as name and message)
  if (e.name === ENGINE_ERRORS.crashed) return make('Engine stopped', ['retry', 'showOutput']);
  if (e.name === ENGINE_ERRORS.memory) return make('Model too large', ['openSettings', 'selectModel']);
  if (e.name === ENGINE_ERRORS.modelChanged) return make('Model changed on disk', ['retry']);
  if (e instanceof NoModelError) return make('No model', ['selectModel', 'openSettings']);
  if (e instanceof SettingsError || e.name === 'ConfigError') return make('Invalid setting', ['openSettings']);
  if (/unsupported (op|operator)|not supported|does not support/.test(lower))
    return make('Unsupported operator', ['selectModel', 'showOutput']);
  if (/cannot (read|decode) image|unsupported image format|input buffer|vips|image file/.test(lower))
    return make('Unreadable image', ['retry', 'showOutput']);
  if (/shape|dimension|dims|mismatch|expected input/.test(lower))
    return make('Input shape mismatch', ['openSettings', 'selectModel']);
  if (/target .*out of range|class index/.test(lower)) return make('Invalid target', []);
  if (/\.onnx|model\.json|protobuf|not an onnx|model file|external data/.test(lower))
    return make('Cannot load model', ['selectModel', 'showOutput']);
  return make('Explanation failed', ['retry', 'showOutput']);
}

export const ACTION_TITLES: Record<ErrorAction, string> = {
  selectModel: 'Select Model',
  openSettings: 'Open Settings',
  showOutput: 'Show Output',
  retry: 'Retry',
};
