//! Each request: pass it through untouched, or (a manifest write or deletion) decide it with
//! the policies of its repository and apply it upstream only if allowed. This module routes;
//! [`normalise`] rewrites the client's headers, [`credentials`] checks who asks, and an
//! [`Exchange`](exchange::Exchange) carries one decided write: its lookups ([`lookup`]),
//! its decision ([`decide`]), its writes and their undo ([`apply`]), and its failures
//! ([`failures`]).

mod apply;
mod credentials;
mod decide;
mod exchange;
mod failures;
mod lookup;
mod normalise;

use super::Shared;
use super::admin::Listener;
use super::answer::{oci_error, unauthorized, upstream_failure};
use super::route::{self, Route, WriteMethod};
use super::stall::IdleBody;
use super::upstream::Body;
use credentials::{login_check, verify};
use exchange::Exchange;
use http::{Method, Response};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

/// Largest manifest accepted, as CNCF distribution does.
const MAX_MANIFEST_BYTES: usize = 4 << 20;

/// Answer one request; `tls` says whether the client connected over TLS.
pub async fn handle(
    shared: Arc<Shared>,
    peer: SocketAddr,
    tls: bool,
    mut request: http::Request<Incoming>,
) -> Response<Body> {
    let method = request.method().clone();
    if let Some(response) =
        super::admin::answer(&shared, Listener::Clients, &method, request.uri().path()).await
    {
        return response;
    }
    if method == Method::POST
        && request.uri().path() == super::notifications::PATH
        && shared.notifications_token.is_some()
    {
        return super::notifications::receive(&shared, request).await;
    }
    // Requests decide on the configuration current when they arrive; a reload swaps it for
    // later requests only.
    let active = shared.active.load_full();
    let identity = &active.rules.identity;
    normalise::headers(&mut request, identity, peer, tls);
    let write = match route::classify(&method, request.uri(), &active.rules.pass_writes) {
        Route::Manifest(write) => write,
        Route::Read => {
            if matches!(request.uri().path(), "/v2" | "/v2/")
                && identity.requires_basic_auth()
                && let Some(refused) = login_check(&active, request.headers()).await
            {
                return unauthorized(&shared, &active.rules, &refused).await;
            }
            shared.metrics.request("passthrough");
            return pass_through(&shared, request.map(|body| idle(&shared, body, "client_body")))
                .await;
        }
        Route::Upload => {
            shared.metrics.request("upload");
            return pass_through(&shared, request.map(|body| idle(&shared, body, "client_body")))
                .await;
        }
        Route::Listed => {
            shared.metrics.request("listed_write");
            tracing::info!(%method, path = request.uri().path(), "passed undecided (pass_writes)");
            return pass_through(&shared, request.map(|body| idle(&shared, body, "client_body")))
                .await;
        }
        Route::Refused(refusal) => {
            shared.metrics.refused(refusal.kind.as_str());
            tracing::info!(%peer, %method, target = %request.uri(), reason = %refusal.message, "refused");
            // Read what the client sends (up to a manifest's size, within the body timeout)
            // before answering: an HTTP/2 client that is still sending sees the stream reset
            // instead of the answer (curl does), and an HTTP/1.1 one a closed connection.
            let drain = Limited::new(request.into_body(), MAX_MANIFEST_BYTES).collect();
            let _ = tokio::time::timeout(shared.limits.body_timeout, drain).await;
            return oci_error(refusal.status, refusal.code, &refusal.message, None);
        }
    };
    let (mut parts, body) = request.into_parts();
    // What goes upstream is built from what is decided, not copied from the client.
    parts.uri = write.target().parse().expect("built from checked names");
    let started = Instant::now();
    let established = verify(&active, &parts.headers, move |identity, headers| {
        identity.establish(headers, peer.ip())
    })
    .await;
    let established = match established {
        Ok(established) => established,
        Err(refused) => {
            tracing::info!(repository = %write.repository, %refused, "credentials refused");
            return unauthorized(&shared, &active.rules, &refused).await;
        }
    };
    parts.headers = route::decided_write_headers(&parts.headers);
    let mut exchange = Exchange {
        shared: &shared,
        rules: &active.rules,
        log: active.log.as_ref(),
        write,
        parts,
        established,
        started,
    };
    match exchange.write.method {
        WriteMethod::Put => {
            shared.metrics.request("manifest_put");
            exchange.put(body).await
        }
        WriteMethod::Delete => {
            shared.metrics.request("manifest_delete");
            exchange.delete().await
        }
    }
}

/// A pass-through body, ended when it stops moving for `limits.idle_timeout`.
fn idle(shared: &Shared, body: Incoming, phase: &'static str) -> Body {
    IdleBody::new(body, shared.limits.idle_timeout, shared.metrics.clone(), phase).boxed()
}

async fn pass_through(shared: &Shared, request: http::Request<Body>) -> Response<Body> {
    match shared.upstream.forward(request).await {
        Ok(response) => response.map(|body| idle(shared, body, "upstream_body")),
        Err(error) => upstream_failure(shared, error),
    }
}
