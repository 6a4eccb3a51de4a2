/* eslint-disable @typescript-eslint/no-require-imports -- a plain CommonJS extension, loaded as it is (no build step) */
// A second extension in the same extension host as LRP Lens (end-to-end tests only). It registers
// the command `lrpLensProbe.echo` and serves http://127.0.0.1:PORT/ping: each request runs the
// command through VS Code's command service and answers when it returns. When the extension
// host's thread is blocked (as it was while LRP Lens loaded a model), the answer waits.
// The port goes to $TMPDIR/lrp-lens-probe.json. GET /lag lists the stalls of the extension host's
// event loop seen from inside (a 10 ms timer firing late by more than 20 ms), to tell a blocked
// thread from a process waiting for a CPU; GET /rss the extension host's resident memory.
const http = require('node:http');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const vscode = require('vscode');

let server;
let lagTimer;

function activate(context) {
  let count = 0;
  const lags = [];
  let last = performance.now();
  // CPU time of this thread (Node 23.9+): a stall the thread spent running was work on the
  // extension host's thread; one it spent waiting was the machine's other processes (or I/O)
  const threadCpu = () => {
    const u = process.threadCpuUsage ? process.threadCpuUsage() : process.cpuUsage();
    return (u.user + u.system) / 1000;
  };
  let lastCpu = threadCpu();
  lagTimer = setInterval(() => {
    const now = performance.now();
    const cpu = threadCpu();
    const late = now - last - 10;
    if (late > 20) lags.push({ at: Date.now(), ms: Math.round(late), cpuMs: Math.round(cpu - lastCpu) });
    last = now;
    lastCpu = cpu;
  }, 10);
  context.subscriptions.push(vscode.commands.registerCommand('lrpLensProbe.echo', (n) => ({ n, count: ++count, pid: process.pid })));
  server = http.createServer((req, res) => {
    if (req.url === '/lag') {
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(lags));
      return;
    }
    if (req.url === '/rss') {
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ rssMb: Math.round(process.memoryUsage().rss / 2 ** 20) }));
      return;
    }
    if (req.url !== '/ping') {
      res.writeHead(404).end();
      return;
    }
    vscode.commands.executeCommand('lrpLensProbe.echo', count).then(
      // when the command answered (epoch ms, this machine's clock): the test measures from its send
      // to here, so its own process's scheduling afterwards does not count as VS Code's latency
      (r) => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ ...r, answeredAt: performance.timeOrigin + performance.now() })),
      (err) => res.writeHead(500).end(String(err)),
    );
  });
  server.listen(0, '127.0.0.1', () => {
    const file = path.join(os.tmpdir(), 'lrp-lens-probe.json');
    fs.writeFileSync(file + '.tmp', JSON.stringify({ port: server.address().port, pid: process.pid }));
    fs.renameSync(file + '.tmp', file);
  });
}

function deactivate() {
  clearInterval(lagTimer);
  server?.close();
}

module.exports = { activate, deactivate };
