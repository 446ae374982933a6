//! The repository index: each repository's tags, their digests both ways and what the gates
//! recorded of their history, kept where the gates coordinate (in memory for one gate, in
//! Redis for several), so that a push costs the same upstream requests in a repository of a
//! hundred tags and of a million.
//!
//! A repository is read into the index once (its *fill*: the tag list read as a stream, a
//! digest lookup per tag with bounded concurrency), with the gate's own read account, by the
//! first change that needs it and under that change's lease. From then on every write
//! through the gates updates it under the lease. A tag whose entry may be wrong is *dirty*:
//! each tag a write is about to change is marked before the write is sent (so a gate that
//! dies mid-write leaves it marked), and so is each tag a registry notification names; the
//! next holder of the lease looks every dirty tag up before it decides. In the background
//! the index is checked against the registry at a bounded rate, and what differs is fixed.
//!
//! The index is the truth the gate decides on only when the operator says every write goes
//! through the gates (`authoritative`) or the registry reports the others (notifications);
//! without either the gate keeps none and reads the repository for each decision.

mod check;
mod fill;
mod memory;
mod redis;
mod scripts;

use super::coordination::{CoordinationError, Coordinator, Lease};
use super::metrics::Metrics;
use super::upstream::{Reader, Upstream, UpstreamError};
use memory::{MemoryStore, Status};
use parking_lot::Mutex;
use serde::Deserialize;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tagpolicy::TagEntry;
use tagpolicy::TagQuery;
use tagpolicy::{Stamp, TagHistory};
use tokio::sync::Semaphore;

/// The `index` section of the gate configuration.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IndexSettings {
    /// Digest lookups a fill makes at once.
    pub fill_lookups: usize,
    /// How long a change waits for the fill of its repository; past it the change is
    /// answered 503 (try again) while the fill goes on.
    #[serde(deserialize_with = "super::limits::duration")]
    pub fill_wait: Duration,
    /// How often each repository's index is checked against the upstream; `0s`: never.
    #[serde(deserialize_with = "super::limits::duration")]
    pub verify_every: Duration,
    /// Upstream requests per second the background checks make, all repositories together.
    pub verify_rate: u32,
    /// Tags the in-memory index (one gate) keeps across repositories.
    pub max_tags: usize,
    /// How long a repository's index stays in Redis after its last change.
    #[serde(deserialize_with = "super::limits::duration")]
    pub idle_expiry: Duration,
}

impl Default for IndexSettings {
    fn default() -> Self {
        IndexSettings {
            fill_lookups: 16,
            fill_wait: Duration::from_secs(60),
            verify_every: Duration::from_secs(6 * 3600),
            verify_rate: 50,
            max_tags: 2_000_000,
            idle_expiry: Duration::from_secs(30 * 24 * 3600),
        }
    }
}

impl IndexSettings {
    /// A value out of range, named by its field.
    pub fn check(&self) -> Result<(), String> {
        if !(1..=256).contains(&self.fill_lookups) {
            return Err(format!(
                "index.fill_lookups: `{}` is out of range (1 to 256)",
                self.fill_lookups
            ));
        }
        let durations = [
            ("fill_wait", self.fill_wait, Duration::from_millis(1), Duration::from_secs(3600)),
            ("verify_every", self.verify_every, Duration::ZERO, Duration::from_secs(30 * 86_400)),
            (
                "idle_expiry",
                self.idle_expiry,
                Duration::from_secs(60),
                Duration::from_secs(365 * 86_400),
            ),
        ];
        for (field, value, min, max) in durations {
            if value < min || value > max {
                return Err(format!(
                    "index.{field}: `{}` is out of range ({} to {})",
                    humantime::format_duration(value),
                    humantime::format_duration(min),
                    humantime::format_duration(max)
                ));
            }
        }
        if !(1..=10_000).contains(&self.verify_rate) {
            return Err(format!(
                "index.verify_rate: `{}` is out of range (1 to 10000)",
                self.verify_rate
            ));
        }
        if !(1_000..=100_000_000).contains(&self.max_tags) {
            return Err(format!(
                "index.max_tags: `{}` is out of range (1000 to 100000000)",
                self.max_tags
            ));
        }
        Ok(())
    }
}

/// What a change did to a tag, to be recorded in the index.
#[derive(Debug, Clone)]
pub enum TagNow {
    /// The tag now points at this digest, or is absent (`None`).
    Is(Option<String>),
    /// Unknown (the write failed or its outcome is uncertain): the tag stays dirty.
    Unknown,
}

/// The index store failed (Redis unreachable, a repository too large for memory).
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct StoreError(pub String);

/// Why a change cannot be decided on the index; nothing is written after any of these.
#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(
        "the gate is reading `{repository}` into its index ({read} tags so far); nothing was \
         changed, try again in a moment"
    )]
    Filling { repository: String, read: u64 },
    #[error("cannot read `{repository}` into the index: {why}")]
    Fill { repository: String, why: String },
    #[error("cannot look up tag `{tag}` of `{repository}` ({error})")]
    Lookup {
        repository: String,
        tag: String,
        #[source]
        error: UpstreamError,
    },
    #[error(transparent)]
    Coordination(#[from] CoordinationError),
}

/// A repository's index as a decision reads it (synchronously, from the thread that runs
/// the policies).
pub trait IndexReader: Send + Sync {
    fn find(&self, query: &TagQuery) -> Result<Vec<TagEntry>, StoreError>;
    fn count(&self) -> Result<u64, StoreError>;
    fn digest_of(&self, tag: &str) -> Result<Option<String>, StoreError>;
    fn tags_of(&self, digest: &str) -> Result<Vec<String>, StoreError>;
    fn history_of(&self, tag: &str) -> Result<Option<TagHistory>, StoreError>;
    /// Up to `count` tags by name after `after`.
    fn names(&self, after: Option<&str>, count: usize) -> Result<Vec<String>, StoreError>;
}

enum Store {
    Memory(MemoryStore),
    Redis(Arc<redis::RedisStore>),
}

/// Where the index is kept.
pub enum Backing<'a> {
    Memory,
    Redis { url: &'a str, shown: String, namespace: &'a str },
}

pub struct Index {
    store: Store,
    upstream: Arc<Upstream>,
    coordinator: Arc<Coordinator>,
    metrics: Arc<Metrics>,
    settings: IndexSettings,
    /// The wait for a repository's lease when the index itself needs it (a fix after a
    /// notification, a difference the check found).
    lock_timeout: Duration,
    /// Repositories with a fix of their dirty tags under way in this process.
    fixing: Mutex<HashSet<String>>,
    /// Fills under way in this process, with their progress.
    fills: Mutex<HashMap<String, Arc<AtomicU64>>>,
    /// The digest lookups all fills of this process make at once (`index.fill_lookups`).
    lookups: Arc<Semaphore>,
}

impl Index {
    pub fn new(
        backing: Backing<'_>,
        settings: IndexSettings,
        upstream: Arc<Upstream>,
        coordinator: Arc<Coordinator>,
        metrics: Arc<Metrics>,
        lock_timeout: Duration,
    ) -> Result<Self, String> {
        let store = match backing {
            Backing::Memory => Store::Memory(MemoryStore::new(settings.max_tags)),
            Backing::Redis { url, shown, namespace } => Store::Redis(Arc::new(
                redis::RedisStore::new(url, shown, namespace, settings.idle_expiry)?,
            )),
        };
        Ok(Index {
            store,
            upstream,
            coordinator,
            metrics,
            lookups: Arc::new(Semaphore::new(settings.fill_lookups)),
            settings,
            lock_timeout,
            fixing: Mutex::default(),
            fills: Mutex::default(),
        })
    }

    /// A line for the start-up log.
    pub fn describe(&self) -> String {
        let check = if self.settings.verify_every.is_zero() {
            "never checked in the background".to_string()
        } else {
            format!(
                "checked against the upstream every {} at up to {} requests/s",
                humantime::format_duration(self.settings.verify_every),
                self.settings.verify_rate
            )
        };
        match &self.store {
            Store::Memory(_) => format!(
                "repository index: in this process, at most {} tags; {check}",
                self.settings.max_tags
            ),
            Store::Redis(_) => format!(
                "repository index: in the coordination Redis, kept {} past a repository's last \
                 change; {check}",
                humantime::format_duration(self.settings.idle_expiry)
            ),
        }
    }

    /// Start the background check (unless `verify_every` is zero).
    pub fn start(self: &Arc<Self>) {
        if !self.settings.verify_every.is_zero() {
            tokio::spawn(check::run(Arc::downgrade(self)));
        }
    }

    async fn status(&self, repository: &str) -> Result<Status, StoreError> {
        match &self.store {
            Store::Memory(store) => Ok(store.status(repository)),
            Store::Redis(store) => store.status(repository).await,
        }
    }

    /// Make the index of `repository` ready for a decision under `lease`: filled (waiting at
    /// most `fill_wait`), with every dirty tag looked up again. The lease comes back.
    pub async fn prepare(
        self: &Arc<Self>,
        repository: &str,
        lease: Lease,
    ) -> Result<Lease, IndexError> {
        match self.status(repository).await? {
            Status::Ready { dirty, .. } => {
                self.fix(repository, &dirty, "dirty").await?;
                Ok(lease)
            }
            Status::Absent | Status::Filling => self.fill_holding(repository, lease).await,
        }
    }

    /// Fill `repository` in a task that holds `lease`, and wait for it at most `fill_wait`;
    /// a fill that takes longer goes on (holding the lease) and the change is told to retry.
    async fn fill_holding(
        self: &Arc<Self>,
        repository: &str,
        lease: Lease,
    ) -> Result<Lease, IndexError> {
        let (done, finished) = tokio::sync::oneshot::channel();
        let progress = Arc::new(AtomicU64::new(0));
        self.fills.lock().insert(repository.to_string(), progress.clone());
        let index = self.clone();
        let name = repository.to_string();
        tokio::spawn(async move {
            let result = fill::fill(&index, &name, &progress).await;
            index.fills.lock().remove(&name);
            // The change may have stopped waiting; the lease is then released here.
            let _ = done.send((lease, result));
        });
        match tokio::time::timeout(self.settings.fill_wait, finished).await {
            Ok(Ok((lease, Ok(())))) => Ok(lease),
            Ok(Ok((_, Err(error)))) => Err(error),
            Ok(Err(_)) => Err(IndexError::Fill {
                repository: repository.to_string(),
                why: "the fill stopped".into(),
            }),
            Err(_) => Err(IndexError::Filling {
                repository: repository.to_string(),
                read: self.fill_progress(repository).await,
            }),
        }
    }

    /// How many tags the fill of `repository` has read so far (0 when none is known).
    pub async fn fill_progress(&self, repository: &str) -> u64 {
        let local = self.fills.lock().get(repository).cloned();
        if let Some(progress) = local {
            return progress.load(Ordering::Relaxed);
        }
        match &self.store {
            Store::Memory(_) => 0,
            Store::Redis(store) => store.fill_progress(repository).await.unwrap_or(0),
        }
    }

    /// Whether `repository` is being read into the index, by this or another gate.
    pub async fn is_filling(&self, repository: &str) -> bool {
        matches!(self.status(repository).await, Ok(Status::Filling))
    }

    /// Look `tags` up (as the gate) and set the index to what the upstream says, counting
    /// each entry that was wrong under `source`.
    async fn fix(
        &self,
        repository: &str,
        tags: &[String],
        source: &'static str,
    ) -> Result<(), IndexError> {
        for tag in tags {
            let found =
                self.upstream.digest_of(repository, tag, &Reader::Gate).await.map_err(|error| {
                    IndexError::Lookup {
                        repository: repository.to_string(),
                        tag: tag.clone(),
                        error,
                    }
                })?;
            if self.correct(repository, tag, found.as_deref()).await? {
                self.metrics.index_correction(source);
                tracing::warn!(repository, tag, now = ?found, source, "fixed a wrong index entry");
            }
        }
        Ok(())
    }

    /// Set `tag` to `digest` as a lookup found it; whether the index was wrong.
    pub async fn correct(
        &self,
        repository: &str,
        tag: &str,
        digest: Option<&str>,
    ) -> Result<bool, StoreError> {
        match &self.store {
            Store::Memory(store) => Ok(store.correct(repository, tag, digest)),
            Store::Redis(store) => store.correct(repository, tag, digest).await,
        }
    }

    /// The digests of `tags` in the index of `repository` (which `prepare` made ready).
    pub async fn digests(
        &self,
        repository: &str,
        tags: &[String],
    ) -> Result<Vec<Option<String>>, StoreError> {
        match &self.store {
            Store::Memory(store) => Ok(store.digests(repository, tags)),
            Store::Redis(store) => store.digests(repository, tags).await,
        }
    }

    /// The tags of `digest` in the index of `repository`.
    pub async fn tags_of(&self, repository: &str, digest: &str) -> Result<Vec<String>, StoreError> {
        match &self.store {
            Store::Memory(store) => match store.reader(repository) {
                Some(reader) => reader.tags_of(digest),
                None => Ok(Vec::new()),
            },
            Store::Redis(store) => store.tags_of(repository, digest).await,
        }
    }

    /// The first tag of `repository` by name, if it has any.
    pub async fn first_tag(&self, repository: &str) -> Result<Option<String>, StoreError> {
        let names = match &self.store {
            Store::Memory(store) => match store.reader(repository) {
                Some(reader) => reader.names(None, 1)?,
                None => Vec::new(),
            },
            Store::Redis(store) => store.names(repository, None, 1).await?,
        };
        Ok(names.into_iter().next())
    }

    /// A reader of the index of `repository` for a decision.
    pub fn reader(&self, repository: &str) -> Option<Arc<dyn IndexReader>> {
        match &self.store {
            Store::Memory(store) => store.reader(repository),
            Store::Redis(store) => Some(store.reader(repository)),
        }
    }

    /// Mark `tags` dirty before a write that changes them is sent.
    pub async fn before_write(&self, repository: &str, tags: &[String]) -> Result<(), StoreError> {
        match &self.store {
            Store::Memory(store) => {
                store.mark_dirty(repository, tags);
                Ok(())
            }
            Store::Redis(store) => store.mark_dirty(repository, tags).await,
        }
    }

    /// Record what a write through the gate did, as a change by `stamp`.
    pub async fn record(
        &self,
        repository: &str,
        changes: &[(String, TagNow)],
        stamp: &Stamp,
    ) -> Result<(), StoreError> {
        match &self.store {
            Store::Memory(store) => {
                store.apply(repository, changes, stamp);
                let (repositories, tags) = store.size();
                self.metrics.index_size(repositories, Some(tags));
                Ok(())
            }
            Store::Redis(store) => store.apply(repository, changes, stamp).await,
        }
    }

    /// A registry notification says `tag` of `repository` changed (or, for a manifest
    /// deleted by digest, every tag of `digest`): mark what it names dirty, and fix it soon
    /// under the repository's lease. A notification that agrees with the index (the gates'
    /// own writes come back this way) changes nothing.
    pub async fn notified(
        self: &Arc<Self>,
        repository: &str,
        tag: Option<&str>,
        digest: Option<&str>,
    ) -> Result<bool, StoreError> {
        // While a fill reads the repository, what it names is marked too: the fill may have
        // read it before the change, and the next decision reads it again.
        if self.status(repository).await? == Status::Absent {
            return Ok(false);
        }
        let tags = match (tag, digest) {
            (Some(tag), digest) => {
                let indexed = self.digests(repository, &[tag.to_string()]).await?;
                if digest.is_some() && indexed[0].as_deref() == digest {
                    return Ok(false);
                }
                vec![tag.to_string()]
            }
            (None, Some(digest)) => self.tags_of(repository, digest).await?,
            (None, None) => return Ok(false),
        };
        if tags.is_empty() {
            return Ok(false);
        }
        self.before_write(repository, &tags).await?;
        self.fix_soon(repository);
        Ok(true)
    }

    /// Fix the dirty tags of `repository` under its lease, in the background.
    fn fix_soon(self: &Arc<Self>, repository: &str) {
        if !self.fixing.lock().insert(repository.to_string()) {
            return;
        }
        let (index, repository) = (self.clone(), repository.to_string());
        tokio::spawn(async move {
            let result = async {
                let lease = index.coordinator.lease(&repository, index.lock_timeout).await?;
                index.fixing.lock().remove(&repository);
                let lease = index.prepare(&repository, lease).await?;
                index.coordinator.finish(lease, true).await?;
                Ok::<_, IndexError>(())
            }
            .await;
            index.fixing.lock().remove(&repository);
            if let Err(error) = result {
                // The tags stay dirty: the next change of the repository looks them up.
                tracing::warn!(repository, %error, "could not fix the index after a notification");
            }
        });
    }
}
