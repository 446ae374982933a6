//! `semver-series`: series tags (`1.2`, `1`) and `latest` follow the newest release.
//!
//! A push that sets series tag `X.Y` or `X` (optional leading `v`) is allowed only if, after
//! the push, the image it points at carries the highest release `X.Y.Z` of that series among
//! all tags of the repository (this push included); `latest` likewise must carry the highest
//! release overall, unless `latest: false`. A series without a release cannot be tagged.
//! Other tags, identical re-pushes and deletions are not governed.

use serde::Deserialize;
use std::collections::{BTreeMap, HashMap};
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
        // One pass: the newest release of every series and overall, and the releases the
        // pushed image carries. Each governed tag is then a lookup, whatever the size of
        // the repository.
        let mut newest: HashMap<Series, Version> = HashMap::new();
        let mut newest_overall: Option<Version> = None;
        let mut on_image: Vec<Version> = Vec::new();
        for (tag, digest) in &after {
            let Some(version) = tags::release(tag) else { continue };
            for series in [
                Series { major: version.major, minor: None },
                Series { major: version.major, minor: Some(version.minor) },
            ] {
                let entry = newest.entry(series).or_insert(version);
                *entry = (*entry).max(version);
            }
            newest_overall = newest_overall.max(Some(version));
            if *digest == push.digest {
                on_image.push(version);
            }
        }

        for (tag, follows) in governed {
            let newest = match &follows {
                Follows::Series(series) => newest.get(series).copied(),
                Follows::Latest => newest_overall,
            };
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
