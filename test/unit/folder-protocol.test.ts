// The folder grid's messages from the webview (untrusted) and its persisted state.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseFolderPersistedState, parseFolderWebviewMessage } from '../../src/protocol';

test('folder webview messages are validated', () => {
  assert.deepEqual(parseFolderWebviewMessage({ type: 'ready' }), { type: 'ready' });
  assert.deepEqual(parseFolderWebviewMessage({ type: 'cancel', extra: 1 }), { type: 'cancel' });
  assert.deepEqual(parseFolderWebviewMessage({ type: 'indexConcepts', layer: 'x' }), { type: 'indexConcepts' });
  assert.deepEqual(parseFolderWebviewMessage({ type: 'cancelIndex' }), { type: 'cancelIndex' });
  assert.deepEqual(parseFolderWebviewMessage({ type: 'rerun' }), { type: 'rerun' });
  assert.deepEqual(parseFolderWebviewMessage({ type: 'open', index: 2 }), { type: 'open', index: 2 });
  for (const bad of [null, 'open', [], { type: 'open' }, { type: 'open', index: -1 }, { type: 'open', index: 1.5 }, { type: 'open', index: '1' }, { type: 'explain' }])
    assert.equal(parseFolderWebviewMessage(bad), undefined, JSON.stringify(bad));
});

test('folder persisted state', () => {
  assert.deepEqual(parseFolderPersistedState({ folderPath: '/a/b', other: 1 }), { folderPath: '/a/b' });
  for (const bad of [undefined, {}, { folderPath: '' }, { folderPath: 3 }]) assert.equal(parseFolderPersistedState(bad), undefined);
});
