// `npm run demo`: starts a real VS Code (code-server) with the packaged extension installed and a
// workspace open, prints the URL, and runs until Ctrl+C. Installs what it needs on first use
// (test/e2e/setup.sh) and packages the extension (`npm run package`).
//   node --import tsx test/e2e/demo.ts [WORKSPACE]      (default: demo/)
// Environment: LRP_DEMO_PORT (default 8080, or a free port when 8080 is taken), LRP_DEMO_HOST
// (default 127.0.0.1), LRP_E2E_VSIX (use this .vsix instead of running `npm run package`).
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { CodeServer, ensureTools, ensureVsix, ROOT } from './harness';

/** Whether `port` can be bound on `host`. */
function portFree(port: number, host: string): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.once('error', () => resolve(false));
    srv.listen(port, host, () => srv.close(() => resolve(true)));
  });
}

async function main(): Promise<void> {
  const workspace = path.resolve(process.argv[2] ?? path.join(ROOT, 'demo'));
  if (!fs.existsSync(workspace)) throw new Error(`workspace ${workspace} does not exist`);
  ensureTools();
  const vsix = ensureVsix();
  const host = process.env.LRP_DEMO_HOST ?? '127.0.0.1';
  let port: number | undefined = Number(process.env.LRP_DEMO_PORT ?? 8080);
  if (!process.env.LRP_DEMO_PORT && !(await portFree(port, host))) port = undefined; // a free one
  const server = new CodeServer({
    vsix,
    workspace,
    port,
    host,
    settings: { 'workbench.colorTheme': 'Default Dark Modern', 'git.enabled': false },
  });
  await server.start();
  const url = server.url();
  process.stdout.write(
    `\nVS Code with LRP Lens is running:\n\n    ${url}\n\n` +
      `Open it in a browser, right-click an image in the Explorer and choose "Explain Prediction"\n` +
      `(the first time, pick a model: shapes-resnet/model.onnx, the emotion model emotion/model.json or mobilenet-v2/model.json,\n` +
      `for the portraits; switch later with the status bar item).\n` +
      `Server log: ${server.log}\nPress Ctrl+C to stop.\n`,
  );
  let stopping = false;
  const stop = (): void => {
    if (stopping) return;
    stopping = true;
    void server.stop().then(() => {
      server.cleanup(); // the scratch user data and log (kept when LRP_E2E_KEEP is set)
      process.exit(0);
    });
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  await new Promise(() => undefined);
}

main().catch((err) => {
  process.stderr.write(`demo: ${(err as Error).message}\n`);
  process.exit(1);
});
