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
//!
//! Signature tags are the tags signing tools derive from an image's digest on registries
//! without the referrers API: cosign's `sha256-<hex>.sig`, `.att` and `.sbom`, and the
//! referrers tag schema's `sha256-<hex>`. Each new signature or attestation moves them, so
//! they follow `signature_tags`, not the patterns: `append-only` (the default) lets such a tag
//! move only to a manifest that keeps every layer and every listed manifest of the current one
//! and, if it names a subject, names the tag's image; it may be deleted only while its image
//! carries no immutable tag. `immutable` and `mutable` treat them like any other tag.

use serde::Deserialize;
use tagpolicy_guest::time::Period;
use tagpolicy_guest::{
    Change, ChangeKind, Decision, Descriptor, Findings, Pattern, Patterns, Policy, Request,
    export_policy, image, repository,
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
    #[serde(default)]
    signature_tags: SignatureTags,
}

/// How the tags derived from an image's digest may change.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
enum SignatureTags {
    /// They only grow: a move must keep what the current manifest lists.
    #[default]
    AppendOnly,
    Immutable,
    Mutable,
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
        if signed_image(tag).is_some() {
            return (self.0.signature_tags == SignatureTags::Immutable)
                .then(|| "a signature tag, and `signature_tags` is `immutable`".to_string());
        }
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

    /// The `append-only` rule for the signature tag `change.tag` of `image`.
    fn check_append_only(&self, change: &Change, image: &str, findings: &mut Findings) {
        let tag = change.tag;
        let Some(to) = change.to else {
            // A deletion strips every signature at once: allowed only while nothing holds
            // the image in place.
            let protected = repository::tags_of(image)
                .into_iter()
                .find(|image_tag| self.immutable_because(image_tag).is_some());
            if let Some(protected) = protected {
                findings.deny(
                    tag,
                    format!(
                        "signature tag `{tag}` is append-only (`signature_tags: append-only`): it belongs to image {}, which carries immutable tag `{protected}`, so it cannot be deleted",
                        short(image)
                    ),
                );
            }
            return;
        };
        let Some(new) = image::manifest_of(to) else {
            findings.deny(tag, format!("signature tag `{tag}` is append-only (`signature_tags: append-only`): the manifest {} cannot be read, so the change cannot be checked", short(to)));
            return;
        };
        if let Some(subject) = new.subject.as_ref().filter(|subject| subject.digest != image) {
            findings.deny(
                tag,
                format!(
                    "signature tag `{tag}` belongs to image {}, but the manifest {} names another subject, {}",
                    short(image),
                    short(to),
                    short(&subject.digest)
                ),
            );
        }
        let Some(from) = change.from else { return };
        let Some(old) = image::manifest_of(from) else {
            findings.deny(tag, format!("signature tag `{tag}` is append-only (`signature_tags: append-only`): its current manifest {} cannot be read, so what the move would drop cannot be checked", short(from)));
            return;
        };
        let kept: Vec<&Descriptor> = new.layers.iter().chain(&new.manifests).collect();
        let listed: Vec<&Descriptor> = old.layers.iter().chain(&old.manifests).collect();
        let lost: Vec<&Descriptor> =
            listed.iter().copied().filter(|entry| !kept.contains(entry)).collect();
        if !lost.is_empty() {
            findings.deny(
                tag,
                format!(
                    "signature tag `{tag}` is append-only (`signature_tags: append-only`): moving it from {} to {} would drop {} of the {} entries it lists: {}",
                    short(from),
                    short(to),
                    lost.len(),
                    listed.len(),
                    describe(&lost)
                ),
            );
        }
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
            if let Some(image) = signed_image(change.tag)
                && self.0.signature_tags == SignatureTags::AppendOnly
            {
                self.check_append_only(&change, &image, &mut findings);
                continue;
            }
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

/// The image a signature tag belongs to: `sha256-<hex>` (the referrers tag schema) and cosign's
/// `sha256-<hex>.sig`, `.att` and `.sbom` name the image `sha256:<hex>`.
fn signed_image(tag: &str) -> Option<String> {
    let rest = tag.strip_prefix("sha256-")?;
    let (hex, suffix) = rest.split_at_checked(64)?;
    let lowercase_hex = hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    let known_suffix = matches!(suffix, "" | ".sig" | ".att" | ".sbom");
    (lowercase_hex && known_suffix).then(|| format!("sha256:{hex}"))
}

/// At most three entries a move would drop, for a person to find them.
fn describe(lost: &[&Descriptor]) -> String {
    let mut text: Vec<String> = lost
        .iter()
        .take(3)
        .map(|entry| {
            let keys: Vec<&str> = entry.annotations.iter().map(|kv| kv.key.as_str()).collect();
            if keys.is_empty() {
                format!("{} ({})", short(&entry.digest), entry.media_type)
            } else {
                format!(
                    "{} ({}, annotated {})",
                    short(&entry.digest),
                    entry.media_type,
                    keys.join(", ")
                )
            }
        })
        .collect();
    if lost.len() > 3 {
        text.push(format!("and {} more", lost.len() - 3));
    }
    text.join("; ")
}

fn list(actors: &[String]) -> String {
    actors.iter().map(|actor| format!("`{actor}`")).collect::<Vec<_>>().join(", ")
}

export_policy!(ImmutableTags);
