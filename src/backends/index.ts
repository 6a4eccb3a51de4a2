// Picks a backend by name. 'auto' is onnxruntime for every model format: it is the fastest here.
import { Backend, BackendChoice } from './backend';
import { createOnnxruntimeBackend } from './onnxruntime';

export const BACKEND_CHOICES: readonly BackendChoice[] = ['auto', 'onnxruntime', 'tfjs'];

export async function createBackend(choice: BackendChoice = 'auto'): Promise<Backend> {
  switch (choice) {
    case 'auto':
    case 'onnxruntime':
      return createOnnxruntimeBackend();
    case 'tfjs': {
      const { createTfjsBackend } = await import('./tfjs');
      return createTfjsBackend();
    }
    default:
      throw new Error(`unknown backend '${String(choice)}' (choose auto, onnxruntime or tfjs)`);
  }
}
