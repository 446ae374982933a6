//! Each request: pass it through untouched, or (a manifest write or deletion) decide it with
//! the policies of its repository and apply it upstream only if allowed.

use super::config::Rules;
use super::identity::{Established, Identity, Scheme, Unauthorized};
use super::log::{self, Entry, Reason};
use super::state::UpstreamView;
use super::upstream::{Body, UpstreamError, empty, full, streamed};
use super::{Active, Shared};
use crate::decision::{Decision, Finding, Outcome, Severity};
use crate::push::{ManifestDeletion, Operation, Push, Request, TagChange};
use bytes::Bytes;
use http::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue, LOCATION, WWW_AUTHENTICATE};
use http::{Method, Response, StatusCode, request::Parts};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use serde_json::json;
use sha2::{Digest, Sha256};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

/// Largest manifest accepted, as CNCF distribution does.
const MAX_MANIFEST_BYTES: usize = 4 << 20;
/// Most tags in one multi-tag push (the spec asks registries to accept at least 10).
const MAX_TAGS_PER_PUSH: usize = 100;
/// Most bytes of `Warning` headers on one response (the spec's limit).
const MAX_WARNING_BYTES: usize = 4096;
/// Most bytes of a denial's one-line message.
const MAX_MESSAGE_BYTES: usize = 2048;
/// The name findings of the gate itself carry.
const GATE: &str = "tagpolicy-gate";

/// `PUT|DELETE /v2/<name>/manifests/<reference>`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ManifestRoute {
    repository: String,
    reference: Reference,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Reference {
    Tag(String),
    Digest(String),
}

impl ManifestRoute {
    fn parse(path: &str) -> Option<Self> {
        let rest = path.strip_prefix("/v2/")?;
        let (repository, reference) = rest.rsplit_once("/manifests/")?;
        if crate::oci::check_repository(repository).is_err() || reference.contains('/') {
            return None;
        }
        let reference = if reference.contains(':') {
            Reference::Digest(reference.to_string())
        } else {
            Reference::Tag(reference.to_string())
        };
        Some(ManifestRoute { repository: repository.to_string(), reference })
    }
}

pub async fn handle(
    shared: Arc<Shared>,
    peer: SocketAddr,
    mut request: http::Request<Incoming>,
) -> Response<Body> {
    let method = request.method().clone();
    match (&method, request.uri().path()) {
        (&Method::GET, "/metrics") => {
            return text(StatusCode::OK, shared.metrics.render(), "text/plain; version=0.0.4");
        }
        (&Method::GET, "/healthz") => return text(StatusCode::OK, "ok\n".into(), "text/plain"),
        (&Method::GET, "/readyz") => {
            return if shared.upstream.is_reachable().await {
                text(StatusCode::OK, "ready\n".into(), "text/plain")
            } else {
                text(StatusCode::SERVICE_UNAVAILABLE, "upstream unreachable\n".into(), "text/plain")
            };
        }
        _ => {}
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
    let route = match method {
        Method::PUT | Method::DELETE => ManifestRoute::parse(request.uri().path()),
        _ => None,
    };
    let Some(route) = route else {
        if matches!(request.uri().path(), "/v2" | "/v2/") && identity.requires_basic_auth() {
            // The client's login check: with htpasswd configured the gate asks for (and
            // checks) basic credentials, as a registry with htpasswd auth does.
            let checked = verify(&active, request.headers(), |identity, headers| {
                identity.check_basic(headers)
            })
            .await;
            let has_credentials = request.headers().contains_key(AUTHORIZATION);
            match checked {
                Err(refused) => return unauthorized(&shared, &active.rules, &refused).await,
                Ok(false) if !has_credentials => {
                    return unauthorized(&shared, &active.rules, &Unauthorized::AnonymousDenied)
                        .await;
                }
                Ok(_) => {}
            }
        }
        shared.metrics.request("passthrough");
        return pass_through(&shared, request.map(streamed)).await;
    };
    let (parts, body) = request.into_parts();
    let started = Instant::now();
    let established = verify(&active, &parts.headers, move |identity, headers| {
        identity.establish(headers, peer.ip())
    })
    .await;
    let established = match established {
        Ok(established) => established,
        Err(refused) => {
            tracing::info!(repository = %route.repository, %refused, "credentials refused");
            return unauthorized(&shared, &active.rules, &refused).await;
        }
    };
    let mut exchange = Exchange {
        shared: &shared,
        rules: &active.rules,
        log: active.log.as_ref(),
        route,
        parts,
        established,
        started,
    };
    if method == Method::PUT {
        shared.metrics.request("manifest_put");
        exchange.put(body).await
    } else {
        shared.metrics.request("manifest_delete");
        exchange.delete().await
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

async fn pass_through(shared: &Shared, request: http::Request<Body>) -> Response<Body> {
    match shared.upstream.forward(request, "forward").await {
        Ok(response) => response.map(streamed),
        Err(error) => upstream_failure(shared, error),
    }
}

/// One intercepted request and what it needs to be decided.
struct Exchange<'a> {
    shared: &'a Arc<Shared>,
    rules: &'a Rules,
    log: Option<&'a log::DecisionLog>,
    route: ManifestRoute,
    parts: Parts,
    established: Established,
    started: Instant,
}

impl Exchange<'_> {
    fn repository(&self) -> &str {
        &self.route.repository
    }

    fn auth(&self) -> Option<&HeaderValue> {
        self.parts.headers.get(AUTHORIZATION)
    }

    async fn put(&mut self, body: Incoming) -> Response<Body> {
        let manifest = match Limited::new(body, MAX_MANIFEST_BYTES).collect().await {
            Ok(collected) => collected.to_bytes(),
            Err(error) if error.is::<http_body_util::LengthLimitError>() => {
                return oci_error(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "SIZE_INVALID",
                    &format!("a manifest may be at most {MAX_MANIFEST_BYTES} bytes"),
                    None,
                );
            }
            Err(error) => {
                return oci_error(
                    StatusCode::BAD_REQUEST,
                    "MANIFEST_INVALID",
                    &format!("cannot read the manifest: {error}"),
                    None,
                );
            }
        };
        let digest = format!("sha256:{:x}", Sha256::digest(&manifest));
        let (tags, by_digest) = match &self.route.reference {
            Reference::Tag(tag) => (vec![tag.clone()], false),
            Reference::Digest(reference) => {
                if *reference != digest {
                    return oci_error(
                        StatusCode::BAD_REQUEST,
                        "DIGEST_INVALID",
                        &format!("the manifest's digest is `{digest}`, not `{reference}`"),
                        None,
                    );
                }
                (query_tags(self.parts.uri.query()), true)
            }
        };
        if tags.is_empty() {
            // A manifest pushed by digest alone (a multi-arch child) changes no tag.
            let request = http::Request::from_parts(self.parts.clone(), full(manifest));
            return pass_through(self.shared, request).await;
        }
        if tags.len() > MAX_TAGS_PER_PUSH {
            return oci_error(
                StatusCode::BAD_REQUEST,
                "TAG_INVALID",
                &format!(
                    "at most {MAX_TAGS_PER_PUSH} tags in one push; this one has {}",
                    tags.len()
                ),
                None,
            );
        }
        if let Some(error) = tags.iter().find_map(|tag| crate::oci::check_tag(tag).err()) {
            return oci_error(StatusCode::BAD_REQUEST, "TAG_INVALID", &error, None);
        }
        let media_type = self
            .parts
            .headers
            .get(CONTENT_TYPE)
            .cloned()
            .unwrap_or(HeaderValue::from_static(crate::scenario::DEFAULT_MEDIA_TYPE));

        let _serialized = self.shared.locks.lock(self.repository()).await;
        let changes = match self.current_digests(&tags).await {
            Ok(changes) => changes,
            Err(error) => return upstream_failure(self.shared, error),
        };
        let operation = Operation::Push(Push {
            digest: digest.clone(),
            media_type: media_type.to_str().unwrap_or_default().to_string(),
            tags: changes,
        });
        let (request, decision) = self.decide(operation).await;
        if !decision.is_allowed() {
            return denial(&request, &decision);
        }
        let Operation::Push(push) = &request.operation else { unreachable!("built above") };
        let response = if by_digest {
            self.apply_tags(push, &media_type, manifest).await
        } else {
            let request = http::Request::from_parts(self.parts.clone(), full(manifest));
            pass_through(self.shared, request).await
        };
        self.shared.cache.invalidate(self.repository());
        with_warnings(response, &decision)
    }

    async fn delete(&mut self) -> Response<Body> {
        let _serialized = self.shared.locks.lock(self.repository()).await;
        let operation = match self.route.reference.clone() {
            Reference::Tag(tag) => match self.current_digests(std::slice::from_ref(&tag)).await {
                Ok(changes) if changes[0].current.is_none() => {
                    // Nothing to delete: the upstream says so in its own words.
                    return self.forward_delete().await;
                }
                Ok(changes) => Operation::DeleteTags(changes),
                Err(error) => return upstream_failure(self.shared, error),
            },
            Reference::Digest(digest) => {
                // Fresh, not cached: the request removes exactly the tags on it now.
                match super::state::fetch(&self.shared.upstream, self.repository(), self.auth())
                    .await
                {
                    Ok(state) => {
                        use crate::push::RepositoryView;
                        let tags = state.tags_of(&digest);
                        Operation::DeleteManifest(ManifestDeletion { digest, tags })
                    }
                    Err(error) => return upstream_failure(self.shared, error),
                }
            }
        };
        let (request, decision) = self.decide(operation).await;
        if !decision.is_allowed() {
            return denial(&request, &decision);
        }
        let response = self.forward_delete().await;
        self.shared.cache.invalidate(self.repository());
        with_warnings(response, &decision)
    }

    async fn forward_delete(&self) -> Response<Body> {
        pass_through(self.shared, http::Request::from_parts(self.parts.clone(), empty())).await
    }

    /// Each tag with the digest it points at upstream now (looked up concurrently).
    async fn current_digests(&self, tags: &[String]) -> Result<Vec<TagChange>, UpstreamError> {
        let mut lookups = tokio::task::JoinSet::new();
        for (index, tag) in tags.iter().enumerate() {
            let upstream = self.shared.upstream.clone();
            let (repository, tag, auth) =
                (self.repository().to_string(), tag.clone(), self.auth().cloned());
            lookups.spawn(async move {
                let current = upstream.digest_of(&repository, &tag, auth.as_ref()).await?;
                Ok::<_, UpstreamError>((index, TagChange { tag, current }))
            });
        }
        let mut changes: Vec<Option<TagChange>> = vec![None; tags.len()];
        while let Some(joined) = lookups.join_next().await {
            let (index, change) =
                joined.map_err(|e| UpstreamError::Invalid(format!("a failed lookup: {e}")))??;
            changes[index] = Some(change);
        }
        Ok(changes.into_iter().map(|c| c.expect("every lookup answered")).collect())
    }

    /// Decide `operation` with the repository's policies; log and count the decision.
    async fn decide(&self, operation: Operation) -> (Request, Decision) {
        let actor = self.established.actor.clone();
        let request = Request { repository: self.repository().to_string(), actor, operation };
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
                let view = Arc::new(UpstreamView::new(
                    self.shared.upstream.clone(),
                    self.shared.cache.clone(),
                    self.repository(),
                    self.auth().cloned(),
                ));
                let evaluated = request.clone();
                let outcome = tokio::task::spawn_blocking(move || {
                    let decision = policies.evaluate(&evaluated, view.clone());
                    (decision, view.failure().map(str::to_string))
                })
                .await;
                for (policy, _) in rule.policies.policies() {
                    let own = outcome.as_ref().ok().map(|(d, _)| policy_outcome(d, policy.name()));
                    self.shared.metrics.decision(policy.name(), own.unwrap_or("error"));
                }
                match outcome {
                    Ok((decision, None)) => decision,
                    Ok((_, Some(failure))) => gate_denial(format!(
                        "cannot read the tags of `{}` from the upstream registry ({failure}); the request is denied",
                        self.repository()
                    )),
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

    /// Apply the tags of a multi-tag push (`PUT .../manifests/<digest>?tag=a&tag=b`): the
    /// upstream gets the request as sent; tags it did not apply itself (CNCF distribution
    /// ignores the parameters) are written by the gate, one PUT per tag. If one write fails,
    /// the tags already written are put back as they were.
    async fn apply_tags(
        &self,
        push: &Push,
        media_type: &HeaderValue,
        manifest: Bytes,
    ) -> Response<Body> {
        let upstream = &self.shared.upstream;
        let request = http::Request::from_parts(self.parts.clone(), full(manifest.clone()));
        let response = match upstream.forward(request, "write").await {
            Ok(response) => response,
            Err(error) => return upstream_failure(self.shared, error),
        };
        let (parts, body) = response.into_parts();
        if !parts.status.is_success() {
            return Response::from_parts(parts, streamed(body));
        }
        let applied: Vec<String> = parts
            .headers
            .get_all("oci-tag")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(|t| t.trim().to_string())
            .collect();
        let auth = self.auth();
        let repository = self.repository();
        let mut written: Vec<&TagChange> = Vec::new();
        let mut failure = None;
        for change in &push.tags {
            if applied.contains(&change.tag) || change.current.as_deref() == Some(&push.digest) {
                continue;
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
                    ));
                    break;
                }
                Err(error) => {
                    failure = Some((change, error.to_string()));
                    break;
                }
            }
        }
        if let Some((change, why)) = failure {
            let undone = self.undo(&written, auth).await;
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
            return oci_error(StatusCode::BAD_GATEWAY, "UNKNOWN", &message, None);
        }
        let mut response = Response::builder()
            .status(StatusCode::CREATED)
            .header(LOCATION, format!("/v2/{repository}/manifests/{}", push.digest))
            .header("docker-content-digest", &push.digest);
        for change in &push.tags {
            response = response.header("oci-tag", &change.tag);
        }
        response.body(empty()).expect("valid headers")
    }

    /// Put tags written by a failed multi-tag push back where they were; say what happened.
    async fn undo(&self, written: &[&TagChange], auth: Option<&HeaderValue>) -> Vec<String> {
        let upstream = &self.shared.upstream;
        let repository = self.repository();
        let mut report = Vec::new();
        for change in written.iter().rev() {
            let result = match &change.current {
                Some(previous) => match upstream.manifest(repository, previous, auth).await {
                    Ok(Some((media_type, bytes))) => upstream
                        .put_manifest(repository, &change.tag, &media_type, bytes, auth)
                        .await
                        .map(|r| r.status()),
                    Ok(None) => Ok(StatusCode::NOT_FOUND),
                    Err(error) => Err(error),
                },
                None => upstream
                    .delete_manifest(repository, &change.tag, auth)
                    .await
                    .map(|r| r.status()),
            };
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
        report
    }
}

/// The `tag` parameters of a query, in order, without repeats.
fn query_tags(query: Option<&str>) -> Vec<String> {
    let mut tags: Vec<String> = Vec::new();
    for (key, value) in form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        if key == "tag" && !tags.iter().any(|t| *t == value) {
            tags.push(value.into_owned());
        }
    }
    tags
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
    let (operation, digest) = match &request.operation {
        Operation::Push(push) => ("push", Some(push.digest.as_str())),
        Operation::DeleteTags(_) => ("delete_tags", None),
        Operation::DeleteManifest(deletion) => ("delete_manifest", Some(deletion.digest.as_str())),
    };
    Entry {
        time: log::now_rfc3339(),
        repository: &request.repository,
        operation,
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

/// 403 DENIED with a one-line message a person reads in the client's output.
fn denial(request: &Request, decision: &Decision) -> Response<Body> {
    let mut message = decision
        .denials()
        .map(|f| format!("{}: {}", f.policy, f.reason))
        .collect::<Vec<_>>()
        .join("; ")
        .replace(|c: char| c.is_control(), " ");
    message = crate::decision::truncate(message, MAX_MESSAGE_BYTES);
    let reasons: Vec<_> = decision
        .denials()
        .map(|f| json!({"policy": f.policy, "tag": f.tag, "reason": f.reason}))
        .collect();
    let mut policies: Vec<&str> = decision.denials().map(|f| f.policy.as_str()).collect();
    policies.dedup();
    let detail = json!({
        "repository": request.repository,
        "tags": request.tags(),
        "policies": policies,
        "reasons": reasons,
    });
    oci_error(StatusCode::FORBIDDEN, "DENIED", &message, Some(detail))
}

/// Add a `Warning: 299 - "..."` header per warning, within the spec's 4096 bytes.
fn with_warnings(mut response: Response<Body>, decision: &Decision) -> Response<Body> {
    let mut budget = MAX_WARNING_BYTES;
    for finding in decision.warnings() {
        let text = format!("{}: {}", finding.policy, finding.reason)
            .replace(|c: char| c.is_control(), " ")
            .replace('\\', "\\\\")
            .replace('"', "\\\"");
        let value = format!("299 - \"{text}\"");
        if value.len() > budget {
            break;
        }
        if let Ok(value) = HeaderValue::from_bytes(value.as_bytes()) {
            budget -= value.len();
            response.headers_mut().append(http::header::WARNING, value);
        }
    }
    response
}

/// 401 `UNAUTHORIZED` with a challenge: basic for the gate's htpasswd, else the upstream's
/// own bearer challenge (its token server), so that the client fetches a new token.
async fn unauthorized(shared: &Shared, rules: &Rules, refused: &Unauthorized) -> Response<Body> {
    let challenge = match refused.scheme(&rules.identity) {
        Scheme::Basic => HeaderValue::from_static("Basic realm=\"tagpolicy-gate\""),
        Scheme::Bearer => match shared.upstream.challenge().await {
            Some(challenge) => challenge,
            None => {
                HeaderValue::from_static("Bearer realm=\"tagpolicy-gate\",error=\"invalid_token\"")
            }
        },
    };
    let mut response =
        oci_error(StatusCode::UNAUTHORIZED, "UNAUTHORIZED", &refused.to_string(), None);
    response.headers_mut().insert(WWW_AUTHENTICATE, challenge);
    response
}

fn upstream_failure(shared: &Shared, error: UpstreamError) -> Response<Body> {
    match error {
        UpstreamError::Refused(response) => {
            let (parts, body) = (*response).into_parts();
            Response::from_parts(parts, full(body))
        }
        UpstreamError::Unreachable(_) | UpstreamError::Timeout(_) => oci_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "UNAVAILABLE",
            &format!(
                "the gate cannot reach the upstream registry {}: {error}; nothing was changed",
                shared.upstream.base()
            ),
            None,
        ),
        UpstreamError::Invalid(_) => oci_error(
            StatusCode::BAD_GATEWAY,
            "UNKNOWN",
            &format!("{error}; nothing was changed"),
            None,
        ),
    }
}

/// A response with the OCI distribution error body.
pub fn oci_error(
    status: StatusCode,
    code: &str,
    message: &str,
    detail: Option<serde_json::Value>,
) -> Response<Body> {
    let mut error = json!({"code": code, "message": message});
    if let Some(detail) = detail {
        error["detail"] = detail;
    }
    let body = serde_json::to_vec(&json!({"errors": [error]})).expect("plain data serializes");
    Response::builder()
        .status(status)
        .header(CONTENT_TYPE, "application/json")
        .body(full(body))
        .expect("valid headers")
}

fn text(status: StatusCode, body: String, content_type: &'static str) -> Response<Body> {
    Response::builder()
        .status(status)
        .header(CONTENT_TYPE, content_type)
        .body(full(body))
        .expect("valid headers")
}

fn excerpt(body: &Bytes) -> String {
    let text = String::from_utf8_lossy(&body[..body.len().min(300)]);
    text.replace(|c: char| c.is_control(), " ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::push::Actor;

    #[test]
    fn manifest_routes_are_recognised() {
        let route = ManifestRoute::parse("/v2/team/app/manifests/1.2.3").unwrap();
        assert_eq!(route.repository, "team/app");
        assert_eq!(route.reference, Reference::Tag("1.2.3".into()));
        let digest = format!("sha256:{}", "a".repeat(64));
        let route = ManifestRoute::parse(&format!("/v2/a/manifests/{digest}")).unwrap();
        assert_eq!(route.reference, Reference::Digest(digest));
        // A repository may itself be called `manifests`.
        let route = ManifestRoute::parse("/v2/x/manifests/manifests/latest").unwrap();
        assert_eq!(route.repository, "x/manifests");
        assert_eq!(ManifestRoute::parse("/v2/a/blobs/uploads/1"), None);
        assert_eq!(ManifestRoute::parse("/v2/Bad/manifests/x"), None);
        assert_eq!(ManifestRoute::parse("/v3/a/manifests/x"), None);
    }

    #[test]
    fn tag_parameters_keep_order_and_drop_repeats() {
        assert_eq!(query_tags(Some("tag=1.2.3&tag=1.2&x=1&tag=1.2.3")), vec!["1.2.3", "1.2"]);
        assert!(query_tags(None).is_empty());
    }

    #[test]
    fn a_denial_is_one_line_with_the_details() {
        let request = Request {
            repository: "team/app".into(),
            actor: Actor::anonymous(),
            operation: Operation::DeleteTags(vec![TagChange { tag: "1.0".into(), current: None }]),
        };
        let decision = Decision::from_findings(vec![Finding {
            policy: "immutable-tags".into(),
            severity: Severity::Deny,
            tag: Some("1.0".into()),
            reason: "tag `1.0` is\nimmutable".into(),
        }]);
        let response = denial(&request, &decision);
        assert_eq!(response.status(), StatusCode::FORBIDDEN);
        let body = futures_body(response);
        let value: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(value["errors"][0]["code"], "DENIED");
        assert_eq!(value["errors"][0]["message"], "immutable-tags: tag `1.0` is immutable");
        assert_eq!(value["errors"][0]["detail"]["tags"][0], "1.0");
    }

    #[test]
    fn warnings_are_quoted_and_capped() {
        let findings = (0..100)
            .map(|i| Finding {
                policy: "p".into(),
                severity: Severity::Warn,
                tag: None,
                reason: format!("say \"{i}\" {}", "x".repeat(100)),
            })
            .collect();
        let response = with_warnings(
            text(StatusCode::OK, String::new(), "text/plain"),
            &Decision::from_findings(findings),
        );
        let values: Vec<_> = response.headers().get_all(http::header::WARNING).iter().collect();
        assert!(!values.is_empty());
        assert!(values.iter().map(|v| v.len()).sum::<usize>() <= MAX_WARNING_BYTES);
        assert!(values[0].to_str().unwrap().starts_with(r#"299 - "p: say \"0\""#));
    }

    fn futures_body(response: Response<Body>) -> Bytes {
        let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
        runtime.block_on(async { response.into_body().collect().await.unwrap().to_bytes() })
    }
}
