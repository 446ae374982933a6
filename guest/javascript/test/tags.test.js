import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Series, Version, release, series } from '../src/sdk.js';

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
