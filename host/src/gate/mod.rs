//! The registry gate: a reverse proxy in front of an OCI registry that passes everything
//! through untouched except the requests that change tags, and decides those with the
//! configured policies.
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use tagpolicy::gate::Gate;
//! let gate = Gate::load("gate.yaml".as_ref(), tagpolicy::Loader::new(tagpolicy::Engine::new()?))?;
//! let listener = tokio::net::TcpListener::bind(gate.listen()).await?;
//! gate.serve(listener, std::future::pending()).await?;
//! # Ok(()) }
//! ```

mod config;
pub mod identity;
mod log;
mod metrics;
mod proxy;
mod state;
mod upstream;

pub use config::{ConfigError, GateConfig};

use crate::policy_set::Loader;
use arc_swap::ArcSwap;
use config::Rules;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use metrics::Metrics;
use state::{RepositoryLocks, StateCache};
use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use upstream::Upstream;

/// How often the configuration file is checked for changes.
const WATCH_INTERVAL: Duration = Duration::from_secs(1);

/// What a reload replaces: the rules with their loaded policies, and the decision log.
struct Active {
    config: GateConfig,
    rules: Rules,
    log: Option<log::DecisionLog>,
}

/// What every request shares.
struct Shared {
    active: ArcSwap<Active>,
    loader: Loader,
    upstream: Arc<Upstream>,
    metrics: Arc<Metrics>,
    cache: Arc<StateCache>,
    locks: RepositoryLocks,
}

/// A loaded gate, ready to serve.
pub struct Gate {
    shared: Arc<Shared>,
}

impl Gate {
    /// Read the configuration and load every policy it names. Compiles policies: call it
    /// from a blocking context.
    pub fn load(path: &Path, loader: Loader) -> Result<Gate, ConfigError> {
        let config = GateConfig::from_file(path)?;
        let active = activate(config, &loader)?;
        let metrics = Arc::new(Metrics::new());
        let upstream = Arc::new(Upstream::new(active.config.upstream.clone(), metrics.clone()));
        let cache = Arc::new(StateCache::new(active.config.state_cache));
        Ok(Gate {
            shared: Arc::new(Shared {
                active: ArcSwap::from_pointee(active),
                loader,
                upstream,
                metrics,
                cache,
                locks: RepositoryLocks::default(),
            }),
        })
    }

    pub fn listen(&self) -> SocketAddr {
        self.shared.active.load().config.listen
    }

    /// A one-line description of each rule, for the start-up log.
    pub fn describe(&self) -> Vec<String> {
        let active = self.shared.active.load();
        let mut lines: Vec<String> = active
            .rules
            .iter()
            .map(|rule| {
                let names: Vec<&str> = rule.policies.policies().map(|(p, _)| p.name()).collect();
                format!("{} -> {}", rule.repositories.join(", "), names.join(", "))
            })
            .collect();
        if active.rules.identity.is_anonymous() {
            lines.push(
                "no identity source configured: every request is anonymous to the policies".into(),
            );
        }
        lines
    }

    /// Load the configuration file again and swap it in; on any error the running
    /// configuration stays. Compiles policies: call it from a blocking context.
    pub fn reload(&self) -> Result<(), ConfigError> {
        reload(&self.shared)
    }

    /// Serve on `listener` until `shutdown` completes, reloading the configuration on SIGHUP
    /// and when its file changes.
    pub async fn serve(
        self,
        listener: tokio::net::TcpListener,
        shutdown: impl Future<Output = ()>,
    ) -> std::io::Result<()> {
        let watcher = tokio::spawn(watch(self.shared.clone()));
        tokio::pin!(shutdown);
        let result = loop {
            let (stream, peer) = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok(accepted) => accepted,
                    // Out of file descriptors and the like: wait, do not spin or exit.
                    Err(error) => {
                        tracing::warn!(%error, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
                () = &mut shutdown => break Ok(()),
            };
            let _ = stream.set_nodelay(true);
            let shared = self.shared.clone();
            tokio::spawn(async move {
                let service = service_fn(move |request| {
                    let shared = shared.clone();
                    async move {
                        Ok::<_, std::convert::Infallible>(
                            proxy::handle(shared, peer, request).await,
                        )
                    }
                });
                if let Err(error) =
                    http1::Builder::new().serve_connection(TokioIo::new(stream), service).await
                {
                    tracing::debug!(%peer, %error, "connection ended with an error");
                }
            });
        };
        watcher.abort();
        result
    }
}

fn activate(config: GateConfig, loader: &Loader) -> Result<Active, ConfigError> {
    let rules = config.load(loader)?;
    let log = match &config.decision_log {
        Some(path) => Some(
            log::DecisionLog::open(path)
                .map_err(|source| ConfigError::Read { path: path.clone(), source })?,
        ),
        None => None,
    };
    Ok(Active { config, rules, log })
}

fn reload(shared: &Shared) -> Result<(), ConfigError> {
    let current = shared.active.load_full();
    let result = GateConfig::from_file(&current.config.path).and_then(|config| {
        if config.listen != current.config.listen || config.upstream != current.config.upstream {
            tracing::warn!(
                "`listen` and `upstream` change only on restart; keeping the running ones"
            );
        }
        let mut config = config;
        config.listen = current.config.listen;
        config.upstream = current.config.upstream.clone();
        activate(config, &shared.loader)
    });
    shared.metrics.reload(result.is_ok());
    let active = result?;
    shared.active.store(Arc::new(active));
    Ok(())
}

/// Reload on SIGHUP and when the file's modification time or size changes.
async fn watch(shared: Arc<Shared>) {
    let path: PathBuf = shared.active.load().config.path.clone();
    let stamp = |path: &Path| -> Option<(SystemTime, u64)> {
        let meta = std::fs::metadata(path).ok()?;
        Some((meta.modified().ok()?, meta.len()))
    };
    let mut seen = stamp(&path);
    #[cfg(unix)]
    let mut hangup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
    let mut tick = tokio::time::interval(WATCH_INTERVAL);
    loop {
        #[cfg(unix)]
        let signalled = async {
            match hangup.as_mut() {
                Some(signal) => {
                    signal.recv().await;
                }
                None => std::future::pending().await,
            }
        };
        #[cfg(not(unix))]
        let signalled = std::future::pending::<()>();
        let why = tokio::select! {
            () = signalled => "SIGHUP",
            _ = tick.tick() => {
                let now = stamp(&path);
                if now == seen || now.is_none() { continue; }
                seen = now;
                "the file changed"
            }
        };
        let shared_for_reload = shared.clone();
        let result = tokio::task::spawn_blocking(move || reload(&shared_for_reload)).await;
        match result {
            Ok(Ok(())) => tracing::info!(path = %path.display(), why, "configuration reloaded"),
            Ok(Err(error)) => {
                tracing::error!(%error, why, "configuration not reloaded; the running one stays")
            }
            Err(error) => tracing::error!(%error, "configuration reload panicked"),
        }
    }
}
