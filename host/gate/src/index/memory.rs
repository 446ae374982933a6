//! The index of one gate, in its memory: a [`TagMap`] per repository, within a budget of
//! tags across repositories; past it, the repositories used least recently are dropped
//! (and read again when next pushed to).

use super::{IndexReader, StoreError, TagNow};
use parking_lot::{Mutex, RwLock};
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;
use tagpolicy::TagQuery;
use tagpolicy::{RepositoryView, TagEntry};
use tagpolicy::{Stamp, TagHistory, TagMap};

pub struct MemoryStore {
    repositories: Mutex<HashMap<String, Arc<Repository>>>,
    /// The most tags kept across repositories.
    max_tags: usize,
    /// Tags kept now (ready repositories).
    tags: AtomicUsize,
}

struct Repository {
    state: RwLock<State>,
}

struct State {
    ready: bool,
    map: TagMap,
    /// Tags whose entry may be wrong (a write of unknown outcome, a notification).
    dirty: BTreeSet<String>,
    used: Instant,
    checked: Instant,
}

impl Repository {
    fn read(&self) -> parking_lot::RwLockReadGuard<'_, State> {
        self.state.read()
    }

    fn write(&self) -> parking_lot::RwLockWriteGuard<'_, State> {
        self.state.write()
    }
}

/// What the index holds of a repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    Absent,
    /// Being filled (or left half-filled by a fill that stopped).
    Filling,
    /// Filled; the tags listed must be read again before a decision.
    Ready {
        dirty: Vec<String>,
        tags: u64,
    },
}

impl MemoryStore {
    pub fn new(max_tags: usize) -> Self {
        MemoryStore { repositories: Mutex::default(), max_tags, tags: AtomicUsize::new(0) }
    }

    fn get(&self, repository: &str) -> Option<Arc<Repository>> {
        self.lock().get(repository).cloned()
    }

    fn lock(&self) -> parking_lot::MutexGuard<'_, HashMap<String, Arc<Repository>>> {
        self.repositories.lock()
    }

    pub fn status(&self, repository: &str) -> Status {
        let Some(entry) = self.get(repository) else { return Status::Absent };
        let mut state = entry.write();
        if !state.ready {
            return Status::Filling;
        }
        state.used = Instant::now();
        Status::Ready { dirty: state.dirty.iter().cloned().collect(), tags: state.map.len() as u64 }
    }

    pub fn begin_fill(&self, repository: &str) {
        let fresh = Arc::new(Repository {
            state: RwLock::new(State {
                ready: false,
                map: TagMap::new(),
                dirty: BTreeSet::new(),
                used: Instant::now(),
                checked: Instant::now(),
            }),
        });
        if let Some(old) = self.lock().insert(repository.to_string(), fresh) {
            let old = old.read();
            if old.ready {
                self.tags.fetch_sub(old.map.len(), Ordering::Relaxed);
            }
        }
    }

    /// Add what a fill read; an error when the repository alone is over the budget.
    pub fn fill_batch(
        &self,
        repository: &str,
        found: &[(String, String)],
    ) -> Result<(), StoreError> {
        let Some(entry) = self.get(repository) else { return Ok(()) };
        let mut state = entry.write();
        for (tag, digest) in found {
            state.map.set(tag, digest);
        }
        if state.map.len() > self.max_tags {
            return Err(StoreError(format!(
                "`{repository}` has more than the {} tags the in-memory index keeps \
                 (`index.max_tags`); raise it, or keep the index in Redis (`coordination`)",
                self.max_tags
            )));
        }
        Ok(())
    }

    /// The fill is done; how many repositories were dropped to make room.
    pub fn end_fill(&self, repository: &str) -> usize {
        let Some(entry) = self.get(repository) else { return 0 };
        let count = {
            let mut state = entry.write();
            state.ready = true;
            state.used = Instant::now();
            state.checked = Instant::now();
            state.map.len()
        };
        self.tags.fetch_add(count, Ordering::Relaxed);
        self.evict(repository)
    }

    pub fn abandon_fill(&self, repository: &str) {
        let mut repositories = self.lock();
        if repositories.get(repository).is_some_and(|entry| !entry.read().ready) {
            repositories.remove(repository);
        }
    }

    /// Drop the repositories used least recently (never `keep`) until the tags fit.
    fn evict(&self, keep: &str) -> usize {
        let mut evicted = 0;
        while self.tags.load(Ordering::Relaxed) > self.max_tags {
            let mut repositories = self.lock();
            let oldest = repositories
                .iter()
                .filter(|(name, _)| name.as_str() != keep)
                .filter_map(|(name, entry)| {
                    let state = entry.read();
                    state.ready.then(|| (state.used, name.clone(), state.map.len()))
                })
                .min();
            let Some((_, name, count)) = oldest else { break };
            repositories.remove(&name);
            self.tags.fetch_sub(count, Ordering::Relaxed);
            evicted += 1;
            tracing::info!(
                repository = name,
                tags = count,
                "dropped from the index to keep it within `index.max_tags`"
            );
        }
        evicted
    }

    pub fn mark_dirty(&self, repository: &str, tags: &[String]) {
        if let Some(entry) = self.get(repository) {
            entry.write().dirty.extend(tags.iter().cloned());
        }
    }

    pub fn apply(&self, repository: &str, changes: &[(String, TagNow)], stamp: &Stamp) {
        let Some(entry) = self.get(repository) else { return };
        let mut state = entry.write();
        if !state.ready {
            return;
        }
        let before = state.map.len();
        for (tag, now) in changes {
            match now {
                TagNow::Is(Some(digest)) => state.map.record(tag, digest, stamp.clone()),
                TagNow::Is(None) => {
                    state.map.remove(tag);
                }
                // The write's outcome is not known: the tag stays dirty.
                TagNow::Unknown => continue,
            }
            state.dirty.remove(tag);
        }
        let after = state.map.len();
        drop(state);
        self.adjust(before, after);
    }

    /// Set `tag` to what a lookup found; whether that changed the index.
    pub fn correct(&self, repository: &str, tag: &str, digest: Option<&str>) -> bool {
        let Some(entry) = self.get(repository) else { return false };
        let mut state = entry.write();
        state.dirty.remove(tag);
        let before = state.map.len();
        let current = state.map.digest_of(tag);
        let changed = current.as_deref() != digest;
        if changed {
            match digest {
                Some(digest) => state.map.set(tag, digest),
                None => {
                    state.map.remove(tag);
                }
            }
        }
        let after = state.map.len();
        drop(state);
        self.adjust(before, after);
        changed
    }

    fn adjust(&self, before: usize, after: usize) {
        if after > before {
            self.tags.fetch_add(after - before, Ordering::Relaxed);
        } else {
            self.tags.fetch_sub(before - after, Ordering::Relaxed);
        }
    }

    /// The digests of `tags` (`None`: absent), for a push whose tags are taken from the index.
    pub fn digests(&self, repository: &str, tags: &[String]) -> Vec<Option<String>> {
        let Some(entry) = self.get(repository) else { return vec![None; tags.len()] };
        let state = entry.read();
        tags.iter().map(|tag| state.map.digest_of(tag)).collect()
    }

    pub fn reader(&self, repository: &str) -> Option<Arc<dyn IndexReader>> {
        let entry = self.get(repository)?;
        Some(Arc::new(Reader(entry)))
    }

    /// Ready repositories not checked for `every`.
    pub fn due_for_check(&self, every: std::time::Duration) -> Vec<String> {
        self.lock()
            .iter()
            .filter(|(_, entry)| {
                let state = entry.read();
                state.ready && state.checked.elapsed() >= every
            })
            .map(|(name, _)| name.clone())
            .collect()
    }

    pub fn checked(&self, repository: &str) {
        if let Some(entry) = self.get(repository) {
            entry.write().checked = Instant::now();
        }
    }

    /// Repositories and tags held, for the metrics.
    pub fn size(&self) -> (usize, usize) {
        (self.lock().len(), self.tags.load(Ordering::Relaxed))
    }
}

/// A repository's index, read by a decision (under the repository's lease, so no change of
/// the gates comes between two reads).
struct Reader(Arc<Repository>);

impl IndexReader for Reader {
    fn find(&self, query: &TagQuery) -> Result<Vec<TagEntry>, StoreError> {
        Ok(self.0.read().map.find(query))
    }
    fn count(&self) -> Result<u64, StoreError> {
        Ok(self.0.read().map.len() as u64)
    }
    fn digest_of(&self, tag: &str) -> Result<Option<String>, StoreError> {
        Ok(self.0.read().map.digest_of(tag))
    }
    fn tags_of(&self, digest: &str) -> Result<Vec<String>, StoreError> {
        Ok(self.0.read().map.tags_of(digest))
    }
    fn history_of(&self, tag: &str) -> Result<Option<TagHistory>, StoreError> {
        Ok(self.0.read().map.history_of(tag))
    }
    fn names(&self, after: Option<&str>, count: usize) -> Result<Vec<String>, StoreError> {
        use tagpolicy::SortedTags;
        Ok(self.0.read().map.names("", after, count))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filled(store: &MemoryStore, repository: &str, tags: usize) {
        store.begin_fill(repository);
        let found: Vec<(String, String)> =
            (0..tags).map(|i| (format!("1.0.{i}"), format!("sha256:{i}"))).collect();
        store.fill_batch(repository, &found).unwrap();
        store.end_fill(repository);
    }

    #[test]
    fn the_least_recently_used_repositories_make_room() {
        let store = MemoryStore::new(250);
        filled(&store, "a", 100);
        filled(&store, "b", 100);
        assert!(matches!(store.status("a"), Status::Ready { tags: 100, .. }));
        filled(&store, "c", 100);
        assert_eq!(store.status("b"), Status::Absent, "b was used least recently");
        assert!(matches!(store.status("a"), Status::Ready { .. }));
        assert_eq!(store.size(), (2, 200));
        store.begin_fill("huge");
        let found: Vec<(String, String)> =
            (0..251).map(|i| (format!("t{i}"), "sha256:x".to_string())).collect();
        let error = store.fill_batch("huge", &found).unwrap_err();
        assert!(error.0.contains("index.max_tags"), "{error}");
        store.abandon_fill("huge");
        assert_eq!(store.status("huge"), Status::Absent);
    }

    #[test]
    fn writes_and_corrections_keep_the_count_and_the_dirty_tags() {
        let store = MemoryStore::new(1000);
        filled(&store, "a", 3);
        store.mark_dirty("a", &["1.0.0".into(), "2.0.0".into()]);
        let stamp = Stamp { at: tagpolicy::Instant::EPOCH, actor: Some("ci".into()) };
        store.apply(
            "a",
            &[
                ("2.0.0".into(), TagNow::Is(Some("sha256:9".into()))),
                ("1.0.0".into(), TagNow::Unknown),
            ],
            &stamp,
        );
        assert_eq!(store.status("a"), Status::Ready { dirty: vec!["1.0.0".into()], tags: 4 });
        assert!(store.correct("a", "1.0.0", None));
        assert!(!store.correct("a", "2.0.0", Some("sha256:9")));
        assert_eq!(store.status("a"), Status::Ready { dirty: vec![], tags: 3 });
        assert_eq!(store.size(), (1, 3));
        let reader = store.reader("a").unwrap();
        assert_eq!(reader.history_of("2.0.0").unwrap().unwrap().changed, stamp);
    }
}
