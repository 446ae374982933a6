// `min-tags`: a new image must arrive with a minimum set of tags.
//
// A push of a digest that no tag of the repository points at yet must carry at least
// `min_tags` distinct tags, and for each regex in `required` at least one tag that matches it
// whole. Pushes that add tags to an image that is already tagged, and deletions, are not
// restricted.
// The JavaScript port of policies/min-tags: same settings, same decisions.

import { Patterns, definePolicy, repository, settings as s } from 'tagpolicy-guest';
// Name, version, description and settings example: the file the Rust original reads too.
import metadata from '../../min-tags/metadata.json' with { type: 'json' };

export const policy = definePolicy({
  name: metadata.name,
  version: metadata.version,
  description: metadata.description,
  settingsExample: metadata.settings_example,

  settings: s.object('Settings', {
    min_tags: s.withDefault(s.u32(), 1),
    required: s.withDefault(s.patterns(), () => new Patterns()),
  }),

  evaluate(request, findings, settings) {
    const push = request.push();
    if (push === undefined) return;
    if (repository.tagsOf(push.digest).length > 0) return;
    // Distinct tags in byte order, as Rust's `sort_unstable` + `dedup` of `&str`.
    const tags = [...new Set(push.tags.map((change) => change.tag))].sort(byBytes);
    const got = tags.map((tag) => `\`${tag}\``).join(', ');
    if (tags.length < settings.min_tags) {
      findings.denyRequest(
        `a new image must arrive with at least ${settings.min_tags} tags; this push has ${tags.length} (${got})`,
      );
    }
    for (const pattern of settings.required) {
      if (!tags.some((tag) => pattern.matches(tag))) {
        findings.denyRequest(
          `a new image must arrive with a tag matching \`${pattern.source}\`; this push has ${got}`,
        );
      }
    }
  },
});

/** Tags are ASCII (OCI grammar), so UTF-16 order is byte order. */
function byBytes(a, b) {
  return a < b ? -1 : a > b ? 1 : 0;
}
