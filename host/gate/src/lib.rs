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
mod restart_only;
pub mod route;
mod rule_matcher;
mod stall;
mod state;
mod tag_list;
mod tls;
mod upstream;

pub use config::{ConfigError, CoordinationSpec, GateConfig, ReadAccountSpec};
pub use coordination::CoordinationError;
pub use index::IndexSettings;
pub use limits::GateLimits;
pub use tls::CertificateFiles;

use arc_swap::ArcSwap;
use config::Rules;
use coordination::Coordinator;
use http_body_util::BodyExt;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use metrics::Metrics;
use restart_only::RestartOnly;
use stall::WriteStall;
use state::StateCache;
use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tagpolicy::Loader;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
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
}

/// A loaded gate, ready to serve.
pub struct Gate {
    shared: Arc<Shared>,
    /// The admin listener, when the caller bound it (`admin_listen` with port 0, say).
    admin: Option<tokio::net::TcpListener>,
}

impl Gate {
    /// Read the configuration and load every policy it names. Compiles policies: call it
    /// from a blocking context.
    pub fn load(path: &Path, loader: Loader) -> Result<Gate, ConfigError> {
        let config = GateConfig::from_file(path)?;
        let fetcher = Arc::new(
            config.policy_registries.fetcher(&tagpolicy_oci::config::default_cache_dir()).map_err(
                |message| ConfigError::Invalid {
                    path: path.to_path_buf(),
                    message: format!("policy_registries.{message}"),
                },
            )?,
        );
        let loader = loader.with_source(fetcher.clone());
        let active = activate(config, &loader)?;
        let metrics = Arc::new(Metrics::new());
        let limits = active.config.limits.clone();
        let config = &active.config;
        let invalid = |message: String| ConfigError::Invalid { path: path.to_path_buf(), message };
        let upstream_tls = match config.upstream.scheme_str() {
            Some("https") => Some(
                tls::upstream_config(
                    config.upstream_ca.as_deref(),
                    config.upstream_client_cert.as_ref(),
                )
                .map_err(invalid)?,
            ),
            _ => None,
        };
        let tls = match &config.tls {
            Some(files) => {
                Some(tls::ServerTls::load(files).map_err(|e| invalid(format!("tls: {e}")))?)
            }
            None => None,
        };
        let account = match &config.upstream_read {
            Some(spec) => Some(spec.load().map_err(invalid)?),
            None => None,
        };
        let upstream = Arc::new(Upstream::new(
            config.upstream.clone(),
            metrics.clone(),
            limits.upstream_write_timeout,
            upstream_tls,
            account,
        ));
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
        lines.extend(pass_writes_warning(&active.rules.pass_writes));
        lines
    }

    /// Load the configuration file again and swap it in; on any error the running
    /// configuration stays. Compiles policies: call it from a blocking context.
    pub fn reload(&self) -> Result<(), ConfigError> {
        reload(&self.shared)
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

    /// Serve on `listener` until `shutdown` completes, reloading the configuration on SIGHUP
    /// and when its file changes.
    pub async fn serve(
        self,
        listener: tokio::net::TcpListener,
        shutdown: impl Future<Output = ()>,
    ) -> std::io::Result<()> {
        let admin = match (self.admin, self.shared.admin_listen) {
            (Some(listener), _) => Some(listener),
            (None, Some(address)) => Some(tokio::net::TcpListener::bind(address).await?),
            (None, None) => None,
        };
        let admin = admin.map(|listener| tokio::spawn(admin::serve(self.shared.clone(), listener)));
        let watcher = tokio::spawn(watch(self.shared.clone()));
        let interval = self.shared.active.load().config.policy_registries.refresh();
        let follower = tokio::spawn(refresh::follow(
            self.shared.clone(),
            self.shared.fetcher.clone(),
            interval,
        ));
        let limits = &self.shared.limits;
        let slots = Arc::new(Semaphore::new(limits.max_connections));
        let turned_away = Arc::new(Semaphore::new(TURNED_AWAY_AT_ONCE));
        let per_client =
            PerClient::new(limits.max_connections_per_client.min(limits.max_connections));
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
            let Some(client_slot) = per_client.acquire(peer.ip()) else {
                self.shared.metrics.connection_rejected();
                tracing::warn!(%peer, limit = per_client.limit, "connection limit per client reached");
                if let Ok(permit) = turned_away.clone().try_acquire_owned() {
                    let why = format!(
                        "the gate serves at most {} connections at once from one address",
                        limits.max_connections_per_client
                    );
                    tokio::spawn(turn_away(stream, why, permit));
                }
                continue;
            };
            let Ok(slot) = slots.clone().try_acquire_owned() else {
                self.shared.metrics.connection_rejected();
                tracing::warn!(%peer, limit = limits.max_connections, "connection limit reached");
                // Answer while few are waiting; beyond that, close at once.
                if let Ok(permit) = turned_away.clone().try_acquire_owned() {
                    let why = format!(
                        "the gate serves at most {} connections at once",
                        limits.max_connections
                    );
                    tokio::spawn(turn_away(stream, why, permit));
                }
                continue;
            };
            let _ = stream.set_nodelay(true);
            tokio::spawn(connection(self.shared.clone(), stream, peer, (slot, client_slot)));
        };
        watcher.abort();
        follower.abort();
        if let Some(admin) = admin {
            admin.abort();
        }
        result
    }
}

/// Serve one client connection: TLS first if configured (within `header_timeout`), then
/// HTTP/2 if the client chose it by ALPN, else HTTP/1.1.
async fn connection(
    shared: Arc<Shared>,
    stream: tokio::net::TcpStream,
    peer: SocketAddr,
    _slots: (OwnedSemaphorePermit, ClientSlot),
) {
    let _open = shared.metrics.connection();
    let limits = shared.limits.clone();
    let stream = WriteStall::new(stream, limits.idle_timeout, shared.metrics.clone());
    let Some(tls) = &shared.tls else {
        shared.metrics.connection_protocol("http/1.1");
        let result = http1_builder(&limits)
            .serve_connection(TokioIo::new(stream), service(shared.clone(), peer, false))
            .await;
        return connection_ended(&shared, peer, result);
    };
    let acceptor = tokio_rustls::TlsAcceptor::from(tls.config());
    let stream = match tokio::time::timeout(limits.header_timeout, acceptor.accept(stream)).await {
        Ok(Ok(stream)) => stream,
        Ok(Err(error)) => {
            shared.metrics.tls_handshake_failed();
            tracing::info!(%peer, %error, "TLS handshake failed");
            return;
        }
        Err(_) => {
            shared.metrics.timeout("header");
            tracing::info!(%peer, "closed: no TLS handshake in time");
            return;
        }
    };
    let io = TokioIo::new(stream);
    if io.inner().get_ref().1.alpn_protocol() == Some(b"h2") {
        shared.metrics.connection_protocol("h2 over tls");
        return serve_http2(shared, io, peer).await;
    }
    shared.metrics.connection_protocol("http/1.1 over tls");
    let result =
        http1_builder(&limits).serve_connection(io, service(shared.clone(), peer, true)).await;
    connection_ended(&shared, peer, result);
}

/// Serve an HTTP/2 connection. HTTP/1.1 has `header_timeout` for a request's headers and for
/// an idle keep-alive; HTTP/2 has neither (a client answering pings, or trickling one
/// HEADERS frame, would hold a connection slot forever), so the gate closes a connection on
/// which no request has been in flight (from its headers to the end of its response) for
/// `header_timeout`: first with GOAWAY, then, if the client does not finish, by dropping it.
async fn serve_http2(
    shared: Arc<Shared>,
    io: TokioIo<tokio_rustls::server::TlsStream<WriteStall<tokio::net::TcpStream>>>,
    peer: SocketAddr,
) {
    let idle_limit = shared.limits.header_timeout;
    let activity = Arc::new(Activity::new());
    let handovers = Arc::new(stall::Handovers::default());
    let tracked = {
        let (shared, activity, handovers) = (shared.clone(), activity.clone(), handovers.clone());
        service_fn(move |request| {
            let (shared, started) = (shared.clone(), activity.begin());
            let handovers = handovers.clone();
            async move {
                let response = proxy::handle(shared, peer, true, request).await;
                // The request counts as in flight until its response body is done or dropped.
                Ok::<_, std::convert::Infallible>(response.map(|body| {
                    let body = body.map_frame(move |frame| {
                        let _in_flight = &started;
                        frame
                    });
                    handovers.watch(body).boxed()
                }))
            }
        })
    };
    let served = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
        .timer(TokioTimer::new())
        .max_header_list_size(u32::try_from(shared.limits.max_header_bytes).unwrap_or(u32::MAX))
        .max_concurrent_streams(MAX_STREAMS_PER_CONNECTION)
        .keep_alive_interval(Some(idle_limit))
        .serve_connection(io, tracked);
    tokio::pin!(served);
    let check_every = (idle_limit / 4).max(Duration::from_millis(10));
    loop {
        tokio::select! {
            result = served.as_mut() => return connection_ended(&shared, peer, result),
            () = tokio::time::sleep(check_every) => {
                if activity.idle_for() >= Some(idle_limit) {
                    break;
                }
                if handovers.longest_wait() >= Some(shared.limits.idle_timeout) {
                    // A stream whose client grants no window: as on HTTP/1.1, the client
                    // stopped reading, and the connection goes (GOAWAY would wait on it).
                    shared.metrics.timeout("client_write");
                    tracing::info!(%peer, limit = ?shared.limits.idle_timeout, "closed an HTTP/2 connection whose client stopped taking a response");
                    return;
                }
            }
        }
    }
    shared.metrics.timeout("header");
    tracing::info!(%peer, timeout = ?idle_limit, "closed: HTTP/2 connection without a request in time");
    served.as_mut().graceful_shutdown();
    // Nothing is in flight, so GOAWAY ends the connection at once for a well-behaved client;
    // one that does not read it is dropped.
    if let Ok(result) = tokio::time::timeout(idle_limit, served).await {
        connection_ended(&shared, peer, result);
    }
}

/// Connections open per client address, so that one client cannot take every slot. An
/// address leaves the map with its last connection, so it holds at most `max_connections`
/// entries.
struct PerClient {
    limit: usize,
    open: Arc<parking_lot::Mutex<std::collections::HashMap<std::net::IpAddr, usize>>>,
}

/// One connection of a client; dropped when it closes.
struct ClientSlot {
    peer: std::net::IpAddr,
    open: Arc<parking_lot::Mutex<std::collections::HashMap<std::net::IpAddr, usize>>>,
}

impl PerClient {
    fn new(limit: usize) -> Self {
        PerClient { limit, open: Arc::default() }
    }

    fn acquire(&self, peer: std::net::IpAddr) -> Option<ClientSlot> {
        let mut open = self.open.lock();
        let count = open.entry(peer).or_insert(0);
        if *count >= self.limit {
            return None;
        }
        *count += 1;
        Some(ClientSlot { peer, open: self.open.clone() })
    }
}

impl Drop for ClientSlot {
    fn drop(&mut self) {
        let mut open = self.open.lock();
        if let Some(count) = open.get_mut(&self.peer) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.peer);
            }
        }
    }
}

/// How many requests of one connection are in flight, and since when none is.
struct Activity(parking_lot::Mutex<(usize, Option<std::time::Instant>)>);

/// One request in flight; dropped when its response is done.
struct InFlight(Arc<Activity>);

impl Activity {
    fn new() -> Self {
        Activity(parking_lot::Mutex::new((0, Some(std::time::Instant::now()))))
    }

    fn state(&self) -> parking_lot::MutexGuard<'_, (usize, Option<std::time::Instant>)> {
        self.0.lock()
    }

    fn begin(self: &Arc<Self>) -> InFlight {
        let mut state = self.state();
        *state = (state.0 + 1, None);
        InFlight(self.clone())
    }

    /// How long no request has been in flight; `None` while one is.
    fn idle_for(&self) -> Option<Duration> {
        self.state().1.map(|since| since.elapsed())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let mut state = self.0.state();
        state.0 -= 1;
        if state.0 == 0 {
            state.1 = Some(std::time::Instant::now());
        }
    }
}

/// Most requests in flight at once on one HTTP/2 connection.
const MAX_STREAMS_PER_CONNECTION: u32 = 128;

fn http1_builder(limits: &GateLimits) -> http1::Builder {
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .max_header_size(limits.max_header_bytes);
    http
}

/// Every request of a connection goes to the proxy; `tls` says how the client connected.
fn service(
    shared: Arc<Shared>,
    peer: SocketAddr,
    tls: bool,
) -> impl hyper::service::Service<
    http::Request<hyper::body::Incoming>,
    Response = http::Response<upstream::Body>,
    Error = std::convert::Infallible,
    Future = impl Future<Output = Result<http::Response<upstream::Body>, std::convert::Infallible>>
             + Send,
> + Clone {
    service_fn(move |request| {
        let shared = shared.clone();
        async move { Ok::<_, std::convert::Infallible>(proxy::handle(shared, peer, tls, request).await) }
    })
}

fn connection_ended(shared: &Shared, peer: SocketAddr, result: Result<(), hyper::Error>) {
    let Err(error) = result else { return };
    if error.is_timeout() {
        shared.metrics.timeout("header");
        tracing::info!(%peer, timeout = ?shared.limits.header_timeout, "closed: no complete request headers in time");
    } else if error.is_parse_too_large() {
        shared.metrics.refused("header_too_large");
        tracing::info!(%peer, "refused: request headers too large (431)");
    } else {
        tracing::debug!(%peer, %error, "connection ended with an error");
    }
}

/// How many connections over the limit are answered at once (the rest are closed unanswered).
const TURNED_AWAY_AT_ONCE: usize = 64;

/// Answer a connection over the limit with 429 `TOOMANYREQUESTS` and close it, reading (and
/// dropping) what the client sends for a moment so that it sees the answer, not a reset.
async fn turn_away(mut stream: tokio::net::TcpStream, why: String, _permit: OwnedSemaphorePermit) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let body =
        format!(r#"{{"errors":[{{"code":"TOOMANYREQUESTS","message":"{why}; try again"}}]}}"#);
    let response = format!(
        "HTTP/1.1 429 Too Many Requests\r\ncontent-type: application/json\r\nretry-after: 1\r\n\
         connection: close\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    let exchange = async {
        stream.write_all(response.as_bytes()).await?;
        stream.shutdown().await?;
        let mut sink = [0u8; 4096];
        while stream.read(&mut sink).await? > 0 {}
        Ok::<_, std::io::Error>(())
    };
    let _ = tokio::time::timeout(Duration::from_secs(1), exchange).await;
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

/// The start-up (and reload) warning for writes that bypass the policies.
fn pass_writes_warning(pass: &route::PassWrites) -> Option<String> {
    (!pass.is_empty()).then(|| {
        format!(
            "WARNING: writes to {} pass through undecided: they bypass the policies",
            pass.patterns().iter().map(|p| format!("`{p}`")).collect::<Vec<_>>().join(", ")
        )
    })
}

fn reload(shared: &Shared) -> Result<(), ConfigError> {
    let _reloading = shared.reloading.lock();
    reload_locked(shared)
}

/// [`reload`], for a caller that holds `shared.reloading`.
fn reload_locked(shared: &Shared) -> Result<(), ConfigError> {
    let current = shared.active.load_full();
    let result = GateConfig::from_file(&current.config.path).and_then(|config| {
        let running = RestartOnly::of(&current.config);
        let changed = running.changed(&RestartOnly::of(&config));
        if !changed.is_empty() {
            tracing::warn!(
                settings = changed.join(", "),
                "these settings change only on restart (certificate files are re-read when \
                 they change); keeping the running ones"
            );
        }
        let config = running.keep_in(config);
        if let Some(warning) = pass_writes_warning(&config.pass_writes) {
            tracing::warn!("{warning}");
        }
        activate(config, &shared.loader)
    });
    shared.metrics.reload(result.is_ok());
    let active = result?;
    shared.active.store(Arc::new(active));
    Ok(())
}

/// Re-read the listener's certificate if its files changed; a bad new pair is logged and the
/// old one keeps serving.
fn rotate_certificate(shared: &Shared) {
    let Some(tls) = &shared.tls else { return };
    match tls.rotate_if_changed() {
        tls::Rotation::Unchanged => {}
        tls::Rotation::Rotated => {
            shared.metrics.certificate_reload(true);
            tracing::info!("TLS certificate reloaded; new connections get it");
        }
        tls::Rotation::Refused(why) => {
            shared.metrics.certificate_reload(false);
            tracing::error!(%why, "TLS certificate not reloaded; the running one stays");
        }
    }
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
                rotate_certificate(&shared);
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
