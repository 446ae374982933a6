//! The registry gate: a reverse proxy in front of an OCI registry that decides every request
//! that changes tags with the configured policies, passes reads and blob uploads through
//! untouched, and refuses every other write (unless the operator lists it in `pass_writes`)
//! and every spelling of a write that a registry could read differently ([`route`]).
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use tagpolicy_gate::Gate;
//! let gate = Gate::load("gate.yaml".as_ref(), tagpolicy::Loader::new(tagpolicy::Engine::new()?))?;
//! let listener = tokio::net::TcpListener::bind(gate.listen()).await?;
//! gate.serve(listener, std::future::pending()).await?;
//! # Ok(()) }
//! ```

mod admin;
mod answer;
pub mod audit;
mod config;
mod coordination;
pub mod identity;
mod images;
mod index;
mod limits;
mod log;
mod metrics;
mod notifications;
mod proxy;
mod read_account;
mod redis_link;
mod refresh;
mod reload;
mod restart_only;
pub mod route;
mod rule_matcher;
mod server;
mod shutdown;
mod stall;
mod state;
mod tag_list;
mod tls;
mod upstream;

pub use admin::serve_while_loading;
pub use config::{ConfigError, CoordinationSpec, GateConfig, ReadAccountSpec};
pub use coordination::CoordinationError;
pub use index::IndexSettings;
pub use limits::GateLimits;
pub use tls::CertificateFiles;

use arc_swap::ArcSwap;
use config::Rules;
use coordination::Coordinator;
use metrics::Metrics;
use state::StateCache;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tagpolicy::Loader;
use upstream::Upstream;

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
    /// Fixed at start: `limits` in the file change only on restart.
    limits: GateLimits,
    /// Where the admin endpoints are served apart from clients (fixed at start).
    admin_listen: Option<SocketAddr>,
    upstream: Arc<Upstream>,
    /// The listener's TLS, fixed at start (its certificate files are watched for rotation).
    tls: Option<tls::ServerTls>,
    metrics: Arc<Metrics>,
    cache: Arc<StateCache>,
    /// Who may change a repository now (fixed at start).
    coordinator: Arc<Coordinator>,
    /// The repository index, when the gate keeps one (fixed at start).
    index: Option<Arc<index::Index>>,
    /// The operator's word that every write goes through the gates (fixed at start).
    authoritative: bool,
    /// The token registry notifications carry (fixed at start); `None`: not accepted.
    notifications_token: Option<String>,
    /// Fetches `oci://` policies and follows their tags (settings fixed at start).
    fetcher: Arc<tagpolicy_oci::fetch::Fetcher>,
    /// Held while a configuration is loaded and swapped in: a file-change reload and a
    /// followed tag's swap must not finish in the wrong order (one loaded with the old pin
    /// stored after one loaded with the new).
    reloading: parking_lot::Mutex<()>,
    /// Set when the gate begins to stop: `/readyz` says so and connections wind down.
    stopping: shutdown::Stopping,
}

/// A loaded gate, ready to serve.
pub struct Gate {
    shared: Arc<Shared>,
    /// The admin listener, when the caller bound it (`admin_listen` with port 0, say).
    admin: Option<tokio::net::TcpListener>,
}

/// What fetches and verifies the configuration's `oci://` policies.
fn policy_fetcher(config: &GateConfig) -> Result<Arc<tagpolicy_oci::fetch::Fetcher>, ConfigError> {
    let fetcher = config
        .policy_registries
        .fetcher(&tagpolicy_oci::config::default_cache_dir())
        .map_err(|message| ConfigError::Invalid {
            path: config.path.clone(),
            message: format!("policy_registries.{message}"),
        })?;
    Ok(Arc::new(fetcher))
}

/// The configuration's upstream registry: its TLS (for `https` only) and the gate's own read
/// account.
fn upstream(config: &GateConfig, metrics: Arc<Metrics>) -> Result<Upstream, ConfigError> {
    let invalid = |message: String| ConfigError::Invalid { path: config.path.clone(), message };
    let tls = match config.upstream.scheme_str() {
        Some("https") => {
            let upstream_tls = tls::upstream_config(
                config.upstream_ca.as_deref(),
                config.upstream_client_cert.as_ref(),
            )
            .map_err(invalid)?;
            // Read once, at start (a restart-only setting): the expiry of the one in use.
            if let Some(not_after) = upstream_tls.client_certificate_not_after {
                metrics.certificate_expiry("upstream_client", not_after);
            }
            Some(upstream_tls.config)
        }
        _ => None,
    };
    let account = match &config.upstream_read {
        Some(spec) => Some(spec.load().map_err(invalid)?),
        None => None,
    };
    Ok(Upstream::new(
        config.upstream.clone(),
        metrics,
        config.limits.upstream_write_timeout,
        tls,
        account,
    ))
}

impl Gate {
    /// Read the configuration and load every policy it names. Compiles policies: call it
    /// from a blocking context.
    pub fn load(path: &Path, loader: Loader) -> Result<Gate, ConfigError> {
        Gate::from_config(GateConfig::from_file(path)?, loader)
    }

    /// [`Gate::load`] of a configuration already read (for a caller that needed a field of
    /// it first, such as `admin_listen`).
    pub fn from_config(config: GateConfig, loader: Loader) -> Result<Gate, ConfigError> {
        let path = config.path.clone();
        let fetcher = policy_fetcher(&config)?;
        let loader = loader.with_source(fetcher.clone());
        let metrics = Arc::new(Metrics::new());
        let active = reload::activate(config, &loader, &metrics)?;
        let limits = active.config.limits.clone();
        let config = &active.config;
        let invalid = |message: String| ConfigError::Invalid { path: path.clone(), message };
        let tls = match &config.tls {
            Some(files) => {
                Some(tls::ServerTls::load(files).map_err(|e| invalid(format!("tls: {e}")))?)
            }
            None => None,
        };
        let upstream = Arc::new(upstream(config, metrics.clone())?);
        let cache = Arc::new(StateCache::new(active.config.state_cache));
        let settings = coordination::Settings {
            lease: config.coordination.as_ref().map_or(Duration::ZERO, |c| c.lease),
            upstream_write_timeout: limits.upstream_write_timeout,
            authoritative: config.authoritative,
            upstream: config.upstream.to_string(),
        };
        let coordinator = match &config.coordination {
            None => Coordinator::local(settings, metrics.clone()),
            Some(spec) => {
                Coordinator::redis(&spec.redis, &spec.namespace, settings, metrics.clone())
                    .map_err(|e| invalid(format!("coordination.redis: `{}`: {e}", spec.redis)))?
            }
        };
        let notifications_token = config.notifications_token().map_err(invalid)?;
        let authoritative = config.authoritative;
        let admin_listen = config.admin_listen;
        let coordinator = Arc::new(coordinator);
        // The index is the truth only when the gates see every write or hear of the others,
        // and it is read with the gate's own account, never a client's.
        let keeps_index = config.upstream_read.is_some()
            && (config.authoritative || notifications_token.is_some());
        let index = if keeps_index {
            let backing = match &config.coordination {
                None => index::Backing::Memory,
                Some(spec) => index::Backing::Redis {
                    url: &spec.redis,
                    shown: redis_link::shown_url(&spec.redis),
                    namespace: &spec.namespace,
                },
            };
            let index = index::Index::new(
                backing,
                config.index.clone(),
                upstream.clone(),
                coordinator.clone(),
                metrics.clone(),
                limits.lock_timeout,
            )
            .map_err(|e| invalid(format!("coordination.redis: {e}")))?;
            Some(Arc::new(index))
        } else {
            None
        };
        Ok(Gate {
            shared: Arc::new(Shared {
                active: ArcSwap::from_pointee(active),
                loader,
                limits,
                admin_listen,
                upstream,
                tls,
                metrics,
                cache,
                coordinator,
                index,
                authoritative,
                notifications_token,
                fetcher,
                reloading: parking_lot::Mutex::new(()),
                stopping: shutdown::Stopping::new(),
            }),
            admin: None,
        })
    }

    /// Join the other replicas: connect to the coordination store (if configured) and check
    /// that they all have the same settings. Call before [`serve`](Self::serve); a gate
    /// whose settings differ from those on the store must not serve.
    pub async fn connect(&self) -> Result<(), CoordinationError> {
        let cache = self.shared.cache.clone();
        self.shared.coordinator.start(move |repository| cache.invalidate(repository)).await?;
        if let Some(index) = &self.shared.index {
            index.start();
        }
        Ok(())
    }

    pub fn listen(&self) -> SocketAddr {
        self.shared.active.load().config.listen
    }

    /// `https` when the gate serves TLS, else `http`.
    pub fn scheme(&self) -> &'static str {
        if self.shared.tls.is_some() { "https" } else { "http" }
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
        let config = &active.config;
        lines.push(self.shared.coordinator.describe());
        match (&self.shared.index, &config.upstream_read) {
            (Some(index), _) => {
                lines.push(index.describe());
                lines.push(format!(
                    "the gate reads the upstream {} for what it indexes and decides on",
                    self.shared.upstream.account_description()
                ));
                if config.authoritative {
                    lines.push(
                        "authoritative: tag digests come from the index, not looked up before \
                         each push; every write must go through the gates (or be reported by \
                         notifications)"
                            .into(),
                    );
                } else {
                    lines.push(
                        "not authoritative: each pushed tag is looked up before it is decided; \
                         the rest of the repository comes from the index, which hears of writes \
                         made around the gates through notifications"
                            .into(),
                    );
                }
            }
            (None, None) => lines.push(
                "no repository index: without `upstream_read` the gate reads what a decision \
                 needs with the client's credentials, for that client only (a policy that \
                 queries the repository makes it read every tag)"
                    .into(),
            ),
            (None, Some(_)) => lines.push(
                "no repository index: without `authoritative` or `notifications` the gate \
                 cannot know of writes made around it, so it reads what a decision needs from \
                 the upstream each time (a policy that queries the repository makes it read \
                 every tag)"
                    .into(),
            ),
        }
        if self.shared.notifications_token.is_some() {
            lines.push(format!("registry notifications accepted at POST {}", notifications::PATH));
        }
        if let Some(files) = &config.tls {
            lines.push(format!("TLS with `{}` (HTTP/2 and HTTP/1.1)", files.cert.display()));
        }
        if config.upstream.scheme_str() == Some("https") {
            let ca = match &config.upstream_ca {
                Some(ca) => format!(" and `{}`", ca.display()),
                None => String::new(),
            };
            lines.push(format!(
                "upstream {} verified against the system's roots{ca}",
                config.upstream
            ));
        }
        let followed = self.shared.fetcher.pinned();
        if !followed.is_empty() {
            lines.push(format!(
                "policy tags resolved again every {}: {}",
                humantime::format_duration(config.policy_registries.refresh()),
                followed.iter().map(|p| p.reference.to_string()).collect::<Vec<_>>().join(", ")
            ));
        }
        lines.extend(reload::pass_writes_warning(&active.rules.pass_writes));
        lines
    }

    /// Load the configuration file again and swap it in; on any error the running
    /// configuration stays. Compiles policies: call it from a blocking context.
    pub fn reload(&self) -> Result<(), ConfigError> {
        reload::reload(&self.shared)
    }

    /// Where the configuration asks for the admin endpoints to be served apart from clients.
    pub fn admin_listen(&self) -> Option<SocketAddr> {
        self.shared.admin_listen
    }

    /// Serve the admin endpoints on `listener` (bound by the caller at
    /// [`admin_listen`](Self::admin_listen)); without it, [`serve`](Self::serve) binds that
    /// address itself.
    pub fn with_admin_listener(self, listener: tokio::net::TcpListener) -> Self {
        Self { admin: Some(listener), ..self }
    }
}
