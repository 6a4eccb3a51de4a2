// What the process boundary adds to an explanation (issue 13, acceptance 5): the same `explain`
// request (LRP with every layer's map, the panel's request) answered in-process by the engine's
// service and through the engine process (dist/engine.js, via the host's EngineLink: the worker
// thread dist/engine-link.js that forks the process and decodes its results, as in the extension), runs
// interleaved. `boundaryMs` per run is the client's round trip minus the engine's own time for the
// request (serialising, piping and deserialising the result, and scheduling); the medians of both
// whole explanations are reported too. Prints one JSON line. `npm run build` first.
//
//   node --import tsx scripts/bench-engine.ts --model M.onnx --image I.png [--runs N] [--composite C]
import { existsSync } from 'node:fs';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { parseRulesConfig } from '../src/engine/config';
import { EngineLink } from '../src/host/engineLink';
import { EngineService } from '../src/explain/server/service';
import type { ExplainResult, ImageSpec } from '../src/explain/server/protocol';

const { values } = parseArgs({
  options: { model: { type: 'string' }, image: { type: 'string' }, runs: { type: 'string', default: '7' }, composite: { type: 'string', default: 'epsilon-plus-flat' } },
});
const entry = path.resolve('dist/engine.js');
const worker = path.resolve('dist/engine-link.js');
if (!values.model || !values.image) throw new Error('--model and --image are required');
if (!existsSync(entry) || !existsSync(worker)) throw new Error('dist/engine.js or dist/engine-link.js is missing; run `npm run build` first');
const runs = Number(values.runs);

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const round = (v: number, d = 2): number => Math.round(v * 10 ** d) / 10 ** d;

function payloadBytes(r: ExplainResult): number {
  let n = r.map.data.byteLength + r.relevance.data.byteLength + r.image.rgb.byteLength;
  for (const l of r.layers) n += (l.map?.data.byteLength ?? 0) + (l.channelSums?.byteLength ?? 0);
  return n;
}

async function main(): Promise<void> {
  const spec: ImageSpec = {
    modelPath: path.resolve(values.model!),
    imagePath: path.resolve(values.image!),
    backend: 'onnxruntime',
    preprocessing: { preset: 'imagenet', channelOrder: 'rgb' },
    rules: parseRulesConfig({ composite: values.composite }),
  };
  const body = { spec, method: 'lrp', displayMaxSide: 768 };
  const service = new EngineService();
  const client = new EngineLink({ entry, worker, memoryMb: () => 8192 });
  try {
    // warm up both: load, compile, first runs
    for (let i = 0; i < 2; i++) {
      await service.handle('explain', body);
      await client.request('explain', body).result;
    }
    const local: number[] = [];
    const remote: number[] = [];
    const boundary: number[] = [];
    let result: ExplainResult | undefined;
    for (let i = 0; i < runs; i++) {
      let t = performance.now();
      await service.handle('explain', body);
      local.push(performance.now() - t);
      t = performance.now();
      result = await client.request('explain', body).result;
      const ms = performance.now() - t;
      remote.push(ms);
      boundary.push(ms - result.timings.totalMs);
    }
    const r = result!;
    process.stdout.write(
      JSON.stringify({
        model: values.model,
        composite: values.composite,
        runs,
        input: `${r.map.width}x${r.map.height}`,
        layerMaps: r.layers.filter((l) => l.map).length,
        payloadMb: round(payloadBytes(r) / 2 ** 20, 2),
        inProcessMs: round(median(local), 1),
        throughProcessMs: round(median(remote), 1),
        boundaryMs: round(median(boundary), 2),
        boundaryMinMs: round(Math.min(...boundary), 2),
        boundaryMaxMs: round(Math.max(...boundary), 2),
        transport: 'worker thread, then child_process IPC with advanced serialization (typed arrays as bytes)',
      }) + '\n',
    );
  } finally {
    await client.dispose();
    await service.dispose();
  }
}

main().catch((e: Error) => {
  process.stderr.write(`bench-engine: ${e.message}\n`);
  process.exitCode = 1;
});
