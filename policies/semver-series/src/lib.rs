//! `semver-series`: series tags (`1.2`, `1`) and `latest` follow the newest release.
//!
//! A push that sets series tag `X.Y` or `X` (optional leading `v`) is allowed only if, after
//! the push, the image it points at carries the highest release `X.Y.Z` of that series among
//! all tags of the repository (this push included); `latest` likewise must carry the highest
//! release overall, unless `latest: false`. A series without a release cannot be tagged.
//! Other tags, identical re-pushes and deletions are not governed.

use serde::Deserialize;
use std::collections::BTreeMap;
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

    fn name(&self) -> String {
        match self {
            Follows::Series(series) => format!("series {series}"),
            Follows::Latest => "the repository".to_string(),
        }
    }
}

impl Policy for SemverSeries {
    type Settings = Settings;
    const NAME: &'static str = "semver-series";
    const DESCRIPTION: &'static str =
        "Series tags (1.2, 1) and latest must point at the newest release of their series";
    const SETTINGS_EXAMPLE: &'static str = r#"{"latest":true}"#;

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

        // The repository's tags as they will be after the push.
        let mut after: BTreeMap<String, String> =
            repository::list_tags().into_iter().map(|entry| (entry.tag, entry.digest)).collect();
        for change in &push.tags {
            after.insert(change.tag.clone(), push.digest.clone());
        }
        let releases: Vec<(Version, &str, &str)> = after
            .iter()
            .filter_map(|(tag, digest)| Some((tags::release(tag)?, tag.as_str(), digest.as_str())))
            .collect();

        for (tag, follows) in governed {
            let Some(newest) = releases.iter().map(|r| r.0).filter(|v| follows.includes(*v)).max()
            else {
                findings.deny(tag, format!(
                    "tag `{tag}` follows {} which has no release yet: push a release tag first or in the same push",
                    follows.name()
                ));
                continue;
            };
            let carries_newest = releases
                .iter()
                .any(|(version, _, digest)| *version == newest && *digest == push.digest);
            if !carries_newest {
                let here = releases
                    .iter()
                    .filter(|(version, _, digest)| {
                        *digest == push.digest && follows.includes(*version)
                    })
                    .map(|r| r.0)
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
