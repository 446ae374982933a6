//! The gate's own reads and writes of manifests and blobs: a tag's digest now, a manifest's
//! bytes, an image's config and referrers, many digests at once within a shared bound, and
//! the writes of a multi-tag push.

use super::{MANIFEST_TYPES, MAX_ANSWER_BYTES, Purpose, Reader, Upstream, UpstreamError};
use bytes::Bytes;
use http::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderValue};
use http::{HeaderMap, Method, Response, StatusCode};
use std::sync::Arc;
use std::time::Duration;

impl Upstream {
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
    pub(super) async fn manifest_lookup(
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
}

/// `Accept` with every manifest type the gate knows.
pub(super) fn manifest_accept() -> HeaderMap {
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

/// A lookup's answer: the response on success, `None` on 404 (the upstream does not have
/// it), and anything else (a 401 challenge, a 5xx) passed on as refused.
fn found(response: Response<Bytes>) -> Result<Option<Response<Bytes>>, UpstreamError> {
    match response.status() {
        StatusCode::NOT_FOUND => Ok(None),
        status if status.is_success() => Ok(Some(response)),
        _ => Err(UpstreamError::Refused(Box::new(response))),
    }
}
