import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Request } from '../src/sdk.js';
import { DIGEST, fakeHost, pushRequest } from './fake-host.js';

const kinds = (request) => request.changes().map((c) => [c.tag, c.kind, c.from, c.to, c.verb()]);

test('a push creates, moves or re-pushes each tag', () => {
  const [a, b] = [DIGEST(1), DIGEST(2)];
  const request = new Request(pushRequest(a, { new: undefined, moved: b, same: a }));
  assert.deepEqual(kinds(request), [
    ['new', 'create', undefined, a, 'create'],
    ['moved', 'move', b, a, 'move'],
    ['same', 'identical', a, a, 're-push'],
  ]);
  assert.equal(request.push().digest, a);
});

test('deletions of tags and of a manifest', () => {
  const a = DIGEST(1);
  const tags = new Request({
    operation: { tag: 'delete-tags', val: [{ tag: 'x', current: a }, { tag: 'gone', current: undefined }] },
    time: { seconds: 0n, nanoseconds: 0 },
  });
  assert.deepEqual(kinds(tags), [
    ['x', 'delete', a, undefined, 'delete'],
    ['gone', 'delete', undefined, undefined, 'delete'],
  ]);
  assert.equal(tags.push(), undefined);
  const manifest = new Request({
    operation: { tag: 'delete-manifest', val: { digest: a, tags: ['p', 'q'] } },
    time: { seconds: 0n, nanoseconds: 0 },
  });
  assert.deepEqual(kinds(manifest).map(([t, k, f]) => [t, k, f]), [
    ['p', 'delete', a],
    ['q', 'delete', a],
  ]);
});

test('who and where are host calls, made only when asked', () => {
  const host = fakeHost({ repository: 'team/web', actor: { id: 'alice', groups: ['dev'] } });
  const request = new Request(pushRequest(DIGEST(1), { a: undefined }));
  assert.equal(host.context, 0);
  assert.equal(request.repository(), 'team/web');
  assert.deepEqual(request.actor(), { id: 'alice', groups: ['dev'] });
  assert.equal(host.context, 2);
});
