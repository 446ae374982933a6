//! Tag grammar helpers shared by policies: releases (`1.2.3`, `v1.2.3`) and the series
//! tags that follow them (`1.2`, `1`, `v1.2`).
//!
//! Numbers are canonical (no leading zeros, as in SemVer), so `1.02.3` is neither a release
//! nor a series tag. The optional `v` is not part of the version: `v1.2` and `1.2` name the
//! same series.
//!
//! [`newest_release`] asks the host for the newest release of a series among the
//! repository's tags, at the same cost in a repository of any size.
//!
//! ```
//! use tagpolicy_guest::tags::{self, Series, Version};
//!
//! assert_eq!(tags::release("v1.3.1"), Some(Version { major: 1, minor: 3, patch: 1 }));
//! assert_eq!(tags::series("1.2"), Some(Series { major: 1, minor: Some(2) }));
//! assert!(tags::series("1.2").unwrap().contains(tags::release("1.2.10").unwrap()));
//! ```

use crate::repository;
use crate::{TagOrder, TagQuery};

/// A release version `major.minor.patch`, ordered numerically; displayed as `1.2.3`.
///
/// ```
/// use tagpolicy_guest::tags::{release, Version};
///
/// assert!(release("1.2.10") > release("1.2.9"));
/// assert_eq!(Version { major: 1, minor: 3, patch: 0 }.to_string(), "1.3.0");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Version {
    /// The first number.
    pub major: u64,
    /// The second number.
    pub minor: u64,
    /// The third number.
    pub patch: u64,
}

impl std::fmt::Display for Version {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

/// A series: every release of a major version (`1`), or of a minor version (`1.2`);
/// displayed as `1` or `1.2`.
///
/// ```
/// use tagpolicy_guest::tags::Series;
///
/// assert_eq!(Series { major: 1, minor: Some(2) }.to_string(), "1.2");
/// assert_eq!(Series { major: 1, minor: None }.to_string(), "1");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Series {
    /// The major version.
    pub major: u64,
    /// The minor version; `None` for every release of the major version.
    pub minor: Option<u64>,
}

impl Series {
    /// Whether `version` belongs to this series.
    ///
    /// ```
    /// use tagpolicy_guest::tags::{release, series};
    ///
    /// assert!(series("1.2").unwrap().contains(release("1.2.10").unwrap()));
    /// assert!(!series("v1").unwrap().contains(release("2.0.0").unwrap()));
    /// ```
    pub fn contains(&self, version: Version) -> bool {
        version.major == self.major && self.minor.is_none_or(|minor| minor == version.minor)
    }
}

impl std::fmt::Display for Series {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.minor {
            Some(minor) => write!(f, "{}.{}", self.major, minor),
            None => write!(f, "{}", self.major),
        }
    }
}

/// The version of a release tag (`X.Y.Z` or `vX.Y.Z`); pre-releases such as `1.2.3-rc1`
/// and builds such as `1.2.3+b7` are not releases.
///
/// ```
/// use tagpolicy_guest::tags::{release, Version};
///
/// assert_eq!(release("v1.3.1"), Some(Version { major: 1, minor: 3, patch: 1 }));
/// assert_eq!(release("1.3.1-rc1"), None);
/// assert_eq!(release("1.03.1"), None);
/// ```
pub fn release(tag: &str) -> Option<Version> {
    match *numbers(tag)?.as_slice() {
        [major, minor, patch] => Some(Version { major, minor, patch }),
        _ => None,
    }
}

/// The series a series tag names (`X`, `X.Y`, `vX`, `vX.Y`).
///
/// ```
/// use tagpolicy_guest::tags::{series, Series};
///
/// assert_eq!(series("v1.2"), Some(Series { major: 1, minor: Some(2) }));
/// assert_eq!(series("1.2.3"), None);
/// ```
pub fn series(tag: &str) -> Option<Series> {
    match *numbers(tag)?.as_slice() {
        [major] => Some(Series { major, minor: None }),
        [major, minor] => Some(Series { major, minor: Some(minor) }),
        _ => None,
    }
}

/// The pattern of the release tags of `series` (of every release for `None`), with or
/// without a leading `v`: `v?1\.2\.(?:0|[1-9][0-9]*)` for `1.2`.
///
/// ```
/// use tagpolicy_guest::tags::{release_pattern, series};
///
/// assert_eq!(release_pattern(series("1.2")), r"v?1\.2\.(?:0|[1-9][0-9]*)");
/// assert_eq!(release_pattern(None), r"v?(?:0|[1-9][0-9]*)\.(?:0|[1-9][0-9]*)\.(?:0|[1-9][0-9]*)");
/// ```
pub fn release_pattern(series: Option<Series>) -> String {
    const NUMBER: &str = "(?:0|[1-9][0-9]*)";
    match series {
        Some(Series { major, minor: Some(minor) }) => format!(r"v?{major}\.{minor}\.{NUMBER}"),
        Some(Series { major, minor: None }) => format!(r"v?{major}\.{NUMBER}\.{NUMBER}"),
        None => format!(r"v?{NUMBER}\.{NUMBER}\.{NUMBER}"),
    }
}

/// The newest release of `series` (of the whole repository for `None`) among the
/// repository's tags as they are before the request: a query of the host's index, read from
/// the newest down.
///
/// ```no_run
/// use tagpolicy_guest::tags::{newest_release, release, series};
/// # let change = tagpolicy_guest::Change { tag: "1.2.11", kind: tagpolicy_guest::ChangeKind::Create, from: None, to: None };
///
/// // In `evaluate`: a release must come after the newest of its series.
/// if let Some(version) = release(change.tag) {
///     let minor = series(&format!("{}.{}", version.major, version.minor));
///     if newest_release(minor).is_some_and(|newest| version <= newest) {
///         // deny: `1.2.11` is not newer than the newest 1.2 release
///     }
/// }
/// ```
pub fn newest_release(series: Option<Series>) -> Option<Version> {
    // The newest tag alone first (almost always a release); past tags whose numbers
    // overflow, pages of 8.
    let mut query = TagQuery {
        pattern: release_pattern(series),
        order: TagOrder::NewestFirst,
        limit: 1,
        after: None,
    };
    loop {
        let page = repository::find_tags(&query);
        // A tag the pattern matches is a release unless a number overflows: skip it.
        if let Some(version) = page.iter().find_map(|entry| release(&entry.tag)) {
            return Some(version);
        }
        if page.len() < query.limit as usize {
            return None;
        }
        query.after = page.last().map(|entry| entry.tag.clone());
        query.limit = 8;
    }
}

/// The dot-separated canonical numbers of `tag` after an optional `v`.
fn numbers(tag: &str) -> Option<Vec<u64>> {
    let body = tag.strip_prefix('v').unwrap_or(tag);
    body.split('.')
        .map(|part| {
            let canonical = !part.is_empty()
                && part.bytes().all(|b| b.is_ascii_digit())
                && (part == "0" || !part.starts_with('0'));
            if canonical { part.parse().ok() } else { None }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(major: u64, minor: u64, patch: u64) -> Version {
        Version { major, minor, patch }
    }

    #[test]
    fn releases() {
        assert_eq!(release("1.2.3"), Some(v(1, 2, 3)));
        assert_eq!(release("v10.0.11"), Some(v(10, 0, 11)));
        assert_eq!(release("0.0.0"), Some(v(0, 0, 0)));
        for not_release in [
            "1.2",
            "1.2.3-rc1",
            "1.2.3+b1",
            "1.02.3",
            "V1.2.3",
            "1..3",
            "latest",
            "",
            "v",
            "1.2.3.4",
            "99999999999999999999.0.0",
        ] {
            assert_eq!(release(not_release), None, "{not_release}");
        }
    }

    #[test]
    fn series_tags() {
        assert_eq!(series("1.2"), Some(Series { major: 1, minor: Some(2) }));
        assert_eq!(series("v3"), Some(Series { major: 3, minor: None }));
        for not_series in ["1.2.3", "latest", "1.x", "01", "v", "1.2-rc1"] {
            assert_eq!(series(not_series), None, "{not_series}");
        }
    }

    #[test]
    fn series_membership_and_order() {
        let minor = series("1.2").unwrap();
        assert!(minor.contains(v(1, 2, 11)));
        assert!(!minor.contains(v(1, 3, 0)));
        let major = series("1").unwrap();
        assert!(major.contains(v(1, 3, 0)));
        assert!(!major.contains(v(2, 0, 0)));
        assert!(v(1, 2, 10) > v(1, 2, 9), "numeric, not lexical, order");
        assert_eq!(minor.to_string(), "1.2");
        assert_eq!(v(1, 2, 3).to_string(), "1.2.3");
    }
}
