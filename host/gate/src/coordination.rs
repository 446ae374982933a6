//! Which gate may change a repository's tags now, and what the gates know of its tags.
//!
//! One gate coordinates with itself: a lock per repository in the process, and what it knows
//! in memory. Several gates in front of one registry (`coordination: {redis: ...}`) take a
//! *lease* per repository in Redis before they decide and apply a change, and keep what they
//! know there, so that every replica decides on the same state.
//!
//! The registry cannot check a fencing token (the distribution API has no conditional
//! write), so a lease that expires while its holder is slow must not let two writes overlap.
//! Three things make that safe:
//!
//! - the holder renews its lease while it works, and keeps a **deadline** on its own
//!   monotonic clock (the time it *sent* the last successful renewal, plus the lease, less a
//!   margin); it sends nothing upstream after that deadline;
//! - before each upstream write it records an **intent** in Redis (only while it still holds
//!   the lease, checked in the same script), which lives for one *lock delay*: the upstream
//!   write timeout plus [`SEND_MARGIN`], and it sends the write only if that took less than
//!   [`SEND_MARGIN`]; the intent is removed once the write has been answered;
//! - a successor that finds an intent (its holder died, stalled or lost the lease mid-write)
//!   waits until the intent expires, by which time that write has landed or never will, then
//!   drops everything cached about the repository and reads the truth from the upstream.
//!
//! A store that comes up empty (first start, or a restart that lost its data, and with it any
//! intent) makes every gate wait one lock delay before its first change, for the same reason.
//! What remains assumed: clocks run at about the same rate; the upstream applies a write
//! within the upstream write timeout of receiving it, or never; and no pause longer than
//! [`SEND_MARGIN`] falls between the last check and the request's bytes leaving the process.

use super::metrics::Metrics;
use parking_lot::Mutex;
use redis::AsyncCommands;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};
use tokio::sync::{Mutex as AsyncMutex, OwnedMutexGuard};

/// The longest a holder may take between recording its intent and sending the write; part of
/// the lock delay a successor waits.
pub const SEND_MARGIN: Duration = Duration::from_secs(1);
/// How long a Redis command may take before the store counts as unreachable.
const STORE_TIMEOUT: Duration = Duration::from_secs(1);
/// How long the settings record outlives the last replica that refreshed it.
const SETTINGS_TTL: Duration = Duration::from_secs(60);
/// How long a repository's generation stays in Redis after its last change.
const GENERATION_TTL: Duration = Duration::from_secs(7 * 24 * 3600);
/// Generations one gate keeps in memory; beyond this it starts again from zero for every
/// repository (a generation only tells caches that something changed).
const MAX_GENERATIONS: usize = 100_000;

/// Why a change could not be coordinated. Nothing is written upstream after any of these.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CoordinationError {
    #[error("another change of `{repository}` has held it for over {}", humantime::format_duration(*waited))]
    Busy { repository: String, waited: Duration },
    #[error("the coordination store `{store}` cannot be reached ({reason})")]
    Unreachable { store: String, reason: String },
    #[error("the lease on `{0}` ran out before the write could be sent")]
    LeaseLost(String),
    #[error(
        "the coordination store `{store}` is used by gates with other settings: it holds \
         `{theirs}`, this gate has `{ours}`; give every replica the same `coordination`, \
         `authoritative`, `upstream` and `limits.upstream_write_timeout` (after a deliberate \
         change, stop every replica and wait {}, or delete the key `{key}`)",
        humantime::format_duration(SETTINGS_TTL)
    )]
    SettingsDiffer { store: String, key: String, theirs: String, ours: String },
}

/// What replicas sharing a store must agree on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub lease: Duration,
    pub upstream_write_timeout: Duration,
    pub authoritative: bool,
    pub upstream: String,
}

impl Settings {
    /// How long a successor waits for an intent left behind: by then its write has landed
    /// or never will.
    pub fn lock_delay(&self) -> Duration {
        self.upstream_write_timeout + SEND_MARGIN
    }

    fn record(&self) -> String {
        serde_json::json!({
            "lease_ms": self.lease.as_millis() as u64,
            "upstream_write_timeout_ms": self.upstream_write_timeout.as_millis() as u64,
            "authoritative": self.authoritative,
            "upstream": self.upstream,
        })
        .to_string()
    }

    /// A holder stops this long before its lease would expire in Redis.
    fn margin(&self) -> Duration {
        (self.lease / 5).max(Duration::from_millis(100))
    }
}

/// The coordinator of one gate process.
pub struct Coordinator {
    settings: Settings,
    metrics: Arc<Metrics>,
    store: Store,
}

enum Store {
    Local(Local),
    Redis(Arc<RedisStore>),
}

impl Coordinator {
    /// One gate, coordinating with itself.
    pub fn local(settings: Settings, metrics: Arc<Metrics>) -> Self {
        Coordinator { settings, metrics, store: Store::Local(Local::default()) }
    }

    /// Several gates sharing the Redis at `url`, with keys under `namespace`. Connects only
    /// when [`start`](Self::start) is called.
    pub fn redis(
        url: &str,
        namespace: &str,
        settings: Settings,
        metrics: Arc<Metrics>,
    ) -> Result<Self, String> {
        let client = redis::Client::open(url).map_err(|e| format!("`{url}`: {e}"))?;
        let shown = shown_url(url);
        let store = RedisStore {
            client,
            shown,
            keys: Keys { namespace: namespace.to_string() },
            connection: tokio::sync::OnceCell::new(),
            replica: replica_id(),
            next_token: AtomicU64::new(0),
            settings: settings.record(),
        };
        Ok(Coordinator { settings, metrics, store: Store::Redis(Arc::new(store)) })
    }

    /// A line for the start-up log.
    pub fn describe(&self) -> String {
        match &self.store {
            Store::Local(_) => "coordination: in this process (one gate)".to_string(),
            Store::Redis(store) => format!(
                "coordination: leases of {} in Redis `{}` (keys `{}:*`), lock delay {}",
                humantime::format_duration(self.settings.lease),
                store.shown,
                store.keys.namespace,
                humantime::format_duration(self.settings.lock_delay()),
            ),
        }
    }

    /// Connect and check that every replica on the store has the same settings (a gate with
    /// other settings refuses to start). An unreachable store is logged, not fatal: reads
    /// pass meanwhile and tag changes get 503 until it answers. `changed` hears of every
    /// repository another replica changed (`None`: possibly any, after a lost connection).
    pub async fn start(
        &self,
        changed: impl Fn(Option<&str>) + Send + Sync + 'static,
    ) -> Result<(), CoordinationError> {
        let Store::Redis(store) = &self.store else { return Ok(()) };
        match store.register(&self.settings).await {
            Ok(()) => {}
            Err(error @ CoordinationError::SettingsDiffer { .. }) => return Err(error),
            Err(error) => tracing::warn!(%error, "tag changes wait for the coordination store"),
        }
        tokio::spawn(refresh_settings(Arc::downgrade(store), self.settings.clone()));
        tokio::spawn(listen_for_changes(Arc::downgrade(store), Arc::new(changed)));
        Ok(())
    }

    /// Hold `repository` for a change, waiting at most `wait` for the replica holding it.
    pub async fn lease(
        &self,
        repository: &str,
        wait: Duration,
    ) -> Result<Lease, CoordinationError> {
        let started = Instant::now();
        let mut lease = match &self.store {
            Store::Local(local) => {
                let guard = tokio::time::timeout(wait, local.locks.lock(repository))
                    .await
                    .map_err(|_| CoordinationError::Busy {
                        repository: repository.to_string(),
                        waited: wait,
                    })?;
                Lease {
                    repository: repository.to_string(),
                    hold: Hold::Local(guard),
                    reconciled: false,
                    generation: local.generation(repository),
                }
            }
            Store::Redis(store) => {
                store.lease(repository, wait, &self.settings, &self.metrics).await?
            }
        };
        self.metrics.lease_wait(started.elapsed());
        if lease.reconciled {
            // The previous holder may have written something nobody recorded: nothing cached
            // about the repository is to be trusted (the index re-reads the tags it marked
            // before that write).
            self.metrics.reconciliation();
            tracing::warn!(repository, "a change was left in flight; reading the repository again");
            lease.generation = self.changed(repository).await?;
        }
        Ok(lease)
    }

    /// Record a change of `repository` made around the gates (a notification) or found left
    /// in flight: bump its generation and tell the other replicas, so that what they cached
    /// of it is dropped. Returns the new generation.
    pub async fn changed(&self, repository: &str) -> Result<u64, CoordinationError> {
        match &self.store {
            Store::Local(local) => Ok(local.changed(repository)),
            Store::Redis(store) => store.changed(repository, None).await,
        }
    }

    /// End a change made under `lease`: bump the generation, tell the other replicas, then,
    /// if every write sent was `answered`, drop the intent, and release the repository. If
    /// this fails, the intent stays and the next holder reads the repository again.
    pub async fn finish(&self, lease: Lease, answered: bool) -> Result<(), CoordinationError> {
        let repository = lease.repository.as_str();
        match (&self.store, &lease.hold) {
            (Store::Redis(store), Hold::Redis(hold)) => {
                store.changed(repository, Some((hold, answered))).await?;
                hold.released.store(true, Ordering::SeqCst);
            }
            (Store::Local(local), _) => {
                local.changed(repository);
            }
            (Store::Redis(_), Hold::Local(_)) => unreachable!("leases come from their store"),
        }
        Ok(())
    }
}

/// A repository held for one change. Dropping it releases the repository (an intent left
/// behind by a write whose outcome is unknown stays, so the next holder waits it out).
pub struct Lease {
    repository: String,
    hold: Hold,
    /// The previous holder may have left a write in flight; what was cached was dropped.
    pub reconciled: bool,
    /// The repository's generation when the lease was taken: what is read under the lease
    /// is read at it.
    pub generation: u64,
}

enum Hold {
    Local(#[allow(dead_code)] OwnedMutexGuard<()>),
    Redis(RedisHold),
}

impl Lease {
    /// Say that a write is about to be sent, and check that it still may be: call right
    /// before each upstream write and send it only on `Ok`.
    pub async fn before_write(&self, what: &str) -> Result<(), CoordinationError> {
        match &self.hold {
            Hold::Local(_) => Ok(()),
            Hold::Redis(hold) => hold.before_write(&self.repository, what).await,
        }
    }
}

// ---- one gate ------------------------------------------------------------------------------

#[derive(Default)]
struct Local {
    locks: RepositoryLocks,
    generations: Mutex<HashMap<String, u64>>,
}

impl Local {
    fn generation(&self, repository: &str) -> u64 {
        self.generations.lock().get(repository).copied().unwrap_or(0)
    }

    fn changed(&self, repository: &str) -> u64 {
        let mut generations = self.generations.lock();
        if generations.len() >= MAX_GENERATIONS && !generations.contains_key(repository) {
            generations.clear();
        }
        let current = generations.entry(repository.to_string()).or_insert(0);
        *current += 1;
        *current
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
            let mut locks = self.locks.lock();
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

// ---- several gates: Redis ------------------------------------------------------------------

struct Keys {
    namespace: String,
}

impl Keys {
    fn of(&self, what: &str, repository: &str) -> String {
        format!("{}:{what}:{repository}", self.namespace)
    }

    fn settings(&self) -> String {
        format!("{}:settings", self.namespace)
    }

    fn quiet(&self) -> String {
        format!("{}:quiet", self.namespace)
    }

    fn channel(&self) -> String {
        format!("{}:changed", self.namespace)
    }
}

struct RedisStore {
    client: redis::Client,
    /// The URL without its password, for messages.
    shown: String,
    keys: Keys,
    connection: tokio::sync::OnceCell<redis::aio::ConnectionManager>,
    /// Names this process in its lease tokens and intents.
    replica: String,
    next_token: AtomicU64,
    /// This gate's settings, as the record every replica must match.
    settings: String,
}

/// Create the settings record if the store has none (and then make every gate wait one lock
/// delay: an empty store may have lost an intent), or check ours against it and keep it alive.
const REGISTER: &str = r"
local current = redis.call('get', KEYS[1])
if not current then
  redis.call('set', KEYS[1], ARGV[1], 'PX', ARGV[2])
  redis.call('set', KEYS[2], '1', 'PX', ARGV[3], 'NX')
  return {1, ''}
elseif current == ARGV[1] then
  redis.call('pexpire', KEYS[1], ARGV[2])
  return {0, ''}
end
return {-1, current}
";

/// Take the lease if free; say how long an intent or a quiet period has left, and the
/// repository's generation.
const ACQUIRE: &str = r"
local settings = redis.call('get', KEYS[4])
if not settings then return {-2, 0, 0, 0} end
if settings ~= ARGV[3] then return {-1, 0, 0, 0} end
if redis.call('set', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  local generation = tonumber(redis.call('get', KEYS[5]) or '0')
  return {1, redis.call('pttl', KEYS[2]), redis.call('pttl', KEYS[3]), generation}
end
return {0, redis.call('pttl', KEYS[1]), 0, 0}
";

const RENEW: &str = r"
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('pexpire', KEYS[1], ARGV[2])
end
return 0
";

const RELEASE: &str = r"
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('del', KEYS[1])
end
return 0
";

/// Record an intent, only while the lease is still ours.
const INTEND: &str = r"
if redis.call('get', KEYS[1]) == ARGV[1] then
  redis.call('set', KEYS[2], ARGV[1] .. ' ' .. ARGV[2], 'PX', ARGV[3])
  return 1
end
return 0
";

/// A change: bump the generation (it lives a week past the last change), tell the other
/// replicas. With a holder's token (`ARGV[3]`), also release its lease and, if its writes
/// were answered (`ARGV[4]`), remove its intent: one round trip for the end of a change.
const CHANGED: &str = r"
local generation = redis.call('incr', KEYS[1])
redis.call('pexpire', KEYS[1], ARGV[5])
local token = ARGV[3]
if token ~= '' then
  local intent = redis.call('get', KEYS[3])
  if ARGV[4] == '1' and intent and string.sub(intent, 1, #token + 1) == token .. ' ' then
    redis.call('del', KEYS[3])
  end
  if redis.call('get', KEYS[2]) == token then redis.call('del', KEYS[2]) end
end
redis.call('publish', ARGV[1], ARGV[2])
return generation
";

impl RedisStore {
    async fn connection(&self) -> Result<redis::aio::ConnectionManager, CoordinationError> {
        let config = connection_config(STORE_TIMEOUT);
        self.connection
            .get_or_try_init(|| self.client.get_connection_manager_with_config(config))
            .await
            .cloned()
            .map_err(|e| self.unreachable(e))
    }

    fn unreachable(&self, error: redis::RedisError) -> CoordinationError {
        CoordinationError::Unreachable { store: self.shown.clone(), reason: error.to_string() }
    }

    async fn run<T: redis::FromRedisValue>(
        &self,
        script: &'static str,
        keys: &[&str],
        args: &[String],
    ) -> Result<T, CoordinationError> {
        let mut connection = self.connection().await?;
        let script = redis::Script::new(script);
        let mut invocation = script.prepare_invoke();
        for key in keys {
            invocation.key(*key);
        }
        for arg in args {
            invocation.arg(arg);
        }
        invocation.invoke_async(&mut connection).await.map_err(|e| self.unreachable(e))
    }

    async fn register(&self, settings: &Settings) -> Result<(), CoordinationError> {
        let keys = [self.keys.settings(), self.keys.quiet()];
        let args = [self.settings.clone(), millis(SETTINGS_TTL), millis(settings.lock_delay())];
        let (code, theirs): (i64, String) =
            self.run(REGISTER, &[&keys[0], &keys[1]], &args).await?;
        match code {
            1 => {
                tracing::warn!(
                    store = %self.shown,
                    lock_delay = ?settings.lock_delay(),
                    "the coordination store had no gate settings (first start, or it lost its \
                     data): tag changes wait one lock delay"
                );
                Ok(())
            }
            0 => Ok(()),
            _ => Err(CoordinationError::SettingsDiffer {
                store: self.shown.clone(),
                key: keys[0].clone(),
                theirs,
                ours: self.settings.clone(),
            }),
        }
    }

    async fn lease(
        self: &Arc<Self>,
        repository: &str,
        wait: Duration,
        settings: &Settings,
        metrics: &Metrics,
    ) -> Result<Lease, CoordinationError> {
        let token = format!("{}-{}", self.replica, self.next_token.fetch_add(1, Ordering::Relaxed));
        let keys = [
            self.keys.of("lease", repository),
            self.keys.of("intent", repository),
            self.keys.quiet(),
            self.keys.settings(),
            self.keys.of("generation", repository),
        ];
        let key_refs: Vec<&str> = keys.iter().map(String::as_str).collect();
        let args = [token.clone(), millis(settings.lease), self.settings.clone()];
        let started = Instant::now();
        let mut pause = Duration::from_millis(2);
        loop {
            let sent = Instant::now();
            let (code, first, second, generation): (i64, i64, i64, u64) =
                self.run(ACQUIRE, &key_refs, &args).await?;
            match code {
                1 => {
                    let state = Arc::new(LeaseState {
                        deadline: Mutex::new(sent + settings.lease - settings.margin()),
                        lost: AtomicBool::new(false),
                    });
                    let renewer = tokio::spawn(renew(
                        Arc::downgrade(self),
                        keys[0].clone(),
                        token.clone(),
                        settings.clone(),
                        state.clone(),
                    ));
                    let hold = RedisHold {
                        store: self.clone(),
                        lease_key: keys[0].clone(),
                        intent_key: keys[1].clone(),
                        token,
                        state,
                        renewer: renewer.abort_handle(),
                        lock_delay: settings.lock_delay(),
                        released: AtomicBool::new(false),
                    };
                    // An intent left behind, or a store that came up empty: wait until any
                    // write in flight has landed or never will.
                    let left = Duration::from_millis(first.max(second).max(0) as u64);
                    if !left.is_zero() {
                        metrics.lock_delay_wait(left);
                        tracing::warn!(
                            repository,
                            wait = ?left,
                            "waiting out a lock delay before changing the repository"
                        );
                        tokio::time::sleep(left).await;
                    }
                    return Ok(Lease {
                        repository: repository.to_string(),
                        hold: Hold::Redis(hold),
                        reconciled: !left.is_zero(),
                        generation,
                    });
                }
                -1 => {
                    let theirs: Option<String> = self
                        .connection()
                        .await?
                        .get(&keys[3])
                        .await
                        .map_err(|e| self.unreachable(e))?;
                    return Err(CoordinationError::SettingsDiffer {
                        store: self.shown.clone(),
                        key: keys[3].clone(),
                        theirs: theirs.unwrap_or_default(),
                        ours: self.settings.clone(),
                    });
                }
                -2 => {
                    self.register(settings).await?;
                    continue;
                }
                _ => {}
            }
            if started.elapsed() + pause > wait {
                return Err(CoordinationError::Busy {
                    repository: repository.to_string(),
                    waited: wait,
                });
            }
            // Spread the retries of waiting replicas a little, so they do not all ask at once.
            let jitter = Duration::from_micros(u64::from(started.elapsed().subsec_nanos() % 1000));
            tokio::time::sleep(pause + jitter).await;
            pause = (pause * 2).min(Duration::from_millis(20));
        }
    }

    async fn changed(
        &self,
        repository: &str,
        holder: Option<(&RedisHold, bool)>,
    ) -> Result<u64, CoordinationError> {
        let keys = [
            self.keys.of("generation", repository),
            self.keys.of("lease", repository),
            self.keys.of("intent", repository),
        ];
        let (token, answered) = match holder {
            Some((hold, answered)) => (hold.token.clone(), answered),
            None => (String::new(), false),
        };
        let args = [
            self.keys.channel(),
            repository.to_string(),
            token,
            u8::from(answered).to_string(),
            millis(GENERATION_TTL),
        ];
        let key_refs: Vec<&str> = keys.iter().map(String::as_str).collect();
        self.run(CHANGED, &key_refs, &args).await
    }
}

struct LeaseState {
    /// After this instant (monotonic) the holder sends nothing more.
    deadline: Mutex<Instant>,
    /// The store said the lease is no longer ours.
    lost: AtomicBool,
}

impl LeaseState {
    fn usable(&self) -> bool {
        !self.lost.load(Ordering::SeqCst) && Instant::now() < *self.deadline.lock()
    }
}

struct RedisHold {
    store: Arc<RedisStore>,
    lease_key: String,
    intent_key: String,
    token: String,
    state: Arc<LeaseState>,
    renewer: tokio::task::AbortHandle,
    lock_delay: Duration,
    /// The end of the change released the lease already.
    released: AtomicBool,
}

impl RedisHold {
    async fn before_write(&self, repository: &str, what: &str) -> Result<(), CoordinationError> {
        let lost = || CoordinationError::LeaseLost(repository.to_string());
        if !self.state.usable() {
            return Err(lost());
        }
        let sent = Instant::now();
        let args = [self.token.clone(), what.to_string(), millis(self.lock_delay)];
        let recorded: i64 =
            self.store.run(INTEND, &[&self.lease_key, &self.intent_key], &args).await?;
        // The intent expires a lock delay after the store wrote it, which was after `sent`:
        // sending within the margin leaves the write its whole timeout before a successor
        // may act.
        if recorded != 1 {
            self.state.lost.store(true, Ordering::SeqCst);
            return Err(lost());
        }
        if sent.elapsed() >= SEND_MARGIN || !self.state.usable() {
            return Err(lost());
        }
        Ok(())
    }
}

impl Drop for RedisHold {
    fn drop(&mut self) {
        self.renewer.abort();
        if self.released.load(Ordering::SeqCst) {
            return;
        }
        let (store, key, token) = (self.store.clone(), self.lease_key.clone(), self.token.clone());
        // Released in the background: the next holder polls, and an unreleased lease expires.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                let _ = store.run::<i64>(RELEASE, &[&key], &[token]).await;
            });
        }
    }
}

/// What a replica does when it hears that a repository changed (`None`: possibly any).
type OnChange = dyn Fn(Option<&str>) + Send + Sync;

/// Keep a lease alive while its holder works; mark it lost when the store says it is gone or
/// its deadline passes without a renewal.
async fn renew(
    store: Weak<RedisStore>,
    key: String,
    token: String,
    settings: Settings,
    state: Arc<LeaseState>,
) {
    let every = settings.lease / 3;
    loop {
        tokio::time::sleep(every).await;
        let Some(store) = store.upgrade() else { return };
        let sent = Instant::now();
        let renewed =
            store.run::<i64>(RENEW, &[&key], &[token.clone(), millis(settings.lease)]).await;
        match renewed {
            Ok(1) => *state.deadline.lock() = sent + settings.lease - settings.margin(),
            Ok(_) => {
                state.lost.store(true, Ordering::SeqCst);
                tracing::warn!(lease = %key, "the lease was taken over; nothing more is sent");
                return;
            }
            Err(error) if !state.usable() => {
                state.lost.store(true, Ordering::SeqCst);
                tracing::warn!(lease = %key, %error, "the lease could not be renewed in time");
                return;
            }
            Err(_) => {}
        }
    }
}

/// Keep this gate's settings record alive, and recreate it (with a quiet period) if the
/// store lost it.
async fn refresh_settings(store: Weak<RedisStore>, settings: Settings) {
    loop {
        tokio::time::sleep(SETTINGS_TTL / 3).await;
        let Some(store) = store.upgrade() else { return };
        if let Err(error) = store.register(&settings).await {
            tracing::warn!(%error, "could not refresh the gate settings in the coordination store");
        }
    }
}

/// Hear which repositories other replicas changed. Messages are lost while disconnected, so
/// every (re)connection starts by dropping everything.
async fn listen_for_changes(store: Weak<RedisStore>, changed: Arc<OnChange>) {
    use futures_util::StreamExt;
    loop {
        let Some(strong) = store.upgrade() else { return };
        let (client, channel) = (strong.client.clone(), strong.keys.channel());
        drop(strong);
        let subscribed = async {
            let mut pubsub = client.get_async_pubsub().await?;
            pubsub.subscribe(&channel).await?;
            Ok::<_, redis::RedisError>(pubsub)
        };
        match tokio::time::timeout(STORE_TIMEOUT * 2, subscribed).await {
            Ok(Ok(pubsub)) => {
                changed(None);
                let mut messages = pubsub.into_on_message();
                while let Some(message) = messages.next().await {
                    if let Ok(repository) = message.get_payload::<String>() {
                        changed(Some(&repository));
                    }
                }
                changed(None);
                tracing::warn!(channel, "lost the coordination store's change messages");
            }
            Ok(Err(error)) => tracing::debug!(%error, "cannot subscribe to changes"),
            Err(_) => tracing::debug!("subscribing to changes timed out"),
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// How the gate talks to Redis (for coordination and for the index): each command within
/// `timeout`, and a prompt reconnection once Redis is back, since changes wait on it.
pub(crate) fn connection_config(timeout: Duration) -> redis::aio::ConnectionManagerConfig {
    redis::aio::ConnectionManagerConfig::new()
        .set_connection_timeout(Some(timeout))
        .set_response_timeout(Some(timeout))
        .set_number_of_retries(1)
        .set_min_delay(Duration::from_millis(50))
        .set_max_delay(Duration::from_millis(500))
}

fn millis(duration: Duration) -> String {
    duration.as_millis().max(1).to_string()
}

/// `redis://user:secret@host:port/db` without the secret.
pub(crate) fn shown_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let credentials = &url[scheme + 3..at];
            let user = credentials.split(':').next().unwrap_or_default();
            format!("{}{user}:***@{}", &url[..scheme + 3], &url[at + 1..])
        }
        _ => url.to_string(),
    }
}

/// A name for this process in tokens: host, process id and start time, so that two processes
/// never share one.
fn replica_id() -> String {
    let started = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    format!("{}-{}-{started:x}", host.trim(), std::process::id())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> Settings {
        Settings {
            lease: Duration::from_secs(10),
            upstream_write_timeout: Duration::from_secs(30),
            authoritative: true,
            upstream: "http://127.0.0.1:5001".into(),
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn one_repository_is_held_by_one_change_at_a_time() {
        let coordinator = Arc::new(Coordinator::local(settings(), Arc::new(Metrics::new())));
        let held = coordinator.lease("team/app", Duration::from_secs(5)).await.unwrap();
        let waiting = {
            let coordinator = coordinator.clone();
            tokio::spawn(async move { coordinator.lease("team/app", Duration::from_secs(5)).await })
        };
        // Another repository is not held up.
        let _other = coordinator.lease("team/other", Duration::from_secs(5)).await.unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiting.is_finished());
        drop(held);
        waiting.await.unwrap().unwrap();
        let busy = {
            let _held = coordinator.lease("team/x", Duration::from_secs(5)).await.unwrap();
            coordinator.lease("team/x", Duration::from_millis(20)).await.err().unwrap()
        };
        assert_eq!(busy.to_string(), "another change of `team/x` has held it for over 20ms");
    }

    #[tokio::test]
    async fn every_change_bumps_the_generation_and_a_finish_releases_the_lease() {
        let coordinator = Coordinator::local(settings(), Arc::new(Metrics::new()));
        let wait = Duration::from_secs(1);
        let lease = coordinator.lease("a", wait).await.unwrap();
        let generation = lease.generation;
        coordinator.finish(lease, true).await.unwrap();
        coordinator.changed("a").await.unwrap();
        let next = coordinator.lease("a", Duration::from_millis(50)).await.unwrap();
        assert_eq!(next.generation, generation + 2);
        let other = coordinator.lease("b", wait).await.unwrap();
        assert_eq!(other.generation, 0, "each repository has its own");
    }

    #[test]
    fn passwords_are_not_shown() {
        assert_eq!(
            shown_url("redis://gate:s3cret@10.0.0.1:6379/2"),
            "redis://gate:***@10.0.0.1:6379/2"
        );
        assert_eq!(shown_url("redis://127.0.0.1:6379"), "redis://127.0.0.1:6379");
    }
}
