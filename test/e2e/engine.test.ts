// End to end, issue 13: the engine runs outside the extension host. In a real VS Code with LRP Lens
// and a second, tiny extension (test/e2e/probe-extension: it answers a command over HTTP), a
// VGG-16-shaped model with random weights (553 MB, generated here, never committed) is explained:
//   1. while the model loads and explains, the extension host's thread never runs for more than
//      50 ms in one event-loop stall (the probe measures its thread's CPU time), and the probe's
//      command answers within 100 ms every time;
//   2. Cancel closes the notification within 1 s, the engine's CPU use falls to idle within 2 s
//      (/proc/PID/stat), and the next explanation works;
//   3. the engine killed with SIGKILL mid-run: the panel shows Engine stopped with Retry, the other
//      panel and the probe's command keep working, Retry works;
//   4. the model replaced on disk: the open panel offers Explain Again, which explains the new model.
//   LRP_E2E_CACHE=... node --import tsx --test test/e2e/engine.test.ts
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import type { Frame, Page } from 'playwright-core';
import { exportOnnx } from '../../src/engine/import/onnx';
import { buildVgg16 } from '../../scripts/make-vgg16';
import { ROOT, explorerCommand, openWorkbench, screenshot, startVsCode, waitAppState, withEvidence, type CodeServer, type VsCodeSession } from './harness';

const FIXTURES = path.resolve(__dirname, '../fixtures');
const PROBE_DIR = path.join(__dirname, 'probe-extension');
/** Every probe command during an explanation must answer within this (acceptance 1). */
const MAX_LATENCY_MS = 100;

let session: VsCodeSession | undefined;
let server: CodeServer;
let page: Page;
let ws: string;
let probePort = 0;
const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });

/** Packages the probe extension into the scratch folder (vsce, offline). */
function packageProbe(out: string): string {
  const vsce = path.join(ROOT, 'node_modules', '@vscode', 'vsce', 'vsce');
  const r = spawnSync(process.execPath, [vsce, 'package', '--allow-missing-repository', '--skip-license', '--out', out], { cwd: PROBE_DIR, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`packaging the probe failed: ${r.stderr || r.stdout}`);
  return out;
}

/** The lines of LRP Lens's output channel (VS Code keeps a log file of it) stamped between t0 and t1 (ms since the epoch). */
function extensionLog(t0: number, t1: number): string[] {
  const files: string[] = [];
  const walk = (d: string): void => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name.endsWith('LRP Lens.log')) files.push(p);
    }
  };
  walk(server.userDataDir);
  return files
    .flatMap((f) => fs.readFileSync(f, 'utf8').split('\n'))
    .filter((l) => {
      const m = /^\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3})\]/.exec(l);
      const at = m ? Date.parse(m[1].replace(' ', 'T') + 'Z') : NaN;
      return at >= t0 && at <= t1;
    })
    .map((l) => l.replace(/^\[[^\]]*\]/, (s) => `[+${((Date.parse(s.slice(1, -1).replace(' ', 'T') + 'Z') - t0) / 1000).toFixed(2)} s]`));
}

/** GET `path` of the probe's server, parsed as JSON. */
function probeJson<T>(path: string): Promise<T> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port: probePort, path, agent }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (body += d));
        res.on('end', () => resolve(JSON.parse(body) as T));
      })
      .on('error', reject);
  });
}

/** The extension host's event-loop stalls the probe saw from inside ({at: Date.now(), ms}). */
const probeLags = (): Promise<{ at: number; ms: number; cpuMs?: number }[]> => probeJson('/lag');
/** The extension host's resident memory in MB (what a fork from its thread copies the page tables of). */
const probeRssMb = async (): Promise<number> => (await probeJson<{ rssMb: number }>('/rss')).rssMb;

/** Runs the probe's command once; resolves with the round trip in ms. */
function ping(): Promise<number> {
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port: probePort, path: '/ping', agent }, (res) => {
      res.resume();
      res.on('end', () => (res.statusCode === 200 ? resolve(performance.now() - t0) : reject(new Error(`probe answered ${res.statusCode}`))));
    });
    req.on('error', reject);
  });
}

/** One probe command: when it was sent (Date.now()), its round trip and the time until the probe answered, in ms. */
interface Ping {
  at: number;
  ms: number;
  answerMs: number;
}

/**
 * Pings the probe every `gapMs` from a worker thread (so this process's own work, Playwright's
 * polling, does not delay the measurement) until stopped; each entry: when it started
 * (Date.now()), its round trip, and how long the probe took to answer.
 */
function pinger(gapMs = 100): { stop(): Promise<Ping[]> } {
  const code = `
    const http = require('node:http');
    const { parentPort, workerData } = require('node:worker_threads');
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const out = [];
    let running = true;
    parentPort.on('message', () => (running = false));
    // ms: the round trip as this thread saw it; answerMs: from the send until the probe answered
    // (its own clock reading, the same system clock), which leaves out how late this process was
    // scheduled to read the answer
    const ping = () => new Promise((resolve, reject) => {
      const t0 = performance.now();
      const sentAt = performance.timeOrigin + t0;
      http.get({ host: '127.0.0.1', port: workerData.port, path: '/ping', agent }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d) => (body += d));
        res.on('end', () => {
          if (res.statusCode !== 200) return reject(new Error('probe answered ' + res.statusCode));
          const ms = performance.now() - t0;
          resolve({ ms, answerMs: Math.min(ms, JSON.parse(body).answeredAt - sentAt) });
        });
      }).on('error', reject);
    });
    (async () => {
      while (running) {
        const at = Date.now();
        out.push({ at, ...(await ping()) });
        await new Promise((r) => setTimeout(r, workerData.gapMs));
      }
      agent.destroy();
      parentPort.postMessage(out);
    })().catch((e) => parentPort.postMessage({ error: String(e) }));
  `;
  const worker = new Worker(code, { eval: true, workerData: { port: probePort, gapMs } });
  const done = new Promise<Ping[]>((resolve, reject) => {
    worker.once('message', (m: Ping[] | { error: string }) => (Array.isArray(m) ? resolve(m) : reject(new Error(m.error))));
    worker.once('error', reject);
  });
  return {
    async stop() {
      worker.postMessage('stop');
      const out = await done;
      await worker.terminate();
      return out;
    },
  };
}

/** PIDs of this VS Code's engine processes (dist/engine.js under its extensions folder). */
function enginePids(): number[] {
  const pids: number[] = [];
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const cmd = fs.readFileSync(`/proc/${d}/cmdline`, 'utf8').split('\0');
      if (cmd.some((a) => a.startsWith(server.extensionsDir) && a.endsWith(path.join('dist', 'engine.js')))) pids.push(Number(d));
    } catch {
      // gone
    }
  }
  return pids;
}

async function enginePid(timeoutMs = 30_000): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const pids = enginePids();
    if (pids.length === 1) return pids[0];
    if (Date.now() > deadline) throw new Error(`expected one engine process, found ${pids.length}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** utime + stime of a process in clock ticks, undefined once it is gone. */
function cpuTicks(pid: number): number | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (f[0] === 'Z') return undefined; // exited, not yet reaped
    return Number(f[11]) + Number(f[12]);
  } catch {
    return undefined;
  }
}

/**
 * Ms from `since` (Date.now() time) until the process is idle: gone, or at most 1 tick (10 ms) of CPU in a 300 ms
 * window. Gives up after `timeoutMs`.
 */
async function idleAfter(pid: number, since: number, timeoutMs = 10_000): Promise<number> {
  const samples: { t: number; ticks: number }[] = [];
  for (;;) {
    const t = Date.now();
    const ticks = cpuTicks(pid);
    if (ticks === undefined) return t - since;
    samples.push({ t, ticks });
    const old = samples.find((s) => t - s.t <= 300 + 1 && t - s.t >= 290) ?? (samples.length > 3 ? samples[samples.length - 4] : undefined);
    if (old && t - old.t >= 290 && ticks - old.ticks <= 1) return old.t - since;
    if (t - since > timeoutMs) throw new Error(`the engine process ${pid} is still busy ${timeoutMs} ms after Cancel`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** The content frame of the explain panel of `image` (found by the image name it shows). */
async function panelFrame(image: string, timeoutMs = 60_000): Promise<Frame> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    for (const f of page.frames()) {
      const name = await f.locator('#image-name').textContent({ timeout: 200 }).catch(() => null);
      if (name?.trim() === image) return f;
    }
    if (Date.now() > deadline) throw new Error(`no panel shows ${image}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

async function ready(view: Frame, timeout = 360_000): Promise<void> {
  await waitAppState(view as never, 'ready', ['error'], '#error', 'panel', timeout);
}

async function setComposite(view: Frame, composite: string): Promise<string | null> {
  const runBefore = await view.locator('#heatmap').getAttribute('data-run-id');
  await view.locator('#composite').evaluate((el: HTMLElement & { value: string }, c: string) => {
    el.value = c;
    el.dispatchEvent(new Event('change', { bubbles: true }));
  }, composite);
  return runBefore;
}

async function heatmapHash(view: Frame): Promise<{ distinct: number; hash: string }> {
  return view.locator('#heatmap').evaluate((c: HTMLCanvasElement) => {
    const d = c.getContext('2d')!.getImageData(0, 0, c.width, c.height).data;
    const colours = new Set<number>();
    let h = 2166136261;
    for (let i = 0; i < d.length; i += 4) {
      colours.add((d[i] << 16) | (d[i + 1] << 8) | d[i + 2]);
      h = Math.imul(h ^ d[i] ^ (d[i + 1] << 8) ^ (d[i + 2] << 16), 16777619);
    }
    return { distinct: colours.size, hash: (h >>> 0).toString(16) };
  });
}

function toast(title: string) {
  return page.locator('.notifications-toasts .notification-toast', { hasText: title }).first();
}

before(async () => {
  let root = '';
  const probeVsix = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'lrp-probe-')), 'probe.vsix');
  packageProbe(probeVsix);
  session = await startVsCode(
    'lrp-e2e-engine-',
    (r) => {
      root = r;
      ws = path.join(r, 'workspace');
      fs.mkdirSync(path.join(ws, 'model'), { recursive: true });
      // 138 M random weights, 553 MB: generated for the test, deleted with the scratch folder
      fs.writeFileSync(path.join(ws, 'model', 'vgg16.onnx'), exportOnnx(buildVgg16(16, 1000)));
      fs.copyFileSync(path.join(FIXTURES, 'lrp-reference', 'shapes-vgg', 'inputs', 'sample0.png'), path.join(ws, 'shape.png'));
      fs.copyFileSync(path.join(FIXTURES, 'images', 'coffee.png'), path.join(ws, 'coffee.png'));
      return ws;
    },
    { width: 1600, height: 1000 },
    { extraVsix: [probeVsix] },
  );
  assert.ok(root);
  ({ server, page } = session);
  // The browser stands in for VS Code's window. On this 2-core machine it renders in software, and
  // its progress animations (the notification's bar, the panel's ring) keep its GPU process, which
  // Chromium runs above normal priority, busy on a CPU the extension host then waits for. A real
  // window draws them on the GPU; reduced motion (which VS Code and the panel honour) stops them.
  await page.emulateMedia({ reducedMotion: 'reduce' });
  fs.rmSync(path.dirname(probeVsix), { recursive: true, force: true });
});

after(async () => {
  agent.destroy();
  await session?.stop();
});

/** What the responsiveness run measured (test 1), for the latency bound (test 2). */
let latency: { max: number; maxRoundTrip: number; baseMax: number; load: number; busiestStallMs: number } | undefined;
/** Longest stretch the extension host's own thread may spend running in one event-loop stall. */
const MAX_HOST_BUSY_MS = 50;

test(
  "VS Code stays responsive while a 553 MB VGG-16 loads and explains: LRP Lens never holds the extension host's thread",
  { timeout: 600_000 },
  async (t) => {
  await withEvidence(t, page, server, 'e2e-engine-failure-responsive', async () => {
    await openWorkbench(page, server.url(ws), 'shape.png', 'vgg16.onnx');
    const portFile = path.join(server.scratch, 'tmp', 'lrp-lens-probe.json');
    const deadline = Date.now() + 60_000;
    while (!fs.existsSync(portFile)) {
      if (Date.now() > deadline) throw new Error('the probe extension did not start');
      await new Promise((r) => setTimeout(r, 250));
    }
    probePort = JSON.parse(fs.readFileSync(portFile, 'utf8')).port;
    for (let i = 0; i < 5; i++) await ping(); // warm
    assert.deepEqual(enginePids(), [], 'no engine process before the first explanation');

    // the baseline: the same probe while nothing is explained (how loaded the machine is)
    const idle = pinger();
    const b0 = Date.now();
    await page.waitForTimeout(15_000);
    const base = (await idle.stop()).map((p) => p.answerMs).sort((a, b) => a - b);
    const baseStalls = (await probeLags()).filter((l) => l.at >= b0);
    t.diagnostic(
      `baseline, nothing explained: ${base.length} probe commands, median ${base[base.length >> 1].toFixed(1)} ms, max ${base[base.length - 1].toFixed(1)} ms; ` +
        `${baseStalls.length} event-loop stalls over 20 ms, longest ${Math.max(0, ...baseStalls.map((l) => l.ms))} ms; load average ${os.loadavg()[0].toFixed(1)}; ` +
        `extension host resident memory ${await probeRssMb()} MB`,
    );

    const pings = pinger();
    const t0 = Date.now();
    await explorerCommand(page, 'shape.png', 'Explain Prediction');
    const view = await panelFrame('shape.png');
    await ready(view);
    const t1 = Date.now();
    const during = (await pings.stop()).filter((p) => p.at >= t0 && p.at <= t1);
    // found after the run: scanning /proc while the engine allocates would disturb the measurement
    const pid = await enginePid();
    const engineCpuS = (cpuTicks(pid) ?? 0) / 100;
    await screenshot(page, 'e2e-engine-01-vgg16-explained');
    const max = Math.max(...during.map((p) => p.answerMs));
    const maxRoundTrip = Math.max(...during.map((p) => p.ms));
    const sorted = during.map((p) => p.answerMs).sort((a, b) => a - b);
    const slowest = [...during].sort((a, b) => b.answerMs - a.answerMs).slice(0, 5);
    const stalls = (await probeLags()).filter((l) => l.at >= t0 && l.at <= t1).sort((a, b) => b.ms - a.ms);
    t.diagnostic(
      `extension host event loop, seen from inside: ${stalls.length} stalls over 20 ms, longest ` +
        (stalls.slice(0, 5).map((l) => `${((l.at - t0) / 1000).toFixed(1)} s: ${l.ms} ms (${l.cpuMs ?? '?'} ms of it running on the host's thread)`).join(', ') || 'none'),
    );
    t.diagnostic(
      `explanation took ${((t1 - t0) / 1000).toFixed(1)} s (engine process ${pid}: ${engineCpuS.toFixed(1)} s CPU); ` +
        `${during.length} probe commands answered after median ${sorted[sorted.length >> 1].toFixed(1)} ms, max ${max.toFixed(1)} ms ` +
        `(round trips as this process read them: max ${maxRoundTrip.toFixed(1)} ms); slowest at ` +
        slowest.map((p) => `${((p.at - t0) / 1000).toFixed(1)} s: ${p.answerMs.toFixed(0)} ms`).join(', ') +
        `; load average ${os.loadavg()[0].toFixed(1)} on ${os.cpus().length} CPUs`,
    );
    t.diagnostic(`LRP Lens's log during the explanation:\n  ${extensionLog(t0, t1).join('\n  ')}`);
    const busiest = stalls.reduce((m, l) => Math.max(m, l.cpuMs ?? l.ms), 0);
    latency = { max, maxRoundTrip, baseMax: base[base.length - 1], load: os.loadavg()[0], busiestStallMs: busiest };
    assert.ok(engineCpuS > 2, `the engine process did the work (${engineCpuS} s CPU)`);
    assert.ok(during.length >= 20, `the probe command ran ${during.length} times during the explanation`);
    // the host's thread itself: no stall in which it ran (rather than waited for a CPU) for long
    assert.ok(
      busiest <= MAX_HOST_BUSY_MS,
      `the extension host's thread ran ${busiest} ms within one event-loop stall (limit ${MAX_HOST_BUSY_MS} ms)`,
    );
    assert.equal(await view.locator('#top5 .prediction').count(), 5);
    assert.ok((await heatmapHash(view)).distinct > 50);
  });
});

// The time counted is from the test's send until the probe answered (the probe's clock reading,
// the same system clock); how late this process then reads the answer is this process's
// scheduling, not VS Code's: in one full run a round trip took 171 ms while the extension host's
// event loop had no stall over 45 ms. Measured on this 2-core machine with nothing else running:
// slowest round trip 33 ms (13 ms with nothing explained).
test('every probe command during that explanation answered within 100 ms', async () => {
  assert.ok(latency, 'the responsiveness run measured nothing');
  const { max, maxRoundTrip, baseMax, load } = latency;
  assert.ok(
    max < MAX_LATENCY_MS,
    `the slowest probe command answered after ${max.toFixed(1)} ms (limit ${MAX_LATENCY_MS} ms; round trip ${maxRoundTrip.toFixed(1)} ms); with nothing explained after up to ` +
      `${baseMax.toFixed(1)} ms (load average ${load.toFixed(1)} on ${os.cpus().length} CPUs)`,
  );
});

test('Cancel closes the notification within 1 s, the engine goes idle within 2 s, the next explanation works', { timeout: 600_000 }, async (t) => {
  await withEvidence(t, page, server, 'e2e-engine-failure-cancel', async () => {
    const view = await panelFrame('shape.png');
    const pid = await enginePid();
    // a new composite: the engine compiles and builds another LRP program for the 553 MB model
    await setComposite(view, 'epsilon');
    const note = toast('LRP Lens: shape.png');
    await note.waitFor({ state: 'visible', timeout: 10_000 });
    await page.waitForTimeout(1000);
    assert.ok(cpuTicks(pid) !== undefined, 'the engine is running');
    // timed in the page: from the click on Cancel until the toast is gone (Playwright's own
    // actionability checks before the click do not count)
    await note.evaluate((toastEl: HTMLElement) => {
      const w = window as unknown as { lrpCancel: { clickAt?: number; closedAt?: number } };
      w.lrpCancel = {};
      document.addEventListener('mousedown', (e) => {
        if (toastEl.contains(e.target as Node) && w.lrpCancel.clickAt === undefined) w.lrpCancel.clickAt = Date.now();
      }, true);
      const timer = setInterval(() => {
        if (w.lrpCancel.clickAt === undefined) return;
        if (!toastEl.isConnected || toastEl.offsetParent === null || getComputedStyle(toastEl).visibility === 'hidden') {
          w.lrpCancel.closedAt = Date.now();
          clearInterval(timer);
        }
      }, 5);
    });
    await note.getByRole('button', { name: 'Cancel' }).click();
    await note.waitFor({ state: 'hidden', timeout: 10_000 });
    const { clickAt, closedAt } = await page.evaluate(() => (window as unknown as { lrpCancel: { clickAt: number; closedAt: number } }).lrpCancel);
    const closedMs = closedAt - clickAt;
    const idleMs = await idleAfter(pid, clickAt);
    const notice = view.locator('#notice');
    await notice.waitFor({ state: 'visible', timeout: 5_000 });
    const noticeText = (await notice.innerText()).trim();
    t.diagnostic(`notification closed after ${closedMs.toFixed(0)} ms; engine ${pid} idle after ${idleMs.toFixed(0)} ms; panel: ${noticeText}`);
    await screenshot(page, 'e2e-engine-02-cancelled');
    assert.ok(closedMs < 1000, `the notification closed after ${closedMs.toFixed(0)} ms`);
    assert.ok(idleMs <= 2000, `the engine was idle ${idleMs.toFixed(0)} ms after Cancel`);
    assert.match(noticeText, /^Cancelled; the engine (stopped the explanation|did not stop within half a second, so its process was terminated)/);

    const runBefore = await setComposite(view, 'epsilon');
    await view.locator(`#heatmap:not([data-run-id="${runBefore}"])`).waitFor({ state: 'attached', timeout: 360_000 });
    await ready(view);
    assert.equal(await view.locator('#composite').evaluate((el: HTMLElement & { value: string }) => el.value), 'epsilon');
    assert.ok((await heatmapHash(view)).distinct > 50);
    await screenshot(page, 'e2e-engine-03-after-cancel');
  });
});

test('the engine killed mid-run: Engine stopped with Retry; the other panel and commands keep working; Retry works', { timeout: 600_000 }, async (t) => {
  await withEvidence(t, page, server, 'e2e-engine-failure-crash', async () => {
    await explorerCommand(page, 'coffee.png', 'Explain Prediction');
    const other = await panelFrame('coffee.png');
    await ready(other);
    const otherBefore = await heatmapHash(other);

    await page.locator('.tab', { hasText: 'shape.png' }).first().click();
    const view = await panelFrame('shape.png');
    await setComposite(view, 'alpha1-beta0');
    await toast('LRP Lens: shape.png').waitFor({ state: 'visible', timeout: 10_000 });
    await page.waitForTimeout(1000);
    const pid = await enginePid();
    assert.equal(await view.locator('#app').getAttribute('data-busy'), 'true', 'the panel is still explaining');
    process.kill(pid, 'SIGKILL');

    await view.locator('#error .error-title').waitFor({ state: 'visible', timeout: 30_000 });
    const title = (await view.locator('#error .error-title').innerText()).trim();
    const message = (await view.locator('#error .error-message').innerText()).trim();
    t.diagnostic(`${title}: ${message}`);
    await screenshot(page, 'e2e-engine-04-killed');
    assert.equal(title, 'Engine stopped');
    assert.match(message, /SIGKILL/);
    assert.equal(await view.locator('#error vscode-button', { hasText: 'Retry' }).count(), 1, 'Retry is offered');

    // the extension host and the other panel are unaffected
    const ms = await ping();
    assert.ok(ms < MAX_LATENCY_MS, `the probe command answers (${ms.toFixed(1)} ms)`);
    assert.equal(await other.locator('#app').getAttribute('data-state'), 'ready');
    assert.deepEqual(await heatmapHash(other), otherBefore, 'the other panel still shows its result');
    assert.deepEqual(enginePids(), [], 'no engine process until the next request');

    await view.locator('#error vscode-button', { hasText: 'Retry' }).click();
    // the panel keeps data-state "error" until the new result arrives: wait for the error to go,
    // then for the result (an error shown again fails at once)
    await view.locator('#error').waitFor({ state: 'hidden', timeout: 10_000 });
    const deadline = Date.now() + 360_000;
    while ((await view.locator('#app').getAttribute('data-state')) !== 'ready') {
      if (await view.locator('#error').isVisible()) throw new Error(`Retry failed: ${await view.locator('#error').innerText()}`);
      if (Date.now() > deadline) throw new Error('Retry gave no result within 360 s');
      await page.waitForTimeout(250);
    }
    assert.equal(await view.locator('#composite').evaluate((el: HTMLElement & { value: string }) => el.value), 'alpha1-beta0');
    assert.notEqual(await enginePid(), pid, 'a new engine process');
    await screenshot(page, 'e2e-engine-05-retried');
  });
});

test('a model replaced on disk: the open panel offers Explain Again, which explains the new model', { timeout: 300_000 }, async (t) => {
  await withEvidence(t, page, server, 'e2e-engine-failure-model-changed', async () => {
    const view = await panelFrame('shape.png');
    const model = path.join(ws, 'model', 'vgg16.onnx');
    // the small 4-class shapes model, under the same name (atomic replace)
    fs.copyFileSync(path.join(FIXTURES, 'lrp-reference', 'shapes-vgg', 'model.onnx'), model + '.new');
    fs.renameSync(model + '.new', model);
    const again = view.locator('#notice vscode-button', { hasText: 'Explain Again' });
    await again.waitFor({ state: 'visible', timeout: 15_000 });
    const text = (await view.locator('#notice').innerText()).trim();
    t.diagnostic(text);
    assert.match(text, /vgg16\.onnx changed on disk/);
    await screenshot(page, 'e2e-engine-06-model-changed');
    const runBefore = await view.locator('#heatmap').getAttribute('data-run-id');
    await again.click();
    await view.locator(`#heatmap:not([data-run-id="${runBefore}"])`).waitFor({ state: 'attached', timeout: 120_000 });
    await ready(view);
    assert.equal(await view.locator('#top5 .prediction').count(), 4, 'the new model has 4 classes');
  });
});
