//! `min-tags`: a new image must arrive with a minimum set of tags.
//!
//! A push of a digest that no tag of the repository points at yet must carry at least
//! `min_tags` distinct tags, and for each regex in `required` at least one tag that matches
//! it whole. Pushes that add tags to an image that is already tagged, and deletions, are not
//! restricted.

use serde::Deserialize;
use tagpolicy_guest::{Decision, Findings, Patterns, Policy, Request, export_policy, repository};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    #[serde(default = "one")]
    min_tags: u32,
    #[serde(default)]
    required: Patterns,
}

fn one() -> u32 {
    1
}

pub struct MinTags(Settings);

impl Policy for MinTags {
    type Settings = Settings;
    // The JavaScript port reads this file too; the Python port holds a copy the tests check.
    tagpolicy_guest::include_metadata!("../metadata.json");

    fn configure(settings: Settings) -> Result<Self, String> {
        Ok(Self(settings))
    }

    fn evaluate(&self, request: &Request) -> Decision {
        let mut findings = Findings::new();
        let Some(push) = request.push() else {
            return findings.into_decision();
        };
        if !repository::tags_of(&push.digest).is_empty() {
            return findings.into_decision();
        }
        let mut tags: Vec<&str> = push.tags.iter().map(|change| change.tag.as_str()).collect();
        tags.sort_unstable();
        tags.dedup();
        let got = tags.iter().map(|tag| format!("`{tag}`")).collect::<Vec<_>>().join(", ");
        let wanted = self.0.min_tags as usize;
        if tags.len() < wanted {
            findings.deny_request(format!(
                "a new image must arrive with at least {wanted} tags; this push has {} ({got})",
                tags.len()
            ));
        }
        for pattern in self.0.required.iter() {
            if !tags.iter().any(|tag| pattern.matches(tag)) {
                findings.deny_request(format!(
                    "a new image must arrive with a tag matching `{}`; this push has {got}",
                    pattern.as_str()
                ));
            }
        }
        findings.into_decision()
    }
}

export_policy!(MinTags);
