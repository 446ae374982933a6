//! `change-freeze`: during change freezes, chosen tags do not change except by exempt actors.
//!
//! A window is either fixed (`from` and `until`, RFC 3339 times in UTC) or weekly (`days`,
//! with an optional `from`/`until` time of day, `00:00` to `24:00`, UTC). While the time of
//! the request is inside any window, a push that creates or moves a tag matching `tags`, and
//! any deletion of one, is denied unless the actor is in `exempt_actors` or in a group of
//! `exempt_groups`. Identical re-pushes change nothing and are allowed.

use serde::Deserialize;
use tagpolicy_guest::time::{TimeOfDay, Weekday};
use tagpolicy_guest::{
    ChangeKind, Decision, Findings, Instant, Patterns, Policy, Request, export_policy,
};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    windows: Vec<WindowFile>,
    /// The tags that freeze; every tag when empty.
    #[serde(default)]
    tags: Patterns,
    #[serde(default)]
    exempt_actors: Vec<String>,
    #[serde(default)]
    exempt_groups: Vec<String>,
}

/// A window as written: fixed (`from`/`until` instants) or weekly (`days`, with `from`/`until`
/// times of day).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct WindowFile {
    name: Option<String>,
    days: Option<Vec<Weekday>>,
    from: Option<String>,
    until: Option<String>,
}

#[derive(Debug)]
enum When {
    Fixed { from: Instant, until: Instant },
    Weekly { days: Vec<Weekday>, from: TimeOfDay, until: TimeOfDay },
}

#[derive(Debug)]
struct Window {
    name: String,
    when: When,
}

impl Window {
    fn parse(index: usize, file: WindowFile) -> Result<Window, String> {
        let at = |field: &str| format!("settings.windows[{index}].{field}");
        let when = match file.days {
            Some(days) => {
                if days.is_empty() {
                    return Err(format!("{}: empty; name at least one day", at("days")));
                }
                let time = |field: &str, text: Option<String>, default: &str| {
                    TimeOfDay::parse(text.as_deref().unwrap_or(default))
                        .map_err(|e| format!("{}: {e}", at(field)))
                };
                let from = time("from", file.from, "00:00")?;
                let until = time("until", file.until, "24:00")?;
                if from >= until {
                    return Err(format!(
                        "{}: `{until}` is not after `from` (`{from}`); split a window that crosses midnight",
                        at("until")
                    ));
                }
                When::Weekly { days, from, until }
            }
            None => {
                let instant = |field: &str, text: Option<String>| {
                    let text = text.ok_or_else(|| {
                        format!(
                            "{}: missing; a window has `from` and `until` times, or `days`",
                            at(field)
                        )
                    })?;
                    Instant::parse(&text).map_err(|e| format!("{}: {e}", at(field)))
                };
                let from = instant("from", file.from)?;
                let until = instant("until", file.until)?;
                if from >= until {
                    return Err(format!(
                        "{}: `{until}` is not after `from` (`{from}`)",
                        at("until")
                    ));
                }
                When::Fixed { from, until }
            }
        };
        Ok(Window { name: file.name.unwrap_or_else(|| format!("window {}", index + 1)), when })
    }

    fn contains(&self, time: Instant) -> bool {
        match &self.when {
            When::Fixed { from, until } => *from <= time && time < *until,
            When::Weekly { days, from, until } => {
                let now = time.date_time();
                let minute = now.time_of_day();
                days.contains(&now.weekday) && *from <= minute && minute < *until
            }
        }
    }

    fn describe(&self) -> String {
        match &self.when {
            When::Fixed { from, until } => format!("`{}` ({from} to {until})", self.name),
            When::Weekly { days, from, until } => {
                let days: Vec<&str> = days.iter().map(|d| d.name()).collect();
                format!("`{}` ({} {from} to {until} UTC)", self.name, days.join(", "))
            }
        }
    }
}

pub struct ChangeFreeze {
    windows: Vec<Window>,
    settings: Settings,
}

impl ChangeFreeze {
    fn exempt(&self, request: &Request) -> bool {
        let actor = request.actor();
        actor.id.as_ref().is_some_and(|id| self.settings.exempt_actors.contains(id))
            || actor.groups.iter().any(|group| self.settings.exempt_groups.contains(group))
    }

    fn who_may(&self) -> String {
        let mut who: Vec<String> =
            self.settings.exempt_actors.iter().map(|a| format!("`{a}`")).collect();
        who.extend(self.settings.exempt_groups.iter().map(|g| format!("members of `{g}`")));
        if who.is_empty() {
            "nobody may change it".into()
        } else {
            format!("only {} may change it", who.join(", "))
        }
    }
}

impl Policy for ChangeFreeze {
    type Settings = Settings;
    // The JavaScript port reads this file too; the Python port holds a copy the tests check.
    tagpolicy_guest::include_metadata!("../metadata.json");

    fn configure(mut settings: Settings) -> Result<Self, String> {
        if settings.windows.is_empty() {
            return Err("settings.windows: empty; give at least one window".into());
        }
        let files = std::mem::take(&mut settings.windows);
        let windows = files
            .into_iter()
            .enumerate()
            .map(|(i, file)| Window::parse(i, file))
            .collect::<Result<_, _>>()?;
        Ok(Self { windows, settings })
    }

    fn evaluate(&self, request: &Request) -> Decision {
        let mut findings = Findings::new();
        let Some(window) = self.windows.iter().find(|window| window.contains(request.time)) else {
            return findings.into_decision();
        };
        if self.exempt(request) {
            return findings.into_decision();
        }
        for change in request.changes() {
            let frozen = self.settings.tags.is_empty() || self.settings.tags.any_match(change.tag);
            if !frozen || change.kind == ChangeKind::Identical {
                continue;
            }
            if change.kind == ChangeKind::Delete && change.from.is_none() {
                continue;
            }
            findings.deny(
                change.tag,
                format!(
                    "tag `{}` is frozen: change freeze {} is in effect at {}; {}",
                    change.tag,
                    window.describe(),
                    request.time,
                    self.who_may()
                ),
            );
        }
        findings.into_decision()
    }
}

export_policy!(ChangeFreeze);
