/**
 * The only module that imports the host's `tagpolicy:policy/*` interfaces. These
 * specifiers exist only inside a component (componentize-js links them), so node tests
 * never load this module: they install fakes with `setHost` instead.
 * @module
 */
import { repositoryName, requestedBy } from 'tagpolicy:policy/context@0.3.1';
import { labelsOf, manifestOf, referrersOf } from 'tagpolicy:policy/image@0.3.1';
import { find, firstInSet, fullMatch, prepareSet } from 'tagpolicy:policy/patterns@0.3.1';
import { countTags, digestOf, findTags, historyOf, tagsOf } from 'tagpolicy:policy/repository@0.3.1';
import { deny, fail, warn } from 'tagpolicy:policy/verdict@0.3.1';
import { write } from 'tagpolicy:policy/output@0.3.1';
import { makeConsole } from './console.js';
import { setHost } from './host.js';

setHost({
  context: { repositoryName, requestedBy },
  repository: { findTags, countTags, digestOf, tagsOf, historyOf },
  image: { manifestOf, labelsOf, referrersOf },
  patterns: { fullMatch, find, prepareSet, firstInSet },
  verdict: { deny, warn, fail },
});

// componentize-js's own stdio would pull in `wasi:filesystem`, which the host refuses (the
// build disables it); the contract's `output` takes what the policy logs instead.
globalThis.console = makeConsole(write);
