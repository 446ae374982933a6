//! The index shared by several gates, in Redis, in a layout whose cost per push does not grow
//! with the repository. Per repository (keys `<namespace>:index-<part>:<repository>`):
//!
//! - `tags`, a hash tag → digest (`HGET`, O(1));
//! - `names`, a sorted set of the tags with score 0: a name range is `ZRANGEBYLEX`, O(log N + k);
//! - `versions`, the same of their version keys ([`tagpolicy::version_key`]): the
//!   newest of a shape is `ZREVRANGEBYLEX`, O(log N + k);
//! - `images`, the same of `digest tag` pairs: the tags of a digest are a range;
//! - `history`, a hash tag → when it got its digest, who set it, when it was created (JSON);
//! - `dirty`, a set of tags to read again before the next decision;
//! - `meta`, a hash: `state` (`filling`, `ready`), tags read so far, times.
//!
//! Every change of a repository is one script, run under its lease; every key lives
//! `index.idle_expiry` past the last change or fill, so an abandoned repository costs
//! nothing for ever. `<namespace>:index-repositories` (score: last check) lists the
//! repositories the background check visits; entries whose keys expired leave it when the
//! check visits them or when a fill samples them.

use super::memory::Status;
use super::scripts;
use super::{IndexReader, StoreError, TagNow};
use crate::redis_link::ScriptCall;
use redis::aio::ConnectionManager;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tagpolicy::TagEntry;
use tagpolicy::{Instant, Stamp, TagHistory};
use tagpolicy::{SortedTags, TagQuery, version_key};

/// How long a Redis command may take before the index counts as unreachable.
const TIMEOUT: Duration = Duration::from_secs(2);
/// Dirty tags read again before a decision; a repository with more is filled again.
pub const MAX_DIRTY: usize = 10_000;
/// Entries of a range read at least per round trip: a query that wants one entry but meets
/// a few that do not match its pattern should not pay a round trip for each.
const MIN_READ: usize = 16;

pub struct RedisStore {
    client: redis::Client,
    connection: tokio::sync::OnceCell<ConnectionManager>,
    namespace: String,
    idle_expiry: Duration,
    shown: String,
}

/// The keys of one repository's index.
pub(super) struct RepositoryKeys {
    tags: String,
    names: String,
    versions: String,
    images: String,
    history: String,
    dirty: String,
    meta: String,
}

impl RepositoryKeys {
    fn new(namespace: &str, repository: &str) -> Self {
        let key = |part: &str| format!("{namespace}:index-{part}:{repository}");
        RepositoryKeys {
            tags: key("tags"),
            names: key("names"),
            versions: key("versions"),
            images: key("images"),
            history: key("history"),
            dirty: key("dirty"),
            meta: key("meta"),
        }
    }

    /// All seven, in the order every script names them.
    pub fn all(&self) -> Vec<&str> {
        vec![
            &self.tags,
            &self.names,
            &self.versions,
            &self.images,
            &self.history,
            &self.dirty,
            &self.meta,
        ]
    }
}

impl RedisStore {
    pub fn new(
        url: &str,
        shown: String,
        namespace: &str,
        idle_expiry: Duration,
    ) -> Result<Self, String> {
        let client = redis::Client::open(url).map_err(|e| format!("`{shown}`: {e}"))?;
        Ok(RedisStore {
            client,
            connection: tokio::sync::OnceCell::new(),
            namespace: namespace.to_string(),
            idle_expiry,
            shown,
        })
    }

    fn keys(&self, repository: &str) -> RepositoryKeys {
        RepositoryKeys::new(&self.namespace, repository)
    }

    fn repositories(&self) -> String {
        format!("{}:index-repositories", self.namespace)
    }

    async fn connection(&self) -> Result<ConnectionManager, StoreError> {
        let config = crate::redis_link::connection_config(TIMEOUT);
        self.connection
            .get_or_try_init(|| self.client.get_connection_manager_with_config(config))
            .await
            .cloned()
            .map_err(|e| self.failed(e))
    }

    fn failed(&self, error: redis::RedisError) -> StoreError {
        StoreError(format!("the index in Redis `{}` cannot be reached ({error})", self.shown))
    }

    async fn run<C: ScriptCall>(&self, call: &C) -> Result<C::Reply, StoreError> {
        let mut connection = self.connection().await?;
        crate::redis_link::run(&mut connection, call).await.map_err(|e| self.failed(e))
    }

    async fn query<T: redis::FromRedisValue>(&self, command: redis::Cmd) -> Result<T, StoreError> {
        let mut connection = self.connection().await?;
        command.query_async(&mut connection).await.map_err(|e| self.failed(e))
    }

    fn expiry(&self) -> String {
        self.idle_expiry.as_millis().max(1).to_string()
    }

    pub async fn status(&self, repository: &str) -> Result<Status, StoreError> {
        let keys = self.keys(repository);
        let (state, dirty, tags) =
            self.run(&scripts::Status { keys: &keys, max_dirty: MAX_DIRTY }).await?;
        Ok(match state.as_deref() {
            Some("ready") => Status::Ready { dirty, tags },
            Some(_) => Status::Filling,
            None => Status::Absent,
        })
    }

    /// How many tags the fill of `repository` (by any gate) has read.
    pub async fn fill_progress(&self, repository: &str) -> Result<u64, StoreError> {
        let keys = self.keys(repository);
        let read: Option<u64> =
            self.query(redis::cmd("HGET").arg(&keys.meta).arg("read").clone()).await?;
        Ok(read.unwrap_or(0))
    }

    pub async fn begin_fill(&self, repository: &str) -> Result<(), StoreError> {
        let keys = self.keys(repository);
        self.run(&scripts::BeginFill { keys: &keys, expiry: self.expiry() }).await?;
        Ok(())
    }

    pub async fn fill_batch(
        &self,
        repository: &str,
        found: &[(String, String)],
    ) -> Result<(), StoreError> {
        let found = found
            .iter()
            .map(|(tag, digest)| [tag.clone(), digest.clone(), version_key(tag)])
            .collect();
        let keys = self.keys(repository);
        self.run(&scripts::FillBatch { keys: &keys, expiry: self.expiry(), found }).await?;
        Ok(())
    }

    pub async fn end_fill(&self, repository: &str) -> Result<(), StoreError> {
        let (keys, repositories) = (self.keys(repository), self.repositories());
        let call = scripts::EndFill {
            keys: &keys,
            repositories: &repositories,
            expiry: self.expiry(),
            now_millis: now_millis(),
            repository,
        };
        self.run(&call).await?;
        self.prune_listed().await
    }

    /// Drop from the list of repositories some whose keys expired. A fill is the only way
    /// onto the list, and each samples [`PRUNE_SAMPLE`] listed repositories at random, so
    /// the list stays within a small share above the repositories that still have an index
    /// even when the background check (which prunes too) never runs.
    async fn prune_listed(&self) -> Result<(), StoreError> {
        let sample: Vec<String> = self
            .query(redis::cmd("ZRANDMEMBER").arg(self.repositories()).arg(PRUNE_SAMPLE).clone())
            .await?;
        if sample.is_empty() {
            return Ok(());
        }
        let repositories = self.repositories();
        let sample = sample
            .into_iter()
            .map(|repository| {
                let meta = self.keys(&repository).meta;
                (repository, meta)
            })
            .collect();
        self.run(&scripts::PruneListed { repositories: &repositories, sample }).await?;
        Ok(())
    }

    pub async fn abandon_fill(&self, repository: &str) -> Result<(), StoreError> {
        self.run(&scripts::AbandonFill { keys: &self.keys(repository) }).await?;
        Ok(())
    }

    pub async fn mark_dirty(&self, repository: &str, tags: &[String]) -> Result<(), StoreError> {
        let keys = self.keys(repository);
        self.run(&scripts::MarkDirty { keys: &keys, expiry: self.expiry(), tags }).await?;
        Ok(())
    }

    pub async fn apply(
        &self,
        repository: &str,
        changes: &[(String, TagNow)],
        stamp: &Stamp,
    ) -> Result<(), StoreError> {
        let writes = changes
            .iter()
            .filter_map(|(tag, now)| match now {
                TagNow::Is(digest) => Some(scripts::TagWrite {
                    tag: tag.clone(),
                    digest: digest.clone(),
                    version: version_key(tag),
                }),
                TagNow::Unknown => None,
            })
            .collect();
        let keys = self.keys(repository);
        self.run(&scripts::Apply { keys: &keys, expiry: self.expiry(), stamp, writes }).await?;
        Ok(())
    }

    pub async fn correct(
        &self,
        repository: &str,
        tag: &str,
        digest: Option<&str>,
    ) -> Result<bool, StoreError> {
        let keys = self.keys(repository);
        let call = scripts::Correct { keys: &keys, tag, version: version_key(tag), digest };
        let changed = self.run(&call).await?;
        Ok(changed == 1)
    }

    pub async fn due_for_check(&self, every: Duration) -> Result<Vec<String>, StoreError> {
        let before = now_millis().saturating_sub(every.as_millis() as u64);
        self.query(
            redis::cmd("ZRANGEBYSCORE")
                .arg(self.repositories())
                .arg("-inf")
                .arg(before)
                .arg("LIMIT")
                .arg(0)
                .arg(64)
                .clone(),
        )
        .await
    }

    /// Take the next check of `repository` for this gate (none of the others takes it for
    /// `every`); `false` when another has it, or the repository left the index.
    pub async fn claim_check(&self, repository: &str, every: Duration) -> Result<bool, StoreError> {
        let (meta, repositories) = (self.keys(repository).meta, self.repositories());
        let now = now_millis();
        let call = scripts::ClaimCheck {
            meta: &meta,
            repositories: &repositories,
            repository,
            now_millis: now,
            due_millis: now.saturating_sub(every.as_millis() as u64),
        };
        let claimed = self.run(&call).await?;
        Ok(claimed == 1)
    }

    /// The digests of `tags` (`None`: absent).
    pub async fn digests(
        &self,
        repository: &str,
        tags: &[String],
    ) -> Result<Vec<Option<String>>, StoreError> {
        if tags.is_empty() {
            return Ok(Vec::new());
        }
        let keys = self.keys(repository);
        self.query(redis::cmd("HMGET").arg(&keys.tags).arg(tags).clone()).await
    }

    /// Up to `count` tags after `after`, by name (for the background check).
    pub async fn names(
        &self,
        repository: &str,
        after: Option<&str>,
        count: usize,
    ) -> Result<Vec<String>, StoreError> {
        let keys = self.keys(repository);
        let from = after.map_or("-".to_string(), |after| format!("({after}"));
        self.query(
            redis::cmd("ZRANGEBYLEX")
                .arg(&keys.names)
                .arg(from)
                .arg("+")
                .arg("LIMIT")
                .arg(0)
                .arg(count)
                .clone(),
        )
        .await
    }

    /// The tags of `digest`.
    pub async fn tags_of(&self, repository: &str, digest: &str) -> Result<Vec<String>, StoreError> {
        let keys = self.keys(repository);
        let pairs: Vec<String> = self
            .query(
                redis::cmd("ZRANGEBYLEX")
                    .arg(&keys.images)
                    .arg(format!("[{digest} "))
                    .arg(above(&format!("{digest} ")))
                    .clone(),
            )
            .await?;
        Ok(pairs.into_iter().filter_map(|pair| Some(pair.split_once(' ')?.1.to_string())).collect())
    }

    pub fn reader(self: &Arc<Self>, repository: &str) -> Arc<dyn IndexReader> {
        Arc::new(Reader {
            store: self.clone(),
            keys: self.keys(repository),
            runtime: tokio::runtime::Handle::current(),
        })
    }

    /// Repositories in the index, for the metrics.
    pub async fn size(&self) -> Result<u64, StoreError> {
        self.query(redis::cmd("ZCARD").arg(self.repositories()).clone()).await
    }
}

fn now_millis() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

/// A repository's index in Redis, read by a decision from a blocking thread.
struct Reader {
    store: Arc<RedisStore>,
    keys: RepositoryKeys,
    runtime: tokio::runtime::Handle,
}

impl Reader {
    fn query<T: redis::FromRedisValue>(&self, command: redis::Cmd) -> Result<T, StoreError> {
        self.runtime.block_on(self.store.query(command))
    }

    fn range(
        &self,
        command: &str,
        key: &str,
        from: String,
        to: String,
        count: usize,
    ) -> Result<Vec<String>, StoreError> {
        self.query(
            redis::cmd(command).arg(key).arg(from).arg(to).arg("LIMIT").arg(0).arg(count).clone(),
        )
    }
}

/// Redis range bounds: every key with the prefix sorts below the prefix and `\x7f`.
fn above(prefix: &str) -> String {
    format!("({prefix}\u{7f}")
}

/// A [`SortedTags`] over Redis that remembers the first failure (and then answers nothing).
struct Sorted<'a> {
    reader: &'a Reader,
    failure: std::cell::RefCell<Option<StoreError>>,
}

impl Sorted<'_> {
    fn ask(&self, read: impl FnOnce() -> Result<Vec<String>, StoreError>) -> Vec<String> {
        if self.failure.borrow().is_some() {
            return Vec::new();
        }
        read().unwrap_or_else(|error| {
            *self.failure.borrow_mut() = Some(error);
            Vec::new()
        })
    }
}

impl SortedTags for Sorted<'_> {
    fn names(&self, prefix: &str, after: Option<&str>, count: usize) -> Vec<String> {
        let from = match after {
            Some(after) if after >= prefix => format!("({after}"),
            _ => format!("[{prefix}"),
        };
        self.ask(|| {
            self.reader.range(
                "ZRANGEBYLEX",
                &self.reader.keys.names,
                from,
                above(prefix),
                count.max(MIN_READ),
            )
        })
    }

    fn versions(&self, prefix: &str, below: Option<&str>, count: usize) -> Vec<String> {
        let top = format!("{prefix}\u{7f}");
        let to = match below {
            Some(below) if below < top.as_str() => format!("({below}"),
            _ => format!("({top}"),
        };
        self.ask(|| {
            self.reader.range(
                "ZREVRANGEBYLEX",
                &self.reader.keys.versions,
                to,
                format!("[{prefix}"),
                count.max(MIN_READ),
            )
        })
    }
}

impl IndexReader for Reader {
    fn find(&self, query: &TagQuery) -> Result<Vec<TagEntry>, StoreError> {
        let sorted = Sorted { reader: self, failure: Default::default() };
        let tags = query.run(&sorted);
        if let Some(error) = sorted.failure.into_inner() {
            return Err(error);
        }
        if tags.is_empty() {
            return Ok(Vec::new());
        }
        let digests: Vec<Option<String>> =
            self.query(redis::cmd("HMGET").arg(&self.keys.tags).arg(&tags).clone())?;
        Ok(tags
            .into_iter()
            .zip(digests)
            .filter_map(|(tag, digest)| Some(TagEntry { tag, digest: digest? }))
            .collect())
    }

    fn count(&self) -> Result<u64, StoreError> {
        self.query(redis::cmd("ZCARD").arg(&self.keys.names).clone())
    }

    fn digest_of(&self, tag: &str) -> Result<Option<String>, StoreError> {
        self.query(redis::cmd("HGET").arg(&self.keys.tags).arg(tag).clone())
    }

    fn tags_of(&self, digest: &str) -> Result<Vec<String>, StoreError> {
        let pairs: Vec<String> = self.query(
            redis::cmd("ZRANGEBYLEX")
                .arg(&self.keys.images)
                .arg(format!("[{digest} "))
                .arg(above(&format!("{digest} ")))
                .clone(),
        )?;
        Ok(pairs.into_iter().filter_map(|pair| Some(pair.split_once(' ')?.1.to_string())).collect())
    }

    fn history_of(&self, tag: &str) -> Result<Option<TagHistory>, StoreError> {
        let text: Option<String> =
            self.query(redis::cmd("HGET").arg(&self.keys.history).arg(tag).clone())?;
        Ok(text.and_then(|text| decode_history(&text)))
    }

    fn names(&self, after: Option<&str>, count: usize) -> Result<Vec<String>, StoreError> {
        let from = after.map_or("-".to_string(), |after| format!("({after}"));
        self.range("ZRANGEBYLEX", &self.keys.names, from, "+".to_string(), count)
    }
}

/// A history as the scripts store it: `{"c": [seconds, nanoseconds, actor|null], "k": … }`.
fn decode_history(text: &str) -> Option<TagHistory> {
    #[derive(serde::Deserialize)]
    struct Stored {
        c: (i64, u32, Option<String>),
        #[serde(default)]
        k: Option<(i64, u32, Option<String>)>,
    }
    let stored: Stored = serde_json::from_str(text).ok()?;
    let stamp = |(seconds, nanoseconds, actor): (i64, u32, Option<String>)| Stamp {
        at: Instant { seconds, nanoseconds },
        actor,
    };
    Some(TagHistory { changed: stamp(stored.c), created: stored.k.map(stamp) })
}

/// Listed repositories sampled for pruning at the end of each fill.
const PRUNE_SAMPLE: usize = 16;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histories_decode_with_and_without_creation() {
        let history =
            decode_history(r#"{"c":[1800000000,5,"ci-bot"],"k":[1799999000,0,null]}"#).unwrap();
        assert_eq!(history.changed.actor.as_deref(), Some("ci-bot"));
        assert_eq!(history.changed.at.nanoseconds, 5);
        assert_eq!(history.created.unwrap().actor, None);
        let moved = decode_history(r#"{"c":[1,0,null]}"#).unwrap();
        assert_eq!(moved.created, None);
        assert!(decode_history("nonsense").is_none());
    }
}
