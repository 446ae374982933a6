//! The registry behind the gate: requests passed through unchanged, and the transport of the
//! lookups and writes the gate makes itself (time limits, read accounts, bounded answers).
//! What the gate asks of manifests is in [`manifests`], of tag lists in [`tags`]; where an
//! answer passed on sends the client, in [`location`].

mod location;
mod manifests;
mod tags;

use super::metrics::Metrics;
use super::read_account::{self, ReadAccount};
use bytes::Bytes;
use http::header::{AUTHORIZATION, HeaderName, HeaderValue};
use http::{HeaderMap, Method, Request, Response, StatusCode, Uri};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::Incoming;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use manifests::manifest_accept;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
/// Every body the gate sends: streamed from the other side or built here.
pub type Body = BoxBody<Bytes, BoxError>;

/// The manifest media types the gate asks for, so that the upstream answers with the
/// digest of the manifest as stored (and never converts it).
pub const MANIFEST_TYPES: &str = "application/vnd.oci.image.manifest.v1+json, \
    application/vnd.oci.image.index.v1+json, \
    application/vnd.docker.distribution.manifest.v2+json, \
    application/vnd.docker.distribution.manifest.list.v2+json";

/// How long a lookup the gate makes itself may take.
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(10);
/// Most bytes of an answer to a lookup the gate reads (a manifest, a tag list, an error).
const MAX_ANSWER_BYTES: usize = 4 << 20;

pub fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into()).map_err(|never| match never {}).boxed()
}

pub fn empty() -> Body {
    Empty::new().map_err(|never| match never {}).boxed()
}

/// Why the gate could not get an answer it needs from the upstream.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    #[error("the upstream registry is unreachable: {0}")]
    Unreachable(String),
    /// TLS with the upstream failed: its certificate did not verify (unknown CA, wrong
    /// name, expired, …) or it does not speak TLS.
    #[error("{0}")]
    Tls(String),
    #[error("the upstream registry did not answer within {0:?}")]
    Timeout(Duration),
    /// A write was sent and not answered in time: the upstream may have applied it.
    #[error("the upstream registry did not answer a write within {0:?}; it may have applied it")]
    WriteTimeout(Duration),
    /// The upstream refused the gate's lookup (e.g. 401 with a challenge): the client gets
    /// that answer, so that it can authenticate and retry.
    #[error("the upstream registry answered {}", .0.status())]
    Refused(Box<Response<Bytes>>),
    #[error("the upstream registry answered with {0}")]
    Invalid(String),
    /// The gate's own read account was refused (`upstream_read`).
    #[error("the upstream registry refused the gate's read account: {0}")]
    AccountRefused(String),
}

impl UpstreamError {
    /// The `kind` label of `tagpolicy_gate_upstream_errors_total`.
    fn kind(&self) -> &'static str {
        match self {
            UpstreamError::Unreachable(_) => "unreachable",
            UpstreamError::Tls(_) => "tls",
            UpstreamError::Timeout(_) | UpstreamError::WriteTimeout(_) => "timeout",
            UpstreamError::Refused(_) => "refused",
            UpstreamError::Invalid(_) => "invalid",
            UpstreamError::AccountRefused(_) => "account_refused",
        }
    }
}

/// What a request to the upstream is for: its time limit and its metric label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Purpose {
    /// A client's request passed through.
    Forward,
    /// A lookup of the gate's own (current digests, tag lists).
    Lookup,
    /// A write the gate decided, sent while it holds the repository's lock.
    Write,
    /// Whether the upstream answers at all.
    Probe,
    /// A token for the gate's read account.
    Token,
}

impl Purpose {
    fn label(self) -> &'static str {
        match self {
            Purpose::Forward => "forward",
            Purpose::Lookup => "lookup",
            Purpose::Write => "write",
            Purpose::Probe => "probe",
            Purpose::Token => "token",
        }
    }
}

pub struct Upstream {
    client: Client<HttpsConnector<HttpConnector>, Body>,
    base: Uri,
    metrics: Arc<Metrics>,
    /// How long a write the gate sends under a repository's lock may take.
    write_timeout: Duration,
    /// The gate's own account for its reads (`upstream_read`), if configured.
    account: Option<ReadAccount>,
}

impl Upstream {
    /// `tls` verifies an `https` upstream; for a plain `http` one it is `None`, and a
    /// configuration that trusts no one stands in (the scheme comes from the configured base
    /// only, so the gate never chooses TLS or plain HTTP on its own).
    pub fn new(
        base: Uri,
        metrics: Arc<Metrics>,
        write_timeout: Duration,
        tls: Option<rustls::ClientConfig>,
        account: Option<ReadAccount>,
    ) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.enforce_http(false);
        let tls = tls.unwrap_or_else(|| {
            rustls::ClientConfig::builder_with_provider(Arc::new(
                rustls::crypto::ring::default_provider(),
            ))
            .with_safe_default_protocol_versions()
            .expect("the provider supports the default versions")
            .with_root_certificates(rustls::RootCertStore::empty())
            .with_no_client_auth()
        });
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .wrap_connector(connector);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .build(connector);
        Upstream { client, base, metrics, write_timeout, account }
    }

    pub fn base(&self) -> &Uri {
        &self.base
    }

    fn uri(&self, path_and_query: &str) -> Uri {
        let authority = self.base.authority().expect("checked when configured");
        Uri::builder()
            .scheme(self.base.scheme_str().expect("checked when configured"))
            .authority(authority.as_str())
            .path_and_query(path_and_query)
            .build()
            .expect("a path from a parsed request")
    }

    /// Send a request as it came (headers, body stream), to the same path upstream. The
    /// answer comes back as the registry sent it but for its hop-by-hop headers and a
    /// `Location` on the registry's own origin, which is put on the gate's.
    pub async fn forward(
        &self,
        request: Request<Body>,
    ) -> Result<Response<Incoming>, UpstreamError> {
        self.send(request, Purpose::Forward).await
    }

    /// Send a write the gate decided, with its headers, to the same path upstream; the
    /// upstream has [`Upstream::write_timeout`] to answer.
    pub async fn forward_write(
        &self,
        request: Request<Body>,
    ) -> Result<Response<Incoming>, UpstreamError> {
        self.send(request, Purpose::Write).await
    }

    async fn send(
        &self,
        mut request: Request<Body>,
        purpose: Purpose,
    ) -> Result<Response<Incoming>, UpstreamError> {
        let path = request.uri().path_and_query().map(|p| p.as_str()).unwrap_or("/").to_string();
        *request.uri_mut() = self.uri(&path);
        // The client may have spoken HTTP/2; the gate speaks HTTP/1.1 upstream.
        *request.version_mut() = http::Version::HTTP_11;
        remove_hop_by_hop(request.headers_mut());
        let client = location::ClientOrigin::of(request.headers());
        let started = Instant::now();
        let sent = async { self.client.request(request).await.map_err(|e| unreachable_or_tls(&e)) };
        let result = if purpose == Purpose::Write {
            let timeout = self.write_timeout;
            tokio::time::timeout(timeout, sent)
                .await
                .unwrap_or(Err(UpstreamError::WriteTimeout(timeout)))
        } else {
            sent.await
        };
        self.count(purpose, started, &result);
        let mut response = result?;
        remove_hop_by_hop(response.headers_mut());
        if response.headers().contains_key(http::header::LOCATION) {
            let client = client.resolve();
            location::follow_through(response.headers_mut(), &self.base, client.as_deref());
        }
        Ok(response)
    }

    /// A lookup of the gate's own as `reader`: `path` of `repository`, answered with the
    /// response head; the body streams. With the gate's account, a challenge is answered
    /// (a password, or a token from the realm) and the request sent once more.
    async fn open(
        &self,
        method: Method,
        repository: &str,
        path: &str,
        headers: HeaderMap,
        reader: &Reader,
    ) -> Result<Response<Incoming>, UpstreamError> {
        let scope = format!("repository:{repository}:pull");
        self.open_scoped(method, &scope, path, headers, reader).await
    }

    /// [`open`](Self::open) for a read of `scope` (a token server's scope: the catalog is
    /// `registry:catalog:*`).
    async fn open_scoped(
        &self,
        method: Method,
        scope: &str,
        path: &str,
        headers: HeaderMap,
        reader: &Reader,
    ) -> Result<Response<Incoming>, UpstreamError> {
        let mut headers = headers;
        let account = match reader {
            Reader::Client(auth) => {
                if let Some(auth) = auth {
                    headers.insert(AUTHORIZATION, auth.clone());
                }
                return self.head(method, path, headers).await;
            }
            Reader::Gate => self.account.as_ref().ok_or_else(|| {
                UpstreamError::Invalid("a read as the gate, which has no `upstream_read`".into())
            })?,
        };
        let authorization = match account.authorization(scope) {
            Some(authorization) => Some(authorization),
            None => self.authorize_ahead(account, scope).await?,
        };
        if let Some(authorization) = authorization {
            headers.insert(AUTHORIZATION, authorization);
        }
        let response = self.head(method.clone(), path, headers.clone()).await?;
        if response.status() != StatusCode::UNAUTHORIZED {
            return refused_account(response);
        }
        let Some(challenge) = read_account::challenge(response.headers()) else {
            return refused_account(response);
        };
        let authorization = self.answer(account, challenge, scope).await?;
        headers.insert(AUTHORIZATION, authorization);
        refused_account(self.head(method, path, headers).await?)
    }

    /// The credentials for a first read of `scope`, before the upstream asks: a registry
    /// that hides what a reader may not see answers an anonymous read with 404, never a
    /// challenge. How the upstream asks is learned from `GET /v2/` and kept a while.
    async fn authorize_ahead(
        &self,
        account: &ReadAccount,
        scope: &str,
    ) -> Result<Option<HeaderValue>, UpstreamError> {
        let challenge = match account.known_challenge() {
            Some(challenge) => challenge,
            None => {
                let probe = self.head(Method::GET, "/v2/", HeaderMap::new()).await?;
                let challenge = match probe.status() {
                    StatusCode::UNAUTHORIZED => read_account::challenge(probe.headers()),
                    _ => None,
                };
                account.learn_challenge(challenge.clone());
                challenge
            }
        };
        match challenge {
            Some(challenge) => self.answer(account, challenge, scope).await.map(Some),
            // No challenge: send the password anyway, if there is one, for a registry that
            // answers `/v2/` to anyone and checks credentials per repository.
            None => Ok(account.basic()),
        }
    }

    /// Send a lookup and wait for the response head, within the lookup timeout.
    async fn head(
        &self,
        method: Method,
        path: &str,
        headers: HeaderMap,
    ) -> Result<Response<Incoming>, UpstreamError> {
        self.send_head(method, self.uri(path), headers, Purpose::Lookup).await
    }

    async fn send_head(
        &self,
        method: Method,
        uri: Uri,
        headers: HeaderMap,
        purpose: Purpose,
    ) -> Result<Response<Incoming>, UpstreamError> {
        let mut request = Request::builder().method(method).uri(uri);
        *request.headers_mut().expect("fresh builder") = headers;
        let request = request.body(empty()).expect("valid parts");
        let started = Instant::now();
        let result = match tokio::time::timeout(LOOKUP_TIMEOUT, self.client.request(request)).await
        {
            Err(_) => Err(UpstreamError::Timeout(LOOKUP_TIMEOUT)),
            Ok(result) => result.map_err(|e| unreachable_or_tls(&e)),
        };
        self.count(purpose, started, &result);
        let mut response = result?;
        remove_hop_by_hop(response.headers_mut());
        Ok(response)
    }

    /// The `Authorization` that answers `challenge` with the gate's account for `scope`.
    async fn answer(
        &self,
        account: &ReadAccount,
        challenge: read_account::Challenge,
        scope: &str,
    ) -> Result<HeaderValue, UpstreamError> {
        let refused = |why: String| UpstreamError::AccountRefused(why);
        let (realm, service) = match challenge {
            read_account::Challenge::Basic => {
                let basic = account.basic().ok_or_else(|| {
                    refused(
                        "the upstream asks for a password, and the gate reads anonymously".into(),
                    )
                })?;
                account.remember(scope, basic.clone(), Duration::from_secs(3600));
                return Ok(basic);
            }
            read_account::Challenge::Bearer { realm, service, .. } => (realm, service),
        };
        let realm_uri: Uri = realm
            .parse()
            .map_err(|_| refused(format!("the token realm `{realm}` is not a URL")))?;
        if !read_account::realm_allowed(&realm_uri, self.base.scheme_str() == Some("https")) {
            return Err(refused(format!(
                "the token realm `{realm}` is not HTTPS; the gate sends its password only over                  HTTPS (or plain HTTP on a loopback address)"
            )));
        }
        let mut query = format!("scope={}", query_encode(scope));
        if let Some(service) = &service {
            query = format!("service={}&{query}", query_encode(service));
        }
        let separator = if realm.contains('?') { '&' } else { '?' };
        let uri: Uri = format!("{realm}{separator}{query}")
            .parse()
            .map_err(|_| refused(format!("the token realm `{realm}` is not a URL")))?;
        let mut headers = HeaderMap::new();
        if let Some(basic) = account.basic() {
            headers.insert(AUTHORIZATION, basic);
        }
        let response = self.send_head(Method::GET, uri, headers, Purpose::Token).await?;
        let status = response.status();
        let body =
            collect(response.into_body(), read_account::MAX_TOKEN_ANSWER_BYTES, "a token").await?;
        if !status.is_success() {
            return Err(refused(format!("the token server `{realm}` answered HTTP {status}")));
        }
        let (token, lifetime) = read_account::token_answer(&body)
            .map_err(|why| refused(format!("the token server `{realm}` sent {why}")))?;
        let value = HeaderValue::from_str(&format!("Bearer {token}"))
            .map_err(|_| refused(format!("the token server `{realm}` sent an unusable token")))?;
        account.remember(scope, value.clone(), lifetime);
        Ok(value)
    }

    /// A lookup read whole, up to `max_bytes`.
    async fn lookup(
        &self,
        method: Method,
        repository: &str,
        path: &str,
        headers: HeaderMap,
        reader: &Reader,
        max_bytes: usize,
    ) -> Result<Response<Bytes>, UpstreamError> {
        let response = self.open(method, repository, path, headers, reader).await?;
        let (parts, body) = response.into_parts();
        let bytes = collect(body, max_bytes, &format!("the answer to `{path}`")).await?;
        Ok(Response::from_parts(parts, bytes))
    }

    /// A request the gate sends with a client's credentials (writing tags of a multi-tag
    /// push, undoing them), read whole up to [`MAX_ANSWER_BYTES`].
    async fn call(
        &self,
        method: Method,
        path: &str,
        headers: HeaderMap,
        body: Bytes,
        purpose: Purpose,
    ) -> Result<Response<Bytes>, UpstreamError> {
        let mut request = Request::builder().method(method).uri(self.uri(path));
        *request.headers_mut().expect("fresh builder") = headers;
        let request = request.body(full(body)).expect("valid parts");
        let started = Instant::now();
        let exchange = async {
            let response =
                self.client.request(request).await.map_err(|e| unreachable_or_tls(&e))?;
            let (parts, body) = response.into_parts();
            let bytes = collect(body, MAX_ANSWER_BYTES, &format!("the answer to `{path}`")).await?;
            Ok::<_, UpstreamError>(Response::from_parts(parts, bytes))
        };
        let (timeout, timed_out) = if purpose == Purpose::Write {
            (self.write_timeout, UpstreamError::WriteTimeout(self.write_timeout))
        } else {
            (LOOKUP_TIMEOUT, UpstreamError::Timeout(LOOKUP_TIMEOUT))
        };
        let result = tokio::time::timeout(timeout, exchange).await.unwrap_or(Err(timed_out));
        self.count(purpose, started, &result);
        result
    }

    /// The one place an exchange with the upstream is counted: its time, and how it failed
    /// if it did (no answer, or an answer of the upstream's own failure, 5xx).
    fn count<B>(
        &self,
        purpose: Purpose,
        started: Instant,
        result: &Result<Response<B>, UpstreamError>,
    ) {
        self.metrics.upstream(purpose.label(), started.elapsed());
        let kind = match result {
            Ok(response) if response.status().is_server_error() => "status_5xx",
            Ok(_) => return,
            Err(error) => error.kind(),
        };
        self.metrics.upstream_error(purpose.label(), kind);
    }

    /// The upstream's own challenge (`WWW-Authenticate` of `GET /v2/`), if it asks for one.
    pub async fn challenge(&self) -> Option<HeaderValue> {
        let response = self
            .call(Method::GET, "/v2/", HeaderMap::new(), Bytes::new(), Purpose::Probe)
            .await
            .ok()?;
        (response.status() == StatusCode::UNAUTHORIZED)
            .then(|| response.headers().get(http::header::WWW_AUTHENTICATE).cloned())
            .flatten()
    }

    /// Whether the upstream answers at all (any HTTP status counts).
    pub async fn is_reachable(&self) -> bool {
        self.call(Method::GET, "/v2/", HeaderMap::new(), Bytes::new(), Purpose::Probe).await.is_ok()
    }

    /// Whether a client with `auth` may read `repository`, asked with one small request:
    /// a `HEAD` of `reference`, a manifest the gate knows is there. `None` if the client may,
    /// else the upstream's refusal (a 401 challenge, a 403, or a 404 for what it hides).
    pub async fn client_may_read(
        &self,
        repository: &str,
        reference: &str,
        auth: Option<&HeaderValue>,
    ) -> Result<Option<Box<Response<Bytes>>>, UpstreamError> {
        let reader = Reader::Client(auth.cloned());
        match self.manifest_lookup(Method::HEAD, repository, reference, &reader).await {
            Ok(Some(_)) => Ok(None),
            Ok(None) => {
                let path = format!("/v2/{repository}/manifests/{reference}");
                let response = self
                    .lookup(
                        Method::GET,
                        repository,
                        &path,
                        manifest_accept(),
                        &reader,
                        MAX_ANSWER_BYTES,
                    )
                    .await?;
                Ok(Some(Box::new(response)))
            }
            Err(UpstreamError::Refused(refusal)) => Ok(Some(refusal)),
            Err(error) => Err(error),
        }
    }

    /// Whether the gate reads with an account of its own (`upstream_read`).
    pub fn has_account(&self) -> bool {
        self.account.is_some()
    }

    /// How the gate reads, for the start-up log.
    pub fn account_description(&self) -> String {
        self.account
            .as_ref()
            .map_or("with each client's credentials".to_string(), |account| account.describe())
    }
}

/// Whose view of the upstream a lookup reads.
#[derive(Debug, Clone)]
pub enum Reader {
    /// The gate's own account (`upstream_read`): what the gate knows and may share.
    Gate,
    /// A client's credentials (its `Authorization`, if any), for that client's request only.
    Client(Option<HeaderValue>),
}

/// The gate's own read ends in a refusal: the gate's account, not the client, lacks
/// something, so the answer is not passed to the client as a challenge.
fn refused_account(response: Response<Incoming>) -> Result<Response<Incoming>, UpstreamError> {
    match response.status() {
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
            Err(UpstreamError::AccountRefused(format!(
                "the upstream answered HTTP {} to the gate's own read account",
                response.status()
            )))
        }
        _ => Ok(response),
    }
}

/// Read `body` whole, at most `max_bytes`, each frame within the lookup timeout.
pub(super) async fn collect(
    body: Incoming,
    max_bytes: usize,
    what: &str,
) -> Result<Bytes, UpstreamError> {
    let limited = http_body_util::Limited::new(body, max_bytes);
    match tokio::time::timeout(LOOKUP_TIMEOUT, limited.collect()).await {
        Err(_) => Err(UpstreamError::Timeout(LOOKUP_TIMEOUT)),
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
        Ok(Err(error)) if error.is::<http_body_util::LengthLimitError>() => {
            Err(UpstreamError::Invalid(format!("{what} larger than {max_bytes} bytes")))
        }
        Ok(Err(error)) => Err(unreachable_or_tls(error.as_ref())),
    }
}

/// `text` for a query string: unreserved characters and `:`, `/` and `@` as they are.
fn query_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z'
            | b'a'..=b'z'
            | b'0'..=b'9'
            | b'-'
            | b'.'
            | b'_'
            | b'~'
            | b':'
            | b'/'
            | b'@' => char::from(b).to_string(),
            other => format!("%{other:02X}"),
        })
        .collect()
}

/// Headers that belong to one connection and must not be forwarded (RFC 9110, 7.6.1).
fn remove_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<String> = headers
        .get_all(http::header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|name| name.trim().to_ascii_lowercase())
        .filter(|name| !name.is_empty())
        .collect();
    for name in named {
        headers.remove(name.as_str());
    }
    // Names parsed once: removing by `&str` would parse each name anew for every request.
    const KEEP_ALIVE: HeaderName = HeaderName::from_static("keep-alive");
    const PROXY_CONNECTION: HeaderName = HeaderName::from_static("proxy-connection");
    use http::header::{
        CONNECTION, PROXY_AUTHENTICATE, PROXY_AUTHORIZATION, TE, TRAILER, TRANSFER_ENCODING,
        UPGRADE,
    };
    for name in [
        CONNECTION,
        KEEP_ALIVE,
        PROXY_CONNECTION,
        PROXY_AUTHENTICATE,
        PROXY_AUTHORIZATION,
        TE,
        TRAILER,
        TRANSFER_ENCODING,
        UPGRADE,
    ] {
        headers.remove(name);
    }
}

/// A failed exchange: a refused certificate says so; anything else is unreachable.
pub(super) fn unreachable_or_tls(error: &(dyn std::error::Error + 'static)) -> UpstreamError {
    let mut cause = Some(error);
    while let Some(current) = cause {
        if let Some(tls) = current.downcast_ref::<rustls::Error>() {
            return UpstreamError::Tls(match tls {
                rustls::Error::InvalidCertificate(_) => {
                    format!("the gate refused the upstream registry's TLS certificate: {tls}")
                }
                _ => format!("TLS with the upstream registry failed: {tls}"),
            });
        }
        // An io::Error's `source` skips the error it wraps (tokio-rustls and hyper-rustls
        // each wrap the rustls error in one): step into it instead.
        cause = match current.downcast_ref::<std::io::Error>().and_then(|io| io.get_ref()) {
            Some(wrapped) => Some(wrapped as &(dyn std::error::Error + 'static)),
            None => current.source(),
        };
    }
    UpstreamError::Unreachable(error_chain(error))
}

fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::header::ACCEPT;

    #[test]
    fn hop_by_hop_headers_are_dropped_and_repeated_ones_kept() {
        let mut headers = HeaderMap::new();
        headers.append(ACCEPT, HeaderValue::from_static("a"));
        headers.append(ACCEPT, HeaderValue::from_static("b"));
        headers.insert("connection", HeaderValue::from_static("close, x-private"));
        headers.insert("x-private", HeaderValue::from_static("1"));
        headers.insert("transfer-encoding", HeaderValue::from_static("chunked"));
        remove_hop_by_hop(&mut headers);
        assert_eq!(headers.get_all(ACCEPT).iter().count(), 2);
        assert!(headers.get("x-private").is_none());
        assert!(headers.get("transfer-encoding").is_none());
        assert!(headers.get("connection").is_none());
    }
}
