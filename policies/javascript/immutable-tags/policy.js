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
// The JavaScript port of policies/immutable-tags: same settings, same decisions.

import { Patterns, definePolicy, repository, settings as s } from 'tagpolicy-guest';
// Name, version, description and settings example: the file the Rust original reads too.
import metadata from '../../immutable-tags/metadata.json' with { type: 'json' };

/** `sha256:0123456789ab` is enough for a person to tell images apart. */
const short = (digest) => digest.slice(0, 19);

const list = (actors) => actors.map((actor) => `\`${actor}\``).join(', ');

/** Why `tag` is immutable, or `undefined` if it is mutable. */
function immutableBecause(settings, tag) {
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
