import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Patterns, SettingsError, settings as s } from '../src/sdk.js';
import { INVALID, fakeHost } from './fake-host.js';

const Example = s.object('Example', {
  min_tags: s.u32(),
  owners: s.withDefault(s.list(s.object('Owner', { pattern: s.pattern(), actors: s.list(s.string()) })), () => []),
  mode: s.withDefault(s.oneOf('Mode', ['immutable', 'mutable']), 'immutable'),
  mutable: s.withDefault(s.patterns(), () => new Patterns()),
  labels: s.withDefault(s.map(s.pattern()), () => new Map()),
  name: s.optional(s.string()),
});

/** The error text for `json`, as the host shows it. */
function error(json) {
  try {
    s.parseSettings(json, Example);
  } catch (e) {
    assert.ok(e instanceof SettingsError);
    return e.message;
  }
  assert.fail(`accepted ${json}`);
}

test('errors name the field path as the Rust SDK does', () => {
  fakeHost();
  assert.equal(
    error('{"min_tags":1,"owners":[{"pattern":"a","actors":[],"who":1}]}'),
    'settings.owners[0].who: unknown field `who`, expected `pattern` or `actors`',
  );
  assert.equal(
    error('{"extra":1}'),
    'settings.extra: unknown field `extra`, expected one of `min_tags`, `owners`, `mode`, `mutable`, `labels`, `name`',
  );
  assert.equal(error('{}'), 'settings: missing field `min_tags`');
  assert.equal(error('{"min_tags":1,"owners":[{"actors":[]}]}'), 'settings.owners[0]: missing field `pattern`');
  assert.equal(error('{"min_tags":1,"owners":[5]}'), 'settings.owners[0]: invalid type: integer `5`, expected struct Owner');
  assert.equal(
    error('{"min_tags":1,"mutable":["latest","[a-"]}'),
    `settings.mutable[1]: \`[a-\` is not a valid regex: ${INVALID}`,
  );
  assert.equal(
    error('{"min_tags":1,"labels":{"a.b":"("}}'),
    `settings.labels.a.b: \`(\` is not a valid regex: ${INVALID}`,
  );
});

test('types and values are refused with serde wording', () => {
  fakeHost();
  assert.equal(error('{"min_tags":"two"}'), 'settings.min_tags: invalid type: string "two", expected u32');
  assert.equal(error('{"min_tags":-1}'), 'settings.min_tags: invalid value: integer `-1`, expected u32');
  assert.equal(error('{"min_tags":5000000000}'), 'settings.min_tags: invalid value: integer `5000000000`, expected u32');
  assert.equal(error('{"min_tags":1.5}'), 'settings.min_tags: invalid type: floating point `1.5`, expected u32');
  assert.equal(error('{"min_tags":null}'), 'settings.min_tags: invalid type: null, expected u32');
  assert.equal(error('{"min_tags":true}'), 'settings.min_tags: invalid type: boolean `true`, expected u32');
  assert.equal(error('{"min_tags":[]}'), 'settings.min_tags: invalid type: sequence, expected u32');
  assert.equal(error('{"min_tags":{}}'), 'settings.min_tags: invalid type: map, expected u32');
  assert.equal(error('{"min_tags":1,"mutable":null}'), 'settings.mutable: invalid type: null, expected a sequence');
  assert.equal(error('{"min_tags":1,"labels":[]}'), 'settings.labels: invalid type: sequence, expected a map');
  assert.equal(
    error('{"min_tags":1,"mode":"sometimes"}'),
    'settings.mode: unknown variant `sometimes`, expected `immutable` or `mutable`',
  );
  assert.equal(error('{"min_tags":1,"mode":5}'), 'settings.mode: expected value');
  assert.equal(error('[1]'), 'settings: invalid type: sequence, expected struct Example');
});

test('defaults, options and map order', () => {
  fakeHost();
  const read = s.parseSettings('{"min_tags":2,"name":null,"labels":{"b":"x","a":"y","B":"z"}}', Example);
  assert.equal(read.min_tags, 2);
  assert.deepEqual(read.owners, []);
  assert.equal(read.mode, 'immutable');
  assert.ok(read.mutable.isEmpty());
  assert.equal(read.name, undefined);
  assert.deepEqual([...read.labels.keys()], ['B', 'a', 'b'], 'ordered like a BTreeMap');
});

test('the first wrong field in the order written is reported', () => {
  fakeHost();
  assert.match(error('{"mutable":["[a-"],"extra":1,"min_tags":1}'), /^settings\.mutable\[0\]/);
  assert.match(error('{"extra":1,"mutable":["[a-"]}'), /^settings\.extra: unknown field/);
});
