// The extension's handle on the engine (src/host/engineLink.ts): a worker thread owns the engine
// process, so the fork and the IPC never run on the extension host's thread. Through it, results
// cross as typed arrays and equal the engine's own, progress arrives, a killed engine gives an
// EngineCrashedError and the next request starts a new process, Cancel reports what it did, and
// dispose ends the process and the thread.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { EngineLink } from '../../src/host/engineLink';
import { EngineService } from '../../src/explain/server/service';
import { ENGINE_ERRORS, type ImageSpec } from '../../src/explain/server/protocol';
import { parseRulesConfig } from '../../src/engine/config';
import { REFERENCE_DIR, REPO_DIR } from '../helpers';

const ENTRY = path.join(REPO_DIR, 'src', 'explain', 'server', 'main.ts');
const WORKER = path.join(REPO_DIR, 'src', 'host', 'engineLinkWorker.ts');
const VGG = path.join(REFERENCE_DIR, 'shapes-vgg', 'model.onnx');
const IMAGE = path.join(REFERENCE_DIR, 'shapes-vgg', 'inputs', 'sample0.png');

// a worker thread cannot take `--import tsx`: a two-line shim registers tsx and loads the source
const shimDir = mkdtempSync(path.join(tmpdir(), 'lrp-engine-link-'));
const SHIM = path.join(shimDir, 'engine-link.cjs');
writeFileSync(SHIM, `require(${JSON.stringify(require.resolve('tsx/cjs/api'))}).register();\nrequire(${JSON.stringify(WORKER)});\n`);

const links: EngineLink[] = [];
function link(): EngineLink {
  const l = new EngineLink({ entry: ENTRY, execArgv: ['--import', 'tsx'], worker: SHIM, memoryMb: () => 4096 });
  links.push(l);
  return l;
}

const spec = (composite = 'epsilon-plus-flat'): ImageSpec => ({
  modelPath: VGG,
  backend: 'onnxruntime',
  preprocessing: { preset: 'imagenet', channelOrder: 'rgb' },
  rules: parseRulesConfig({ composite }),
  imagePath: IMAGE,
});

after(async () => {
  for (const l of links) await l.dispose();
  rmSync(shimDir, { recursive: true, force: true });
});

test('an explanation through the link equals the in-process one; progress and typed arrays arrive', async () => {
  const l = link();
  const body = { spec: spec(), method: 'lrp', displayMaxSide: 768 };
  const progress: string[] = [];
  const remote = await l.request('explain', body, { onProgress: (m) => progress.push(m) }).result;
  const local = await new EngineService().handle('explain', body);
  assert.ok(remote.relevance.data instanceof Float32Array);
  assert.deepEqual(Array.from(remote.relevance.data), Array.from(local.relevance.data));
  assert.equal(remote.layers.length, local.layers.length);
  assert.ok(progress.length > 0, 'progress messages reach the caller');
  assert.ok(l.pid && l.pid !== process.pid, `the engine runs in its own process (${l.pid})`);
});

test('a killed engine gives EngineCrashedError through the link; the next request starts a new process', async () => {
  const l = link();
  const body = { spec: spec(), method: 'lrp', displayMaxSide: 768 };
  await l.request('explain', body).result;
  const first = l.pid!;
  const call = l.request('explain', { ...body, spec: spec('epsilon') });
  process.kill(first, 'SIGKILL');
  await assert.rejects(call.result, (e: Error) => e.name === ENGINE_ERRORS.crashed && /ended unexpectedly/.test(e.message));
  const again = await l.request('explain', body).result;
  assert.ok(again.relevance.data.length > 0);
  assert.ok(l.pid && l.pid !== first, 'a new engine process');
  assert.equal(l.starts, 2);
});

test('Cancel through the link reports its outcome and the request ends as cancelled; dispose ends the thread', async () => {
  const l = link();
  const call = l.request('explain', { spec: spec('epsilon-gamma-box'), method: 'lrp', displayMaxSide: 768 });
  const ended = assert.rejects(call.result, (e: Error) => e.name === ENGINE_ERRORS.cancelled);
  await new Promise((r) => setTimeout(r, 300));
  const outcome = await call.cancel(true);
  assert.ok(['stopped', 'terminated'].includes(outcome), outcome);
  await ended;
  const pid = l.pid;
  await l.dispose();
  if (pid) assert.throws(() => process.kill(pid, 0), 'the engine process is gone after dispose');
  await assert.rejects(l.request('explain', { spec: spec(), method: 'lrp', displayMaxSide: 768 }).result, (e: Error) => e.name === ENGINE_ERRORS.cancelled);
});
