//! A repository's tags in memory, indexed three ways (by name, by version, by digest) with
//! what is known of each tag's history: the index a scenario's state lives in, and a gate's
//! index when it runs alone. Every query costs O(log N + what it reads). [`RepositoryState`]
//! pairs such an index with the facts of the images.

use crate::image::{Images, KeyValue, Manifest, Referrer};
use crate::push::{Operation, RepositoryView, Request, TagEntry};
use crate::query::{SortedTags, TagQuery, key_tag, version_key};
use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ops::Bound;
use std::sync::Arc;

pub use crate::bindings::tagpolicy::policy::types::{Stamp, TagHistory};

/// A repository's tags with their digests and histories.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TagMap {
    by_tag: BTreeMap<String, Entry>,
    /// Digests are shared between the tags that point at them.
    by_digest: HashMap<Arc<str>, BTreeSet<String>>,
    /// [`version_key`] of every tag, with its digest: a query reads the digests of the tags
    /// it finds there rather than looking each up again by name.
    by_version: BTreeMap<String, Arc<str>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    digest: Arc<str>,
    /// Boxed: most tags of a large index have none (they were read in, not changed
    /// through the host), and a pointer costs a tenth of a history.
    history: Option<Box<TagHistory>>,
}

impl TagMap {
    /// No tags.
    pub fn new() -> Self {
        Self::default()
    }

    /// Point `tag` at `digest`, moving it if it existed, with no history: a change the
    /// records do not know of (a starting state, a change made around the host).
    pub fn set(&mut self, tag: &str, digest: &str) {
        self.put(tag, digest, None);
    }

    /// Point `tag` at `digest` as a change made by `stamp`'s actor at its time: a new tag is
    /// created then; a moved tag keeps when (and whether) its creation is known; pointing a
    /// tag at the digest it already has changes nothing.
    pub fn record(&mut self, tag: &str, digest: &str, stamp: Stamp) {
        let history = match self.by_tag.get(tag) {
            Some(entry) if &*entry.digest == digest => return,
            Some(entry) => TagHistory {
                changed: stamp,
                created: entry.history.as_ref().and_then(|h| h.created.clone()),
            },
            None => TagHistory { changed: stamp.clone(), created: Some(stamp) },
        };
        self.put(tag, digest, Some(history));
    }

    /// Point `tag` at `digest` with `history` as given (a scenario's declared history).
    pub fn set_with_history(&mut self, tag: &str, digest: &str, history: Option<TagHistory>) {
        self.put(tag, digest, history);
    }

    fn put(&mut self, tag: &str, digest: &str, history: Option<TagHistory>) {
        self.remove(tag);
        let digest: Arc<str> = match self.by_digest.get_key_value(digest) {
            Some((shared, _)) => shared.clone(),
            None => Arc::from(digest),
        };
        self.by_digest.entry(digest.clone()).or_default().insert(tag.to_string());
        self.by_version.insert(version_key(tag), digest.clone());
        self.by_tag.insert(tag.to_string(), Entry { digest, history: history.map(Box::new) });
    }

    /// Remove `tag`; returns the digest it pointed at.
    pub fn remove(&mut self, tag: &str) -> Option<String> {
        let entry = self.by_tag.remove(tag)?;
        self.by_version.remove(&version_key(tag));
        if let Some(tags) = self.by_digest.get_mut(&entry.digest) {
            tags.remove(tag);
            if tags.is_empty() {
                self.by_digest.remove(&entry.digest);
            }
        }
        Some(entry.digest.to_string())
    }

    /// Remove every tag pointing at `digest`; returns them.
    pub fn remove_digest(&mut self, digest: &str) -> Vec<String> {
        let tags: Vec<String> =
            self.by_digest.remove(digest).unwrap_or_default().into_iter().collect();
        for tag in &tags {
            self.by_tag.remove(tag);
            self.by_version.remove(&version_key(tag));
        }
        tags
    }

    /// Apply an allowed request, as the registry would, recording its actor and time as the
    /// history of the tags it sets.
    pub fn apply(&mut self, request: &Request) {
        match &request.operation {
            Operation::Push(push) => {
                let stamp = Stamp { at: request.time, actor: request.actor.id.clone() };
                for change in &push.tags {
                    self.record(&change.tag, &push.digest, stamp.clone());
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

    /// Every tag with its digest, ordered by tag.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.by_tag.iter().map(|(tag, entry)| (tag.as_str(), &*entry.digest))
    }

    /// How many tags.
    pub fn len(&self) -> usize {
        self.by_tag.len()
    }

    /// Whether there are no tags.
    pub fn is_empty(&self) -> bool {
        self.by_tag.is_empty()
    }

    /// The tags of `query`, with their digests.
    pub fn find(&self, query: &TagQuery) -> Vec<TagEntry> {
        let noted = HashMap::with_capacity((query.limit * 2).min(NOTED));
        let reading = Reading { map: self, digests: RefCell::new(noted) };
        let tags = query.run(&reading);
        let digests = reading.digests.into_inner();
        tags.into_iter()
            .filter_map(|tag| {
                let digest = match digests.get(tag.as_str()) {
                    Some(digest) => digest.to_string(),
                    None => self.by_tag.get(&tag)?.digest.to_string(),
                };
                Some(TagEntry { tag, digest })
            })
            .collect()
    }

    /// Up to `count` tags starting with `prefix`, after `after` if given, ascending.
    fn name_range<'a>(
        &'a self,
        prefix: &str,
        after: Option<&str>,
        count: usize,
    ) -> Vec<(&'a String, &'a Entry)> {
        let start = match after {
            Some(after) if after >= prefix => Bound::Excluded(after),
            _ => Bound::Included(prefix),
        };
        self.by_tag
            .range::<str, _>((start, Bound::Unbounded))
            .take_while(|(tag, _)| tag.starts_with(prefix))
            .take(count)
            .collect()
    }

    /// Up to `count` version keys starting with `prefix`, below `below` if given, descending.
    fn version_range<'a>(
        &'a self,
        prefix: &str,
        below: Option<&str>,
        count: usize,
    ) -> Vec<(&'a String, &'a Arc<str>)> {
        // Every key with the prefix sorts below the prefix followed by the highest
        // character a key can hold.
        let top = format!("{prefix}\u{7f}");
        let end = match below {
            // A range that ends before it starts is empty (and `range` would panic on it).
            Some(below) if below <= prefix => return Vec::new(),
            Some(below) if below < top.as_str() => Bound::Excluded(below),
            _ => Bound::Excluded(top.as_str()),
        };
        self.by_version.range::<str, _>((Bound::Included(prefix), end)).rev().take(count).collect()
    }
}

impl SortedTags for TagMap {
    fn names(&self, prefix: &str, after: Option<&str>, count: usize) -> Vec<String> {
        self.name_range(prefix, after, count).into_iter().map(|(tag, _)| tag.clone()).collect()
    }

    fn versions(&self, prefix: &str, below: Option<&str>, count: usize) -> Vec<String> {
        self.version_range(prefix, below, count).into_iter().map(|(key, _)| key.clone()).collect()
    }
}

/// The index as one query reads it, noting the digest of every tag it reads (up to
/// [`NOTED`]). Looking a found tag up again by name is a descent of the name index per
/// entry: in a large index, cold in the cache, that was most of what a query cost.
struct Reading<'a> {
    map: &'a TagMap,
    digests: RefCell<HashMap<&'a str, &'a str>>,
}

/// Digests a [`Reading`] notes; a query that reads more (one the planner could not narrow)
/// looks the rest up by name.
const NOTED: usize = 4096;

impl SortedTags for Reading<'_> {
    fn names(&self, prefix: &str, after: Option<&str>, count: usize) -> Vec<String> {
        let mut digests = self.digests.borrow_mut();
        self.map
            .name_range(prefix, after, count)
            .into_iter()
            .map(|(tag, entry)| {
                if digests.len() < NOTED {
                    digests.insert(tag.as_str(), &*entry.digest);
                }
                tag.clone()
            })
            .collect()
    }

    fn versions(&self, prefix: &str, below: Option<&str>, count: usize) -> Vec<String> {
        let mut digests = self.digests.borrow_mut();
        self.map
            .version_range(prefix, below, count)
            .into_iter()
            .map(|(key, digest)| {
                if digests.len() < NOTED {
                    digests.insert(key_tag(key), &**digest);
                }
                key.clone()
            })
            .collect()
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
    fn find_tags(&self, query: &TagQuery) -> Vec<TagEntry> {
        self.find(query)
    }

    fn count_tags(&self) -> u64 {
        self.len() as u64
    }

    fn digest_of(&self, tag: &str) -> Option<String> {
        self.by_tag.get(tag).map(|entry| entry.digest.to_string())
    }

    fn tags_of(&self, digest: &str) -> Vec<String> {
        self.by_digest.get(digest).map(|tags| tags.iter().cloned().collect()).unwrap_or_default()
    }

    fn history_of(&self, tag: &str) -> Option<TagHistory> {
        self.by_tag.get(tag).and_then(|entry| entry.history.as_deref().cloned())
    }
}

/// A repository in memory: its tags and what is known of its images.
#[derive(Debug, Clone, Default)]
pub struct RepositoryState {
    /// The tags, their digests and their history.
    pub tags: Arc<TagMap>,
    /// What is known of the images; an image missing here is unknown.
    pub images: Arc<Images>,
}

impl RepositoryView for RepositoryState {
    fn find_tags(&self, query: &TagQuery) -> Vec<TagEntry> {
        self.tags.find(query)
    }
    fn count_tags(&self) -> u64 {
        self.tags.count_tags()
    }
    fn digest_of(&self, tag: &str) -> Option<String> {
        self.tags.digest_of(tag)
    }
    fn tags_of(&self, digest: &str) -> Vec<String> {
        self.tags.tags_of(digest)
    }
    fn history_of(&self, tag: &str) -> Option<TagHistory> {
        self.tags.history_of(tag)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::push::Instant;
    use crate::query::TagOrder;

    fn at(seconds: i64, actor: &str) -> Stamp {
        Stamp { at: Instant { seconds, nanoseconds: 0 }, actor: Some(actor.into()) }
    }

    #[test]
    fn moving_a_tag_updates_every_index() {
        let mut map: TagMap = [("1.0", "sha256:a"), ("latest", "sha256:a")].into_iter().collect();
        map.set("latest", "sha256:b");
        assert_eq!(map.tags_of("sha256:a"), vec!["1.0".to_string()]);
        assert_eq!(map.tags_of("sha256:b"), vec!["latest".to_string()]);
        assert_eq!(map.digest_of("latest").as_deref(), Some("sha256:b"));
        map.remove("latest");
        assert_eq!(map.by_version.len(), 1);
        assert!(map.tags_of("sha256:b").is_empty());
    }

    #[test]
    fn removing_a_digest_removes_its_tags() {
        let mut map: TagMap =
            [("1.0", "sha256:a"), ("1", "sha256:a"), ("2.0", "sha256:b")].into_iter().collect();
        assert_eq!(map.remove_digest("sha256:a"), vec!["1".to_string(), "1.0".to_string()]);
        assert_eq!(map.len(), 1);
        assert_eq!(map.by_version.len(), 1);
        assert!(map.tags_of("sha256:a").is_empty());
        assert_eq!(map.remove("nope"), None);
    }

    #[test]
    fn history_keeps_the_creation_across_moves() {
        let mut map = TagMap::new();
        map.set("old", "sha256:a");
        map.record("old", "sha256:b", at(10, "ci"));
        let moved = map.history_of("old").unwrap();
        assert_eq!((moved.changed, moved.created), (at(10, "ci"), None), "created before records");

        map.record("1.0", "sha256:a", at(20, "ci"));
        map.record("1.0", "sha256:a", at(25, "alice"));
        assert_eq!(map.history_of("1.0").unwrap().changed, at(20, "ci"), "identical: no change");
        map.record("1.0", "sha256:b", at(30, "alice"));
        let history = map.history_of("1.0").unwrap();
        assert_eq!((history.changed, history.created), (at(30, "alice"), Some(at(20, "ci"))));

        map.set("1.0", "sha256:c");
        assert_eq!(map.history_of("1.0"), None, "changed around the records");
    }

    #[test]
    fn found_tags_carry_their_digests_however_many_the_query_read() {
        let map: TagMap =
            (0..3 * NOTED).map(|i| (format!("b{i}-x"), format!("sha256:{i:064}"))).collect();
        for (pattern, order) in [
            // Planned: reads a few keys, noting their digests.
            (r"b\d+-x", TagOrder::NewestFirst),
            (r"b1.*", TagOrder::Name),
            // Unplanned: reads every tag, more than it notes.
            (r"[a-c]\d+-x", TagOrder::NewestFirst),
            (r".*9-x", TagOrder::Name),
        ] {
            let query = TagQuery::new(pattern, order, 5, Some("b10000-x".into())).unwrap();
            let found = map.find(&query);
            assert_eq!(found.len(), 5, "{pattern}");
            for entry in found {
                assert_eq!(Some(entry.digest), map.digest_of(&entry.tag), "{pattern}");
            }
        }
    }

    #[test]
    fn queries_read_the_index_in_both_orders() {
        let map: TagMap = [
            ("1.2.9", "sha256:a"),
            ("1.2.10", "sha256:b"),
            ("v1.2.11", "sha256:c"),
            ("1.3.0", "sha256:d"),
            ("latest", "sha256:b"),
        ]
        .into_iter()
        .collect();
        let newest = TagQuery::new(r"v?1\.2\.\d+", TagOrder::NewestFirst, 2, None).unwrap();
        let found: Vec<(String, String)> =
            map.find(&newest).into_iter().map(|e| (e.tag, e.digest)).collect();
        assert_eq!(
            found,
            [
                ("v1.2.11".to_string(), "sha256:c".to_string()),
                ("1.2.10".to_string(), "sha256:b".to_string())
            ]
        );
        let named = TagQuery::new(r"1\..*", TagOrder::Name, 10, Some("1.2.10".into())).unwrap();
        let tags: Vec<String> = map.find(&named).into_iter().map(|e| e.tag).collect();
        assert_eq!(tags, ["1.2.9", "1.3.0"]);
        assert_eq!(map.count_tags(), 5);
    }
}
