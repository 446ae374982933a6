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
