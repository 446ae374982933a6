//! The server loop: accepting connections within the gate's limits (turning away those over
//! them with a 429), TLS, HTTP/1.1 and HTTP/2 with their idle and stall limits, each request
//! handed to the proxy.

use super::{Gate, GateLimits, Shared, admin, proxy, refresh, reload, shutdown, stall, upstream};
use http_body_util::BodyExt;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use stall::WriteStall;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

impl Gate {
    /// Serve on `listener` until `shutdown` completes, reloading the configuration on SIGHUP
    /// and when its file changes. Then stop: accept no more connections, answer `/readyz`
    /// with 503, let the requests in flight finish (for at most `limits.shutdown_grace`),
    /// release the leases of changes still running, and return.
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
        let watcher = tokio::spawn(reload::watch(self.shared.clone()));
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
                () = &mut shutdown => break Ok::<(), std::io::Error>(()),
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
        self.shared.stopping.begin();
        drop(listener);
        let in_flight = |slots: &Semaphore| limits.max_connections - slots.available_permits();
        tracing::info!(
            connections = in_flight(&slots),
            grace = ?limits.shutdown_grace,
            "stopping: no new connections, not ready; waiting for the requests in flight"
        );
        let started = std::time::Instant::now();
        let every_slot = u32::try_from(limits.max_connections).unwrap_or(u32::MAX);
        match tokio::time::timeout(limits.shutdown_grace, slots.acquire_many(every_slot)).await {
            Ok(_) => {
                tracing::info!(took = ?started.elapsed(), "every request in flight was answered")
            }
            Err(_) => tracing::warn!(
                connections = in_flight(&slots),
                grace = ?limits.shutdown_grace,
                "grace period over: closing connections with requests still in flight"
            ),
        }
        watcher.abort();
        follower.abort();
        let released = self.shared.coordinator.release_all().await;
        if released > 0 {
            tracing::info!(released, "released the leases of changes that did not finish");
        }
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
        let served = http1_builder(&limits)
            .serve_connection(TokioIo::new(stream), service(shared.clone(), peer, false));
        tokio::pin!(served);
        let stop = shared.stopping.signal();
        let result =
            shutdown::serve_until_stopped(served, stop, |served| served.graceful_shutdown()).await;
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
    let served = http1_builder(&limits).serve_connection(io, service(shared.clone(), peer, true));
    tokio::pin!(served);
    let stop = shared.stopping.signal();
    let result =
        shutdown::serve_until_stopped(served, stop, |served| served.graceful_shutdown()).await;
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
    let mut stop = shared.stopping.signal();
    loop {
        tokio::select! {
            result = served.as_mut() => return connection_ended(&shared, peer, result),
            () = stop.begun() => {
                // GOAWAY: the streams in flight finish, no new ones start.
                served.as_mut().graceful_shutdown();
                return connection_ended(&shared, peer, served.await);
            }
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

pub(crate) fn http1_builder(limits: &GateLimits) -> http1::Builder {
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
