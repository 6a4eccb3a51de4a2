import { test } from 'node:test';
import assert from 'node:assert/strict';
import { labelFor, parseLabels } from '../../src/engine/io/labels';

test('one label per line, trimmed, trailing newline ignored', () => {
  assert.deepEqual(parseLabels('cat\n  dog \r\nbird\n', 'l.txt'), ['cat', 'dog', 'bird']);
  assert.deepEqual(parseLabels('a\n\nc', 'l.txt'), ['a', '', 'c'], 'inner empty lines keep their position');
});

test('JSON array of strings', () => {
  assert.deepEqual(parseLabels('["circle", "square"]', 'l.json'), ['circle', 'square']);
});

test('JSON object index -> label, including ImageNet style', () => {
  assert.deepEqual(parseLabels('{"1": "b", "0": "a"}', 'l.json'), ['a', 'b']);
  assert.deepEqual(parseLabels('{"0": ["n01440764", "tench"], "1": ["n01443537", "goldfish"]}', 'i.json'), ['tench', 'goldfish']);
  assert.deepEqual(parseLabels('{"0": "a", "2": "c"}', 'l.json'), ['a', 'class 1', 'c'], 'gaps filled');
});

test('bad JSON and bad shapes name the file', () => {
  assert.throws(() => parseLabels('{"0": "a",', 'bad.json'), { message: /^bad\.json: invalid JSON/ });
  assert.throws(() => parseLabels('{"x": "a"}', 'bad.json'), { message: /^bad\.json: .*class indices/ });
  assert.throws(() => parseLabels('[{}]', 'bad.json'), { message: /^bad\.json: / });
});

test('labelFor falls back to class i', () => {
  assert.equal(labelFor(['a', 'b'], 1), 'b');
  assert.equal(labelFor(['a', 'b'], 5), 'class 5');
  assert.equal(labelFor(undefined, 0), 'class 0');
});
