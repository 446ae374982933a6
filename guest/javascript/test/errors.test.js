import assert from 'node:assert/strict';
import { test } from 'node:test';
import { describe } from '../src/errors.js';
import { definePolicy } from '../src/sdk.js';
import { DIGEST, fakeHost, pushRequest } from './fake-host.js';

// Bundle line 3 is the SDK's (no entry); line 7 is policy.js line 12, and from column 10 on
// line 13.
const table = { sources: ['policy.js'], lines: [[], [], [], [], [], [], [[0, 0, 12], [10, 0, 13]]] };

test('an error is named with the innermost frame of the policy, skipping the SDK', () => {
  const error = new TypeError('request.tagOf is not a function');
  error.stack = 'tagOf@bundle.js:3:5\nevaluate@bundle.js:7:12\nrun@bundle.js:7:1\n';
  assert.equal(describe(error, table), 'TypeError: request.tagOf is not a function (policy.js:13)');
  error.stack = 'evaluate@bundle.js:7:4\n';
  assert.equal(describe(error, table), 'TypeError: request.tagOf is not a function (policy.js:12)');
});

test('without a table or a frame of the policy, no place is made up', () => {
  const error = new RangeError('too far');
  error.stack = 'f@bundle.js:3:5\n';
  assert.equal(describe(error, table), 'RangeError: too far');
  assert.equal(describe(error, undefined), 'RangeError: too far');
  assert.equal(describe('nope', table), 'nope (thrown, not an Error)');
  assert.ok(describe(new Error('x'.repeat(5000)), table).length <= 901);
});

test('an exception in evaluate is the policy\'s failure, with its message, as in Python', () => {
  const host = fakeHost();
  const policy = definePolicy({
    name: 'typo',
    version: '0.1.0',
    description: 'd',
    settingsExample: '{}',
    evaluate(request) {
      request.tagOf('x');
    },
  });
  policy.configure('{}');
  policy.evaluate(pushRequest(DIGEST(1), { '1.0.0': undefined }));
  assert.deepEqual(host.verdicts, [
    ['fail', undefined, 'TypeError: request.tagOf is not a function'],
  ]);
});

test('async configure or evaluate is refused; a returned promise is a failure', () => {
  assert.throws(
    () => definePolicy({ name: 'a', version: '1', description: 'd', settingsExample: '{}', async evaluate() {} }),
    /`evaluate` must not be async/,
  );
  const host = fakeHost();
  const policy = definePolicy({
    name: 'later', version: '1', description: 'd', settingsExample: '{}',
    evaluate: () => Promise.reject(new Error('late')),
  });
  policy.configure('{}');
  policy.evaluate(pushRequest(DIGEST(1), { '1.0.0': undefined }));
  assert.equal(host.verdicts.length, 1);
  assert.equal(host.verdicts[0][0], 'fail');
  assert.match(host.verdicts[0][2], /`evaluate` returned a promise/);
});

test('console writes each call as one line through the host', async () => {
  const { makeConsole } = await import('../src/console.js');
  const lines = [];
  const console = makeConsole((text) => lines.push(text));
  console.log('checked', 3, 'tags', { size: 10n }, [1, 'a']);
  console.error(new TypeError('bad'));
  const cycle = {};
  cycle.self = cycle;
  console.warn(cycle, undefined);
  assert.deepEqual(lines, ['checked 3 tags {"size":10} [1,"a"]\n', 'TypeError: bad\n', '[object Object] undefined\n']);
});
