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
use super::{IndexReader, StoreError, TagNow};
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

const PARTS: [&str; 7] = ["tags", "names", "versions", "images", "history", "dirty", "meta"];

pub struct RedisStore {
    client: redis::Client,
    connection: tokio::sync::OnceCell<ConnectionManager>,
    namespace: String,
    idle_expiry: Duration,
    shown: String,
}

/// The keys of one repository, in the order of [`PARTS`].
struct Keys([String; 7]);

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

    fn keys(&self, repository: &str) -> Keys {
        Keys(PARTS.map(|part| format!("{}:index-{part}:{repository}", self.namespace)))
    }

    fn repositories(&self) -> String {
        format!("{}:index-repositories", self.namespace)
    }

    async fn connection(&self) -> Result<ConnectionManager, StoreError> {
        let config = crate::coordination::connection_config(TIMEOUT);
        self.connection
            .get_or_try_init(|| self.client.get_connection_manager_with_config(config))
            .await
            .cloned()
            .map_err(|e| self.failed(e))
    }

    fn failed(&self, error: redis::RedisError) -> StoreError {
        StoreError(format!("the index in Redis `{}` cannot be reached ({error})", self.shown))
    }

    async fn run<T: redis::FromRedisValue>(
        &self,
        script: &'static str,
        keys: &[String],
        args: &[String],
    ) -> Result<T, StoreError> {
        let mut connection = self.connection().await?;
        let script = redis::Script::new(script);
        let mut invocation = script.prepare_invoke();
        for key in keys {
            invocation.key(key);
        }
        for arg in args {
            invocation.arg(arg);
        }
        invocation.invoke_async(&mut connection).await.map_err(|e| self.failed(e))
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
        let (state, dirty, tags): (Option<String>, Vec<String>, u64) =
            self.run(STATUS, &keys.0, &[MAX_DIRTY.to_string()]).await?;
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
            self.query(redis::cmd("HGET").arg(&keys.0[6]).arg("read").clone()).await?;
        Ok(read.unwrap_or(0))
    }

    pub async fn begin_fill(&self, repository: &str) -> Result<(), StoreError> {
        let _: i64 = self.run(BEGIN_FILL, &self.keys(repository).0, &[self.expiry()]).await?;
        Ok(())
    }

    pub async fn fill_batch(
        &self,
        repository: &str,
        found: &[(String, String)],
    ) -> Result<(), StoreError> {
        let mut args = Vec::with_capacity(1 + found.len() * 3);
        args.push(self.expiry());
        for (tag, digest) in found {
            args.extend([tag.clone(), digest.clone(), version_key(tag)]);
        }
        let _: i64 = self.run(FILL_BATCH, &self.keys(repository).0, &args).await?;
        Ok(())
    }

    pub async fn end_fill(&self, repository: &str) -> Result<(), StoreError> {
        let mut keys = self.keys(repository).0.to_vec();
        keys.push(self.repositories());
        let args = [self.expiry(), now_millis().to_string(), repository.to_string()];
        let _: i64 = self.run(END_FILL, &keys, &args).await?;
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
        let mut keys = vec![self.repositories()];
        keys.extend(sample.iter().map(|repository| self.keys(repository).0[6].clone()));
        let _: i64 = self.run(PRUNE_LISTED, &keys, &sample).await?;
        Ok(())
    }

    pub async fn abandon_fill(&self, repository: &str) -> Result<(), StoreError> {
        let _: i64 = self.run(ABANDON_FILL, &self.keys(repository).0, &[]).await?;
        Ok(())
    }

    pub async fn mark_dirty(&self, repository: &str, tags: &[String]) -> Result<(), StoreError> {
        let mut args = vec![self.expiry()];
        args.extend(tags.iter().cloned());
        let _: i64 = self.run(MARK_DIRTY, &self.keys(repository).0, &args).await?;
        Ok(())
    }

    pub async fn apply(
        &self,
        repository: &str,
        changes: &[(String, TagNow)],
        stamp: &Stamp,
    ) -> Result<(), StoreError> {
        let mut args = vec![
            self.expiry(),
            stamp.at.seconds.to_string(),
            stamp.at.nanoseconds.to_string(),
            u8::from(stamp.actor.is_some()).to_string(),
            stamp.actor.clone().unwrap_or_default(),
        ];
        for (tag, now) in changes {
            let (operation, digest) = match now {
                TagNow::Is(Some(digest)) => ("set", digest.as_str()),
                TagNow::Is(None) => ("del", ""),
                TagNow::Unknown => continue,
            };
            args.extend([tag.clone(), operation.to_string(), digest.to_string(), version_key(tag)]);
        }
        let _: i64 = self.run(APPLY, &self.keys(repository).0, &args).await?;
        Ok(())
    }

    pub async fn correct(
        &self,
        repository: &str,
        tag: &str,
        digest: Option<&str>,
    ) -> Result<bool, StoreError> {
        let args = [tag.to_string(), digest.unwrap_or_default().to_string(), version_key(tag)];
        let changed: i64 = self.run(CORRECT, &self.keys(repository).0, &args).await?;
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
        let keys = [self.keys(repository).0[6].clone(), self.repositories()];
        let now = now_millis();
        let due = now.saturating_sub(every.as_millis() as u64);
        let args = [repository.to_string(), now.to_string(), due.to_string()];
        let claimed: i64 = self.run(CLAIM_CHECK, &keys, &args).await?;
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
        self.query(redis::cmd("HMGET").arg(&keys.0[0]).arg(tags).clone()).await
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
                .arg(&keys.0[1])
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
                    .arg(&keys.0[3])
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
    keys: Keys,
    runtime: tokio::runtime::Handle,
}

impl Reader {
    fn query<T: redis::FromRedisValue>(&self, command: redis::Cmd) -> Result<T, StoreError> {
        self.runtime.block_on(self.store.query(command))
    }

    fn range(
        &self,
        command: &str,
        key: usize,
        from: String,
        to: String,
        count: usize,
    ) -> Result<Vec<String>, StoreError> {
        self.query(
            redis::cmd(command)
                .arg(&self.keys.0[key])
                .arg(from)
                .arg(to)
                .arg("LIMIT")
                .arg(0)
                .arg(count)
                .clone(),
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
        self.ask(|| self.reader.range("ZRANGEBYLEX", 1, from, above(prefix), count.max(MIN_READ)))
    }

    fn versions(&self, prefix: &str, below: Option<&str>, count: usize) -> Vec<String> {
        let top = format!("{prefix}\u{7f}");
        let to = match below {
            Some(below) if below < top.as_str() => format!("({below}"),
            _ => format!("({top}"),
        };
        self.ask(|| {
            self.reader.range("ZREVRANGEBYLEX", 2, to, format!("[{prefix}"), count.max(MIN_READ))
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
            self.query(redis::cmd("HMGET").arg(&self.keys.0[0]).arg(&tags).clone())?;
        Ok(tags
            .into_iter()
            .zip(digests)
            .filter_map(|(tag, digest)| Some(TagEntry { tag, digest: digest? }))
            .collect())
    }

    fn count(&self) -> Result<u64, StoreError> {
        self.query(redis::cmd("ZCARD").arg(&self.keys.0[1]).clone())
    }

    fn digest_of(&self, tag: &str) -> Result<Option<String>, StoreError> {
        self.query(redis::cmd("HGET").arg(&self.keys.0[0]).arg(tag).clone())
    }

    fn tags_of(&self, digest: &str) -> Result<Vec<String>, StoreError> {
        let pairs: Vec<String> = self.query(
            redis::cmd("ZRANGEBYLEX")
                .arg(&self.keys.0[3])
                .arg(format!("[{digest} "))
                .arg(above(&format!("{digest} ")))
                .clone(),
        )?;
        Ok(pairs.into_iter().filter_map(|pair| Some(pair.split_once(' ')?.1.to_string())).collect())
    }

    fn history_of(&self, tag: &str) -> Result<Option<TagHistory>, StoreError> {
        let text: Option<String> =
            self.query(redis::cmd("HGET").arg(&self.keys.0[4]).arg(tag).clone())?;
        Ok(text.and_then(|text| decode_history(&text)))
    }

    fn names(&self, after: Option<&str>, count: usize) -> Result<Vec<String>, StoreError> {
        let from = after.map_or("-".to_string(), |after| format!("({after}"));
        self.range("ZRANGEBYLEX", 1, from, "+".to_string(), count)
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

// The scripts. KEYS are the repository's parts in the order of `PARTS` (then, for some, the
// list of repositories); every key is given a new expiry (ARGV[1]) when written.

/// The repository's state, its dirty tags (none past ARGV[1]: more means fill again) and its
/// number of tags.
const STATUS: &str = r"
local state = redis.call('hget', KEYS[7], 'state')
local count = redis.call('zcard', KEYS[2])
local dirty = {}
if state == 'ready' then
  if redis.call('scard', KEYS[6]) > tonumber(ARGV[1]) then
    state = 'filling'
  else
    dirty = redis.call('smembers', KEYS[6])
  end
end
return {state or false, dirty, count}
";

const BEGIN_FILL: &str = r"
redis.call('unlink', KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7])
redis.call('hset', KEYS[7], 'state', 'filling', 'read', 0)
redis.call('pexpire', KEYS[7], ARGV[1])
return 1
";

const FILL_BATCH: &str = r"
if redis.call('hget', KEYS[7], 'state') ~= 'filling' then return 0 end
for i = 2, #ARGV, 3 do
  local tag, digest, version = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  redis.call('hset', KEYS[1], tag, digest)
  redis.call('zadd', KEYS[2], 0, tag)
  redis.call('zadd', KEYS[3], 0, version)
  redis.call('zadd', KEYS[4], 0, digest .. ' ' .. tag)
end
redis.call('hincrby', KEYS[7], 'read', (#ARGV - 1) / 3)
for i = 1, 7 do redis.call('pexpire', KEYS[i], ARGV[1]) end
return 1
";

const END_FILL: &str = r"
redis.call('hset', KEYS[7], 'state', 'ready', 'filled', ARGV[2])
for i = 1, 7 do redis.call('pexpire', KEYS[i], ARGV[1]) end
redis.call('zadd', KEYS[8], ARGV[2], ARGV[3])
return 1
";

const ABANDON_FILL: &str = r"
if redis.call('hget', KEYS[7], 'state') == 'filling' then
  redis.call('unlink', KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7])
end
return 1
";

const MARK_DIRTY: &str = r"
if not redis.call('hget', KEYS[7], 'state') then return 0 end
for i = 2, #ARGV do redis.call('sadd', KEYS[6], ARGV[i]) end
redis.call('pexpire', KEYS[6], ARGV[1])
return 1
";

/// Record what a write did: ARGV[2..5] the stamp (seconds, nanoseconds, whether there is an
/// actor, the actor), then (tag, `set`|`del`, digest, version key) each. A tag that keeps
/// its digest keeps its history; a moved one keeps its creation.
const APPLY: &str = r"
if redis.call('hget', KEYS[7], 'state') ~= 'ready' then return 0 end
local actor = cjson.null
if ARGV[4] == '1' then actor = ARGV[5] end
local stamp = {tonumber(ARGV[2]), tonumber(ARGV[3]), actor}
for i = 6, #ARGV, 4 do
  local tag, operation, digest, version = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]
  local old = redis.call('hget', KEYS[1], tag)
  redis.call('srem', KEYS[6], tag)
  if operation == 'del' then
    if old then
      redis.call('hdel', KEYS[1], tag)
      redis.call('zrem', KEYS[2], tag)
      redis.call('zrem', KEYS[3], version)
      redis.call('zrem', KEYS[4], old .. ' ' .. tag)
      redis.call('hdel', KEYS[5], tag)
    end
  elseif old ~= digest then
    local created = stamp
    if old then
      redis.call('zrem', KEYS[4], old .. ' ' .. tag)
      created = nil
      local history = redis.call('hget', KEYS[5], tag)
      if history then
        local known = cjson.decode(history).k
        if known ~= cjson.null then created = known end
      end
    end
    redis.call('hset', KEYS[1], tag, digest)
    redis.call('zadd', KEYS[2], 0, tag)
    redis.call('zadd', KEYS[3], 0, version)
    redis.call('zadd', KEYS[4], 0, digest .. ' ' .. tag)
    redis.call('hset', KEYS[5], tag, cjson.encode({c = stamp, k = created}))
  end
end
for i = 1, 7 do redis.call('pexpire', KEYS[i], ARGV[1]) end
return 1
";

/// Set ARGV[1] to what a lookup found (ARGV[2], '' for absent); its history is then unknown.
/// 1 if that changed the index.
const CORRECT: &str = r"
if redis.call('hget', KEYS[7], 'state') ~= 'ready' then return 0 end
local tag, digest, version = ARGV[1], ARGV[2], ARGV[3]
redis.call('srem', KEYS[6], tag)
local old = redis.call('hget', KEYS[1], tag)
if (old or '') == digest then return 0 end
if old then redis.call('zrem', KEYS[4], old .. ' ' .. tag) end
redis.call('hdel', KEYS[5], tag)
if digest == '' then
  redis.call('hdel', KEYS[1], tag)
  redis.call('zrem', KEYS[2], tag)
  redis.call('zrem', KEYS[3], version)
else
  redis.call('hset', KEYS[1], tag, digest)
  redis.call('zadd', KEYS[2], 0, tag)
  redis.call('zadd', KEYS[3], 0, version)
  redis.call('zadd', KEYS[4], 0, digest .. ' ' .. tag)
end
return 1
";

/// Listed repositories sampled for pruning at the end of each fill.
const PRUNE_SAMPLE: usize = 16;

/// Unlist each repository ARGV[i] whose `meta` key (KEYS[i + 1]) expired.
const PRUNE_LISTED: &str = r"
local pruned = 0
for i = 1, #ARGV do
  if redis.call('exists', KEYS[i + 1]) == 0 then
    pruned = pruned + redis.call('zrem', KEYS[1], ARGV[i])
  end
end
return pruned
";

/// Claim a repository's check if it is still due (its score at most ARGV[3]): move its score
/// to now, so that the other gates see it as checked; a repository whose keys expired leaves
/// the list.
const CLAIM_CHECK: &str = r"
if redis.call('hget', KEYS[1], 'state') ~= 'ready' then
  redis.call('zrem', KEYS[2], ARGV[1])
  return 0
end
local score = redis.call('zscore', KEYS[2], ARGV[1])
if not score or tonumber(score) > tonumber(ARGV[3]) then return 0 end
redis.call('zadd', KEYS[2], ARGV[2], ARGV[1])
return 1
";

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
