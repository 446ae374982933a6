//! The repository state policies read through the `repository` import: fetched from the
//! upstream only when a policy asks, reused for a short time while the repository's
//! generation (bumped by every change through any gate, and by notifications) stays the same.

use super::images;
use super::upstream::{Upstream, UpstreamError};
use http::HeaderValue;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};
use tagpolicy::TagHistory;
use tagpolicy::image::{KeyValue, Manifest, Referrer};
use tagpolicy::push::{RepositoryView, TagEntry, TagMap};
use tagpolicy::query::TagQuery;
use tokio::sync::Semaphore;

/// At most this many digest lookups at once when reading a repository's state.
const LOOKUPS_IN_FLIGHT: usize = 16;
/// Past this many cached repositories, stale entries are dropped.
const MAX_CACHED_REPOSITORIES: usize = 4096;

/// A repository's tags as read, when, and at which generation.
type Entry = (Instant, u64, Arc<TagMap>);

pub struct StateCache {
    ttl: Duration,
    entries: Mutex<HashMap<String, Entry>>,
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
        auth: Option<&HeaderValue>,
    ) -> Result<Arc<TagMap>, UpstreamError> {
        if let Some((at, read_at, state)) = self.lock().get(repository)
            && at.elapsed() < self.ttl
            && *read_at == generation
        {
            return Ok(state.clone());
        }
        let state = Arc::new(fetch(upstream, repository, auth).await?);
        let mut entries = self.lock();
        if entries.len() >= MAX_CACHED_REPOSITORIES {
            entries.retain(|_, (at, _, _)| at.elapsed() < self.ttl);
        }
        entries.insert(repository.to_string(), (Instant::now(), generation, state.clone()));
        Ok(state)
    }

    /// Forget `repository` (it changed), or every repository (`None`: changes may have been
    /// missed).
    pub fn invalidate(&self, repository: Option<&str>) {
        match repository {
            Some(repository) => self.lock().remove(repository),
            None => {
                self.lock().clear();
                None
            }
        };
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Every tag of `repository` with its digest, read from the upstream.
pub async fn fetch(
    upstream: &Arc<Upstream>,
    repository: &str,
    auth: Option<&HeaderValue>,
) -> Result<TagMap, UpstreamError> {
    let tags = upstream.tags(repository, auth).await?;
    let permits = Arc::new(Semaphore::new(LOOKUPS_IN_FLIGHT));
    let mut lookups = tokio::task::JoinSet::new();
    for tag in tags {
        let (upstream, permits) = (upstream.clone(), permits.clone());
        let (repository, auth) = (repository.to_string(), auth.cloned());
        lookups.spawn(async move {
            let _permit = permits.acquire().await.expect("never closed");
            let digest = upstream.digest_of(&repository, &tag, auth.as_ref()).await?;
            Ok::<_, UpstreamError>((tag, digest))
        });
    }
    let mut state = TagMap::new();
    while let Some(joined) = lookups.join_next().await {
        let (tag, digest) = joined.map_err(|e| UpstreamError::Invalid(e.to_string()))??;
        // A tag deleted between the list and the lookup is simply gone.
        if let Some(digest) = digest {
            state.set(&tag, &digest);
        }
    }
    Ok(state)
}

/// A [`RepositoryView`] over the upstream, read from a blocking thread (policies run on the
/// blocking pool) only when a policy asks: the tags on the first call, each image fact on its
/// first call. What cannot be read is answered as unknown (no tags, no manifest, no labels,
/// no referrers) and remembered: the gate then denies the request, saying which lookup
/// failed, so that no policy allows on a guess.
pub struct UpstreamView {
    runtime: tokio::runtime::Handle,
    upstream: Arc<Upstream>,
    cache: Arc<StateCache>,
    repository: String,
    /// The repository's generation when the decision began (under its lease).
    generation: u64,
    auth: Option<HeaderValue>,
    state: OnceLock<Option<Arc<TagMap>>>,
    /// The digest being pushed and its manifest, read from the request body.
    pushed: Option<(String, Result<Manifest, String>)>,
    max_config_bytes: usize,
    manifests: Mutex<HashMap<String, Option<Manifest>>>,
    labels: Mutex<HashMap<String, Vec<KeyValue>>>,
    referrers: Mutex<HashMap<String, Vec<Referrer>>>,
    /// The first lookup that failed, as a sentence.
    failure: Mutex<Option<String>>,
}

impl UpstreamView {
    pub fn new(
        upstream: Arc<Upstream>,
        cache: Arc<StateCache>,
        repository: &str,
        generation: u64,
        auth: Option<HeaderValue>,
        pushed: Option<(String, Result<Manifest, String>)>,
        max_config_bytes: usize,
    ) -> Self {
        UpstreamView {
            runtime: tokio::runtime::Handle::current(),
            upstream,
            cache,
            repository: repository.to_string(),
            generation,
            auth,
            state: OnceLock::new(),
            pushed,
            max_config_bytes,
            manifests: Mutex::default(),
            labels: Mutex::default(),
            referrers: Mutex::default(),
            failure: Mutex::default(),
        }
    }

    fn state(&self) -> Option<&TagMap> {
        let state = self.state.get_or_init(|| {
            let read = self.cache.get(
                &self.upstream,
                &self.repository,
                self.generation,
                self.auth.as_ref(),
            );
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

    fn fail(&self, why: String) {
        let mut failure = self.failure.lock().unwrap_or_else(|e| e.into_inner());
        failure.get_or_insert(why);
    }

    /// Why a lookup a policy asked for failed, if one did.
    pub fn failure(&self) -> Option<String> {
        self.failure.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// `value` from `cache`, else from `read` (on failure: remembered, and `T::default()`).
    fn cached<T: Clone + Default>(
        &self,
        cache: &Mutex<HashMap<String, T>>,
        digest: &str,
        read: impl std::future::Future<Output = Result<T, String>>,
    ) -> T {
        if let Some(value) = cache.lock().unwrap_or_else(|e| e.into_inner()).get(digest) {
            return value.clone();
        }
        match self.runtime.block_on(read) {
            Ok(value) => {
                cache
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(digest.to_string(), value.clone());
                value
            }
            Err(why) => {
                self.fail(why);
                T::default()
            }
        }
    }
}

impl RepositoryView for UpstreamView {
    fn find_tags(&self, query: &TagQuery) -> Vec<TagEntry> {
        self.state().map(|s| s.find(query)).unwrap_or_default()
    }

    fn count_tags(&self) -> u64 {
        self.state().map_or(0, |s| s.len() as u64)
    }

    fn history_of(&self, tag: &str) -> Option<TagHistory> {
        self.state().and_then(|s| s.history_of(tag))
    }

    fn digest_of(&self, tag: &str) -> Option<String> {
        self.state().and_then(|s| s.digest_of(tag))
    }

    fn tags_of(&self, digest: &str) -> Vec<String> {
        self.state().map(|s| s.tags_of(digest)).unwrap_or_default()
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
        let read = images::manifest(&self.upstream, &self.repository, digest, self.auth.as_ref());
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
            self.auth.as_ref(),
        );
        self.cached(&self.labels, digest, read)
    }

    fn referrers(&self, digest: &str, artifact_type: Option<&str>) -> Vec<Referrer> {
        let read = images::referrers(&self.upstream, &self.repository, digest, self.auth.as_ref());
        let all = self.cached(&self.referrers, digest, read);
        tagpolicy::image::filter_referrers(&all, artifact_type)
    }
}
