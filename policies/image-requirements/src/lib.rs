//! `image-requirements`: chosen tags only on images that meet requirements: artifacts of
//! given types attached (a signature, an SBOM), annotations and config labels present or
//! matching a pattern, the version annotation equal to the tag.
//!
//! Each rule guards the tags matching its `tags`; a push that creates or moves such a tag
//! is denied, with every requirement the image misses, unless the image meets all of them.
//! Identical re-pushes and deletions are not governed. A tag guarded by several rules must
//! meet each of them.

use serde::Deserialize;
use std::collections::BTreeMap;
use tagpolicy_guest::{
    Change, ChangeKind, Decision, Findings, Manifest, Pattern, Patterns, Policy, Request,
    export_policy, image,
};

/// The annotation whose value must equal the tag under `version_matches_tag`.
const VERSION: &str = "org.opencontainers.image.version";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    rules: Vec<Rule>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Rule {
    /// The tags this rule guards.
    tags: Patterns,
    /// Artifact types that must each refer to the image at least once.
    #[serde(default)]
    referrers: Vec<String>,
    /// Annotations of the manifest that must be present, matching the pattern whole.
    #[serde(default)]
    annotations: BTreeMap<String, Pattern>,
    /// Labels of the image config that must be present, matching the pattern whole.
    #[serde(default)]
    labels: BTreeMap<String, Pattern>,
    /// `org.opencontainers.image.version` must equal the tag (a leading `v` ignored on both).
    #[serde(default)]
    version_matches_tag: bool,
}

pub struct ImageRequirements(Settings);

/// The facts of the pushed image, each read on first use.
struct Image<'a> {
    digest: &'a str,
    manifest: Option<Option<Manifest>>,
    labels: Option<BTreeMap<String, String>>,
    /// The artifact types that refer to the image.
    referrers: Option<Vec<String>>,
}

impl Image<'_> {
    fn manifest(&mut self) -> Option<&Manifest> {
        let digest = self.digest;
        self.manifest.get_or_insert_with(|| image::manifest_of(digest)).as_ref()
    }

    fn has_referrer(&mut self, artifact_type: &str) -> bool {
        let digest = self.digest;
        let types = self.referrers.get_or_insert_with(|| {
            image::referrers_of(digest, None).into_iter().map(|r| r.artifact_type).collect()
        });
        types.iter().any(|t| t == artifact_type)
    }

    fn label(&mut self, key: &str) -> Option<&str> {
        let digest = self.digest;
        let labels = self.labels.get_or_insert_with(|| {
            image::labels_of(digest).into_iter().map(|kv| (kv.key, kv.value)).collect()
        });
        labels.get(key).map(String::as_str)
    }
}

impl ImageRequirements {
    /// What the image lacks for `rule` and the tag of `change`, one line each.
    fn missing(&self, rule: &Rule, change: &Change, image: &mut Image) -> Vec<String> {
        let mut missing = Vec::new();
        let Some(manifest) = image.manifest() else {
            return vec!["the host knows nothing of the image".into()];
        };
        let manifest = manifest.clone();
        for artifact_type in &rule.referrers {
            if !image.has_referrer(artifact_type) {
                missing.push(format!("no artifact of type `{artifact_type}` refers to it"));
            }
        }
        for (key, pattern) in &rule.annotations {
            match manifest.annotation(key) {
                None => missing.push(format!("it has no annotation `{key}`")),
                Some(value) if !pattern.matches(value) => missing.push(format!(
                    "its annotation `{key}` is `{value}`, which does not match `{}`",
                    pattern.as_str()
                )),
                Some(_) => {}
            }
        }
        for (key, pattern) in &rule.labels {
            match image.label(key).map(str::to_string) {
                None => missing.push(format!("its config has no label `{key}`")),
                Some(value) if !pattern.matches(&value) => missing.push(format!(
                    "its config label `{key}` is `{value}`, which does not match `{}`",
                    pattern.as_str()
                )),
                Some(_) => {}
            }
        }
        if rule.version_matches_tag {
            let unprefixed = |text: &str| text.strip_prefix('v').unwrap_or(text).to_string();
            match manifest.annotation(VERSION) {
                None => missing.push(format!("it has no annotation `{VERSION}`")),
                Some(version) if unprefixed(version) != unprefixed(change.tag) => {
                    missing.push(format!("its annotation `{VERSION}` is `{version}`, not the tag"))
                }
                Some(_) => {}
            }
        }
        missing
    }
}

impl Policy for ImageRequirements {
    type Settings = Settings;
    // The JavaScript port reads this file too; the Python port holds a copy the tests check.
    tagpolicy_guest::include_metadata!("../metadata.json");

    fn configure(settings: Settings) -> Result<Self, String> {
        if settings.rules.is_empty() {
            return Err("settings.rules: empty; give at least one rule".into());
        }
        for (index, rule) in settings.rules.iter().enumerate() {
            if rule.tags.is_empty() {
                return Err(format!(
                    "settings.rules[{index}].tags: empty; list the tag patterns this rule guards"
                ));
            }
            let requires = !rule.referrers.is_empty()
                || !rule.annotations.is_empty()
                || !rule.labels.is_empty()
                || rule.version_matches_tag;
            if !requires {
                return Err(format!(
                    "settings.rules[{index}]: requires nothing; give `referrers`, `annotations`, `labels` or `version_matches_tag`"
                ));
            }
            if let Some(empty) = rule.referrers.iter().position(String::is_empty) {
                return Err(format!(
                    "settings.rules[{index}].referrers[{empty}]: empty artifact type"
                ));
            }
        }
        Ok(Self(settings))
    }

    fn evaluate(&self, request: &Request) -> Decision {
        let mut findings = Findings::new();
        let Some(push) = request.push() else { return findings.into_decision() };
        let mut image =
            Image { digest: &push.digest, manifest: None, labels: None, referrers: None };
        for change in request.changes() {
            if !matches!(change.kind, ChangeKind::Create | ChangeKind::Move) {
                continue;
            }
            let mut missing = Vec::new();
            for rule in self.0.rules.iter().filter(|rule| rule.tags.any_match(change.tag)) {
                for line in self.missing(rule, &change, &mut image) {
                    if !missing.contains(&line) {
                        missing.push(line);
                    }
                }
            }
            if !missing.is_empty() {
                findings.deny(
                    change.tag,
                    format!(
                        "tag `{}` may only point at an image that meets its requirements, and {} does not: {}",
                        change.tag,
                        short(&push.digest),
                        missing.join("; ")
                    ),
                );
            }
        }
        findings.into_decision()
    }
}

fn short(digest: &str) -> &str {
    digest.get(..19).unwrap_or(digest)
}

export_policy!(ImageRequirements);
