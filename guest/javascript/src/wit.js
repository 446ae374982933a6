/**
 * The only module that imports the host's `tagpolicy:policy/*` interfaces. These
 * specifiers exist only inside a component (componentize-js links them), so node tests
 * never load this module: they install fakes with `setHost` instead.
 * @module
 */
import { repositoryName, requestedBy } from 'tagpolicy:policy/context@0.3.0';
import { labelsOf, manifestOf, referrersOf } from 'tagpolicy:policy/image@0.3.0';
import { find, firstInSet, fullMatch, prepareSet } from 'tagpolicy:policy/patterns@0.3.0';
import { countTags, digestOf, findTags, historyOf, tagsOf } from 'tagpolicy:policy/repository@0.3.0';
import { deny, warn } from 'tagpolicy:policy/verdict@0.3.0';
import { setHost } from './host.js';

setHost({
  context: { repositoryName, requestedBy },
  repository: { findTags, countTags, digestOf, tagsOf, historyOf },
  image: { manifestOf, labelsOf, referrersOf },
  patterns: { fullMatch, find, prepareSet, firstInSet },
  verdict: { deny, warn },
});

// A component has no stdout: componentize-js's stdio pulls in `wasi:filesystem`, which the
// host refuses, so the build disables it and the runtime's console would hit a trapping stub
// (a bare `unreachable`, no message, no line). Throw instead, so the author is told why and
// where (see errors.js).
const unavailable = (/** @type {string} */ name) => () => {
  throw new Error(`console.${name} has nowhere to print in a policy (the sandbox grants no stdout); report with findings.warn instead`);
};
globalThis.console = /** @type {Console} */ (
  /** @type {unknown} */ (Object.fromEntries(['log', 'info', 'warn', 'error', 'debug', 'trace'].map((name) => [name, unavailable(name)])))
);
