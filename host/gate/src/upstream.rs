//! The registry behind the gate: requests passed through unchanged, and the lookups and
//! writes the gate makes itself (current digests, tag lists, applying tags).

use super::metrics::Metrics;
use super::read_account::{self, ReadAccount};
use super::tag_list::TagListReader;
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
        let scope = format!("repository:{repository}:pull");
        let authorization = match account.authorization(&scope) {
            Some(authorization) => Some(authorization),
            None => self.authorize_ahead(account, &scope).await?,
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
        let authorization = self.answer(account, challenge, &scope).await?;
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
        let result = tokio::time::timeout(LOOKUP_TIMEOUT, self.client.request(request)).await;
        self.metrics.upstream(purpose.label(), started.elapsed());
        match result {
            Err(_) => Err(UpstreamError::Timeout(LOOKUP_TIMEOUT)),
            Ok(Err(e)) => Err(unreachable_or_tls(&e)),
            Ok(Ok(mut response)) => {
                remove_hop_by_hop(response.headers_mut());
                Ok(response)
            }
        }
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
        let result = tokio::time::timeout(timeout, exchange).await;
        self.metrics.upstream(purpose.label(), started.elapsed());
        result.unwrap_or(Err(timed_out))
    }

    /// The blob `digest` of `repository` (an image config), at most `max_bytes` of it.
    pub async fn blob(
        &self,
        repository: &str,
        digest: &str,
        max_bytes: usize,
        reader: &Reader,
    ) -> Result<Bytes, UpstreamError> {
        let path = format!("/v2/{repository}/blobs/{digest}");
        let response = self
            .lookup(Method::GET, repository, &path, HeaderMap::new(), reader, max_bytes)
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
        reader: &Reader,
    ) -> Result<Option<Bytes>, UpstreamError> {
        let path = format!("/v2/{repository}/referrers/{digest}");
        let mut headers = HeaderMap::new();
        headers.insert(ACCEPT, HeaderValue::from_static("application/vnd.oci.image.index.v1+json"));
        let response =
            self.lookup(Method::GET, repository, &path, headers, reader, MAX_ANSWER_BYTES).await?;
        Ok(found(response)?.map(Response::into_body))
    }

    /// `HEAD` or `GET` of a manifest: `None` if the upstream does not know it; any answer
    /// other than success or 404 (e.g. a 401 challenge) is passed on as refused.
    async fn manifest_lookup(
        &self,
        method: Method,
        repository: &str,
        reference: &str,
        reader: &Reader,
    ) -> Result<Option<Response<Bytes>>, UpstreamError> {
        let path = format!("/v2/{repository}/manifests/{reference}");
        let lookup = |method| {
            self.lookup(method, repository, &path, manifest_accept(), reader, MAX_ANSWER_BYTES)
        };
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
        reader: &Reader,
    ) -> Result<Option<String>, UpstreamError> {
        let Some(response) =
            self.manifest_lookup(Method::HEAD, repository, reference, reader).await?
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

    /// The manifest stored under `reference` (media type and the exact bytes).
    pub async fn manifest(
        &self,
        repository: &str,
        reference: &str,
        reader: &Reader,
    ) -> Result<Option<(HeaderValue, Bytes)>, UpstreamError> {
        let Some(response) =
            self.manifest_lookup(Method::GET, repository, reference, reader).await?
        else {
            return Ok(None);
        };
        let media_type = response.headers().get(CONTENT_TYPE).cloned().ok_or_else(|| {
            UpstreamError::Invalid(format!("no Content-Type for `{repository}:{reference}`"))
        })?;
        Ok(Some((media_type, response.into_body())))
    }

    /// The tags of `repository`, page by page (following the upstream's `Link`), each page
    /// read as it arrives: whatever the size of an answer, only a batch of tags is held.
    pub fn tag_pages<'a>(&'a self, repository: &'a str, reader: &'a Reader) -> TagPages<'a> {
        TagPages {
            upstream: self,
            repository,
            reader,
            next: Some(format!("/v2/{repository}/tags/list?n={TAG_PAGE}")),
            body: None,
        }
    }

    /// The digest of each of `tags` (`None`: absent), at most `tasks` lookups in flight, each
    /// holding one of `permits` (shared by everything that reads many tags, so that together
    /// they never make more lookups at once than it has), each tried once more after a pause
    /// when the upstream did not answer or answered with a server error: reading many tags
    /// should not fail on one hiccup. A failure names its tag.
    pub async fn digests_of(
        self: &Arc<Self>,
        repository: &str,
        tags: Vec<String>,
        reader: &Reader,
        (permits, tasks): (&Arc<tokio::sync::Semaphore>, usize),
    ) -> Result<Vec<(String, Option<String>)>, (String, UpstreamError)> {
        let mut waiting = tags.into_iter();
        let mut running = tokio::task::JoinSet::new();
        let mut found = Vec::with_capacity(waiting.len());
        loop {
            // No more tasks than may run at once, however many tags there are.
            while running.len() < tasks.max(1) {
                let Some(tag) = waiting.next() else { break };
                let (upstream, repository, reader) =
                    (self.clone(), repository.to_string(), reader.clone());
                let permits = permits.clone();
                running.spawn(async move {
                    let _permit = permits.acquire_owned().await.expect("never closed");
                    let digest = upstream.digest_with_retry(&repository, &tag, &reader).await;
                    (tag, digest)
                });
            }
            let Some(joined) = running.join_next().await else { return Ok(found) };
            let (tag, digest) = joined.map_err(|e| {
                (String::new(), UpstreamError::Invalid(format!("a lookup failed: {e}")))
            })?;
            match digest {
                Ok(digest) => found.push((tag, digest)),
                Err(error) => return Err((tag, error)),
            }
        }
    }

    async fn digest_with_retry(
        &self,
        repository: &str,
        tag: &str,
        reader: &Reader,
    ) -> Result<Option<String>, UpstreamError> {
        match self.digest_of(repository, tag, reader).await {
            Err(UpstreamError::Unreachable(_) | UpstreamError::Timeout(_)) => {}
            Err(UpstreamError::Refused(response)) if response.status().is_server_error() => {}
            other => return other,
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        self.digest_of(repository, tag, reader).await
    }

    /// Every tag of `repository` (for the gate without an index, which reads the whole
    /// repository when a policy asks).
    pub async fn tags(
        &self,
        repository: &str,
        reader: &Reader,
    ) -> Result<Vec<String>, UpstreamError> {
        let mut pages = self.tag_pages(repository, reader);
        let mut tags = Vec::new();
        while let Some(batch) = pages.next_batch().await? {
            tags.extend(batch);
        }
        Ok(tags)
    }

    /// Store `manifest` under `reference`, with the client's credentials.
    pub async fn put_manifest(
        &self,
        repository: &str,
        reference: &str,
        media_type: &HeaderValue,
        manifest: Bytes,
        auth: Option<&HeaderValue>,
    ) -> Result<Response<Bytes>, UpstreamError> {
        let mut headers = client_headers(auth);
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
            client_headers(auth),
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

/// Tags asked for per page of a tag list (registries that page honour it; CNCF distribution
/// 2.8 sends every tag at once, read as a stream).
const TAG_PAGE: usize = 1000;
/// Tags handed out at a time while a page is read.
const TAG_BATCH: usize = 1000;

/// A repository's tag list, read a batch at a time: [`Upstream::tag_pages`].
pub struct TagPages<'a> {
    upstream: &'a Upstream,
    repository: &'a str,
    reader: &'a Reader,
    /// The path of the next page to ask for.
    next: Option<String>,
    /// The page being read.
    body: Option<(Incoming, TagListReader)>,
}

impl TagPages<'_> {
    /// The next tags, at most [`TAG_BATCH`]; `None` at the end of the list.
    pub async fn next_batch(&mut self) -> Result<Option<Vec<String>>, UpstreamError> {
        let mut batch = Vec::new();
        loop {
            let Some((body, reader)) = &mut self.body else {
                let Some(path) = self.next.take() else {
                    return Ok((!batch.is_empty()).then_some(batch));
                };
                let response = self
                    .upstream
                    .open(Method::GET, self.repository, &path, manifest_accept(), self.reader)
                    .await?;
                match response.status() {
                    // A repository that does not exist yet has no tags.
                    StatusCode::NOT_FOUND => continue,
                    status if status.is_success() => {}
                    _ => {
                        let (parts, body) = response.into_parts();
                        let bytes = collect(body, MAX_ANSWER_BYTES, "an error").await?;
                        return Err(UpstreamError::Refused(Box::new(Response::from_parts(
                            parts, bytes,
                        ))));
                    }
                }
                self.next = next_page(response.headers());
                self.body = Some((response.into_body(), TagListReader::new()));
                continue;
            };
            let frame = tokio::time::timeout(LOOKUP_TIMEOUT, body.frame()).await;
            match frame {
                Err(_) => return Err(UpstreamError::Timeout(LOOKUP_TIMEOUT)),
                Ok(Some(Err(error))) => return Err(unreachable_or_tls(&error)),
                Ok(Some(Ok(frame))) => {
                    if let Ok(data) = frame.into_data() {
                        let tags = reader.feed(&data).map_err(|e| {
                            UpstreamError::Invalid(format!("`{}`: {e}", self.repository))
                        })?;
                        batch.extend(tags);
                    }
                }
                Ok(None) => {
                    let (_, reader) = self.body.take().expect("reading a page");
                    reader.finish().map_err(|e| {
                        UpstreamError::Invalid(format!("`{}`: {e}", self.repository))
                    })?;
                }
            }
            if batch.len() >= TAG_BATCH {
                return Ok(Some(batch));
            }
        }
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
async fn collect(body: Incoming, max_bytes: usize, what: &str) -> Result<Bytes, UpstreamError> {
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

/// `Accept` with every manifest type the gate knows.
fn manifest_accept() -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(ACCEPT, HeaderValue::from_static(MANIFEST_TYPES));
    headers
}

/// Headers of a request sent with the client's credentials.
fn client_headers(auth: Option<&HeaderValue>) -> HeaderMap {
    let mut headers = manifest_accept();
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
