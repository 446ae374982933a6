import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Series, Version, newestRelease, release, releasePattern, series } from '../src/sdk.js';
import { DIGEST, fakeHost } from './fake-host.js';

const v = (a, b, c) => new Version(BigInt(a), BigInt(b), BigInt(c));

test('releases', () => {
  assert.deepEqual(release('1.2.3'), v(1, 2, 3));
  assert.deepEqual(release('v10.0.11'), v(10, 0, 11));
  assert.deepEqual(release('18446744073709551615.0.0'), new Version(18446744073709551615n, 0n, 0n));
  for (const tag of ['1.2', '1.2.3-rc1', '1.2.3+b1', '1.02.3', 'V1.2.3', '1..3', 'latest', '', 'v', '1.2.3.4', '99999999999999999999.0.0']) {
    assert.equal(release(tag), undefined, tag);
  }
});

test('series tags', () => {
  assert.deepEqual(series('1.2'), new Series(1n, 2n));
  assert.deepEqual(series('v3'), new Series(3n));
  for (const tag of ['1.2.3', 'latest', '1.x', '01', 'v', '1.2-rc1']) assert.equal(series(tag), undefined, tag);
});

test('series membership and order', () => {
  const minor = series('1.2');
  assert.ok(minor.contains(v(1, 2, 11)));
  assert.ok(!minor.contains(v(1, 3, 0)));
  assert.ok(series('1').contains(v(1, 3, 0)));
  assert.ok(v(1, 2, 10).compare(v(1, 2, 9)) > 0, 'numeric, not lexical, order');
  assert.equal(`${minor}`, '1.2');
  assert.equal(`${v(1, 2, 3)}`, '1.2.3');
});

test('release patterns, as the Rust SDK writes them', () => {
  const number = '(?:0|[1-9][0-9]*)';
  assert.equal(releasePattern(series('1.2')), String.raw`v?1\.2\.` + number);
  assert.equal(releasePattern(series('v3')), String.raw`v?3\.` + number + String.raw`\.` + number);
  assert.equal(releasePattern(undefined), `v?${number}\\.${number}\\.${number}`);
  assert.equal(releasePattern(new Series(18446744073709551615n, 0n)), String.raw`v?18446744073709551615\.0\.` + number);
});

test('newestRelease asks the host for the newest release of a series', () => {
  const tags = ['1.2.9', 'v1.2.10', '1.2.11-rc1', '1.3.0', '2.0.0', '1.2', 'v2', 'latest', '1.02.99'];
  const host = fakeHost({ tags: Object.fromEntries(tags.map((tag) => [tag, DIGEST(1)])) });
  assert.deepEqual(newestRelease(series('1.2')), v(1, 2, 10));
  assert.deepEqual(host.queries, [
    { pattern: releasePattern(series('1.2')), order: 'newest-first', limit: 1, after: undefined },
  ]);
  assert.deepEqual(newestRelease(series('1')), v(1, 3, 0));
  assert.deepEqual(newestRelease(undefined), v(2, 0, 0));
  assert.equal(newestRelease(series('3')), undefined);
  assert.equal(newestRelease(series('1.1')), undefined);
});

test('newestRelease skips tags whose numbers overflow: the newest alone, then pages of 8', () => {
  // Ten tags of the 1.2 pattern above u64, then the real newest release.
  const huge = Array.from({ length: 10 }, (_, i) => `1.2.${18446744073709551616n + BigInt(i)}`);
  const host = fakeHost({ tags: Object.fromEntries([...huge, '1.2.7', '1.2.3'].map((tag) => [tag, DIGEST(1)])) });
  assert.deepEqual(newestRelease(series('1.2')), v(1, 2, 7));
  assert.deepEqual(host.queries.map((q) => [q.limit, q.after]), [
    [1, undefined],
    [8, huge[9]],
    [8, huge[1]],
  ]);
  // Only overflowing tags: read to the end, no release.
  const only = fakeHost({ tags: Object.fromEntries(huge.map((tag) => [tag, DIGEST(1)])) });
  assert.equal(newestRelease(series('1.2')), undefined);
  assert.equal(only.queries.length, 3);
  // The newest and then exactly a full page of them: one more (empty) page to know there is
  // no more.
  const nine = fakeHost({ tags: Object.fromEntries(huge.slice(0, 9).map((tag) => [tag, DIGEST(1)])) });
  assert.equal(newestRelease(series('1.2')), undefined);
  assert.equal(nine.queries.length, 3);
});
