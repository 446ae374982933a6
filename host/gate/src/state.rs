//! What a decision reads through the `repository` and `image` imports: the repository's tags
//! from the index, or, for a gate that keeps none, read whole from the upstream when a policy
//! asks (and reused for a short time while the repository's generation, bumped by every
//! change through any gate and by notifications, stays the same); the facts of its images,
//! read when a policy asks. A read with a client's credentials is reused for that client
//! only.

use super::images;
use super::index::IndexReader;
use super::upstream::{Reader, Upstream, UpstreamError};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};
use tagpolicy::Digest;
use tagpolicy::TagHistory;
use tagpolicy::TagQuery;
use tagpolicy::{Decision, Finding, Severity};
use tagpolicy::{KeyValue, Manifest, Referrer};
use tagpolicy::{RepositoryView, TagEntry, TagMap};

/// At most this many digest lookups at once when reading a repository's state.
const LOOKUPS_IN_FLIGHT: usize = 16;
/// Past this many cached repositories, stale entries are dropped.
const MAX_CACHED_REPOSITORIES: usize = 4096;

/// The name the gate's own findings carry.
pub const GATE: &str = "tagpolicy-gate";

/// A denial of the gate's own, not of a policy: `reason` says why.
pub fn gate_denial(reason: String) -> Decision {
    Decision::from_findings(vec![Finding::new(GATE, Severity::Deny, None, reason)])
}

/// A repository's tags as read, when, and at which generation.
type Entry = (Instant, u64, Arc<TagMap>);

/// Repository states read whole, per repository and per reader (the gate's account, or one
/// client's credentials).
pub struct StateCache {
    ttl: Duration,
    entries: Mutex<HashMap<(String, String), Entry>>,
}

/// Who read a state: the gate, or a fingerprint of a client's credentials.
fn reader_key(reader: &Reader) -> String {
    match reader {
        Reader::Gate => "gate".to_string(),
        Reader::Client(None) => "anonymous".to_string(),
        Reader::Client(Some(auth)) => Digest::of(auth.as_bytes()).hex(),
    }
}

impl StateCache {
    pub fn new(ttl: Duration) -> Self {
        StateCache { ttl, entries: Mutex::new(HashMap::new()) }
    }

    /// The state of `repository` at `generation`, from the cache when fresh.
    pub async fn get(
        &self,
        upstream: &Arc<Upstream>,
        repository: &str,
        generation: u64,
        reader: &Reader,
    ) -> Result<Arc<TagMap>, UpstreamError> {
        let key = (repository.to_string(), reader_key(reader));
        if let Some((at, read_at, state)) = self.lock().get(&key)
            && at.elapsed() < self.ttl
            && *read_at == generation
        {
            return Ok(state.clone());
        }
        let state = Arc::new(fetch(upstream, repository, reader).await?);
        let mut entries = self.lock();
        if entries.len() >= MAX_CACHED_REPOSITORIES {
            entries.retain(|_, (at, _, _)| at.elapsed() < self.ttl);
            if entries.len() >= MAX_CACHED_REPOSITORIES {
                entries.clear();
            }
        }
        entries.insert(key, (Instant::now(), generation, state.clone()));
        Ok(state)
    }

    /// Forget `repository` (it changed), or every repository (`None`: changes may have been
    /// missed).
    pub fn invalidate(&self, repository: Option<&str>) {
        match repository {
            Some(repository) => self.lock().retain(|(name, _), _| name != repository),
            None => self.lock().clear(),
        }
    }

    fn lock(&self) -> parking_lot::MutexGuard<'_, HashMap<(String, String), Entry>> {
        self.entries.lock()
    }
}

/// Every tag of `repository` with its digest, read from the upstream as `reader`.
pub async fn fetch(
    upstream: &Arc<Upstream>,
    repository: &str,
    reader: &Reader,
) -> Result<TagMap, UpstreamError> {
    let tags = upstream.tags(repository, reader).await?;
    let permits = Arc::new(tokio::sync::Semaphore::new(LOOKUPS_IN_FLIGHT));
    let found = upstream
        .digests_of(repository, tags, reader, (&permits, LOOKUPS_IN_FLIGHT))
        .await
        .map_err(|(_, error)| error)?;
    let mut state = TagMap::new();
    // A tag deleted between the list and the lookup is simply gone.
    for (tag, digest) in found {
        if let Some(digest) = digest {
            state.set(&tag, &digest);
        }
    }
    Ok(state)
}

/// Where a decision's tags come from.
pub enum Tags {
    /// The repository index (under the repository's lease).
    Index(Arc<dyn IndexReader>),
    /// The upstream, read whole when a policy first asks, through `cache`, at `generation`.
    Upstream { cache: Arc<StateCache>, generation: u64 },
    /// Tags read beforehand (`tagpolicy audit`'s snapshot of a repository).
    Snapshot(Arc<dyn RepositoryView>),
}

/// A [`RepositoryView`] for one decision, read from a blocking thread (policies run on the
/// blocking pool) only when a policy asks: the tags from the index or the upstream, each image
/// fact on its first call. What cannot be read is answered as unknown (no tags, no manifest,
/// no labels, no referrers) and remembered: the gate then denies the request, saying which
/// lookup failed, so that no policy allows on a guess.
pub struct DecisionView {
    runtime: tokio::runtime::Handle,
    upstream: Arc<Upstream>,
    repository: String,
    /// Whose view of the upstream the lookups read.
    reader: Reader,
    tags: Tags,
    /// The whole repository, read from the upstream (`Tags::Upstream`).
    fetched: OnceLock<Option<Arc<TagMap>>>,
    /// The digest being pushed and its manifest, read from the request body.
    pushed: Option<(String, Result<Manifest, String>)>,
    max_config_bytes: usize,
    manifests: Mutex<HashMap<String, Option<Manifest>>>,
    labels: Mutex<HashMap<String, Vec<KeyValue>>>,
    referrers: Mutex<HashMap<String, Vec<Referrer>>>,
    /// The first lookup that failed, as a sentence.
    failure: Mutex<Option<String>>,
}

impl DecisionView {
    pub fn new(
        upstream: Arc<Upstream>,
        repository: &str,
        reader: Reader,
        tags: Tags,
        pushed: Option<(String, Result<Manifest, String>)>,
        max_config_bytes: usize,
    ) -> Self {
        DecisionView {
            runtime: tokio::runtime::Handle::current(),
            upstream,
            repository: repository.to_string(),
            reader,
            tags,
            fetched: OnceLock::new(),
            pushed,
            max_config_bytes,
            manifests: Mutex::default(),
            labels: Mutex::default(),
            referrers: Mutex::default(),
            failure: Mutex::default(),
        }
    }

    /// The whole repository read from the upstream (for a gate without an index).
    fn fetched(&self, cache: &StateCache, generation: u64) -> Option<&TagMap> {
        let state = self.fetched.get_or_init(|| {
            let read = cache.get(&self.upstream, &self.repository, generation, &self.reader);
            match self.runtime.block_on(read) {
                Ok(state) => Some(state),
                Err(error) => {
                    self.fail(format!(
                        "cannot read the tags of `{}` from the upstream registry ({error})",
                        self.repository
                    ));
                    None
                }
            }
        });
        state.as_deref()
    }

    /// Ask the tags, from wherever they come; a failure is remembered and answered with
    /// `T::default()`.
    fn ask<T: Default>(
        &self,
        from_index: impl FnOnce(&dyn IndexReader) -> Result<T, super::index::StoreError>,
        from_view: impl FnOnce(&dyn RepositoryView) -> T,
    ) -> T {
        match &self.tags {
            Tags::Index(reader) => from_index(reader.as_ref()).unwrap_or_else(|error| {
                self.fail(format!("cannot read the index of `{}` ({error})", self.repository));
                T::default()
            }),
            Tags::Upstream { cache, generation } => self
                .fetched(cache, *generation)
                .map(|map| from_view(map as &dyn RepositoryView))
                .unwrap_or_default(),
            Tags::Snapshot(view) => from_view(view.as_ref()),
        }
    }

    fn fail(&self, why: String) {
        let mut failure = self.failure.lock();
        failure.get_or_insert(why);
    }

    /// Why a lookup a policy asked for failed, if one did.
    pub fn failure(&self) -> Option<String> {
        self.failure.lock().clone()
    }

    /// `decision`, made by policies that read this view; but if a lookup they asked for
    /// failed, the gate's denial saying which, so that no policy allows on a guess.
    pub fn settle(&self, decision: Decision) -> Decision {
        match self.failure() {
            None => decision,
            Some(failure) => gate_denial(format!("{failure}; the request is denied")),
        }
    }

    /// `value` from `cache`, else from `read` (on failure: remembered, and `T::default()`).
    fn cached<T: Clone + Default>(
        &self,
        cache: &Mutex<HashMap<String, T>>,
        digest: &str,
        read: impl std::future::Future<Output = Result<T, String>>,
    ) -> T {
        if let Some(value) = cache.lock().get(digest) {
            return value.clone();
        }
        match self.runtime.block_on(read) {
            Ok(value) => {
                cache.lock().insert(digest.to_string(), value.clone());
                value
            }
            Err(why) => {
                self.fail(why);
                T::default()
            }
        }
    }
}

impl RepositoryView for DecisionView {
    fn find_tags(&self, query: &TagQuery) -> Vec<TagEntry> {
        self.ask(|index| index.find(query), |view| view.find_tags(query))
    }

    fn count_tags(&self) -> u64 {
        self.ask(|index| index.count(), |view| view.count_tags())
    }

    fn digest_of(&self, tag: &str) -> Option<String> {
        self.ask(|index| index.digest_of(tag), |view| view.digest_of(tag))
    }

    fn tags_of(&self, digest: &str) -> Vec<String> {
        self.ask(|index| index.tags_of(digest), |view| view.tags_of(digest))
    }

    fn history_of(&self, tag: &str) -> Option<TagHistory> {
        self.ask(|index| index.history_of(tag), |view| view.history_of(tag))
    }

    fn manifest(&self, digest: &str) -> Option<Manifest> {
        if let Some((pushed, manifest)) = &self.pushed
            && pushed == digest
        {
            return match manifest {
                Ok(manifest) => Some(manifest.clone()),
                Err(why) => {
                    self.fail(format!("the pushed manifest {why}"));
                    None
                }
            };
        }
        let read = images::manifest(&self.upstream, &self.repository, digest, &self.reader);
        self.cached(&self.manifests, digest, read)
    }

    fn labels(&self, digest: &str) -> Vec<KeyValue> {
        let Some(manifest) = self.manifest(digest) else { return Vec::new() };
        let read = images::labels(
            &self.upstream,
            &self.repository,
            digest,
            &manifest,
            self.max_config_bytes,
            &self.reader,
        );
        self.cached(&self.labels, digest, read)
    }

    fn referrers(&self, digest: &str, artifact_type: Option<&str>) -> Vec<Referrer> {
        let read = images::referrers(&self.upstream, &self.repository, digest, &self.reader);
        let all = self.cached(&self.referrers, digest, read);
        tagpolicy::filter_referrers(&all, artifact_type)
    }
}
