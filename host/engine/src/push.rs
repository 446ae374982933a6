//! What a policy decides on: the request, and the repository as it is before it.

use std::collections::{BTreeMap, BTreeSet};

pub use crate::bindings::TagEntry;
pub use crate::bindings::tagpolicy::policy::types::{
    Actor, ManifestDeletion, Operation, Push, Request, TagChange,
};

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

/// Read-only access to a repository's tags, answered for the policy's `repository` import.
/// The CLI answers from a scenario's state ([`TagMap`]); a gate answers from the registry.
pub trait RepositoryView: Send + Sync {
    /// Every tag with its digest, ordered by tag.
    fn list_tags(&self) -> Vec<TagEntry>;
    /// The digest `tag` points at.
    fn digest_of(&self, tag: &str) -> Option<String>;
    /// The tags pointing at `digest`, ordered by tag.
    fn tags_of(&self, digest: &str) -> Vec<String>;
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
