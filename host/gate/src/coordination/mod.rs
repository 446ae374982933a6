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

mod local;
mod redis_store;
mod scripts;

use crate::metrics::Metrics;
use local::LocalStore;
use redis_store::{RedisHold, RedisStore};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use tokio::sync::OwnedMutexGuard;

/// The longest a holder may take between recording its intent and sending the write; part of
/// the lock delay a successor waits.
pub const SEND_MARGIN: Duration = Duration::from_secs(1);

/// Why a change could not be coordinated. Nothing is written upstream after any of these.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CoordinationError {
    #[error("another change of `{repository}` has held it for over {}", humantime::format_duration(*waited))]
    Busy { repository: String, waited: Duration },
    #[error("the coordination store `{store}` cannot be reached ({error})")]
    Unreachable {
        store: String,
        #[source]
        error: redis::RedisError,
    },
    #[error("the lease on `{0}` ran out before the write could be sent")]
    LeaseLost(String),
    #[error(
        "the coordination store `{store}` is used by gates with other settings: it holds \
         `{theirs}`, this gate has `{ours}`; give every replica the same `coordination`, \
         `authoritative`, `upstream` and `limits.upstream_write_timeout` (after a deliberate \
         change, stop every replica and wait {}, or delete the key `{key}`)",
        humantime::format_duration(redis_store::SETTINGS_TTL)
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
    Local(LocalStore),
    Redis(Arc<RedisStore>),
}

impl Coordinator {
    /// One gate, coordinating with itself.
    pub fn local(settings: Settings, metrics: Arc<Metrics>) -> Self {
        Coordinator { settings, metrics, store: Store::Local(LocalStore::default()) }
    }

    /// Several gates sharing the Redis at `url`, with keys under `namespace`. Connects only
    /// when [`start`](Self::start) is called.
    pub fn redis(
        url: &str,
        namespace: &str,
        settings: Settings,
        metrics: Arc<Metrics>,
    ) -> redis::RedisResult<Self> {
        let store = RedisStore::new(url, namespace, &settings)?;
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
        store.start(&self.settings, Arc::new(changed)).await
    }

    /// The coordination store, if this gate has one and it has not answered since the gate
    /// started: until it has, the gate is not ready.
    pub async fn waiting_for_store(&self) -> Option<&str> {
        match &self.store {
            Store::Redis(store) if !store.has_answered().await => Some(&store.shown),
            _ => None,
        }
    }

    /// Release the leases of changes still running when the gate stops (see
    /// [`RedisStore::release_all`]); a single gate's locks go with the process.
    pub async fn release_all(&self) -> usize {
        match &self.store {
            Store::Redis(store) => store.release_all().await,
            Store::Local(_) => 0,
        }
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
}
