// `image-requirements`: chosen tags only on images that meet requirements: artifacts of given
// types attached (a signature, an SBOM), annotations and config labels present or matching a
// pattern, the version annotation equal to the tag.
//
// Each rule guards the tags matching its `tags`; a push that creates or moves such a tag is
// denied, with every requirement the image misses, unless the image meets all of them.
// Identical re-pushes and deletions are not governed. A tag guarded by several rules must
// meet each of them.
// The JavaScript port of policies/image-requirements: same settings, same decisions.

import { annotation, definePolicy, image, settings as s } from 'tagpolicy-guest';
// Name, version, description and settings example: the file the Rust original reads too.
import metadata from '../../image-requirements/metadata.json' with { type: 'json' };

/** The annotation whose value must equal the tag under `version_matches_tag`. */
const VERSION = 'org.opencontainers.image.version';

const short = (digest) => digest.slice(0, 19);
const unprefixed = (text) => (text.startsWith('v') ? text.slice(1) : text);

/** The facts of the pushed image, each read from the host on first use. */
class Image {
  /** @param {string} digest */
  constructor(digest) {
    this.digest = digest;
  }

  manifest() {
    if (!('_manifest' in this)) this._manifest = image.manifestOf(this.digest);
    return this._manifest;
  }

  hasReferrer(artifactType) {
    this._referrers ??= image.referrersOf(this.digest, undefined).map((r) => r.artifactType);
    return this._referrers.includes(artifactType);
  }

  label(key) {
    this._labels ??= new Map(image.labelsOf(this.digest).map((kv) => [kv.key, kv.value]));
    return this._labels.get(key);
  }
}

/** What the image lacks for `rule` and `tag`, one line each. */
function missing(rule, tag, img) {
  const manifest = img.manifest();
  if (manifest === undefined) return ['the host knows nothing of the image'];
  const lines = [];
  for (const artifactType of rule.referrers) {
    if (!img.hasReferrer(artifactType)) lines.push(`no artifact of type \`${artifactType}\` refers to it`);
  }
  for (const [key, pattern] of rule.annotations) {
    const value = annotation(manifest, key);
    if (value === undefined) lines.push(`it has no annotation \`${key}\``);
    else if (!pattern.matches(value)) {
      lines.push(`its annotation \`${key}\` is \`${value}\`, which does not match \`${pattern.source}\``);
    }
  }
  for (const [key, pattern] of rule.labels) {
    const value = img.label(key);
    if (value === undefined) lines.push(`its config has no label \`${key}\``);
    else if (!pattern.matches(value)) {
      lines.push(`its config label \`${key}\` is \`${value}\`, which does not match \`${pattern.source}\``);
    }
  }
  if (rule.version_matches_tag) {
    const version = annotation(manifest, VERSION);
    if (version === undefined) lines.push(`it has no annotation \`${VERSION}\``);
    else if (unprefixed(version) !== unprefixed(tag)) {
      lines.push(`its annotation \`${VERSION}\` is \`${version}\`, not the tag`);
    }
  }
  return lines;
}

export const policy = definePolicy({
  name: metadata.name,
  version: metadata.version,
  description: metadata.description,
  settingsExample: metadata.settings_example,

  settings: s.object('Settings', {
    rules: s.list(
      s.object('Rule', {
        tags: s.patterns(),
        referrers: s.withDefault(s.list(s.string()), () => []),
        annotations: s.withDefault(s.map(s.pattern()), () => new Map()),
        labels: s.withDefault(s.map(s.pattern()), () => new Map()),
        version_matches_tag: s.withDefault(s.boolean(), false),
      }),
    ),
  }),

  configure(settings) {
    if (settings.rules.length === 0) throw 'settings.rules: empty; give at least one rule';
    settings.rules.forEach((rule, index) => {
      if (rule.tags.isEmpty()) {
        throw `settings.rules[${index}].tags: empty; list the tag patterns this rule guards`;
      }
      const requires =
        rule.referrers.length > 0 || rule.annotations.size > 0 || rule.labels.size > 0 || rule.version_matches_tag;
      if (!requires) {
        throw `settings.rules[${index}]: requires nothing; give \`referrers\`, \`annotations\`, \`labels\` or \`version_matches_tag\``;
      }
      const empty = rule.referrers.indexOf('');
      if (empty >= 0) throw `settings.rules[${index}].referrers[${empty}]: empty artifact type`;
    });
    return settings;
  },

  evaluate(request, findings, settings) {
    const push = request.push();
    if (push === undefined) return;
    const img = new Image(push.digest);
    for (const change of request.changes()) {
      if (change.kind !== 'create' && change.kind !== 'move') continue;
      const lines = [];
      for (const rule of settings.rules.filter((rule) => rule.tags.anyMatch(change.tag))) {
        for (const line of missing(rule, change.tag, img)) {
          if (!lines.includes(line)) lines.push(line);
        }
      }
      if (lines.length > 0) {
        findings.deny(
          change.tag,
          `tag \`${change.tag}\` may only point at an image that meets its requirements, and ${short(push.digest)} does not: ${lines.join('; ')}`,
        );
      }
    }
  },
});
