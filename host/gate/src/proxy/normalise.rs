//! What the gate changes in a client's request before anything else reads it: identity
//! headers only a trusted proxy may set, the `Host` an HTTP/2 client leaves out, where the
//! request came from and over which scheme, and the override headers nothing may use.

use crate::identity::Identity;
use crate::route;
use http::HeaderValue;
use http::Version;
use http::header::HOST;
use hyper::body::Incoming;
use std::net::SocketAddr;

const X_FORWARDED_PROTO: http::HeaderName = http::HeaderName::from_static("x-forwarded-proto");

/// Normalise `request`'s headers, from `peer` (over TLS when `tls`), under `identity`.
pub(super) fn headers(
    request: &mut http::Request<Incoming>,
    identity: &Identity,
    peer: SocketAddr,
    tls: bool,
) {
    if let Some(name) = identity.trusted_header_name()
        && !identity.trusts(peer.ip())
    {
        // Only the trusted front proxy may say who the user is.
        request.headers_mut().remove(name);
    }
    if request.version() == Version::HTTP_2
        && !request.headers().contains_key(HOST)
        && let Some(authority) = request.uri().authority()
        && let Ok(host) = HeaderValue::from_str(authority.as_str())
    {
        // HTTP/2 carries the host as `:authority`; the upstream (HTTP/1.1) builds upload
        // locations from `Host`.
        request.headers_mut().insert(HOST, host);
    }
    // The upstream builds upload locations for the client with the scheme the client used,
    // not its own (an https registry behind a plain gate, or the other way round). A proxy in
    // front of a plain gate may have said already.
    if !identity.trusts(peer.ip()) {
        // Where the request came from is for the gate, or a proxy it trusts, to say.
        route::strip_forwarded(request.headers_mut());
    }
    if tls {
        request.headers_mut().insert(X_FORWARDED_PROTO, HeaderValue::from_static("https"));
    } else if !request.headers().contains_key(X_FORWARDED_PROTO) {
        request.headers_mut().insert(X_FORWARDED_PROTO, HeaderValue::from_static("http"));
    }
    if route::strip_overrides(request.headers_mut()) > 0 {
        tracing::debug!(%peer, "removed method or path override headers");
    }
}
