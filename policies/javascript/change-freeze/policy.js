// `change-freeze`: during change freezes, chosen tags do not change except by exempt actors.
//
// A window is either fixed (`from` and `until`, RFC 3339 times in UTC) or weekly (`days`, with
// an optional `from`/`until` time of day, `00:00` to `24:00`, UTC). While the time of the
// request is inside any window, a push that creates or moves a tag matching `tags`, and any
// deletion of one, is denied unless the actor is in `exempt_actors` or in a group of
// `exempt_groups`. Identical re-pushes change nothing and are allowed.
// The JavaScript port of policies/change-freeze: same settings, same decisions.

import { Instant, Patterns, TimeOfDay, definePolicy, settings as s } from 'tagpolicy-guest';
// Name, version, description and settings example: the file the Rust original reads too.
import metadata from '../../change-freeze/metadata.json' with { type: 'json' };

/** A window as written, checked into a fixed or weekly window. */
function parseWindow(index, file) {
  const at = (field) => `settings.windows[${index}].${field}`;
  const name = file.name ?? `window ${index + 1}`;
  if (file.days !== undefined) {
    if (file.days.length === 0) throw `${at('days')}: empty; name at least one day`;
    const time = (field, text, fallback) => {
      try {
        return TimeOfDay.parse(text ?? fallback);
      } catch (why) {
        throw `${at(field)}: ${why}`;
      }
    };
    const from = time('from', file.from, '00:00');
    const until = time('until', file.until, '24:00');
    if (from.minutes >= until.minutes) {
      throw `${at('until')}: \`${until}\` is not after \`from\` (\`${from}\`); split a window that crosses midnight`;
    }
    return {
      name,
      contains: (instant) => {
        const now = instant.dateTime();
        const minute = now.timeOfDay.minutes;
        return file.days.includes(now.weekday) && from.minutes <= minute && minute < until.minutes;
      },
      describe: () => `\`${name}\` (${file.days.join(', ')} ${from} to ${until} UTC)`,
    };
  }
  const instant = (field, text) => {
    if (text === undefined) throw `${at(field)}: missing; a window has \`from\` and \`until\` times, or \`days\``;
    try {
      return Instant.parse(text);
    } catch (why) {
      throw `${at(field)}: ${why}`;
    }
  };
  const from = instant('from', file.from);
  const until = instant('until', file.until);
  if (from.compare(until) >= 0) throw `${at('until')}: \`${until}\` is not after \`from\` (\`${from}\`)`;
  return {
    name,
    contains: (time) => from.compare(time) <= 0 && time.compare(until) < 0,
    describe: () => `\`${name}\` (${from} to ${until})`,
  };
}

export const policy = definePolicy({
  name: metadata.name,
  version: metadata.version,
  description: metadata.description,
  settingsExample: metadata.settings_example,

  settings: s.object('Settings', {
    windows: s.list(
      s.object('WindowFile', {
        name: s.optional(s.string()),
        days: s.optional(s.list(s.weekday())),
        from: s.optional(s.string()),
        until: s.optional(s.string()),
      }),
    ),
    // The tags that freeze; every tag when empty.
    tags: s.withDefault(s.patterns(), () => new Patterns()),
    exempt_actors: s.withDefault(s.list(s.string()), () => []),
    exempt_groups: s.withDefault(s.list(s.string()), () => []),
  }),

  configure(settings) {
    if (settings.windows.length === 0) throw 'settings.windows: empty; give at least one window';
    const who = [
      ...settings.exempt_actors.map((a) => `\`${a}\``),
      ...settings.exempt_groups.map((g) => `members of \`${g}\``),
    ];
    return {
      ...settings,
      windows: settings.windows.map((file, i) => parseWindow(i, file)),
      whoMay: who.length === 0 ? 'nobody may change it' : `only ${who.join(', ')} may change it`,
    };
  },

  evaluate(request, findings, state) {
    const window = state.windows.find((w) => w.contains(request.time));
    if (window === undefined) return;
    const actor = request.actor();
    const exempt =
      (actor.id !== undefined && state.exempt_actors.includes(actor.id)) ||
      actor.groups.some((group) => state.exempt_groups.includes(group));
    if (exempt) return;
    for (const change of request.changes()) {
      const frozen = state.tags.isEmpty() || state.tags.anyMatch(change.tag);
      if (!frozen || change.kind === 'identical') continue;
      if (change.kind === 'delete' && change.from === undefined) continue;
      findings.deny(
        change.tag,
        `tag \`${change.tag}\` is frozen: change freeze ${window.describe()} is in effect at ${request.time}; ${state.whoMay}`,
      );
    }
  },
});
