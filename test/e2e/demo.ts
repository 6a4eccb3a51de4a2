// Starts a real VS Code (code-server) with the packaged extension installed and a workspace open,
// prints the URL, and runs until Ctrl+C.
//   node --import tsx test/e2e/demo.ts [WORKSPACE]      (default: demo/)
// Environment: LRP_DEMO_PORT (default 8080), LRP_DEMO_HOST (default 127.0.0.1),
// LRP_E2E_VSIX (use this .vsix instead of running `npm run package`).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { CodeServer, ensureTools, ensureVsix, ROOT } from './harness';

async function main(): Promise<void> {
  const workspace = path.resolve(process.argv[2] ?? path.join(ROOT, 'demo'));
  if (!fs.existsSync(workspace)) throw new Error(`workspace ${workspace} does not exist`);
  ensureTools();
  const vsix = ensureVsix();
  const server = new CodeServer({
    vsix,
    workspace,
    port: Number(process.env.LRP_DEMO_PORT ?? 8080),
    host: process.env.LRP_DEMO_HOST ?? '127.0.0.1',
  });
  await server.start();
  const url = server.url();
  process.stdout.write(
    `\nVS Code with LRP Lens is running:\n\n    ${url}\n\n` +
      `Open it in a browser, right-click an image in the Explorer and choose "Explain Prediction".\n` +
      `Server log: ${server.log}\nPress Ctrl+C to stop.\n`,
  );
  let stopping = false;
  const stop = (): void => {
    if (stopping) return;
    stopping = true;
    void server.stop().then(() => process.exit(0));
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  await new Promise(() => undefined);
}

main().catch((err) => {
  process.stderr.write(`demo: ${(err as Error).message}\n`);
  process.exit(1);
});
