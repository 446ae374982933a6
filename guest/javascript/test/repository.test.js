import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Instant, TagOrder, repository } from '../src/sdk.js';
import { DIGEST, INVALID, byBytes, fakeHost, stamp, versionKey } from './fake-host.js';

const { Name, NewestFirst } = TagOrder;

/** `{tag: digest}` for `tags`, all on one image. */
const on = (tags, digest = DIGEST(1)) => Object.fromEntries(tags.map((tag) => [tag, digest]));
/** The tags of a page. */
const names = (entries) => entries.map((entry) => entry.tag);
/** One page of `pattern` in `order`. */
const page = (pattern, order, limit = 1000, after = undefined) =>
  names(repository.findTags({ pattern, order, limit, after }));

test('the orders are the WIT enum cases as componentize-js names them', () => {
  assert.deepEqual({ ...TagOrder }, { Name: 'name', NewestFirst: 'newest-first' });
  assert.ok(Object.isFrozen(TagOrder));
});

test('the fake host keys versions as the real host does (host/engine/src/query.rs)', () => {
  assert.equal(versionKey('1.2.10'), '#.#.# 0011001200210 1.2.10');
  assert.equal(versionKey('latest'), 'latest  latest');
  assert.equal(versionKey('v0'), 'v# 000 v0');
  const tags = ['1.2.10', '1.2.9', '1.10.0', '2', '1.2', '1.2.9-rc1', '01.2.9'];
  fakeHost({ tags: on(tags) });
  assert.deepEqual(page('.*', NewestFirst), ['2', '1.10.0', '1.2.10', '1.2.9-rc1', '1.2.9', '01.2.9', '1.2']);
  assert.ok(byBytes('B', 'a') < 0 && byBytes('a', 'a') === 0);
});

test('find-tags: whole matches, newest first across shapes, paged after a cursor', () => {
  const host = fakeHost({
    tags: on(['1.2.9', 'v1.2.10', '1.2.11-rc1', '1.2.1', '1.3.0', '20261204', 'latest', '1.2']),
  });
  const pattern = String.raw`v?1\.2\.\d+`;
  assert.deepEqual(page(pattern, NewestFirst), ['v1.2.10', '1.2.9', '1.2.1']);
  assert.deepEqual(page(pattern, NewestFirst, 1), ['v1.2.10']);
  assert.deepEqual(page(pattern, NewestFirst, 2, 'v1.2.10'), ['1.2.9', '1.2.1']);
  assert.deepEqual(page(pattern, Name), ['1.2.1', '1.2.9', 'v1.2.10']);
  assert.deepEqual(page('1', Name), [], 'the whole tag must match');
  assert.deepEqual(host.queries.at(-1), { pattern: '1', order: 'name', limit: 1000, after: undefined });
  const entries = repository.findTags({ pattern: 'latest', order: Name, limit: 5 });
  assert.deepEqual(entries, [{ tag: 'latest', digest: DIGEST(1) }]);
});

test('find-tags by name: byte order, after a cursor that need not be a tag', () => {
  fakeHost({ tags: on(['b2', 'a2', 'B1', 'c1', 'a1', 'b1']) });
  assert.deepEqual(page('a.*|b.*', Name), ['a1', 'a2', 'b1', 'b2']);
  assert.deepEqual(page('a.*|b.*', Name, 3), ['a1', 'a2', 'b1']);
  assert.deepEqual(page('a.*|b.*', Name, 3, 'a2'), ['b1', 'b2']);
  assert.deepEqual(page('a.*|b.*', Name, 3, 'b9'), []);
  assert.deepEqual(page('[Bb].*', Name), ['B1', 'b1', 'b2']);
});

test('a refused query stops the policy, saying which query and why', () => {
  fakeHost({ tags: on(['a']) });
  assert.throws(
    () => repository.findTags({ pattern: '(', order: Name, limit: 1 }),
    (e) => e instanceof Error && e.message === `the query \`(\` was refused: ${INVALID}`,
  );
  assert.throws(
    () => repository.findTags({ pattern: 'a', order: Name, limit: 0 }),
    (e) => e instanceof Error && e.message === 'the query `a` was refused: limit: 0; ask for at least one tag',
  );
  assert.throws(() => repository.newest('['), /^Error: the query `\[` was refused/);
  assert.throws(() => [...repository.tagsMatching('[', Name)], /^Error: the query `\[` was refused/);
});

test('the host answers at most 1000 tags a call', () => {
  const tags = Array.from({ length: 1005 }, (_, i) => `1.0.${i}`);
  fakeHost({ tags: on(tags) });
  const newest = page(String.raw`1\.0\.\d+`, NewestFirst, 5000);
  assert.equal(newest.length, 1000);
  assert.deepEqual([newest[0], newest[999]], ['1.0.1004', '1.0.5']);
});

test('newest: the highest version matching a pattern, in one call of one tag', () => {
  const host = fakeHost({ tags: { '1.9.3': DIGEST(1), 'v1.10.0': DIGEST(2), '2.0.0-rc1': DIGEST(3), latest: DIGEST(2) } });
  assert.deepEqual(repository.newest(String.raw`v?1\.\d+\.\d+`), { tag: 'v1.10.0', digest: DIGEST(2) });
  assert.deepEqual(host.queries, [{ pattern: String.raw`v?1\.\d+\.\d+`, order: 'newest-first', limit: 1, after: undefined }]);
  assert.equal(repository.newest(String.raw`3\.\d+\.\d+`), undefined);
});

test('tagsMatching reads pages of 1000 as it is consumed, and stops when a page is short', () => {
  const tags = Array.from({ length: 2500 }, (_, i) => `build-${i}`);
  const host = fakeHost({ tags: { ...on(tags), latest: DIGEST(2) } });
  const newest = repository.tagsMatching(String.raw`build-\d+`, NewestFirst);
  assert.equal(host.queries.length, 0, 'nothing is read before it is asked for');
  const first = [];
  for (const entry of newest) {
    first.push(entry.tag);
    if (first.length === 3) break;
  }
  assert.deepEqual(first, ['build-2499', 'build-2498', 'build-2497']);
  assert.equal(host.queries.length, 1, 'stopping early reads no further page');

  host.queries.length = 0;
  const all = names([...repository.tagsMatching(String.raw`build-\d+`, NewestFirst)]);
  assert.equal(all.length, 2500);
  assert.deepEqual([all[0], all[999], all[1000], all[2499]], ['build-2499', 'build-1500', 'build-1499', 'build-0']);
  assert.deepEqual(
    host.queries.map((q) => [q.limit, q.after]),
    [[1000, undefined], [1000, 'build-1500'], [1000, 'build-500']],
  );

  host.queries.length = 0;
  const byName = names([...repository.tagsMatching('build-.*', Name)]);
  assert.deepEqual(byName, [...tags].sort(byBytes));
  assert.equal(host.queries.length, 3);

  // A last page of exactly 1000 takes one more (empty) call to know there are no more.
  const exact = Array.from({ length: 1000 }, (_, i) => `x${i}`);
  const again = fakeHost({ tags: on(exact) });
  assert.equal([...repository.tagsMatching('x.*', Name)].length, 1000);
  assert.deepEqual(again.queries.map((q) => q.after), [undefined, 'x999']);
  assert.deepEqual([...repository.tagsMatching('none', Name)], []);
});

test('count, digest, tags of a digest', () => {
  const [a, b] = [DIGEST(1), DIGEST(2)];
  fakeHost({ tags: { latest: a, '1.0': a, old: b } });
  assert.equal(repository.countTags(), 3);
  assert.equal(typeof repository.countTags(), 'number');
  assert.equal(repository.digestOf('old'), b);
  assert.equal(repository.digestOf('new'), undefined);
  assert.deepEqual(repository.tagsOf(a), ['1.0', 'latest']);
  assert.deepEqual(repository.tagsOf(DIGEST(3)), []);
  fakeHost();
  assert.equal(repository.countTags(), 0);
});

test('historyOf: stamps with Instants; undefined when unknown', () => {
  fakeHost({
    tags: { moved: DIGEST(1), fresh: DIGEST(2), old: DIGEST(3) },
    history: {
      moved: { changed: stamp(1_800_000_500, 'bob', 7), created: stamp(1_800_000_000, undefined) },
      fresh: { changed: stamp(1_800_000_100, 'ci-bot'), created: stamp(1_800_000_100, 'ci-bot') },
      old: { changed: stamp(1_800_000_200, 'alice'), created: undefined },
      gone: { changed: stamp(1, 'x'), created: undefined },
    },
  });
  const moved = repository.historyOf('moved');
  assert.ok(moved.changed.at instanceof Instant);
  assert.deepEqual(moved, {
    changed: { at: new Instant(1_800_000_500, 7), actor: 'bob' },
    created: { at: new Instant(1_800_000_000, 0), actor: undefined },
  });
  assert.equal(repository.historyOf('fresh').created.actor, 'ci-bot');
  assert.equal(`${repository.historyOf('fresh').created.at}`, '2027-01-15T08:01:40Z');
  assert.equal(repository.historyOf('old').created, undefined);
  assert.equal(repository.historyOf('gone'), undefined, 'a tag that does not exist has no history');
  assert.equal(repository.historyOf('nothing'), undefined);
});
