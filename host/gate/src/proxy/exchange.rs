//! One intercepted manifest write or deletion, from its body to its answer: read the
//! manifest, hold the repository, look up what the request changes, decide, write and record.

use super::apply::tags_now;
use super::{MAX_MANIFEST_BYTES, idle, pass_through};
use crate::Shared;
use crate::answer::upstream_failure;
use crate::answer::{oci_error, with_warnings};
use crate::config::Rules;
use crate::coordination::CoordinationError;
use crate::coordination::Lease;
use crate::identity::Established;
use crate::index::IndexError;
use crate::index::TagNow;
use crate::limits::GateLimits;
use crate::log;
use crate::route::{ManifestWrite, Reference};
use crate::upstream::{Body, Reader, empty, full};
use bytes::Bytes;
use http::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue};
use http::{Response, StatusCode, request::Parts};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use std::sync::Arc;
use std::time::Instant;
use tagpolicy::Digest;
use tagpolicy::Manifest;
use tagpolicy::Stamp;
use tagpolicy::{ManifestDeletion, Operation, Push, Request};

/// One intercepted request and what it needs to be decided.
pub(super) struct Exchange<'a> {
    pub shared: &'a Arc<Shared>,
    pub rules: &'a Rules,
    pub log: Option<&'a log::DecisionLog>,
    pub write: ManifestWrite,
    pub parts: Parts,
    pub established: Established,
    pub started: Instant,
}

impl Exchange<'_> {
    pub(super) fn repository(&self) -> &str {
        &self.write.repository
    }

    pub(super) fn auth(&self) -> Option<&HeaderValue> {
        self.parts.headers.get(AUTHORIZATION)
    }

    pub(super) fn limits(&self) -> &GateLimits {
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
    pub(super) fn reader(&self) -> Reader {
        if self.shared.upstream.has_account() {
            Reader::Gate
        } else {
            Reader::Client(self.auth().cloned())
        }
    }

    /// Mark `tags` in the index as about to change, before the first write is sent.
    async fn before_writes(&self, tags: &[String]) -> Result<(), Response<Body>> {
        let Some(index) = &self.shared.index else { return Ok(()) };
        index
            .before_write(self.repository(), tags)
            .await
            .map_err(|e| self.index_failure(IndexError::Store(e)))
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

    /// Send the decided request upstream (its canonical target, the client's headers), if the
    /// lease still allows it. `Err` if it was not sent; the bool says whether it was answered.
    pub(super) async fn forward_write(
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

    pub(super) async fn put(&mut self, body: Incoming) -> Response<Body> {
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

    pub(super) async fn delete(&mut self) -> Response<Body> {
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
}
