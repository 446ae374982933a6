// `immutable-tags`: release tags never move, chosen tags stay mutable, owners guard tags.
//
// A tag is immutable if it matches `immutable`, else mutable if it matches `mutable`, else
// `default`. Creating a tag is allowed; moving or deleting an immutable one is denied; an
// identical re-push is always allowed. `owners` restrict every change of a matching tag
// (create, move, delete) to the listed actors, whatever the tag's mutability; when several
// owner entries match a tag, the actor must be listed in each of them.
//
// With `grace: {period: 15m, same_actor: true}`, an immutable tag may still be moved within
// the period after it was created, by the actor who created it (when `same_actor`, the
// default), so that a broken release pushed by CI can be fixed by CI minutes later. Only a
// creation the host recorded counts: a tag whose creation is not on record gets no grace.
//
// Signature tags are the tags signing tools derive from an image's digest on registries
// without the referrers API: cosign's `sha256-<hex>.sig`, `.att` and `.sbom`, and the
// referrers tag schema's `sha256-<hex>`. Each new signature or attestation moves them, so
// they follow `signature_tags`, not the patterns: `append-only` (the default) lets such a tag
// move only to a manifest that keeps every layer and every listed manifest of the current one
// and, if it names a subject, names the tag's image; it may be deleted only while its image
// carries no immutable tag. `immutable` and `mutable` treat them like any other tag.
// The JavaScript port of policies/immutable-tags: same settings, same decisions.

import { Patterns, definePolicy, image, repository, settings as s } from 'tagpolicy-guest';
// Name, version, description and settings example: the file the Rust original reads too.
import metadata from '../../immutable-tags/metadata.json' with { type: 'json' };

/** `sha256:0123456789ab` is enough for a person to tell images apart. */
const short = (digest) => digest.slice(0, 19);

const list = (actors) => actors.map((actor) => `\`${actor}\``).join(', ');

/**
 * The image a signature tag belongs to: `sha256-<hex>` (the referrers tag schema) and
 * cosign's `sha256-<hex>.sig`, `.att` and `.sbom` name the image `sha256:<hex>`.
 * @returns {string | undefined}
 */
function signedImage(tag) {
  const match = /^sha256-([0-9a-f]{64})(\.sig|\.att|\.sbom)?$/.exec(tag);
  return match === null ? undefined : `sha256:${match[1]}`;
}

/** Everything a descriptor says, so that a signature kept under another annotation counts as lost. */
function entryKey(entry) {
  const { platform } = entry;
  return JSON.stringify([
    entry.mediaType,
    entry.digest,
    String(entry.size),
    entry.artifactType ?? null,
    entry.annotations.map((kv) => [kv.key, kv.value]),
    platform === undefined ? null : [platform.os, platform.architecture, platform.variant ?? null],
  ]);
}

/** At most three entries a move would drop, for a person to find them. */
function describe(lost) {
  const text = lost.slice(0, 3).map((entry) => {
    const keys = entry.annotations.map((kv) => kv.key).join(', ');
    return `${short(entry.digest)} (${entry.mediaType}${keys === '' ? '' : `, annotated ${keys}`})`;
  });
  if (lost.length > 3) text.push(`and ${lost.length - 3} more`);
  return text.join('; ');
}

/** Why `tag` is immutable, or `undefined` if it is mutable. */
function immutableBecause(settings, tag) {
  if (signedImage(tag) !== undefined) {
    return settings.signature_tags === 'immutable'
      ? 'a signature tag, and `signature_tags` is `immutable`'
      : undefined;
  }
  const pattern = settings.immutable.firstMatch(tag);
  if (pattern !== undefined) return `matches immutable pattern \`${pattern.source}\``;
  if (settings.mutable.anyMatch(tag)) return undefined;
  return settings.default === 'immutable' ? 'matches no pattern and the default is immutable' : undefined;
}

/**
 * Whether the move of immutable `tag` falls within its grace period (`undefined`); else why
 * not, as a clause of the denial (empty without a grace period).
 * @returns {string | undefined}
 */
function grace(settings, request, tag) {
  if (settings.grace === undefined) return '';
  const { period } = settings.grace;
  const created = repository.historyOf(tag)?.created;
  if (created === undefined) return '; it has no grace period: its creation is not on record';
  if (!period.contains(created.at, request.time)) {
    return `; its ${period} grace period after creation has passed`;
  }
  if (settings.grace.same_actor) {
    const actor = request.actor().id;
    if (created.actor === undefined) {
      return `; it was created anonymously, so nobody may move it in its ${period} grace period`;
    }
    if (actor !== created.actor) {
      return `; only \`${created.actor}\`, who created it, may move it in its ${period} grace period`;
    }
  }
  return undefined;
}

/** The `append-only` rule for the signature tag `change.tag` of image `signed`. */
function checkAppendOnly(settings, change, signed, findings) {
  const { tag } = change;
  const rule = `signature tag \`${tag}\` is append-only (\`signature_tags: append-only\`)`;
  if (change.to === undefined) {
    // A deletion strips every signature at once: allowed only while nothing holds the image
    // in place.
    const imageTags = repository.tagsOf(signed);
    const protectedTag = imageTags.find((t) => immutableBecause(settings, t) !== undefined);
    if (protectedTag !== undefined) {
      findings.deny(
        tag,
        `${rule}: it belongs to image ${short(signed)}, which carries immutable tag \`${protectedTag}\`, so it cannot be deleted`,
      );
    }
    return;
  }
  const next = image.manifestOf(change.to);
  if (next === undefined) {
    findings.deny(tag, `${rule}: the manifest ${short(change.to)} cannot be read, so the change cannot be checked`);
    return;
  }
  if (next.subject !== undefined && next.subject.digest !== signed) {
    findings.deny(
      tag,
      `signature tag \`${tag}\` belongs to image ${short(signed)}, but the manifest ${short(change.to)} names another subject, ${short(next.subject.digest)}`,
    );
  }
  if (change.from === undefined) return;
  const current = image.manifestOf(change.from);
  if (current === undefined) {
    findings.deny(
      tag,
      `${rule}: its current manifest ${short(change.from)} cannot be read, so what the move would drop cannot be checked`,
    );
    return;
  }
  const kept = new Set([...next.layers, ...next.manifests].map(entryKey));
  const listed = [...current.layers, ...current.manifests];
  const lost = listed.filter((entry) => !kept.has(entryKey(entry)));
  if (lost.length > 0) {
    findings.deny(
      tag,
      `${rule}: moving it from ${short(change.from)} to ${short(change.to)} would drop ${lost.length} of the ${listed.length} entries it lists: ${describe(lost)}`,
    );
  }
}

function checkOwners(settings, request, change, findings) {
  const owners = settings.owners.filter((owner) => owner.pattern.matches(change.tag));
  if (owners.length === 0) return;
  // Only now ask the host who asks.
  const actor = request.actor().id;
  for (const owner of owners) {
    if (actor !== undefined && owner.actors.includes(actor)) continue;
    const who = actor === undefined ? 'an anonymous actor' : `\`${actor}\``;
    findings.deny(
      change.tag,
      `tag \`${change.tag}\` is owned by ${list(owner.actors)} (owners pattern \`${owner.pattern.source}\`): ${who} may not ${change.verb()} it`,
    );
  }
}

export const policy = definePolicy({
  name: metadata.name,
  version: metadata.version,
  description: metadata.description,
  settingsExample: metadata.settings_example,

  settings: s.object('Settings', {
    default: s.withDefault(s.oneOf('Mutability', ['immutable', 'mutable']), 'immutable'),
    mutable: s.withDefault(s.patterns(), () => new Patterns()),
    immutable: s.withDefault(s.patterns(), () => new Patterns()),
    owners: s.withDefault(
      s.list(s.object('Owner', { pattern: s.pattern(), actors: s.list(s.string()) })),
      () => [],
    ),
    grace: s.optional(
      s.object('Grace', { period: s.period(), same_actor: s.withDefault(s.boolean(), true) }),
    ),
    signature_tags: s.withDefault(
      s.oneOf('SignatureTags', ['append-only', 'immutable', 'mutable']),
      'append-only',
    ),
  }),

  configure(settings) {
    settings.owners.forEach((owner, index) => {
      if (owner.actors.length === 0) {
        throw `settings.owners[${index}].actors: empty; list at least one actor who may change tags matching \`${owner.pattern.source}\``;
      }
    });
    return settings;
  },

  evaluate(request, findings, settings) {
    for (const change of request.changes()) {
      // An identical re-push and the deletion of a tag that does not exist change nothing.
      if (change.isIdentical() || (change.from === undefined && change.kind === 'delete')) continue;
      checkOwners(settings, request, change, findings);
      const signed = signedImage(change.tag);
      if (signed !== undefined && settings.signature_tags === 'append-only') {
        checkAppendOnly(settings, change, signed, findings);
        continue;
      }
      if (change.kind === 'create') continue;
      const because = immutableBecause(settings, change.tag);
      if (because !== undefined) {
        const from = short(change.from ?? '');
        let what;
        let why = '';
        if (change.to !== undefined) {
          why = grace(settings, request, change.tag);
          if (why === undefined) continue;
          what = `cannot move from ${from} to ${short(change.to)}`;
        } else {
          what = `points at ${from} and cannot be deleted`;
        }
        findings.deny(change.tag, `tag \`${change.tag}\` is immutable (${because}): it ${what}${why}`);
      }
    }
  },
});
