// The engine process (src/explain/server) driven through the host's client (src/host/engineClient.ts):
// results cross as typed arrays and match the in-process engine; loaded models stay between
// requests; a killed engine gives an EngineCrashedError and the next request starts a new one; a
// model replaced on disk is reloaded, or, when replaced while it loads, gives a ModelChangedError;
// the memory limit refuses a model too large for it, and stops a process that outgrows it; Cancel
// stops or terminates the engine.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { EngineClient } from '../../src/host/engineClient';
import { EngineService } from '../../src/explain/server/service';
import type { ImageSpec } from '../../src/explain/server/protocol';
import { exportOnnx } from '../../src/engine/import/onnx';
import { parseRulesConfig } from '../../src/engine/config';
import { buildVgg16 } from '../../scripts/make-vgg16';
import { REFERENCE_DIR, REPO_DIR } from '../helpers';

const ENTRY = path.join(REPO_DIR, 'src', 'explain', 'server', 'main.ts');
const VGG = path.join(REFERENCE_DIR, 'shapes-vgg', 'model.onnx');
const RESNET = path.join(REFERENCE_DIR, 'shapes-resnet', 'model.onnx');
const IMAGE = path.join(REFERENCE_DIR, 'shapes-vgg', 'inputs', 'sample0.png');

let dir: string;
const clients: EngineClient[] = [];

function client(memoryMb = 4096): EngineClient {
  const c = new EngineClient({ entry: ENTRY, execArgv: ['--import', 'tsx'], memoryMb: () => memoryMb });
  clients.push(c);
  return c;
}

function spec(modelPath: string, extra: Partial<ImageSpec> = {}): ImageSpec {
  return {
    modelPath,
    backend: 'onnxruntime',
    preprocessing: { preset: 'imagenet', channelOrder: 'rgb' },
    rules: parseRulesConfig({ composite: 'epsilon-plus-flat' }),
    imagePath: IMAGE,
    ...extra,
  };
}

before(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'lrp-engine-process-'));
});

after(async () => {
  for (const c of clients) await c.dispose();
  rmSync(dir, { recursive: true, force: true });
});

test('an explanation through the engine process equals the in-process one, maps as typed arrays', async () => {
  const c = client();
  const body = { spec: spec(VGG), method: 'lrp', displayMaxSide: 768 };
  const remote = await c.request('explain', body).result;
  const local = await new EngineService().handle('explain', body);
  assert.ok(remote.relevance.data instanceof Float32Array, 'relevance crosses as a Float32Array');
  assert.ok(remote.map.data instanceof Float32Array);
  assert.ok(remote.image.rgb instanceof Uint8Array);
  const withMap = remote.layers.filter((l) => l.map);
  assert.ok(withMap.length >= 4, 'every layer map is there');
  assert.ok(withMap.every((l) => l.map!.data instanceof Float32Array));
  assert.deepEqual(Array.from(remote.relevance.data), Array.from(local.relevance.data));
  assert.equal(remote.target, local.target);
  assert.equal(remote.layers.length, local.layers.length);
  assert.ok(remote.loadMs !== undefined, 'the first request loads the model');
  const pid = c.pid;
  const again = await c.request('explain', body).result;
  assert.equal(again.loadMs, undefined, 'the model stays loaded between requests');
  assert.equal(c.pid, pid, 'the same process');
  const status = await c.request('status', {}).result;
  assert.equal(status.pid, pid);
  assert.deepEqual(status.models.map((m) => m.modelPath), [VGG]);
});

test('a killed engine gives an EngineCrashedError; the next request starts a new process', async () => {
  const c = client();
  const model = path.join(dir, 'crash.onnx');
  copyFileSync(VGG, model);
  await c.request('load', { spec: spec(model) }).result;
  const pid = c.pid!;
  const call = c.request('explain', { spec: spec(model, { rules: { ...spec(model).rules, composite: 'epsilon' } }), method: 'lrp', displayMaxSide: 768 }, { what: 'explaining sample0.png' });
  process.kill(pid, 'SIGKILL');
  await assert.rejects(call.result, (e: Error) => {
    assert.equal(e.name, 'EngineCrashedError');
    assert.match(e.message, /SIGKILL/);
    assert.match(e.message, /explaining sample0\.png/);
    return true;
  });
  const next = await c.request('explain', { spec: spec(model), method: 'lrp', displayMaxSide: 768 }).result;
  assert.notEqual(c.pid, pid, 'a new engine process');
  assert.equal(c.starts, 2);
  assert.ok(next.relevanceSum !== 0);
});

test('a model replaced on disk between two explanations is reloaded', async () => {
  const c = client();
  const model = path.join(dir, 'swap.onnx');
  copyFileSync(VGG, model);
  const first = await c.request('explain', { spec: spec(model), method: 'lrp', displayMaxSide: 768 }).result;
  // the other fixture model has the same input; atomically replace the file
  copyFileSync(RESNET, model + '.new');
  renameSync(model + '.new', model);
  const second = await c.request('explain', { spec: spec(model), method: 'lrp', displayMaxSide: 768 }).result;
  const resnet = await new EngineService().handle('explain', { spec: spec(RESNET), method: 'lrp', displayMaxSide: 768 });
  assert.equal(second.reloaded, true, 'the engine noticed the change');
  assert.ok(second.loadMs !== undefined);
  assert.notEqual(second.modelStat.size, first.modelStat.size);
  assert.deepEqual(Array.from(second.relevance.data), Array.from(resnet.relevance.data), 'the new model explained');
  assert.notDeepEqual(second.layers.map((l) => l.name), first.layers.map((l) => l.name));
});

test('a model too large for the memory limit is refused with a message naming it and the limit', async () => {
  const c = client(300);
  const big = path.join(dir, 'big.onnx');
  // 40 MB of weights: estimated 2 x 40 + 256 MB > 300 MB
  writeFileSync(big, Buffer.alloc(40 * 2 ** 20));
  await assert.rejects(c.request('load', { spec: spec(big) }).result, (e: Error) => {
    assert.equal(e.name, 'EngineMemoryError');
    assert.match(e.message, /big\.onnx/);
    assert.match(e.message, /300 MB/);
    assert.match(e.message, /lrpLens\.engineMemoryMb/);
    return true;
  });
});

test('a large model: replaced while it loads gives a ModelChangedError; Cancel stops the engine', { timeout: 300_000 }, async () => {
  const model = path.join(dir, 'vgg16.onnx');
  const other = path.join(dir, 'vgg16-other.onnx');
  writeFileSync(model, exportOnnx(buildVgg16(16, 10)));
  copyFileSync(VGG, other);
  const c = client();
  let replaced = false;
  const call = c.request('load', { spec: spec(model) }, {
    onProgress: (m) => {
      // the engine reports "loading" after it noted the file's size and mtime: replace it now
      if (!replaced && /^loading/.test(m)) {
        replaced = true;
        renameSync(other, model);
      }
    },
  });
  await assert.rejects(call.result, (e: Error) => {
    assert.equal(e.name, 'ModelChangedError', e.message);
    assert.match(e.message, /vgg16\.onnx changed on disk while it was being loaded/);
    return true;
  });
  assert.ok(replaced);

  // Cancel (hard) while the large model loads: the engine stops it or is terminated
  writeFileSync(model, exportOnnx(buildVgg16(17, 10)));
  let loading!: () => void;
  const started = new Promise<void>((r) => (loading = r));
  const job = c.request('load', { spec: spec(model) }, { onProgress: (m) => /^loading/.test(m) && loading() });
  await started;
  const pid = c.pid!;
  const outcome = await job.cancel(true);
  assert.ok(outcome === 'stopped' || outcome === 'terminated', outcome);
  await assert.rejects(job.result, (e: Error) => e.name === 'CancelledError');
  if (outcome === 'terminated') assert.throws(() => process.kill(pid, 0), 'the engine process is gone');
  // and the next request works
  const ok = await c.request('explain', { spec: spec(VGG), method: 'lrp', displayMaxSide: 768 }).result;
  assert.ok(ok.layers.length > 0);

  // a limit the size check lets pass (2 x 537 MB + 256 MB < 1400 MB) but the process outgrows
  // while it loads and compiles: the client stops it and says so
  const small = client(1400);
  await assert.rejects(small.request('explain', { spec: spec(model), method: 'lrp', displayMaxSide: 768 }, { what: 'explaining sample0.png' }).result, (e: Error) => {
    assert.equal(e.name, 'EngineMemoryError', e.message);
    assert.match(e.message, /^The engine used \d+ MB while explaining sample0\.png, more than its memory limit of 1400 MB \(setting lrpLens\.engineMemoryMb\)/);
    return true;
  });
});
