// Throws on purpose, for the tests of policy errors (tests/ports.rs): a push of the tag
// `typo` calls a method that does not exist, one of `print` calls console.log (a component
// has no stdout), one of `throw-string` throws a string; any other push is allowed.
import { definePolicy } from 'tagpolicy-guest';

export const policy = definePolicy({
  name: 'throwing-javascript',
  version: '0.1.0',
  description: 'Throws on purpose, for the tests of policy errors',
  settingsExample: '{}',
  evaluate(request, _findings) {
    for (const change of request.changes()) {
      if (change.tag === 'typo') request.tagOf(change.tag);
      if (change.tag === 'print') console.log(`checking ${change.tag}`);
      if (change.tag === 'throw-string') throw `no ${change.tag}`;
    }
  },
});
