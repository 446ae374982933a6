//! The repository state policies read through the `repository` import: fetched from the
//! upstream only when a policy asks, reused for a short time, dropped on every write made
//! through the gate. Per-repository locks serialize the gate's own writes.

use super::images;
use super::upstream::{Upstream, UpstreamError};
use http::HeaderValue;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::{Duration, Instant};
use tagpolicy::image::{KeyValue, Manifest, Referrer};
use tagpolicy::push::{RepositoryView, TagEntry, TagMap};
use tokio::sync::{Mutex as AsyncMutex, OwnedMutexGuard, Semaphore};

/// At most this many digest lookups at once when reading a repository's state.
const LOOKUPS_IN_FLIGHT: usize = 16;

pub struct StateCache {
    ttl: Duration,
    entries: Mutex<HashMap<String, (Instant, Arc<TagMap>)>>,
}

impl StateCache {
    pub fn new(ttl: Duration) -> Self {
        StateCache { ttl, entries: Mutex::new(HashMap::new()) }
    }

    /// The state of `repository`, from the cache when fresh.
    pub async fn get(
        &self,
        upstream: &Arc<Upstream>,
        repository: &str,
        auth: Option<&HeaderValue>,
    ) -> Result<Arc<TagMap>, UpstreamError> {
        if let Some((at, state)) = self.lock().get(repository)
            && at.elapsed() < self.ttl
        {
            return Ok(state.clone());
        }
        let state = Arc::new(fetch(upstream, repository, auth).await?);
        self.lock().insert(repository.to_string(), (Instant::now(), state.clone()));
        Ok(state)
    }

    /// Forget `repository`: the gate just changed it.
    pub fn invalidate(&self, repository: &str) {
        self.lock().remove(repository);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (Instant, Arc<TagMap>)>> {
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
        auth: Option<HeaderValue>,
        pushed: Option<(String, Result<Manifest, String>)>,
        max_config_bytes: usize,
    ) -> Self {
        UpstreamView {
            runtime: tokio::runtime::Handle::current(),
            upstream,
            cache,
            repository: repository.to_string(),
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
            let read = self.cache.get(&self.upstream, &self.repository, self.auth.as_ref());
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
    fn list_tags(&self) -> Vec<TagEntry> {
        self.state().map(|s| s.list_tags()).unwrap_or_default()
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

/// One async lock per repository, so that two requests changing tags of one repository are
/// decided and applied one after the other: two clients racing to create the same
/// immutable tag cannot both see it absent.
#[derive(Default)]
pub struct RepositoryLocks {
    locks: Mutex<HashMap<String, Weak<AsyncMutex<()>>>>,
}

impl RepositoryLocks {
    pub async fn lock(&self, repository: &str) -> OwnedMutexGuard<()> {
        let lock = {
            let mut locks = self.locks.lock().unwrap_or_else(|e| e.into_inner());
            if locks.len() > 1024 {
                locks.retain(|_, lock| lock.strong_count() > 0);
            }
            match locks.get(repository).and_then(Weak::upgrade) {
                Some(lock) => lock,
                None => {
                    let lock = Arc::new(AsyncMutex::new(()));
                    locks.insert(repository.to_string(), Arc::downgrade(&lock));
                    lock
                }
            }
        };
        lock.lock_owned().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn one_repository_is_locked_by_one_holder_at_a_time() {
        let locks = Arc::new(RepositoryLocks::default());
        let held = locks.lock("team/app").await;
        let waiting = {
            let locks = locks.clone();
            tokio::spawn(async move { locks.lock("team/app").await })
        };
        // Another repository is not held up.
        let _other = locks.lock("team/other").await;
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiting.is_finished());
        drop(held);
        waiting.await.unwrap();
    }
}
