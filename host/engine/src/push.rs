//! What a policy decides on: the request, and the repository as it is before it.

use crate::image::{Images, KeyValue, Manifest, Referrer};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub use crate::bindings::TagEntry;
pub use crate::bindings::tagpolicy::policy::types::{
    Actor, Instant, ManifestDeletion, Operation, Push, TagChange,
};

/// One request to decide: where, who, what and when. A policy receives what is asked and
/// when; it asks the host for the repository and the actor if it needs them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The repository name, e.g. `team/app`.
    pub repository: String,
    /// Who asks.
    pub actor: Actor,
    /// What is asked.
    pub operation: Operation,
    /// When: a gate's clock, a scenario's fixed time.
    pub time: Instant,
}

impl Instant {
    /// The Unix epoch, the time of a request that says none.
    pub const EPOCH: Instant = Instant { seconds: 0, nanoseconds: 0 };

    /// The system clock's time (what a gate gives its requests).
    pub fn now() -> Instant {
        Instant::from(SystemTime::now())
    }

    /// Parse an RFC 3339 time in UTC, e.g. `2026-12-24T17:00:00Z`.
    pub fn parse_rfc3339(text: &str) -> Result<Instant, String> {
        humantime::parse_rfc3339(text).map(Instant::from).map_err(|e| {
            format!("`{text}` is not an RFC 3339 time in UTC such as `2026-12-24T17:00:00Z` ({e})")
        })
    }

    /// `2026-12-24T17:00:00Z` (fractions of a second when there are any).
    pub fn to_rfc3339(&self) -> String {
        let time = UNIX_EPOCH
            + Duration::from_secs(self.seconds.max(0) as u64)
            + Duration::from_nanos(u64::from(self.nanoseconds));
        if self.nanoseconds == 0 {
            humantime::format_rfc3339_seconds(time).to_string()
        } else {
            humantime::format_rfc3339_nanos(time).to_string()
        }
    }
}

impl From<SystemTime> for Instant {
    fn from(time: SystemTime) -> Self {
        match time.duration_since(UNIX_EPOCH) {
            Ok(since) => {
                Instant { seconds: since.as_secs() as i64, nanoseconds: since.subsec_nanos() }
            }
            Err(before) => {
                Instant { seconds: -(before.duration().as_secs() as i64), nanoseconds: 0 }
            }
        }
    }
}

impl Actor {
    /// Nobody in particular: no identity, no groups.
    pub fn anonymous() -> Self {
        Actor { id: None, groups: Vec::new() }
    }
}

impl Request {
    /// The tags the request touches, in request order.
    pub fn tags(&self) -> Vec<&str> {
        match &self.operation {
            Operation::Push(push) => push.tags.iter().map(|t| t.tag.as_str()).collect(),
            Operation::DeleteTags(tags) => tags.iter().map(|t| t.tag.as_str()).collect(),
            Operation::DeleteManifest(deletion) => {
                deletion.tags.iter().map(String::as_str).collect()
            }
        }
    }
}

/// Read-only access to a repository, answered for the policy's `repository` and `image`
/// imports: its tags, and the facts of its images. The CLI answers from a scenario
/// ([`RepositoryState`]); a gate answers from the registry. The image facts default to
/// "unknown", for hosts that know only tags ([`TagMap`]).
pub trait RepositoryView: Send + Sync {
    /// Every tag with its digest, ordered by tag.
    fn list_tags(&self) -> Vec<TagEntry>;
    /// The digest `tag` points at.
    fn digest_of(&self, tag: &str) -> Option<String>;
    /// The tags pointing at `digest`, ordered by tag.
    fn tags_of(&self, digest: &str) -> Vec<String>;
    /// The manifest `digest`; for the digest being pushed, the manifest being pushed.
    fn manifest(&self, _digest: &str) -> Option<Manifest> {
        None
    }
    /// The labels of the image `digest`'s config, ordered by key.
    fn labels(&self, _digest: &str) -> Vec<KeyValue> {
        Vec::new()
    }
    /// The artifacts whose subject is `digest`, of `artifact_type` if given, ordered by digest.
    fn referrers(&self, _digest: &str, _artifact_type: Option<&str>) -> Vec<Referrer> {
        Vec::new()
    }
}

/// A repository in memory: its tags and what is known of its images.
#[derive(Debug, Clone, Default)]
pub struct RepositoryState {
    pub tags: TagMap,
    pub images: Arc<Images>,
}

impl RepositoryView for RepositoryState {
    fn list_tags(&self) -> Vec<TagEntry> {
        self.tags.list_tags()
    }
    fn digest_of(&self, tag: &str) -> Option<String> {
        self.tags.digest_of(tag)
    }
    fn tags_of(&self, digest: &str) -> Vec<String> {
        self.tags.tags_of(digest)
    }
    fn manifest(&self, digest: &str) -> Option<Manifest> {
        self.images.manifest(digest)
    }
    fn labels(&self, digest: &str) -> Vec<KeyValue> {
        self.images.labels(digest)
    }
    fn referrers(&self, digest: &str, artifact_type: Option<&str>) -> Vec<Referrer> {
        self.images.referrers(digest, artifact_type)
    }
}

/// A repository's tags in memory, with an index from digest to tags.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TagMap {
    by_tag: BTreeMap<String, String>,
    by_digest: BTreeMap<String, BTreeSet<String>>,
}

impl TagMap {
    pub fn new() -> Self {
        Self::default()
    }

    /// Point `tag` at `digest`, moving it if it existed.
    pub fn set(&mut self, tag: &str, digest: &str) {
        self.remove(tag);
        self.by_tag.insert(tag.to_string(), digest.to_string());
        self.by_digest.entry(digest.to_string()).or_default().insert(tag.to_string());
    }

    /// Remove `tag`; returns the digest it pointed at.
    pub fn remove(&mut self, tag: &str) -> Option<String> {
        let digest = self.by_tag.remove(tag)?;
        if let Some(tags) = self.by_digest.get_mut(&digest) {
            tags.remove(tag);
            if tags.is_empty() {
                self.by_digest.remove(&digest);
            }
        }
        Some(digest)
    }

    /// Remove every tag pointing at `digest`; returns them.
    pub fn remove_digest(&mut self, digest: &str) -> Vec<String> {
        let tags: Vec<String> =
            self.by_digest.remove(digest).unwrap_or_default().into_iter().collect();
        for tag in &tags {
            self.by_tag.remove(tag);
        }
        tags
    }

    /// Apply an allowed request, as the registry would.
    pub fn apply(&mut self, request: &Request) {
        match &request.operation {
            Operation::Push(push) => {
                for change in &push.tags {
                    self.set(&change.tag, &push.digest);
                }
            }
            Operation::DeleteTags(tags) => {
                for change in tags {
                    self.remove(&change.tag);
                }
            }
            Operation::DeleteManifest(deletion) => {
                self.remove_digest(&deletion.digest);
            }
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.by_tag.iter().map(|(tag, digest)| (tag.as_str(), digest.as_str()))
    }

    pub fn len(&self) -> usize {
        self.by_tag.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_tag.is_empty()
    }
}

impl<T: AsRef<str>, D: AsRef<str>> FromIterator<(T, D)> for TagMap {
    fn from_iter<I: IntoIterator<Item = (T, D)>>(iter: I) -> Self {
        let mut map = TagMap::new();
        for (tag, digest) in iter {
            map.set(tag.as_ref(), digest.as_ref());
        }
        map
    }
}

impl RepositoryView for TagMap {
    fn list_tags(&self) -> Vec<TagEntry> {
        self.iter()
            .map(|(tag, digest)| TagEntry { tag: tag.into(), digest: digest.into() })
            .collect()
    }

    fn digest_of(&self, tag: &str) -> Option<String> {
        self.by_tag.get(tag).cloned()
    }

    fn tags_of(&self, digest: &str) -> Vec<String> {
        self.by_digest.get(digest).map(|tags| tags.iter().cloned().collect()).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn moving_a_tag_updates_both_indexes() {
        let mut map: TagMap = [("1.0", "sha256:a"), ("latest", "sha256:a")].into_iter().collect();
        map.set("latest", "sha256:b");
        assert_eq!(map.tags_of("sha256:a"), vec!["1.0".to_string()]);
        assert_eq!(map.tags_of("sha256:b"), vec!["latest".to_string()]);
        assert_eq!(map.digest_of("latest").as_deref(), Some("sha256:b"));
    }

    #[test]
    fn removing_a_digest_removes_its_tags() {
        let mut map: TagMap =
            [("1.0", "sha256:a"), ("1", "sha256:a"), ("2.0", "sha256:b")].into_iter().collect();
        assert_eq!(map.remove_digest("sha256:a"), vec!["1".to_string(), "1.0".to_string()]);
        assert_eq!(map.len(), 1);
        assert!(map.tags_of("sha256:a").is_empty());
        assert_eq!(map.remove("nope"), None);
    }
}
