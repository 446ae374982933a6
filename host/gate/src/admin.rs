//! The operator's endpoints: `/metrics`, `/healthz` and `/readyz`, answered on the client
//! listener or, with `admin_listen`, on a listener of their own that registry clients
//! cannot fill (and which is open while the policies load, saying so).

use super::upstream::{Body, full};
use super::{GateLimits, Shared};
use http::header::CONTENT_TYPE;
use http::{Method, Response, StatusCode};
use hyper_util::rt::TokioIo;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;

/// Connections the admin listener serves at once (probes and scrapers; a handful at most);
/// past this, connections are closed unanswered.
const MAX_ADMIN_CONNECTIONS: usize = 16;
/// Longest an admin connection is kept: probes and scrapes finish in milliseconds.
const ADMIN_CONNECTION_LIFETIME: Duration = Duration::from_secs(30);

/// Where a request arrived, which decides whether `/metrics` is answered there.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Listener {
    Clients,
    Admin,
}

/// The answer to an operator's request, or `None` for a request that is not one (on the
/// client listener, it goes on to the registry).
pub(crate) async fn answer(
    shared: &Shared,
    listener: Listener,
    method: &Method,
    path: &str,
) -> Option<Response<Body>> {
    if method != Method::GET {
        return None;
    }
    let metrics_here = listener == Listener::Admin || shared.admin_listen.is_none();
    match path {
        "/metrics" if metrics_here => {
            Some(text(StatusCode::OK, shared.metrics.render(), "text/plain; version=0.0.4"))
        }
        "/healthz" => Some(text(StatusCode::OK, "ok\n".into(), "text/plain")),
        "/readyz" => Some(readiness(shared).await),
        _ => None,
    }
}

/// Ready when the gate is not stopping, its coordination store (if any) has answered since
/// it started, and its upstream answers. Policies are loaded before the gate serves at all.
async fn readiness(shared: &Shared) -> Response<Body> {
    let not_ready = |why: String| text(StatusCode::SERVICE_UNAVAILABLE, why, "text/plain");
    if shared.stopping.has_begun() {
        return not_ready("stopping\n".into());
    }
    if let Some(store) = shared.coordinator.waiting_for_store().await {
        return not_ready(format!("waiting for the coordination store `{store}`\n"));
    }
    if !shared.upstream.is_reachable().await {
        return not_ready("upstream unreachable\n".into());
    }
    text(StatusCode::OK, "ready\n".into(), "text/plain")
}

/// Serve the admin endpoints on `listener` for ever; anything else there is 404.
pub(crate) async fn serve(shared: Arc<Shared>, listener: tokio::net::TcpListener) {
    let (limits, metrics) = (shared.limits.clone(), shared.metrics.clone());
    let respond = move |method: Method, path: String| {
        let shared = shared.clone();
        async move { answer(&shared, Listener::Admin, &method, &path).await }
    };
    let accepting = Accepting::new();
    loop {
        if let Some(stream) = accepting.next(&listener).await {
            accepting.spawn(stream, &limits, respond.clone());
        } else {
            metrics.connection_rejected();
        }
    }
}

/// The admin endpoints while the gate loads its policies, on the listener the gate will
/// serve them on: alive (`/healthz`), not ready (`/readyz`), no metrics yet. Returns the
/// listener once `loaded` completes (or its sender is dropped).
pub async fn serve_while_loading(
    listener: tokio::net::TcpListener,
    loaded: tokio::sync::oneshot::Receiver<()>,
) -> tokio::net::TcpListener {
    let limits = GateLimits::default();
    let respond = |method: Method, path: String| async move {
        match (method, path.as_str()) {
            (Method::GET, "/healthz") => Some(text(StatusCode::OK, "ok\n".into(), "text/plain")),
            (Method::GET, "/readyz" | "/metrics") => Some(text(
                StatusCode::SERVICE_UNAVAILABLE,
                "loading the policies\n".into(),
                "text/plain",
            )),
            _ => None,
        }
    };
    let accepting = Accepting::new();
    tokio::pin!(loaded);
    loop {
        tokio::select! {
            accepted = accepting.next(&listener) => {
                if let Some(stream) = accepted {
                    accepting.spawn(stream, &limits, respond);
                }
            }
            _ = &mut loaded => return listener,
        }
    }
}

/// Connections of the admin listener: at most [`MAX_ADMIN_CONNECTIONS`] at once, each
/// served for at most [`ADMIN_CONNECTION_LIFETIME`].
struct Accepting {
    slots: Arc<Semaphore>,
}

impl Accepting {
    fn new() -> Self {
        Accepting { slots: Arc::new(Semaphore::new(MAX_ADMIN_CONNECTIONS)) }
    }

    /// The next connection with its slot, or `None` for one turned away (closed at once).
    async fn next(
        &self,
        listener: &tokio::net::TcpListener,
    ) -> Option<(tokio::net::TcpStream, tokio::sync::OwnedSemaphorePermit)> {
        let stream = loop {
            match listener.accept().await {
                Ok((stream, _)) => break stream,
                Err(error) => {
                    tracing::warn!(%error, "admin listener: accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        };
        Some((stream, self.slots.clone().try_acquire_owned().ok()?))
    }

    /// Serve one connection with `respond` (`None`: 404).
    fn spawn<F, R>(
        &self,
        (stream, slot): (tokio::net::TcpStream, tokio::sync::OwnedSemaphorePermit),
        limits: &GateLimits,
        respond: F,
    ) where
        F: Fn(Method, String) -> R + Clone + Send + Sync + 'static,
        R: std::future::Future<Output = Option<Response<Body>>> + Send,
    {
        let builder = super::server::http1_builder(limits);
        tokio::spawn(async move {
            let _slot = slot;
            let service = hyper::service::service_fn(move |request: http::Request<_>| {
                let respond = respond.clone();
                async move {
                    let (method, path) =
                        (request.method().clone(), request.uri().path().to_string());
                    let response = respond(method, path).await.unwrap_or_else(|| {
                        text(
                            StatusCode::NOT_FOUND,
                            "the admin listener serves GET /metrics, /healthz and /readyz\n".into(),
                            "text/plain",
                        )
                    });
                    Ok::<_, std::convert::Infallible>(response)
                }
            });
            let connection = builder.serve_connection(TokioIo::new(stream), service);
            let _ = tokio::time::timeout(ADMIN_CONNECTION_LIFETIME, connection).await;
        });
    }
}

pub(crate) fn text(status: StatusCode, body: String, content_type: &'static str) -> Response<Body> {
    Response::builder()
        .status(status)
        .header(CONTENT_TYPE, content_type)
        .body(full(body))
        .expect("valid headers")
}
