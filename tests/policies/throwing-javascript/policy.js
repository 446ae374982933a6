// Throws on purpose, for the tests of policy errors (tests/ports.rs): a push of the tag
// `typo` calls a method that does not exist, one of `throw-string` throws a string; one of
// `print` logs (through the host's `output`) and is allowed, as is any other push.
import { definePolicy } from 'tagpolicy-guest';

export const policy = definePolicy({
  name: 'throwing-javascript',
  version: '0.1.0',
  description: 'Throws on purpose, for the tests of policy errors',
  settingsExample: '{}',
  evaluate(request, _findings) {
    for (const change of request.changes()) {
      if (change.tag === 'typo') request.tagOf(change.tag);
      if (change.tag === 'print') console.log(`checking ${change.tag}`, { tags: 1 });
      if (change.tag === 'throw-string') throw `no ${change.tag}`;
    }
  },
});
