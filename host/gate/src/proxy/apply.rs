//! Writing the tags of an allowed push with `tag` parameters one by one, and putting them
//! back when one of them fails; the client's answer is the registry's answer to the decided
//! request, with every tag.

use super::exchange::Exchange;
use crate::answer::oci_error;
use crate::coordination::Lease;
use crate::index::TagNow;
use crate::route::Reference;
use crate::upstream::{Body, UpstreamError, full};
use bytes::Bytes;
use http::header::{CONTENT_LENGTH, CONTENT_TYPE, HeaderName, HeaderValue};
use http::{Response, StatusCode, response};
use http_body_util::BodyExt;
use tagpolicy::{Push, TagChange};

const OCI_TAG: HeaderName = HeaderName::from_static("oci-tag");
/// Most bytes of the registry's answer to a decided push kept for the client (a manifest
/// PUT's answer has no body in the spec; distribution sends none).
const MAX_ANSWER_BYTES: usize = 64 << 10;

impl Exchange<'_> {
    /// Apply the tags of a push with `tag` parameters (`PUT .../manifests/<digest>?tag=a&tag=b`,
    /// or by tag with more tags as parameters): the upstream gets the decided request first;
    /// tags it did not apply itself (CNCF distribution ignores the parameters) are written by
    /// the gate, one PUT per tag. If one write fails, the tags already written are put back as
    /// they were. The client gets the registry's answer to the decided request (its status
    /// and headers: `Location`, `Docker-Content-Digest`, `OCI-Subject`, …) with an `OCI-Tag`
    /// for every tag. Returns the answer, whether every write sent was answered, and what
    /// each tag is now.
    pub(super) async fn apply_tags(
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
        let (mut head, body) = self.read_answer(response).await;
        let mut applied: Vec<String> = head
            .headers
            .get_all(&OCI_TAG)
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
        head.headers.remove(&OCI_TAG);
        for change in &push.tags {
            // Tags are checked when the request is routed: each is a valid header value.
            if let Ok(tag) = HeaderValue::from_str(&change.tag) {
                head.headers.append(&OCI_TAG, tag);
            }
        }
        let now = tags_now(&push.tags, true, &push.digest);
        Ok((Response::from_parts(head, full(body)), true, now))
    }

    /// The registry's answer to the decided request, read now (it is small), so that the tag
    /// writes after it do not wait on it. A body that cannot be read within
    /// [`MAX_ANSWER_BYTES`] and the body timeout is dropped with its length and type.
    async fn read_answer(&self, response: Response<Body>) -> (response::Parts, Bytes) {
        let (mut head, body) = response.into_parts();
        let read = tokio::time::timeout(self.limits().body_timeout, read_bounded(body)).await;
        match read.unwrap_or_else(|_| Err("timed out".to_string())) {
            Ok(bytes) => (head, bytes),
            Err(why) => {
                tracing::warn!(repository = self.repository(), %why, "the body of the registry's answer to a push is not passed on");
                head.headers.remove(CONTENT_LENGTH);
                head.headers.remove(CONTENT_TYPE);
                (head, Bytes::new())
            }
        }
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
pub(super) fn tags_now(
    changes: &[TagChange],
    succeeded: bool,
    digest: &str,
) -> Vec<(String, TagNow)> {
    changes
        .iter()
        .map(|change| {
            let now =
                if succeeded { TagNow::Is(Some(digest.to_string())) } else { TagNow::Unknown };
            (change.tag.clone(), now)
        })
        .collect()
}

/// `body` whole, if it has at most [`MAX_ANSWER_BYTES`].
async fn read_bounded(mut body: Body) -> Result<Bytes, String> {
    let mut bytes = Vec::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|error| error.to_string())?;
        if let Ok(data) = frame.into_data() {
            if bytes.len() + data.len() > MAX_ANSWER_BYTES {
                return Err(format!("larger than {MAX_ANSWER_BYTES} bytes"));
            }
            bytes.extend_from_slice(&data);
        }
    }
    Ok(Bytes::from(bytes))
}

fn excerpt(body: &Bytes) -> String {
    let text = String::from_utf8_lossy(&body[..body.len().min(300)]);
    text.replace(|c: char| c.is_control(), " ")
}
