//! Reading a repository into the index: its tag list as a stream, a batch at a time, each
//! tag's digest looked up with bounded concurrency (the distribution API has no call for tags
//! with their digests), all with the gate's own read account.

use super::{Index, IndexError, Store};
use crate::upstream::{Reader, Upstream};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;
use tokio::sync::Semaphore;

/// Tags between two progress lines in the log.
const LOG_EVERY: u64 = 10_000;

/// Fill the index of `repository` (the caller holds its lease), counting the tags read in
/// `progress`. A fill that fails leaves nothing behind.
pub(super) async fn fill(
    index: &Index,
    repository: &str,
    progress: &AtomicU64,
) -> Result<(), IndexError> {
    let started = Instant::now();
    tracing::info!(repository, "reading the repository into the index");
    let result = read(index, repository, progress).await;
    index.metrics.index_fill(result.is_ok(), started.elapsed());
    let read = progress.load(Ordering::Relaxed);
    match &result {
        Ok(()) => {
            tracing::info!(repository, tags = read, took = ?started.elapsed(), "repository indexed")
        }
        Err(error) => {
            tracing::warn!(repository, tags = read, %error, "reading the repository into the index failed");
            let abandoned = match &index.store {
                Store::Memory(store) => {
                    store.abandon_fill(repository);
                    Ok(())
                }
                Store::Redis(store) => store.abandon_fill(repository).await,
            };
            if let Err(error) = abandoned {
                tracing::warn!(repository, %error, "could not remove a half-read index");
            }
        }
    }
    result
}

async fn read(index: &Index, repository: &str, progress: &AtomicU64) -> Result<(), IndexError> {
    let failed = |why: String| IndexError::Fill { repository: repository.to_string(), why };
    match &index.store {
        Store::Memory(store) => store.begin_fill(repository),
        Store::Redis(store) => store.begin_fill(repository).await?,
    }
    let reader = Reader::Gate;
    let mut pages = index.upstream.tag_pages(repository, &reader);
    while let Some(batch) = pages.next_batch().await.map_err(|e| failed(e.to_string()))? {
        let lookups = (&index.lookups, index.settings.fill_lookups);
        let found = lookup(&index.upstream, repository, batch, lookups).await?;
        match &index.store {
            Store::Memory(store) => store.fill_batch(repository, &found)?,
            Store::Redis(store) => store.fill_batch(repository, &found).await?,
        }
        index.metrics.index_fill_tags(found.len() as u64);
        let before = progress.fetch_add(found.len() as u64, Ordering::Relaxed);
        let after = before + found.len() as u64;
        if after / LOG_EVERY > before / LOG_EVERY {
            tracing::info!(repository, tags = after, "reading the repository into the index");
        }
    }
    match &index.store {
        Store::Memory(store) => {
            let evicted = store.end_fill(repository);
            index.metrics.index_evicted(evicted);
            let (repositories, tags) = store.size();
            index.metrics.index_size(repositories, Some(tags));
        }
        Store::Redis(store) => store.end_fill(repository).await?,
    }
    Ok(())
}

/// The digest of each of `tags`, within the fills' shared `lookups`; a tag deleted since the
/// list was read is left out.
async fn lookup(
    upstream: &Arc<Upstream>,
    repository: &str,
    tags: Vec<String>,
    lookups: (&Arc<Semaphore>, usize),
) -> Result<Vec<(String, String)>, IndexError> {
    let valid: Vec<String> = tags
        .into_iter()
        .filter(|tag| match tagpolicy::oci::check_tag(tag) {
            Ok(()) => true,
            Err(why) => {
                tracing::warn!(repository, %why, "the upstream lists a tag that is not a valid tag; left out of the index");
                false
            }
        })
        .collect();
    let found = upstream.digests_of(repository, valid, &Reader::Gate, lookups).await.map_err(
        |(tag, error)| IndexError::Lookup { repository: repository.to_string(), tag, error },
    )?;
    Ok(found.into_iter().filter_map(|(tag, digest)| Some((tag, digest?))).collect())
}
