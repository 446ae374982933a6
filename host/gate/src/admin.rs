//! The operator's endpoints: `/metrics`, `/healthz` and `/readyz`, answered on the client
//! listener or, with `admin_listen`, on a listener of their own that registry clients
//! cannot fill.

use super::Shared;
use super::upstream::{Body, full};
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
        "/readyz" => Some(if shared.upstream.is_reachable().await {
            text(StatusCode::OK, "ready\n".into(), "text/plain")
        } else {
            text(StatusCode::SERVICE_UNAVAILABLE, "upstream unreachable\n".into(), "text/plain")
        }),
        _ => None,
    }
}

/// Serve the admin endpoints on `listener` for ever; anything else there is 404.
pub(crate) async fn serve(shared: Arc<Shared>, listener: tokio::net::TcpListener) {
    let slots = Arc::new(Semaphore::new(MAX_ADMIN_CONNECTIONS));
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(error) => {
                tracing::warn!(%error, "admin listener: accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            shared.metrics.connection_rejected();
            continue;
        };
        let shared = shared.clone();
        tokio::spawn(async move {
            let _slot = slot;
            let service = hyper::service::service_fn(|request: http::Request<_>| {
                let shared = shared.clone();
                async move {
                    let (method, path) =
                        (request.method().clone(), request.uri().path().to_string());
                    let response = answer(&shared, Listener::Admin, &method, &path)
                        .await
                        .unwrap_or_else(|| {
                            text(
                                StatusCode::NOT_FOUND,
                                "the admin listener serves GET /metrics, /healthz and /readyz\n"
                                    .into(),
                                "text/plain",
                            )
                        });
                    Ok::<_, std::convert::Infallible>(response)
                }
            });
            let connection = super::server::http1_builder(&shared.limits)
                .serve_connection(TokioIo::new(stream), service);
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
