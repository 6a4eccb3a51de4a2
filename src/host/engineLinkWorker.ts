// The worker thread behind EngineLink (./engineLink.ts), bundled as dist/engine-link.js: it owns
// the EngineClient, so forking the engine process, the IPC and deserialising results happen on
// this thread, never on the extension host's.
import { parentPort, workerData } from 'node:worker_threads';
import type { RequestKind, RequestOf } from '../explain/server/protocol';
import { EngineClient, type EngineCall } from './engineClient';
import type { FromLink, LinkOptions, ToLink } from './engineLink';

const port = parentPort;
if (!port) throw new Error('engine-link runs as a worker thread');
const opts = workerData as LinkOptions;
let memoryMb = 4096;
const post = (m: FromLink): void => port.postMessage(m);
const client = new EngineClient({
  ...opts,
  memoryMb: () => memoryMb,
  log: (line) => {
    post({ type: 'log', line });
    post({ type: 'pid', pid: client.pid, starts: client.starts });
  },
});
const calls = new Map<number, EngineCall<unknown>>();

port.on('message', (m: ToLink) => {
  switch (m.type) {
    case 'request': {
      memoryMb = m.memoryMb;
      const call = client.request(m.kind, m.body as RequestOf<RequestKind>, {
        what: m.what,
        onProgress: (message) => post({ type: 'progress', id: m.id, message }),
      });
      calls.set(m.id, call);
      post({ type: 'pid', pid: client.pid, starts: client.starts });
      call.result.then(
        (result) => post({ type: 'result', id: m.id, result }),
        (err: Error) => post({ type: 'error', id: m.id, error: { name: err.name, message: err.message } }),
      ).finally(() => calls.delete(m.id));
      return;
    }
    case 'cancel': {
      const call = calls.get(m.id);
      if (!call) post({ type: 'cancelOutcome', id: m.id, outcome: 'idle' });
      else void call.cancel(m.hard).then((outcome) => post({ type: 'cancelOutcome', id: m.id, outcome }));
      return;
    }
    case 'dispose':
      void client.dispose().finally(() => {
        post({ type: 'disposed' });
        port.close();
      });
      return;
  }
});
