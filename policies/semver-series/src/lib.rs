//! `semver-series`: series tags (`1.2`, `1`) and `latest` follow the newest release.
//!
//! A push that sets series tag `X.Y` or `X` (optional leading `v`) is allowed only if, after
//! the push, the image it points at carries the highest release `X.Y.Z` of that series among
//! all tags of the repository (this push included); `latest` likewise must carry the highest
//! release overall, unless `latest: false`. A series without a release cannot be tagged.
//! Other tags, identical re-pushes and deletions are not governed.
//!
//! The newest release of a series is a query of the host's index (the newest tag of the
//! series' pattern), so a decision costs the same in a repository of any size.

use serde::Deserialize;
use tagpolicy_guest::tags::{self, Series, Version};
use tagpolicy_guest::{Decision, Findings, Policy, Request, export_policy, repository};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    #[serde(default = "yes")]
    latest: bool,
}

fn yes() -> bool {
    true
}

pub struct SemverSeries(Settings);

/// What a governed tag must follow.
enum Follows {
    Series(Series),
    Latest,
}

impl Follows {
    fn includes(&self, version: Version) -> bool {
        match self {
            Follows::Series(series) => series.contains(version),
            Follows::Latest => true,
        }
    }

    /// The series to ask the host about; `None` for every release.
    fn series(&self) -> Option<Series> {
        match self {
            Follows::Series(series) => Some(*series),
            Follows::Latest => None,
        }
    }

    fn name(&self) -> String {
        match self {
            Follows::Series(series) => format!("series {series}"),
            Follows::Latest => "the repository".to_string(),
        }
    }
}

impl Policy for SemverSeries {
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
        let governed: Vec<(&str, Follows)> = request
            .changes()
            .into_iter()
            .filter(|change| !change.is_identical())
            .filter_map(|change| {
                let follows = match tags::series(change.tag) {
                    Some(series) => Follows::Series(series),
                    None if self.0.latest && change.tag == "latest" => Follows::Latest,
                    None => return None,
                };
                Some((change.tag, follows))
            })
            .collect();
        if governed.is_empty() {
            return findings.into_decision();
        }

        // The releases the image carries after the push: its tags now, and the pushed ones.
        let pushed: Vec<Version> =
            push.tags.iter().filter_map(|change| tags::release(&change.tag)).collect();
        let on_image: Vec<Version> = repository::tags_of(&push.digest)
            .iter()
            .filter_map(|tag| tags::release(tag))
            .chain(pushed.iter().copied())
            .collect();

        for (tag, follows) in governed {
            // The newest release after the push: in the repository, or pushed now.
            let in_push = pushed.iter().copied().filter(|version| follows.includes(*version)).max();
            let newest = tags::newest_release(follows.series()).max(in_push);
            let Some(newest) = newest else {
                findings.deny(tag, format!(
                    "tag `{tag}` follows {} which has no release yet: push a release tag first or in the same push",
                    follows.name()
                ));
                continue;
            };
            if !on_image.contains(&newest) {
                let here = on_image
                    .iter()
                    .filter(|version| follows.includes(**version))
                    .max()
                    .map_or("no release of it".to_string(), |version| format!("only {version}"));
                findings.deny(tag, format!(
                    "tag `{tag}` must point at the newest release of {} ({newest}), but this image carries {here}",
                    follows.name()
                ));
            }
        }
        findings.into_decision()
    }
}

export_policy!(SemverSeries);
