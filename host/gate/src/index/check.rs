//! The background check: each repository's index compared with the upstream every
//! `index.verify_every`, at most `index.verify_rate` upstream requests per second across the
//! gate; a difference is logged, counted and fixed under the repository's lease (looked up
//! again there, so that a write through the gates in between is not undone).

use super::{Index, IndexError, Store};
use crate::upstream::Reader;
use std::collections::HashSet;
use std::hash::{BuildHasher, RandomState};
use std::sync::Weak;
use std::time::{Duration, Instant};

/// Tags compared at a time.
const BATCH: usize = 1000;

pub(super) async fn run(index: Weak<Index>) {
    loop {
        let Some(strong) = index.upgrade() else { return };
        let every = strong.settings.verify_every;
        drop(strong);
        tokio::time::sleep((every / 10).clamp(Duration::from_secs(1), Duration::from_secs(60)))
            .await;
        let Some(index) = index.upgrade() else { return };
        let due = match &index.store {
            Store::Memory(store) => Ok(store.due_for_check(every)),
            Store::Redis(store) => {
                if let Ok(repositories) = store.size().await {
                    index.metrics.index_size(repositories as usize, None);
                }
                store.due_for_check(every).await
            }
        };
        let due = match due {
            Ok(due) => due,
            Err(error) => {
                tracing::warn!(%error, "cannot list the repositories to check");
                continue;
            }
        };
        for repository in due {
            let claimed = match &index.store {
                Store::Memory(store) => {
                    store.checked(&repository);
                    Ok(true)
                }
                Store::Redis(store) => store.claim_check(&repository, every).await,
            };
            if !matches!(claimed, Ok(true)) {
                continue;
            }
            match check(&index, &repository).await {
                Ok(0) => index.metrics.index_check("ok"),
                Ok(differences) => {
                    index.metrics.index_check("differences");
                    tracing::warn!(
                        repository,
                        differences,
                        "the index differed from the upstream; fixed"
                    );
                }
                Err(error) => {
                    index.metrics.index_check("error");
                    tracing::warn!(repository, %error, "could not check the index against the upstream");
                }
            }
        }
    }
}

/// Spreads requests out to at most `rate` per second.
struct Pace {
    interval: Duration,
    next: Instant,
}

impl Pace {
    fn new(rate: u32) -> Self {
        Pace { interval: Duration::from_secs(1) / rate.max(1), next: Instant::now() }
    }

    async fn wait(&mut self) {
        let now = Instant::now();
        if self.next > now {
            tokio::time::sleep(self.next - now).await;
        }
        self.next = self.next.max(now) + self.interval;
    }
}

/// Compare the index of `repository` with the upstream; fix and count what differs.
async fn check(index: &Index, repository: &str) -> Result<usize, IndexError> {
    let failed = |why: String| IndexError::Fill { repository: repository.to_string(), why };
    let mut pace = Pace::new(index.settings.verify_rate);
    // What the upstream lists, as fingerprints (8 bytes a tag), to find the tags the index
    // has and the upstream no longer does.
    let fingerprints = RandomState::new();
    let mut listed = HashSet::new();
    let mut suspects = Vec::new();
    let reader = Reader::Gate;
    let mut pages = index.upstream.tag_pages(repository, &reader);
    pace.wait().await;
    while let Some(batch) = pages.next_batch().await.map_err(|e| failed(e.to_string()))? {
        let indexed = index.digests(repository, &batch).await?;
        for (tag, indexed) in batch.into_iter().zip(indexed) {
            listed.insert(fingerprints.hash_one(&tag));
            pace.wait().await;
            let found =
                index.upstream.digest_of(repository, &tag, &reader).await.map_err(|error| {
                    IndexError::Lookup {
                        repository: repository.to_string(),
                        tag: tag.clone(),
                        error,
                    }
                })?;
            if found != indexed {
                suspects.push(tag);
            }
        }
    }
    let mut after: Option<String> = None;
    loop {
        let names = match &index.store {
            Store::Memory(store) => match store.reader(repository) {
                Some(reader) => reader.names(after.as_deref(), BATCH)?,
                None => Vec::new(),
            },
            Store::Redis(store) => store.names(repository, after.as_deref(), BATCH).await?,
        };
        for name in &names {
            if !listed.contains(&fingerprints.hash_one(name)) {
                suspects.push(name.clone());
            }
        }
        if names.len() < BATCH {
            break;
        }
        after = names.last().cloned();
    }
    if suspects.is_empty() {
        return Ok(0);
    }
    // Look each one up again under the lease: a write through the gates since it was read
    // is then in the index, and the upstream says what is true now.
    let lease = index.coordinator.lease(repository, index.lock_timeout).await?;
    let mut fixed = 0;
    for tag in &suspects {
        pace.wait().await;
        let found = index.upstream.digest_of(repository, tag, &reader).await.map_err(|error| {
            IndexError::Lookup { repository: repository.to_string(), tag: tag.clone(), error }
        })?;
        if index.correct(repository, tag, found.as_deref()).await? {
            fixed += 1;
            index.metrics.index_correction("check");
            tracing::warn!(repository, tag, now = ?found, "the background check found a tag changed around the gates");
        }
    }
    index.coordinator.finish(lease, true).await?;
    Ok(fixed)
}
