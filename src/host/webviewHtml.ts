// The HTML shell of every LRP Lens webview: a strict CSP with a nonce, no remote content, the
// panel's stylesheet and script from the extension's media/ and dist/ folders.
import * as crypto from 'node:crypto';
import * as vscode from 'vscode';

export function webviewHtml(webview: vscode.Webview, extensionUri: vscode.Uri, page: { css: string; script: string }): string {
  const nonce = crypto.randomBytes(18).toString('base64');
  const asUri = (...p: string[]): string => webview.asWebviewUri(vscode.Uri.joinPath(extensionUri, ...p)).toString();
  const csp = [
    "default-src 'none'",
    `img-src ${webview.cspSource} data: blob:`,
    `style-src ${webview.cspSource} 'nonce-${nonce}'`,
    `font-src ${webview.cspSource}`,
    `script-src 'nonce-${nonce}'`,
  ].join('; ');
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="UTF-8">
<meta http-equiv="Content-Security-Policy" content="${csp}">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<meta name="lrp-nonce" content="${nonce}">
<link rel="stylesheet" href="${asUri('media', page.css)}" nonce="${nonce}">
<title>LRP Lens</title>
</head>
<body>
<div id="app" data-state="starting"><p class="placeholder">Starting…</p></div>
<script nonce="${nonce}" src="${asUri('dist', page.script)}"></script>
</body>
</html>`;
}
