//! The registry behind the gate: requests passed through unchanged, and the lookups and
//! writes the gate makes itself (current digests, tag lists, applying tags).

use super::metrics::Metrics;
use bytes::Bytes;
use http::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderValue, LINK};
use http::{HeaderMap, Method, Request, Response, StatusCode, Uri};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::Incoming;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
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

pub fn streamed(body: Incoming) -> Body {
    body.map_err(|e| Box::new(e) as BoxError).boxed()
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
}

impl Purpose {
    fn label(self) -> &'static str {
        match self {
            Purpose::Forward => "forward",
            Purpose::Lookup => "lookup",
            Purpose::Write => "write",
            Purpose::Probe => "probe",
        }
    }
}

pub struct Upstream {
    client: Client<HttpsConnector<HttpConnector>, Body>,
    base: Uri,
    metrics: Arc<Metrics>,
    /// How long a write the gate sends under a repository's lock may take.
    write_timeout: Duration,
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
        Upstream { client, base, metrics, write_timeout }
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

    /// Send a request as it came (headers, body stream), to the same path upstream.
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
        let timeout = self.write_timeout;
        tokio::time::timeout(timeout, self.send(request, Purpose::Write))
            .await
            .unwrap_or(Err(UpstreamError::WriteTimeout(timeout)))
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
        let started = Instant::now();
        let result = self.client.request(request).await;
        self.metrics.upstream(purpose.label(), started.elapsed());
        let mut response = result.map_err(|e| unreachable_or_tls(&e))?;
        remove_hop_by_hop(response.headers_mut());
        Ok(response)
    }

    /// A request the gate makes itself, with the client's credentials; the whole body is
    /// read, up to [`MAX_ANSWER_BYTES`] (these are small: manifests, tag lists, errors).
    async fn call(
        &self,
        method: Method,
        path: &str,
        headers: HeaderMap,
        body: Bytes,
        purpose: Purpose,
    ) -> Result<Response<Bytes>, UpstreamError> {
        self.call_limited(method, path, headers, body, purpose, MAX_ANSWER_BYTES).await
    }

    async fn call_limited(
        &self,
        method: Method,
        path: &str,
        headers: HeaderMap,
        body: Bytes,
        purpose: Purpose,
        max_bytes: usize,
    ) -> Result<Response<Bytes>, UpstreamError> {
        let mut request = Request::builder().method(method).uri(self.uri(path));
        *request.headers_mut().expect("fresh builder") = headers;
        let request = request.body(full(body)).expect("valid parts");
        let started = Instant::now();
        let exchange = async {
            let response = self.client.request(request).await?;
            let (parts, body) = response.into_parts();
            let bytes = match http_body_util::Limited::new(body, max_bytes).collect().await {
                Ok(collected) => collected.to_bytes(),
                Err(error) if error.is::<http_body_util::LengthLimitError>() => {
                    return Ok(Err(UpstreamError::Invalid(format!(
                        "an answer to `{path}` larger than {max_bytes} bytes"
                    ))));
                }
                Err(error) => return Err(error),
            };
            Ok::<_, BoxError>(Ok(Response::from_parts(parts, bytes)))
        };
        let (timeout, timed_out) = if purpose == Purpose::Write {
            (self.write_timeout, UpstreamError::WriteTimeout(self.write_timeout))
        } else {
            (LOOKUP_TIMEOUT, UpstreamError::Timeout(LOOKUP_TIMEOUT))
        };
        let result = tokio::time::timeout(timeout, exchange).await;
        self.metrics.upstream(purpose.label(), started.elapsed());
        match result {
            Err(_) => Err(timed_out),
            Ok(Err(e)) => Err(unreachable_or_tls(e.as_ref())),
            Ok(Ok(answer)) => answer,
        }
    }

    /// The blob `digest` of `repository` (an image config), at most `max_bytes` of it.
    pub async fn blob(
        &self,
        repository: &str,
        digest: &str,
        max_bytes: usize,
        auth: Option<&HeaderValue>,
    ) -> Result<Bytes, UpstreamError> {
        let path = format!("/v2/{repository}/blobs/{digest}");
        let response = self
            .call_limited(
                Method::GET,
                &path,
                auth_headers(auth),
                Bytes::new(),
                Purpose::Lookup,
                max_bytes,
            )
            .await?;
        match response.status() {
            status if status.is_success() => Ok(response.into_body()),
            status if status.is_redirection() => Err(UpstreamError::Invalid(format!(
                "a redirect for blob `{digest}` (HTTP {status}), which the gate does not follow"
            ))),
            _ => Err(UpstreamError::Refused(Box::new(response))),
        }
    }

    /// The OCI referrers index of `digest` (`GET /v2/<name>/referrers/<digest>`), or `None`
    /// when the registry has no referrers API (it answers 404, as CNCF distribution 2.8 does).
    pub async fn referrers(
        &self,
        repository: &str,
        digest: &str,
        auth: Option<&HeaderValue>,
    ) -> Result<Option<Bytes>, UpstreamError> {
        let path = format!("/v2/{repository}/referrers/{digest}");
        let mut headers = auth_headers(auth);
        headers.insert(ACCEPT, HeaderValue::from_static("application/vnd.oci.image.index.v1+json"));
        let response =
            self.call(Method::GET, &path, headers, Bytes::new(), Purpose::Lookup).await?;
        Ok(found(response)?.map(Response::into_body))
    }

    /// `HEAD` or `GET` of a manifest: `None` if the upstream does not know it; any answer
    /// other than success or 404 (e.g. a 401 challenge) is passed on as refused.
    async fn manifest_lookup(
        &self,
        method: Method,
        repository: &str,
        reference: &str,
        auth: Option<&HeaderValue>,
    ) -> Result<Option<Response<Bytes>>, UpstreamError> {
        let path = format!("/v2/{repository}/manifests/{reference}");
        let lookup =
            |method| self.call(method, &path, lookup_headers(auth), Bytes::new(), Purpose::Lookup);
        let mut response = lookup(method.clone()).await?;
        let answered = |status: StatusCode| status.is_success() || status == StatusCode::NOT_FOUND;
        if method == Method::HEAD && !answered(response.status()) {
            // A refused HEAD has no body; the client gets the upstream's whole answer (the
            // error body with its challenge), so ask again with GET.
            response = lookup(Method::GET).await?;
        }
        found(response)
    }

    /// The digest `reference` points at, or `None` if the upstream does not know it.
    pub async fn digest_of(
        &self,
        repository: &str,
        reference: &str,
        auth: Option<&HeaderValue>,
    ) -> Result<Option<String>, UpstreamError> {
        let Some(response) =
            self.manifest_lookup(Method::HEAD, repository, reference, auth).await?
        else {
            return Ok(None);
        };
        let digest = response
            .headers()
            .get("docker-content-digest")
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| {
                UpstreamError::Invalid(format!(
                    "no Docker-Content-Digest for `{repository}:{reference}`"
                ))
            })?;
        tagpolicy::oci::check_digest(digest).map_err(UpstreamError::Invalid)?;
        Ok(Some(digest.to_string()))
    }

    /// The manifest stored under `reference` (media type and the exact bytes), for undoing
    /// a tag write.
    pub async fn manifest(
        &self,
        repository: &str,
        reference: &str,
        auth: Option<&HeaderValue>,
    ) -> Result<Option<(HeaderValue, Bytes)>, UpstreamError> {
        let Some(response) = self.manifest_lookup(Method::GET, repository, reference, auth).await?
        else {
            return Ok(None);
        };
        let media_type = response.headers().get(CONTENT_TYPE).cloned().ok_or_else(|| {
            UpstreamError::Invalid(format!("no Content-Type for `{repository}:{reference}`"))
        })?;
        Ok(Some((media_type, response.into_body())))
    }

    /// Every tag of `repository`, following the upstream's pagination.
    pub async fn tags(
        &self,
        repository: &str,
        auth: Option<&HeaderValue>,
    ) -> Result<Vec<String>, UpstreamError> {
        #[derive(serde::Deserialize)]
        struct TagList {
            #[serde(default)]
            tags: Option<Vec<String>>,
        }
        let mut tags = Vec::new();
        let mut path = format!("/v2/{repository}/tags/list?n=1000");
        loop {
            let response = self
                .call(Method::GET, &path, lookup_headers(auth), Bytes::new(), Purpose::Lookup)
                .await?;
            match response.status() {
                // A repository that does not exist yet has no tags.
                StatusCode::NOT_FOUND => return Ok(tags),
                status if status.is_success() => {}
                _ => return Err(UpstreamError::Refused(Box::new(response))),
            }
            let page: TagList = serde_json::from_slice(response.body()).map_err(|e| {
                UpstreamError::Invalid(format!("an unreadable tag list for `{repository}`: {e}"))
            })?;
            tags.extend(page.tags.unwrap_or_default());
            match next_page(response.headers()) {
                Some(next) => path = next,
                None => return Ok(tags),
            }
        }
    }

    /// Store `manifest` under `reference`.
    pub async fn put_manifest(
        &self,
        repository: &str,
        reference: &str,
        media_type: &HeaderValue,
        manifest: Bytes,
        auth: Option<&HeaderValue>,
    ) -> Result<Response<Bytes>, UpstreamError> {
        let mut headers = lookup_headers(auth);
        headers.insert(CONTENT_TYPE, media_type.clone());
        self.call(
            Method::PUT,
            &format!("/v2/{repository}/manifests/{reference}"),
            headers,
            manifest,
            Purpose::Write,
        )
        .await
    }

    pub async fn delete_manifest(
        &self,
        repository: &str,
        reference: &str,
        auth: Option<&HeaderValue>,
    ) -> Result<Response<Bytes>, UpstreamError> {
        self.call(
            Method::DELETE,
            &format!("/v2/{repository}/manifests/{reference}"),
            lookup_headers(auth),
            Bytes::new(),
            Purpose::Write,
        )
        .await
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
}

fn lookup_headers(auth: Option<&HeaderValue>) -> HeaderMap {
    let mut headers = auth_headers(auth);
    headers.insert(ACCEPT, HeaderValue::from_static(MANIFEST_TYPES));
    headers
}

fn auth_headers(auth: Option<&HeaderValue>) -> HeaderMap {
    let mut headers = HeaderMap::new();
    if let Some(auth) = auth {
        headers.insert(AUTHORIZATION, auth.clone());
    }
    headers
}

/// The path of the next page from a `Link: </v2/...?last=x&n=1000>; rel="next"` header.
fn next_page(headers: &HeaderMap) -> Option<String> {
    let link = headers.get(LINK)?.to_str().ok()?;
    let (target, params) = link.split_once(';')?;
    if !params.contains("rel=\"next\"") {
        return None;
    }
    let target = target.trim().strip_prefix('<')?.strip_suffix('>')?;
    // Only a path on this registry: never follow a link elsewhere.
    target.starts_with("/v2/").then(|| target.to_string())
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
    for name in [
        "connection",
        "keep-alive",
        "proxy-connection",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    ] {
        headers.remove(name);
    }
}

/// A failed exchange: a refused certificate says so; anything else is unreachable.
fn unreachable_or_tls(error: &(dyn std::error::Error + 'static)) -> UpstreamError {
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

/// A lookup's answer: the response on success, `None` on 404 (the upstream does not have
/// it), and anything else (a 401 challenge, a 5xx) passed on as refused.
fn found(response: Response<Bytes>) -> Result<Option<Response<Bytes>>, UpstreamError> {
    match response.status() {
        StatusCode::NOT_FOUND => Ok(None),
        status if status.is_success() => Ok(Some(response)),
        _ => Err(UpstreamError::Refused(Box::new(response))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pagination_follows_only_local_next_links() {
        let mut headers = HeaderMap::new();
        headers.insert(
            LINK,
            HeaderValue::from_static("</v2/a/tags/list?last=x&n=1000>; rel=\"next\""),
        );
        assert_eq!(next_page(&headers).as_deref(), Some("/v2/a/tags/list?last=x&n=1000"));
        headers.insert(LINK, HeaderValue::from_static("<http://evil/v2/a>; rel=\"next\""));
        assert_eq!(next_page(&headers), None);
        headers.insert(LINK, HeaderValue::from_static("</v2/a/tags/list?last=x>; rel=\"prev\""));
        assert_eq!(next_page(&headers), None);
    }

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
