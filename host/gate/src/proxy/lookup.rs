//! What a write changes, read before it is decided: each tag's digest now, the tags of a
//! digest, from the index or upstream (a lookup that finds the index wrong fixes it); and
//! whether the client may see the reasons of a denial.

use super::exchange::Exchange;
use crate::answer::denial;
use crate::index::IndexError;
use crate::upstream::{Body, Reader, UpstreamError, full};
use http::{Response, StatusCode};
use tagpolicy::Decision;
use tagpolicy::{Operation, Request, TagChange};

impl Exchange<'_> {
    /// The tags a deletion of manifest `digest` removes: from the index (with
    /// `authoritative`; else each one it lists looked up again), or, without one, from the
    /// whole repository read now.
    pub(super) async fn tags_of_digest(&self, digest: &str) -> Result<Vec<String>, Response<Body>> {
        let repository = self.repository();
        let Some(index) = &self.shared.index else {
            let state = crate::state::fetch(&self.shared.upstream, repository, &self.reader())
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
    pub(super) async fn current_digests(
        &self,
        tags: &[String],
    ) -> Result<Vec<TagChange>, Response<Body>> {
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
    pub(super) async fn look_up(&self, tags: &[String]) -> Result<Vec<TagChange>, Response<Body>> {
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

    /// The denial (409) with the decision's reasons, shown only to a client the upstream lets
    /// read the repository: the gate decided on its own view, which may hold what this client
    /// may not see. A client the upstream refuses gets the upstream's refusal instead (a
    /// challenge to authenticate, or its 403 or 404). One `HEAD`, of a manifest the gate
    /// knows is there, asks; a repository the gate knows nothing of has nothing to hide.
    pub(super) async fn denial(&self, request: &Request, decision: &Decision) -> Response<Body> {
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
}
