//! Each request: pass it through untouched, or (a manifest write or deletion) decide it with
//! the policies of its repository and apply it upstream only if allowed.

use super::admin::Listener;
use super::answer::{denial, oci_error, unauthorized, upstream_failure, with_warnings};
use super::config::Rules;
use super::coordination::{CoordinationError, Lease};
use super::identity::{Established, Identity, Unauthorized};
use super::index::{IndexError, TagNow};
use super::limits::GateLimits;
use super::log::{self, Entry, Reason};
use super::route::{self, ManifestWrite, Reference, Route, WriteMethod};
use super::stall::IdleBody;
use super::state::{DecisionView, Tags};
use super::upstream::{Body, Reader, UpstreamError, empty, full};
use super::{Active, Shared};
use bytes::Bytes;
use http::header::HOST;
use http::header::{
    AUTHORIZATION, CONTENT_TYPE, HeaderValue, LOCATION, RETRY_AFTER, WWW_AUTHENTICATE,
};
use http::{Method, Response, StatusCode, Version, request::Parts};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;
use tagpolicy::Digest;
use tagpolicy::Manifest;
use tagpolicy::Stamp;
use tagpolicy::{Decision, Finding, Outcome, Severity};
use tagpolicy::{ManifestDeletion, Operation, Push, Request, TagChange};

/// Largest manifest accepted, as CNCF distribution does.
const MAX_MANIFEST_BYTES: usize = 4 << 20;
const X_FORWARDED_PROTO: http::HeaderName = http::HeaderName::from_static("x-forwarded-proto");
/// The name findings of the gate itself carry.
const GATE: &str = "tagpolicy-gate";

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

/// The client's login check (`GET /v2/`) with htpasswd configured: the gate asks for (and
/// checks) basic credentials, as a registry with htpasswd auth does.
async fn login_check(active: &Arc<Active>, headers: &http::HeaderMap) -> Option<Unauthorized> {
    let checked = verify(active, headers, |identity, headers| identity.check_basic(headers)).await;
    match checked {
        Err(refused) => Some(refused),
        Ok(false) if !headers.contains_key(AUTHORIZATION) => Some(Unauthorized::AnonymousDenied),
        Ok(_) => None,
    }
}

/// Run an identity check. A bcrypt verification costs tens of milliseconds of CPU, so with
/// an htpasswd file the check runs on a blocking thread; otherwise (tokens, headers) inline.
async fn verify<T: Send + 'static>(
    active: &Arc<Active>,
    headers: &http::HeaderMap,
    check: impl FnOnce(&Identity, &http::HeaderMap) -> Result<T, Unauthorized> + Send + 'static,
) -> Result<T, Unauthorized> {
    let identity = &active.rules.identity;
    if !identity.requires_basic_auth() {
        return check(identity, headers);
    }
    let (active, headers) = (active.clone(), headers.clone());
    tokio::task::spawn_blocking(move || check(&active.rules.identity, &headers))
        .await
        .unwrap_or(Err(Unauthorized::BadPassword))
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

/// One intercepted request and what it needs to be decided.
struct Exchange<'a> {
    shared: &'a Arc<Shared>,
    rules: &'a Rules,
    log: Option<&'a log::DecisionLog>,
    write: ManifestWrite,
    parts: Parts,
    established: Established,
    started: Instant,
}

impl Exchange<'_> {
    fn repository(&self) -> &str {
        &self.write.repository
    }

    fn auth(&self) -> Option<&HeaderValue> {
        self.parts.headers.get(AUTHORIZATION)
    }

    fn limits(&self) -> &GateLimits {
        &self.shared.limits
    }

    /// The manifest's bytes, within the size limit and the body timeout. Read before the
    /// repository is locked, so that a slow client holds up no one else.
    async fn read_manifest(&self, body: Incoming) -> Result<Bytes, Response<Body>> {
        let timeout = self.limits().body_timeout;
        let read = tokio::time::timeout(timeout, Limited::new(body, MAX_MANIFEST_BYTES).collect());
        match read.await {
            Ok(Ok(collected)) => Ok(collected.to_bytes()),
            Ok(Err(error)) if error.is::<http_body_util::LengthLimitError>() => Err(oci_error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "SIZE_INVALID",
                &format!("a manifest may be at most {MAX_MANIFEST_BYTES} bytes"),
                None,
            )),
            Ok(Err(error)) => Err(oci_error(
                StatusCode::BAD_REQUEST,
                "MANIFEST_INVALID",
                &format!("cannot read the manifest: {error}"),
                None,
            )),
            Err(_) => {
                self.shared.metrics.timeout("body");
                tracing::info!(repository = self.repository(), ?timeout, "manifest body timed out");
                Err(oci_error(
                    StatusCode::REQUEST_TIMEOUT,
                    "UNKNOWN",
                    &format!(
                        "the manifest did not arrive within {}; nothing was changed",
                        humantime::format_duration(timeout)
                    ),
                    None,
                ))
            }
        }
    }

    /// Hold the repository for this change (a lease shared by every replica, or this
    /// process's lock), waiting at most `lock_timeout` for another change of it; the lease
    /// carries the repository's generation. With an index, the repository's index is then
    /// made ready (filled, its dirty tags looked up again).
    async fn lease(&self) -> Result<Lease, Response<Body>> {
        let timeout = self.limits().lock_timeout;
        let lease = match self.shared.coordinator.lease(self.repository(), timeout).await {
            Ok(lease) => lease,
            Err(error @ CoordinationError::Busy { .. }) => {
                // Held by a fill: say so, with its progress, rather than only "busy".
                if let Some(index) = &self.shared.index
                    && index.is_filling(self.repository()).await
                {
                    let read = index.fill_progress(self.repository()).await;
                    let repository = self.repository().to_string();
                    return Err(self.index_failure(IndexError::Filling { repository, read }));
                }
                return Err(self.coordination_failure(error));
            }
            Err(error) => return Err(self.coordination_failure(error)),
        };
        match &self.shared.index {
            Some(index) => {
                index.prepare(self.repository(), lease).await.map_err(|e| self.index_failure(e))
            }
            None => Ok(lease),
        }
    }

    /// Whose view the gate's lookups for this change read: its own account when it has
    /// one (shared by every client), else the client's credentials (for this change only).
    fn reader(&self) -> Reader {
        if self.shared.upstream.has_account() {
            Reader::Gate
        } else {
            Reader::Client(self.auth().cloned())
        }
    }

    /// The index cannot be used for this change: 503 (or the upstream's refusal of the
    /// gate's account), nothing written.
    fn index_failure(&self, error: IndexError) -> Response<Body> {
        let (retry, message) = match error {
            IndexError::Coordination(error) => return self.coordination_failure(error),
            IndexError::Lookup { error: UpstreamError::AccountRefused(why), .. } => {
                return self.lookup_failure(UpstreamError::AccountRefused(why));
            }
            IndexError::Filling { .. } => {
                self.shared.metrics.timeout("fill");
                ("5", error.to_string())
            }
            IndexError::Store(_) => {
                self.shared.metrics.coordination_error();
                ("1", format!("{error}; nothing was changed, try again"))
            }
            IndexError::Fill { .. } | IndexError::Lookup { .. } => {
                ("5", format!("{error}; nothing was changed, try again"))
            }
        };
        tracing::warn!(repository = self.repository(), %message, "tag change not decided");
        let mut response =
            oci_error(StatusCode::SERVICE_UNAVAILABLE, "UNAVAILABLE", &message, None);
        response.headers_mut().insert(RETRY_AFTER, HeaderValue::from_static(retry));
        response
    }

    /// Mark `tags` in the index as about to change, before the first write is sent.
    async fn before_writes(&self, tags: &[String]) -> Result<(), Response<Body>> {
        let Some(index) = &self.shared.index else { return Ok(()) };
        index
            .before_write(self.repository(), tags)
            .await
            .map_err(|e| self.index_failure(IndexError::Store(e)))
    }

    /// The change cannot be coordinated: 503, nothing written.
    fn coordination_failure(&self, error: CoordinationError) -> Response<Body> {
        let metrics = &self.shared.metrics;
        match &error {
            CoordinationError::Busy { .. } => metrics.timeout("lock"),
            CoordinationError::LeaseLost(_) => metrics.lease_lost(),
            CoordinationError::Unreachable { .. } | CoordinationError::SettingsDiffer { .. } => {
                metrics.coordination_error()
            }
        }
        tracing::warn!(repository = self.repository(), %error, "tag change not coordinated");
        let mut response = oci_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "UNAVAILABLE",
            &format!("{error}; nothing was changed, try again"),
            None,
        );
        response.headers_mut().insert(RETRY_AFTER, HeaderValue::from_static("1"));
        response
    }

    /// Record what the change did to `tags` (as a change of `request`'s actor at its time),
    /// so that every replica decides on it, and release the repository. If the record cannot
    /// be made, the tags stay dirty and the intent stays: the next holder reads them again.
    async fn record(
        &self,
        lease: Lease,
        tags: &[(String, TagNow)],
        answered: bool,
        request: &Request,
    ) {
        self.shared.cache.invalidate(Some(self.repository()));
        if let Some(index) = &self.shared.index {
            let stamp = Stamp { at: request.time, actor: request.actor.id.clone() };
            if let Err(error) = index.record(self.repository(), tags, &stamp).await {
                self.shared.metrics.coordination_error();
                tracing::warn!(repository = self.repository(), %error, "could not record a change in the index");
            }
        }
        if let Err(error) = self.shared.coordinator.finish(lease, answered).await {
            self.shared.metrics.coordination_error();
            tracing::warn!(repository = self.repository(), %error, "could not record a change");
        }
    }

    /// A lookup of the gate's own failed. A refusal (401 with a bearer challenge) is the
    /// upstream's answer to a read, so its challenge asks for `pull`; the client is about to
    /// write, so the challenge asks for what the write needs as well (as the upstream would
    /// for the write itself), and a single token request serves both.
    fn lookup_failure(&self, error: UpstreamError) -> Response<Body> {
        if let UpstreamError::AccountRefused(why) = &error {
            // The gate's own account, not the client, lacks something: the client is not
            // challenged; the operator is told.
            self.shared.metrics.coordination_error();
            tracing::error!(repository = self.repository(), %why, "the upstream refused the gate's read account (`upstream_read`)");
            return oci_error(
                StatusCode::BAD_GATEWAY,
                "UNAVAILABLE",
                &format!("{error}; nothing was changed"),
                None,
            );
        }
        let mut response = upstream_failure(self.shared, error);
        let actions = match self.write.method {
            WriteMethod::Put => "pull,push",
            WriteMethod::Delete => "pull,delete",
        };
        if response.status() == StatusCode::UNAUTHORIZED
            && let Some(challenge) = response.headers().get(WWW_AUTHENTICATE)
            && let Some(widened) = widen_scope(challenge, self.repository(), actions)
        {
            response.headers_mut().insert(WWW_AUTHENTICATE, widened);
        }
        response
    }

    /// Send the decided request upstream (its canonical target, the client's headers), if the
    /// lease still allows it. `Err` if it was not sent; the bool says whether it was answered.
    async fn forward_write(
        &self,
        lease: &Lease,
        body: Body,
    ) -> Result<(Response<Body>, bool), Response<Body>> {
        let what = format!("{} {}", self.parts.method, self.parts.uri);
        lease.before_write(&what).await.map_err(|e| self.coordination_failure(e))?;
        let request = http::Request::from_parts(self.parts.clone(), body);
        Ok(match self.shared.upstream.forward_write(request).await {
            Ok(response) => (response.map(|body| idle(self.shared, body, "upstream_body")), true),
            Err(error) => (upstream_failure(self.shared, error), false),
        })
    }

    async fn put(&mut self, body: Incoming) -> Response<Body> {
        let manifest = match self.read_manifest(body).await {
            Ok(manifest) => manifest,
            Err(response) => return response,
        };
        let digest = Digest::of(&manifest).to_string();
        if let Reference::Digest(reference) = &self.write.reference
            && *reference != digest
        {
            return oci_error(
                StatusCode::BAD_REQUEST,
                "DIGEST_INVALID",
                &format!("the manifest's digest is `{digest}`, not `{reference}`"),
                None,
            );
        }
        let tags = self.write.tags();
        if tags.is_empty() {
            // A manifest pushed by digest alone (a multi-arch child) changes no tag.
            let request = http::Request::from_parts(self.parts.clone(), full(manifest));
            return pass_through(self.shared, request).await;
        }
        let media_type = self
            .parts
            .headers
            .get(CONTENT_TYPE)
            .cloned()
            .unwrap_or(HeaderValue::from_static(tagpolicy::OCI_MANIFEST));

        let lease = match self.lease().await {
            Ok(lease) => lease,
            Err(response) => return response,
        };
        let generation = lease.generation;
        let changes = match self.current_digests(&tags).await {
            Ok(changes) => changes,
            Err(response) => return response,
        };
        let operation = Operation::Push(Push { digest: digest.clone(), tags: changes });
        let facts = Manifest::from_json(&manifest, media_type.to_str().ok());
        let (request, decision) =
            self.decide(operation, Some((digest.clone(), facts)), generation).await;
        if !decision.is_allowed() {
            return self.denial(&request, &decision).await;
        }
        let Operation::Push(push) = &request.operation else { unreachable!("built above") };
        if let Err(response) = self.before_writes(&tags).await {
            return response;
        }
        let (response, answered, now) = if self.write.parameters.is_empty() {
            match self.forward_write(&lease, full(manifest)).await {
                Ok((response, answered)) => {
                    let now = tags_now(&push.tags, response.status().is_success(), &push.digest);
                    (response, answered, now)
                }
                Err(response) => return response,
            }
        } else {
            match self.apply_tags(&lease, push, &media_type, manifest).await {
                Ok(applied) => applied,
                Err(response) => return response,
            }
        };
        self.record(lease, &now, answered, &request).await;
        with_warnings(response, &decision)
    }

    async fn delete(&mut self) -> Response<Body> {
        let lease = match self.lease().await {
            Ok(lease) => lease,
            Err(response) => return response,
        };
        let generation = lease.generation;
        let operation = match self.write.reference.clone() {
            Reference::Tag(tag) => match self.current_digests(std::slice::from_ref(&tag)).await {
                Ok(changes) if changes[0].current.is_none() => {
                    // Nothing to delete: the upstream says so in its own words.
                    if let Err(response) = self.before_writes(std::slice::from_ref(&tag)).await {
                        return response;
                    }
                    return match self.forward_write(&lease, empty()).await {
                        Ok((response, answered)) => {
                            let request = Request {
                                repository: self.repository().to_string(),
                                actor: self.established.actor.clone(),
                                operation: Operation::DeleteTags(changes),
                                time: tagpolicy::Instant::now(),
                            };
                            self.record(lease, &[(tag, TagNow::Unknown)], answered, &request).await;
                            response
                        }
                        Err(response) => response,
                    };
                }
                Ok(changes) => Operation::DeleteTags(changes),
                Err(response) => return response,
            },
            Reference::Digest(digest) => match self.tags_of_digest(&digest).await {
                Ok(tags) => Operation::DeleteManifest(ManifestDeletion { digest, tags }),
                Err(response) => return response,
            },
        };
        let (request, decision) = self.decide(operation, None, generation).await;
        if !decision.is_allowed() {
            return self.denial(&request, &decision).await;
        }
        let touched: Vec<String> = request.tags().into_iter().map(str::to_string).collect();
        if let Err(response) = self.before_writes(&touched).await {
            return response;
        }
        let (response, answered) = match self.forward_write(&lease, empty()).await {
            Ok(sent) => sent,
            Err(response) => return response,
        };
        let deleted = response.status().is_success();
        let now: Vec<(String, TagNow)> = touched
            .into_iter()
            .map(|tag| (tag, if deleted { TagNow::Is(None) } else { TagNow::Unknown }))
            .collect();
        self.record(lease, &now, answered, &request).await;
        with_warnings(response, &decision)
    }

    /// The tags a deletion of manifest `digest` removes: from the index (with
    /// `authoritative`; else each one it lists looked up again), or, without one, from the
    /// whole repository read now.
    async fn tags_of_digest(&self, digest: &str) -> Result<Vec<String>, Response<Body>> {
        let repository = self.repository();
        let Some(index) = &self.shared.index else {
            let state = super::state::fetch(&self.shared.upstream, repository, &self.reader())
                .await
                .map_err(|error| self.lookup_failure(error))?;
            return Ok(tagpolicy::RepositoryView::tags_of(&state, digest));
        };
        let listed = index
            .tags_of(repository, digest)
            .await
            .map_err(|e| self.index_failure(IndexError::Store(e)))?;
        if self.shared.authoritative {
            return Ok(listed);
        }
        let found = self.look_up(&listed).await?;
        let mut tags = Vec::new();
        for change in found {
            if change.current.as_deref() == Some(digest) {
                tags.push(change.tag);
            } else {
                self.correct_index(&change.tag, change.current.as_deref()).await;
            }
        }
        Ok(tags)
    }

    /// Each tag with the digest it points at now: from the index with `authoritative`, else
    /// looked up upstream (concurrently, as the gate when it has an account); a lookup that
    /// shows the index wrong fixes it.
    async fn current_digests(&self, tags: &[String]) -> Result<Vec<TagChange>, Response<Body>> {
        if let Some(index) = &self.shared.index
            && self.shared.authoritative
        {
            let digests = index
                .digests(self.repository(), tags)
                .await
                .map_err(|e| self.index_failure(IndexError::Store(e)))?;
            for _ in tags {
                self.shared.metrics.tag_cache(true);
            }
            let changes = tags.iter().zip(digests);
            return Ok(changes
                .map(|(tag, current)| TagChange { tag: tag.clone(), current })
                .collect());
        }
        let changes = self.look_up(tags).await?;
        if let Some(index) = &self.shared.index {
            let indexed = index
                .digests(self.repository(), tags)
                .await
                .map_err(|e| self.index_failure(IndexError::Store(e)))?;
            for (change, indexed) in changes.iter().zip(indexed) {
                if change.current != indexed {
                    self.correct_index(&change.tag, change.current.as_deref()).await;
                }
            }
        }
        Ok(changes)
    }

    /// Look `tags` up upstream, concurrently.
    async fn look_up(&self, tags: &[String]) -> Result<Vec<TagChange>, Response<Body>> {
        let mut changes: Vec<Option<TagChange>> = vec![None; tags.len()];
        let mut lookups = tokio::task::JoinSet::new();
        for (index, tag) in tags.iter().enumerate() {
            let upstream = self.shared.upstream.clone();
            let (repository, tag, reader) =
                (self.repository().to_string(), tag.clone(), self.reader());
            lookups.spawn(async move {
                let current = upstream.digest_of(&repository, &tag, &reader).await?;
                Ok::<_, UpstreamError>((index, TagChange { tag, current }))
            });
        }
        while let Some(joined) = lookups.join_next().await {
            let answered =
                joined.map_err(|e| UpstreamError::Invalid(format!("a failed lookup: {e}")));
            match answered.and_then(|lookup| lookup) {
                Ok((index, change)) => {
                    self.shared.metrics.tag_cache(false);
                    changes[index] = Some(change);
                }
                Err(error) => return Err(self.lookup_failure(error)),
            }
        }
        Ok(changes.into_iter().map(|c| c.expect("every tag looked up")).collect())
    }

    /// A lookup found `tag` elsewhere than the index said: fix the index, and count it.
    async fn correct_index(&self, tag: &str, digest: Option<&str>) {
        let Some(index) = &self.shared.index else { return };
        match index.correct(self.repository(), tag, digest).await {
            Ok(true) => {
                self.shared.metrics.index_correction("lookup");
                tracing::warn!(repository = self.repository(), tag, now = ?digest, "a lookup found the index wrong; fixed");
            }
            Ok(false) => {}
            Err(error) => {
                tracing::warn!(repository = self.repository(), %error, "could not fix the index");
            }
        }
    }

    /// 403 with the decision's reasons, shown only to a client the upstream lets read the
    /// repository: the gate decided on its own view, which may hold what this client may
    /// not see. A client the upstream refuses gets the upstream's refusal instead (a
    /// challenge to authenticate, or its 403 or 404). One `HEAD`, of a manifest the gate
    /// knows is there, asks; a repository the gate knows nothing of has nothing to hide.
    async fn denial(&self, request: &Request, decision: &Decision) -> Response<Body> {
        if matches!(self.reader(), Reader::Client(_)) {
            return denial(request, decision);
        }
        let Some(known) = self.known_manifest(request).await else {
            return denial(request, decision);
        };
        match self.shared.upstream.client_may_read(self.repository(), &known, self.auth()).await {
            Ok(None) => denial(request, decision),
            Ok(Some(refusal)) if refusal.status() == StatusCode::NOT_FOUND => {
                let (parts, body) = (*refusal).into_parts();
                Response::from_parts(parts, full(body))
            }
            Ok(Some(refusal)) => self.lookup_failure(UpstreamError::Refused(refusal)),
            Err(error) => self.lookup_failure(error),
        }
    }

    /// A tag or digest of the repository the gate knows is there: one the request touches,
    /// else any tag of the index.
    async fn known_manifest(&self, request: &Request) -> Option<String> {
        let touched = match &request.operation {
            Operation::Push(push) => {
                push.tags.iter().find(|c| c.current.is_some()).map(|c| c.tag.clone())
            }
            Operation::DeleteTags(tags) => {
                tags.iter().find(|c| c.current.is_some()).map(|c| c.tag.clone())
            }
            Operation::DeleteManifest(deletion) => Some(deletion.digest.clone()),
        };
        if touched.is_some() {
            return touched;
        }
        let index = self.shared.index.as_ref()?;
        index.first_tag(self.repository()).await.ok().flatten()
    }

    /// Decide `operation` with the repository's policies; log and count the decision.
    /// `pushed` is the digest being pushed with its manifest's facts.
    async fn decide(
        &self,
        operation: Operation,
        pushed: Option<(String, Result<Manifest, String>)>,
        generation: u64,
    ) -> (Request, Decision) {
        let actor = self.established.actor.clone();
        let request = Request {
            repository: self.repository().to_string(),
            actor,
            operation,
            time: tagpolicy::Instant::now(),
        };
        let rule = self.rules.rule_for(self.repository());
        let identical = match &request.operation {
            Operation::Push(push) => {
                push.tags.iter().all(|change| change.current.as_deref() == Some(&push.digest))
            }
            _ => false,
        };
        let decided = Instant::now();
        let decision = match rule {
            // Re-pushing what is already there changes nothing; no policy needs to agree.
            _ if identical => {
                self.shared.metrics.request("identical");
                Decision::allow()
            }
            None => Decision::allow(),
            Some(rule) => {
                let policies = rule.policies.clone();
                let tags =
                    match self.shared.index.as_ref().and_then(|i| i.reader(self.repository())) {
                        Some(reader) => Tags::Index(reader),
                        None => Tags::Upstream { cache: self.shared.cache.clone(), generation },
                    };
                let view = Arc::new(DecisionView::new(
                    self.shared.upstream.clone(),
                    self.repository(),
                    self.reader(),
                    tags,
                    pushed,
                    self.shared.limits.max_config_bytes,
                ));
                let evaluated = request.clone();
                let outcome = tokio::task::spawn_blocking(move || {
                    let decision = policies.evaluate(&evaluated, view.clone());
                    (decision, view.failure())
                })
                .await;
                for (policy, _) in rule.policies.policies() {
                    let own = outcome.as_ref().ok().map(|(d, _)| policy_outcome(d, policy.name()));
                    self.shared.metrics.decision(policy.name(), own.unwrap_or("error"));
                }
                match outcome {
                    Ok((decision, None)) => decision,
                    Ok((_, Some(failure))) => {
                        gate_denial(format!("{failure}; the request is denied"))
                    }
                    Err(error) => gate_denial(format!(
                        "the evaluation failed ({error}); the request is denied"
                    )),
                }
            }
        };
        self.shared.metrics.decision_latency(decided.elapsed());
        if let Some(log) = self.log {
            let source = self.established.source;
            log.write(&log_entry(&request, &decision, rule, source, self.started));
        }
        tracing::info!(
            repository = %request.repository,
            tags = ?request.tags(),
            decision = %decision.outcome,
            reasons = %decision.summary(),
            "decided"
        );
        (request, decision)
    }

    /// Apply the tags of a push with `tag` parameters (`PUT .../manifests/<digest>?tag=a&tag=b`,
    /// or by tag with more tags as parameters): the upstream gets the decided request first;
    /// tags it did not apply itself (CNCF distribution ignores the parameters) are written by
    /// the gate, one PUT per tag. If one write fails, the tags already written are put back as
    /// they were. Returns the answer, whether every write sent was answered, and what each
    /// tag is now.
    async fn apply_tags(
        &self,
        lease: &Lease,
        push: &Push,
        media_type: &HeaderValue,
        manifest: Bytes,
    ) -> Result<(Response<Body>, bool, Vec<(String, TagNow)>), Response<Body>> {
        let unknown = || push.tags.iter().map(|c| (c.tag.clone(), TagNow::Unknown)).collect();
        let (response, answered) = self.forward_write(lease, full(manifest.clone())).await?;
        if !response.status().is_success() {
            return Ok((response, answered, unknown()));
        }
        let mut applied: Vec<String> = response
            .headers()
            .get_all("oci-tag")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(|t| t.trim().to_string())
            .collect();
        if let Reference::Tag(tag) = &self.write.reference {
            applied.push(tag.clone());
        }
        let auth = self.auth();
        let repository = self.repository();
        let upstream = &self.shared.upstream;
        let mut written: Vec<&TagChange> = Vec::new();
        let mut failure = None;
        for change in &push.tags {
            if applied.contains(&change.tag) || change.current.as_deref() == Some(&push.digest) {
                continue;
            }
            let what = format!("PUT /v2/{repository}/manifests/{}", change.tag);
            if let Err(error) = lease.before_write(&what).await {
                // Nothing more may be sent, not even an undo: the intent stays, and the next
                // holder reads the repository again.
                let written: Vec<&str> = written.iter().map(|c| c.tag.as_str()).collect();
                tracing::error!(repository, %error, ?written, "multi-tag push stopped");
                return Ok((self.coordination_failure(error), false, unknown()));
            }
            match upstream
                .put_manifest(repository, &change.tag, media_type, manifest.clone(), auth)
                .await
            {
                Ok(response) if response.status().is_success() => written.push(change),
                Ok(response) => {
                    failure = Some((
                        change,
                        format!("HTTP {}: {}", response.status(), excerpt(response.body())),
                        true,
                    ));
                    break;
                }
                Err(error) => {
                    let answered = !matches!(error, UpstreamError::WriteTimeout(_));
                    failure = Some((change, error.to_string(), answered));
                    break;
                }
            }
        }
        if let Some((change, why, answered)) = failure {
            let (undone, all_answered) = self.undo(lease, &written, auth).await;
            let message = format!(
                "tag `{}` could not be written upstream ({why}); {}",
                change.tag,
                if undone.is_empty() {
                    "no other tag was changed".to_string()
                } else {
                    undone.join("; ")
                }
            );
            tracing::error!(repository, %message, "multi-tag push failed");
            let response = oci_error(StatusCode::BAD_GATEWAY, "UNKNOWN", &message, None);
            return Ok((response, answered && all_answered, unknown()));
        }
        let mut response = Response::builder()
            .status(StatusCode::CREATED)
            .header(LOCATION, format!("/v2/{repository}/manifests/{}", push.digest))
            .header("docker-content-digest", &push.digest);
        for change in &push.tags {
            response = response.header("oci-tag", &change.tag);
        }
        let now = tags_now(&push.tags, true, &push.digest);
        Ok((response.body(empty()).expect("valid headers"), true, now))
    }

    /// Put tags written by a failed multi-tag push back where they were; say what happened,
    /// and whether every write sent was answered.
    async fn undo(
        &self,
        lease: &Lease,
        written: &[&TagChange],
        auth: Option<&HeaderValue>,
    ) -> (Vec<String>, bool) {
        let upstream = &self.shared.upstream;
        let repository = self.repository();
        let mut report = Vec::new();
        let mut answered = true;
        for change in written.iter().rev() {
            let what = format!("undo of tag `{}`", change.tag);
            if let Err(error) = lease.before_write(&what).await {
                report.push(format!("could not undo `{}` ({error})", change.tag));
                answered = false;
                continue;
            }
            let result = match &change.current {
                Some(previous) => {
                    match upstream.manifest(repository, previous, &self.reader()).await {
                        Ok(Some((media_type, bytes))) => upstream
                            .put_manifest(repository, &change.tag, &media_type, bytes, auth)
                            .await
                            .map(|r| r.status()),
                        Ok(None) => Ok(StatusCode::NOT_FOUND),
                        Err(error) => Err(error),
                    }
                }
                None => upstream
                    .delete_manifest(repository, &change.tag, auth)
                    .await
                    .map(|r| r.status()),
            };
            if matches!(result, Err(UpstreamError::WriteTimeout(_))) {
                answered = false;
            }
            let what = match &change.current {
                Some(previous) => format!("restored `{}` to `{previous}`", change.tag),
                None => format!("removed the new tag `{}`", change.tag),
            };
            report.push(match result {
                Ok(status) if status.is_success() => what,
                Ok(status) => format!("could not undo `{}` (HTTP {status})", change.tag),
                Err(error) => format!("could not undo `{}` ({error})", change.tag),
            });
        }
        (report, answered)
    }
}

/// What each tag of a push is after its write: the pushed digest if it succeeded, else not
/// known.
fn tags_now(changes: &[TagChange], succeeded: bool, digest: &str) -> Vec<(String, TagNow)> {
    changes
        .iter()
        .map(|change| {
            let now =
                if succeeded { TagNow::Is(Some(digest.to_string())) } else { TagNow::Unknown };
            (change.tag.clone(), now)
        })
        .collect()
}

/// `scope="repository:<repository>:<anything>"` in a bearer challenge, with `actions` instead;
/// `None` if the challenge has no such scope.
fn widen_scope(challenge: &HeaderValue, repository: &str, actions: &str) -> Option<HeaderValue> {
    let text = challenge.to_str().ok()?;
    let prefix = format!("scope=\"repository:{repository}:");
    let start = text.find(&prefix)? + prefix.len();
    let end = start + text[start..].find('"')?;
    let widened = format!("{}{actions}{}", &text[..start], &text[end..]);
    HeaderValue::from_str(&widened).ok()
}

fn policy_outcome(decision: &Decision, policy: &str) -> &'static str {
    let mut outcome = Outcome::Allow;
    for finding in decision.findings.iter().filter(|f| f.policy == policy) {
        outcome = outcome.max(match finding.severity {
            Severity::Deny => Outcome::Deny,
            Severity::Warn => Outcome::Warn,
        });
    }
    outcome.as_str()
}

fn gate_denial(reason: String) -> Decision {
    Decision::from_findings(vec![Finding {
        policy: GATE.to_string(),
        severity: Severity::Deny,
        tag: None,
        reason,
    }])
}

fn log_entry<'a>(
    request: &'a Request,
    decision: &'a Decision,
    rule: Option<&'a super::config::Rule>,
    actor_source: super::identity::ActorSource,
    started: Instant,
) -> Entry<'a> {
    let digest = match &request.operation {
        Operation::Push(push) => Some(push.digest.as_str()),
        Operation::DeleteTags(_) => None,
        Operation::DeleteManifest(deletion) => Some(deletion.digest.as_str()),
    };
    Entry {
        time: log::now_rfc3339(),
        repository: &request.repository,
        operation: request.operation.name(),
        tags: request.tags(),
        digest,
        actor: request.actor.id.as_deref(),
        actor_source,
        decision: decision.outcome.as_str(),
        reasons: decision
            .findings
            .iter()
            .map(|f| Reason {
                policy: &f.policy,
                severity: match f.severity {
                    Severity::Deny => "deny",
                    Severity::Warn => "warn",
                },
                tag: f.tag.as_deref(),
                reason: &f.reason,
            })
            .collect(),
        policies: rule
            .map(|rule| rule.policies.policies().map(|(p, _)| p.name()).collect())
            .unwrap_or_default(),
        latency_ms: started.elapsed().as_secs_f64() * 1000.0,
    }
}

fn excerpt(body: &Bytes) -> String {
    let text = String::from_utf8_lossy(&body[..body.len().min(300)]);
    text.replace(|c: char| c.is_control(), " ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_challenge_for_a_read_asks_for_the_write() {
        let challenge = HeaderValue::from_static(
            r#"Bearer realm="https://auth/token",service="reg",scope="repository:team/app:pull",error="insufficient_scope""#,
        );
        let widened = widen_scope(&challenge, "team/app", "pull,push").unwrap();
        assert_eq!(
            widened,
            r#"Bearer realm="https://auth/token",service="reg",scope="repository:team/app:pull,push",error="insufficient_scope""#
        );
        assert_eq!(widen_scope(&challenge, "other/app", "pull,push"), None);
        assert_eq!(widen_scope(&HeaderValue::from_static("Basic realm=x"), "a", "pull"), None);
    }
}
