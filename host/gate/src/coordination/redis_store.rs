//! Coordination of several gates through Redis: leases renewed while their holder works,
//! intents recorded before each write, generations, the settings record every replica must
//! match, and the pub/sub channel that tells replicas what changed.

use super::scripts::{Acquire, Acquired, Changed, Intend, Register, Release, Renew};
use super::{CoordinationError, Hold, Lease, SEND_MARGIN, Settings};
use crate::metrics::Metrics;
use crate::redis_link::{ScriptCall, connection_config, shown_url};
use parking_lot::Mutex;
use redis::AsyncCommands;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

/// How long a Redis command may take before the store counts as unreachable.
const STORE_TIMEOUT: Duration = Duration::from_secs(1);
/// How long the settings record outlives the last replica that refreshed it.
pub(super) const SETTINGS_TTL: Duration = Duration::from_secs(60);
/// How long a repository's generation stays in Redis after its last change.
const GENERATION_TTL: Duration = Duration::from_secs(7 * 24 * 3600);

/// The names of the store's keys, under the configured namespace.
pub(super) struct Keys {
    pub namespace: String,
}

impl Keys {
    fn lease(&self, repository: &str) -> String {
        self.of("lease", repository)
    }

    fn intent(&self, repository: &str) -> String {
        self.of("intent", repository)
    }

    fn generation(&self, repository: &str) -> String {
        self.of("generation", repository)
    }

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

pub(super) struct RedisStore {
    client: redis::Client,
    /// The URL without its password, for messages.
    pub shown: String,
    pub keys: Keys,
    connection: tokio::sync::OnceCell<redis::aio::ConnectionManager>,
    /// Names this process in its lease tokens and intents.
    replica: String,
    next_token: AtomicU64,
    /// This gate's settings, as the record every replica must match.
    settings: String,
    /// Leases this process holds (or has not yet released), by token: what a stopping gate
    /// releases, so that the other replicas need not wait for them to expire.
    held: Mutex<std::collections::HashMap<String, HeldLease>>,
    /// The store has answered since the gate started: until then the gate is not ready.
    answered: AtomicBool,
}

/// A lease as the store's registry of held leases knows it.
struct HeldLease {
    key: String,
    state: Arc<LeaseState>,
}

impl RedisStore {
    pub fn new(url: &str, namespace: &str, settings: &Settings) -> redis::RedisResult<Self> {
        Ok(RedisStore {
            client: redis::Client::open(url)?,
            shown: shown_url(url),
            keys: Keys { namespace: namespace.to_string() },
            connection: tokio::sync::OnceCell::new(),
            replica: replica_id(),
            next_token: AtomicU64::new(0),
            settings: settings.record(),
            held: Mutex::default(),
            answered: AtomicBool::new(false),
        })
    }

    async fn connection(&self) -> Result<redis::aio::ConnectionManager, CoordinationError> {
        let config = connection_config(STORE_TIMEOUT);
        self.connection
            .get_or_try_init(|| self.client.get_connection_manager_with_config(config))
            .await
            .cloned()
            .map_err(|e| self.unreachable(e))
    }

    fn unreachable(&self, error: redis::RedisError) -> CoordinationError {
        CoordinationError::Unreachable { store: self.shown.clone(), error }
    }

    async fn run<C: ScriptCall>(&self, call: &C) -> Result<C::Reply, CoordinationError> {
        let mut connection = self.connection().await?;
        let reply =
            crate::redis_link::run(&mut connection, call).await.map_err(|e| self.unreachable(e))?;
        self.answered.store(true, Ordering::Relaxed);
        Ok(reply)
    }

    /// Whether the store has answered since the gate started (asking it now if not yet).
    pub async fn has_answered(&self) -> bool {
        if self.answered.load(Ordering::Relaxed) {
            return true;
        }
        let ping = async {
            let mut connection = self.connection().await.ok()?;
            redis::cmd("PING").query_async::<String>(&mut connection).await.ok()
        };
        let answered = matches!(tokio::time::timeout(STORE_TIMEOUT, ping).await, Ok(Some(_)));
        if answered {
            self.answered.store(true, Ordering::Relaxed);
        }
        answered
    }

    /// Release every lease this process still holds, and mark each lost so that its holder
    /// sends nothing more: for a gate that stops with changes still running. Returns how
    /// many were released. An intent recorded for a write in flight stays, so the next
    /// holder waits it out.
    pub async fn release_all(&self) -> usize {
        let held: Vec<(String, HeldLease)> = self.held.lock().drain().collect();
        let mut released = 0;
        for (token, lease) in held {
            lease.state.lost.store(true, Ordering::SeqCst);
            let release = Release { lease_key: &lease.key, token: &token };
            match tokio::time::timeout(STORE_TIMEOUT, self.run(&release)).await {
                Ok(Ok(_)) => released += 1,
                Ok(Err(error)) => {
                    tracing::warn!(lease = %lease.key, %error, "could not release a lease; it expires");
                }
                Err(_) => {
                    tracing::warn!(lease = %lease.key, "releasing a lease timed out; it expires")
                }
            }
        }
        released
    }

    /// Connect and check that every replica on the store has the same settings; then keep
    /// them alive and hear what the other replicas change.
    pub async fn start(
        self: &Arc<Self>,
        settings: &Settings,
        changed: Arc<OnChange>,
    ) -> Result<(), CoordinationError> {
        match self.register(settings).await {
            Ok(()) => {}
            Err(error @ CoordinationError::SettingsDiffer { .. }) => return Err(error),
            Err(error) => tracing::warn!(%error, "tag changes wait for the coordination store"),
        }
        tokio::spawn(refresh_settings(Arc::downgrade(self), settings.clone()));
        tokio::spawn(listen_for_changes(Arc::downgrade(self), changed));
        Ok(())
    }

    async fn register(&self, settings: &Settings) -> Result<(), CoordinationError> {
        let (settings_key, quiet_key) = (self.keys.settings(), self.keys.quiet());
        let call = Register {
            settings_key: &settings_key,
            quiet_key: &quiet_key,
            ours: &self.settings,
            settings_ttl: SETTINGS_TTL,
            lock_delay: settings.lock_delay(),
        };
        match self.run(&call).await? {
            (1, _) => {
                tracing::warn!(
                    store = %self.shown,
                    lock_delay = ?settings.lock_delay(),
                    "the coordination store had no gate settings (first start, or it lost its \
                     data): tag changes wait one lock delay"
                );
                Ok(())
            }
            (0, _) => Ok(()),
            (_, theirs) => Err(CoordinationError::SettingsDiffer {
                store: self.shown.clone(),
                key: settings_key,
                theirs: theirs.unwrap_or_default(),
                ours: self.settings.clone(),
            }),
        }
    }

    pub async fn lease(
        self: &Arc<Self>,
        repository: &str,
        wait: Duration,
        settings: &Settings,
        metrics: &Metrics,
    ) -> Result<Lease, CoordinationError> {
        let token = format!("{}-{}", self.replica, self.next_token.fetch_add(1, Ordering::Relaxed));
        let (lease_key, intent_key) = (self.keys.lease(repository), self.keys.intent(repository));
        let (quiet_key, settings_key) = (self.keys.quiet(), self.keys.settings());
        let generation_key = self.keys.generation(repository);
        let acquire = Acquire {
            lease_key: &lease_key,
            intent_key: &intent_key,
            quiet_key: &quiet_key,
            settings_key: &settings_key,
            generation_key: &generation_key,
            token: &token,
            lease: settings.lease,
            ours: &self.settings,
        };
        let started = Instant::now();
        let mut pause = Duration::from_millis(2);
        loop {
            let sent = Instant::now();
            match Acquire::decode(self.run(&acquire).await?) {
                Acquired::Taken { left, generation } => {
                    let state = Arc::new(LeaseState {
                        deadline: Mutex::new(sent + settings.lease - settings.margin()),
                        lost: AtomicBool::new(false),
                    });
                    let renewer = tokio::spawn(renew(
                        Arc::downgrade(self),
                        lease_key.clone(),
                        token.clone(),
                        settings.clone(),
                        state.clone(),
                    ));
                    self.held.lock().insert(
                        token.clone(),
                        HeldLease { key: lease_key.clone(), state: state.clone() },
                    );
                    let hold = RedisHold {
                        store: self.clone(),
                        lease_key,
                        intent_key,
                        token,
                        state,
                        renewer: renewer.abort_handle(),
                        lock_delay: settings.lock_delay(),
                        released: AtomicBool::new(false),
                    };
                    // An intent left behind, or a store that came up empty: wait until any
                    // write in flight has landed or never will.
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
                Acquired::SettingsDiffer => {
                    let theirs: Option<String> = self
                        .connection()
                        .await?
                        .get(&settings_key)
                        .await
                        .map_err(|e| self.unreachable(e))?;
                    return Err(CoordinationError::SettingsDiffer {
                        store: self.shown.clone(),
                        key: settings_key,
                        theirs: theirs.unwrap_or_default(),
                        ours: self.settings.clone(),
                    });
                }
                Acquired::NoSettings => {
                    self.register(settings).await?;
                    continue;
                }
                Acquired::Held => {}
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

    /// Bump `repository`'s generation and tell the other replicas; at the end of a change
    /// under `holder`, also release its lease and (when its writes were `answered`) its
    /// intent.
    pub async fn changed(
        &self,
        repository: &str,
        holder: Option<(&RedisHold, bool)>,
    ) -> Result<u64, CoordinationError> {
        let (generation_key, lease_key) =
            (self.keys.generation(repository), self.keys.lease(repository));
        let (intent_key, channel) = (self.keys.intent(repository), self.keys.channel());
        let call = Changed {
            generation_key: &generation_key,
            lease_key: &lease_key,
            intent_key: &intent_key,
            channel: &channel,
            repository,
            generation_ttl: GENERATION_TTL,
            holder: holder.map(|(hold, answered)| (hold.token.as_str(), answered)),
        };
        self.run(&call).await
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

/// A lease held in Redis, renewed in the background until it is dropped.
pub(super) struct RedisHold {
    store: Arc<RedisStore>,
    lease_key: String,
    intent_key: String,
    token: String,
    state: Arc<LeaseState>,
    renewer: tokio::task::AbortHandle,
    lock_delay: Duration,
    /// The end of the change released the lease already.
    pub released: AtomicBool,
}

impl RedisHold {
    pub async fn before_write(
        &self,
        repository: &str,
        what: &str,
    ) -> Result<(), CoordinationError> {
        let lost = || CoordinationError::LeaseLost(repository.to_string());
        if !self.state.usable() {
            return Err(lost());
        }
        let sent = Instant::now();
        let call = Intend {
            lease_key: &self.lease_key,
            intent_key: &self.intent_key,
            token: &self.token,
            what,
            lock_delay: self.lock_delay,
        };
        let recorded = self.store.run(&call).await?;
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
            self.store.held.lock().remove(&self.token);
            return;
        }
        let (store, key, token) = (self.store.clone(), self.lease_key.clone(), self.token.clone());
        // Released in the background: the next holder polls, and an unreleased lease expires.
        // It stays in `held` until then, for a gate that stops before this task runs.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                let _ = store.run(&Release { lease_key: &key, token: &token }).await;
                store.held.lock().remove(&token);
            });
        }
    }
}

/// What a replica does when it hears that a repository changed (`None`: possibly any).
pub(super) type OnChange = dyn Fn(Option<&str>) + Send + Sync;

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
    let call = Renew { lease_key: &key, token: &token, lease: settings.lease };
    loop {
        tokio::time::sleep(every).await;
        let Some(store) = store.upgrade() else { return };
        let sent = Instant::now();
        match store.run(&call).await {
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
