//! `immutable-tags`: release tags never move, chosen tags stay mutable, owners guard tags.
//!
//! A tag is immutable if it matches `immutable`, else mutable if it matches `mutable`, else
//! `default`. Creating a tag is allowed; moving or deleting an immutable one is denied;
//! an identical re-push is always allowed. `owners` restrict every change of a matching tag
//! (create, move, delete) to the listed actors, whatever the tag's mutability; when several
//! owner entries match a tag, the actor must be listed in each of them.
//!
//! With `grace: {period: 15m, same_actor: true}`, an immutable tag may still be moved within
//! the period after it was created, by the actor who created it (when `same_actor`, the
//! default), so that a broken release pushed by CI can be fixed by CI minutes later. Only a
//! creation the host recorded counts: a tag whose creation is not on record gets no grace.

use serde::Deserialize;
use tagpolicy_guest::time::Period;
use tagpolicy_guest::{
    Change, ChangeKind, Decision, Findings, Pattern, Patterns, Policy, Request, export_policy,
    repository,
};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    #[serde(default)]
    default: Mutability,
    #[serde(default)]
    mutable: Patterns,
    #[serde(default)]
    immutable: Patterns,
    #[serde(default)]
    owners: Vec<Owner>,
    #[serde(default)]
    grace: Option<Grace>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Grace {
    period: Period,
    #[serde(default = "yes")]
    same_actor: bool,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Mutability {
    #[default]
    Immutable,
    Mutable,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Owner {
    pattern: Pattern,
    actors: Vec<String>,
}

pub struct ImmutableTags(Settings);

impl ImmutableTags {
    /// Why `tag` is immutable, or `None` if it is mutable.
    fn immutable_because(&self, tag: &str) -> Option<String> {
        if let Some(pattern) = self.0.immutable.first_match(tag) {
            return Some(format!("matches immutable pattern `{}`", pattern.as_str()));
        }
        if self.0.mutable.any_match(tag) {
            return None;
        }
        match self.0.default {
            Mutability::Immutable => Some("matches no pattern and the default is immutable".into()),
            Mutability::Mutable => None,
        }
    }

    /// Whether the move of immutable `tag` falls within its grace period; else why not, as a
    /// clause of the denial (empty without a grace period).
    fn grace(&self, request: &Request, tag: &str) -> Result<(), String> {
        let Some(grace) = &self.0.grace else { return Err(String::new()) };
        let period = &grace.period;
        let Some(created) = repository::history_of(tag).and_then(|history| history.created) else {
            return Err("; it has no grace period: its creation is not on record".to_string());
        };
        if !period.contains(created.at, request.time) {
            return Err(format!("; its {period} grace period after creation has passed"));
        }
        if grace.same_actor {
            let actor = request.actor().id;
            match &created.actor {
                None => {
                    return Err(format!(
                        "; it was created anonymously, so nobody may move it in its {period} grace period"
                    ));
                }
                Some(creator) if actor.as_ref() != Some(creator) => {
                    return Err(format!(
                        "; only `{creator}`, who created it, may move it in its {period} grace period"
                    ));
                }
                Some(_) => {}
            }
        }
        Ok(())
    }

    fn check_owners(&self, request: &Request, change: &Change, findings: &mut Findings) {
        let owners: Vec<&Owner> =
            self.0.owners.iter().filter(|owner| owner.pattern.matches(change.tag)).collect();
        if owners.is_empty() {
            return;
        }
        // Only now ask the host who asks.
        let actor = request.actor();
        let actor = actor.id.as_deref();
        for owner in owners {
            if actor.is_some_and(|actor| owner.actors.iter().any(|allowed| allowed == actor)) {
                continue;
            }
            let who = actor.map_or("an anonymous actor".to_string(), |actor| format!("`{actor}`"));
            findings.deny(
                change.tag,
                format!(
                    "tag `{}` is owned by {} (owners pattern `{}`): {who} may not {} it",
                    change.tag,
                    list(&owner.actors),
                    owner.pattern.as_str(),
                    change.verb(),
                ),
            );
        }
    }
}

impl Policy for ImmutableTags {
    type Settings = Settings;
    // The JavaScript port reads this file too; the Python port holds a copy the tests check.
    tagpolicy_guest::include_metadata!("../metadata.json");

    fn configure(settings: Settings) -> Result<Self, String> {
        for (index, owner) in settings.owners.iter().enumerate() {
            if owner.actors.is_empty() {
                return Err(format!(
                    "settings.owners[{index}].actors: empty; list at least one actor who may change tags matching `{}`",
                    owner.pattern.as_str()
                ));
            }
        }
        Ok(Self(settings))
    }

    fn evaluate(&self, request: &Request) -> Decision {
        let mut findings = Findings::new();
        for change in request.changes() {
            // An identical re-push and the deletion of a tag that does not exist change nothing.
            if change.is_identical() || change.from.is_none() && change.kind == ChangeKind::Delete {
                continue;
            }
            self.check_owners(request, &change, &mut findings);
            if change.kind == ChangeKind::Create {
                continue;
            }
            if let Some(because) = self.immutable_because(change.tag) {
                let from = short(change.from.unwrap_or_default());
                let (what, grace) = match change.to {
                    Some(to) => match self.grace(request, change.tag) {
                        Ok(()) => continue,
                        Err(why) => (format!("cannot move from {from} to {}", short(to)), why),
                    },
                    None => (format!("points at {from} and cannot be deleted"), String::new()),
                };
                findings.deny(
                    change.tag,
                    format!("tag `{}` is immutable ({because}): it {what}{grace}", change.tag),
                );
            }
        }
        findings.into_decision()
    }
}

/// `sha256:0123456789ab` is enough for a person to tell images apart.
fn short(digest: &str) -> &str {
    digest.get(..19).unwrap_or(digest)
}

fn list(actors: &[String]) -> String {
    actors.iter().map(|actor| format!("`{actor}`")).collect::<Vec<_>>().join(", ")
}

export_policy!(ImmutableTags);
