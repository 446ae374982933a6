import assert from 'node:assert/strict';
import { test } from 'node:test';
import { report } from '../src/findings.js';
import { Findings } from '../src/sdk.js';
import { fakeHost } from './fake-host.js';

test('any denial denies, else any warning warns, else allow', () => {
  const findings = new Findings();
  assert.deepEqual(findings.decision(), { outcome: 'allow', findings: [] });
  findings.warn('a', 'careful');
  assert.equal(findings.decision().outcome, 'warn');
  findings.denyRequest('no');
  findings.deny('b', 'never');
  assert.ok(findings.isDenied());
  assert.deepEqual(findings.decision(), {
    outcome: 'deny',
    findings: [
      { tag: undefined, reason: 'no' },
      { tag: 'b', reason: 'never' },
    ],
  });
});

test('a decision is reported through verdict, in order; warnings of a denial are dropped', () => {
  const host = fakeHost();
  const findings = new Findings();
  findings.warn('w', 'only a warning');
  findings.deny('x', 'first');
  findings.denyRequest('second');
  report(findings.decision());
  assert.deepEqual(host.verdicts, [
    ['deny', 'x', 'first'],
    ['deny', undefined, 'second'],
  ]);
});

test('a denial without findings still says why', () => {
  const host = fakeHost();
  report({ outcome: 'deny', findings: [] });
  assert.deepEqual(host.verdicts, [['deny', undefined, 'denied without a reason']]);
});
