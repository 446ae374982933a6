import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Patterns, annotation, definePolicy, image, repository, settings as s } from '../src/sdk.js';
import { DIGEST, fakeHost, pushRequest } from './fake-host.js';

const naming = definePolicy({
  name: 'naming',
  version: '0.1.0',
  description: 'Every pushed tag must match one of the allowed patterns',
  settingsExample: '{"allowed":["latest"]}',
  settings: s.object('Settings', { allowed: s.patterns(), note: s.withDefault(s.string(), '') }),
  configure(settings) {
    if (settings.allowed.isEmpty()) throw 'settings.allowed: empty; list at least one pattern';
    return { allowed: settings.allowed };
  },
  evaluate(request, findings, state) {
    for (const change of request.changes()) {
      if (!change.isIdentical() && !state.allowed.anyMatch(change.tag)) {
        findings.deny(change.tag, `tag \`${change.tag}\` breaks the naming rules`);
      }
    }
  },
});

test('metadata is what the policy says, in the WIT record shape', () => {
  assert.deepEqual(naming.metadata(), {
    name: 'naming',
    version: '0.1.0',
    description: 'Every pushed tag must match one of the allowed patterns',
    settingsExample: '{"allowed":["latest"]}',
  });
});

test('configure throws the error text as a string (the WIT result error)', () => {
  fakeHost();
  assert.throws(() => naming.configure('{"allowed":[]}'), (e) => e === 'settings.allowed: empty; list at least one pattern');
  assert.throws(() => naming.configure('{"allowed":["("]}'), (e) => typeof e === 'string' && e.startsWith('settings.allowed[0]: `(` is not a valid regex'));
  assert.throws(() => naming.configure('{"alowed":[]}'), (e) => e === 'settings.alowed: unknown field `alowed`, expected `allowed` or `note`');
});

test('evaluate before configure denies', () => {
  const host = fakeHost();
  const fresh = definePolicy({ ...naming.metadata(), evaluate() {} });
  fresh.evaluate(pushRequest(DIGEST(1), { a: undefined }));
  assert.deepEqual(host.verdicts, [['deny', undefined, 'the policy was evaluated before it was configured']]);
});

test('a configured policy reports its findings through verdict', () => {
  const host = fakeHost();
  naming.configure('{"allowed":["latest","v\\\\d+"]}');
  naming.evaluate(pushRequest(DIGEST(1), { latest: undefined, v2: undefined, oops: undefined }));
  assert.deepEqual(host.verdicts, [['deny', 'oops', 'tag `oops` breaks the naming rules']]);
});

test('a policy without settings refuses any', () => {
  fakeHost();
  const none = definePolicy({ ...naming.metadata(), evaluate() {} });
  none.configure('{}');
  assert.throws(() => none.configure('{"x":1}'), (e) => e === 'settings.x: unknown field `x`, there are no fields');
});

test('repository and image facts come from the host', () => {
  const [a, b] = [DIGEST(1), DIGEST(2)];
  fakeHost({
    tags: { latest: a, '1.0': a, old: b },
    manifests: { [a]: { annotations: [{ key: 'k', value: 'v' }] } },
    labels: { [a]: [{ key: 'team', value: 'web' }] },
    referrers: { [a]: [{ artifactType: 'sig' }] },
  });
  assert.deepEqual(repository.tagsOf(a), ['1.0', 'latest']);
  assert.equal(repository.digestOf('old'), b);
  assert.equal(annotation(image.manifestOf(a), 'k'), 'v');
  assert.equal(image.label(a, 'team'), 'web');
  assert.ok(image.hasReferrer(a, 'sig'));
  assert.ok(!image.hasReferrer(b, 'sig'));
});

test('patterns: first match, any match, and a host error when a set is gone', () => {
  const host = fakeHost();
  const set = new Patterns(['a.*', 'ab']);
  assert.equal(set.firstMatch('abc')?.source, 'a.*');
  assert.equal(set.firstMatch('ab')?.source, 'a.*');
  assert.ok(!set.anyMatch('b'));
  assert.throws(() => new Patterns(['(']), (e) => typeof e === 'string' && e.startsWith('`(` is not a valid regex'));
  host.sets.length = 0;
  assert.throws(() => set.firstMatch('a'), /pattern set stopped working: no set/);
});
