//! Registry notifications (CNCF distribution's webhook) of writes made around the gates:
//! retention jobs, replication, an admin tool. They are never taken as the truth (they
//! arrive late, unordered, and possibly more than once): they mark the tags they name dirty
//! in the index, which the gate then looks up itself under the repository's lease, and they
//! make every gate drop what it cached of the repository.

use super::Shared;
use super::upstream::{Body, full};
use http::{Response, StatusCode};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use serde::Deserialize;
use tagpolicy::oci::{check_digest, check_repository, check_tag};

/// Where the registry posts its notifications.
pub const PATH: &str = "/tagpolicy/notifications";
/// Largest envelope read (distribution sends a few events at a time).
const MAX_ENVELOPE_BYTES: usize = 1 << 20;

#[derive(Deserialize)]
struct Envelope {
    events: Vec<Event>,
}

#[derive(Deserialize)]
struct Event {
    action: String,
    target: Target,
}

#[derive(Deserialize)]
struct Target {
    repository: String,
    #[serde(default)]
    digest: Option<String>,
    #[serde(default)]
    tag: Option<String>,
}

/// What an event makes the gates forget.
#[derive(Debug, PartialEq, Eq)]
enum Forget {
    /// A tag was set or removed: it, unless it now points where the gates think it does.
    Tag {
        tag: String,
        digest: Option<String>,
    },
    /// A manifest was deleted by digest: every tag that pointed at it, so all of them.
    Repository,
    Nothing,
}

fn forget(event: &Event) -> Forget {
    match (event.action.as_str(), &event.target.tag) {
        ("push", Some(tag)) => {
            Forget::Tag { tag: tag.clone(), digest: event.target.digest.clone() }
        }
        ("delete", Some(tag)) => Forget::Tag { tag: tag.clone(), digest: None },
        ("delete", None) => Forget::Repository,
        // Pulls, mounts, and pushes by digest (blobs, manifests without a tag) change no tag.
        _ => Forget::Nothing,
    }
}

/// Check the registry's token, read the events, forget what they touched.
pub async fn receive(shared: &Shared, request: http::Request<Incoming>) -> Response<Body> {
    let expected = shared.notifications_token.as_deref().unwrap_or_default();
    let presented = request
        .headers()
        .get(http::header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .unwrap_or_default();
    if !same(presented.as_bytes(), expected.as_bytes()) {
        shared.metrics.notification("refused");
        tracing::warn!("refused a notification without the configured token");
        return answer(
            StatusCode::UNAUTHORIZED,
            "a notification needs the configured bearer token\n",
        );
    }
    let read = Limited::new(request.into_body(), MAX_ENVELOPE_BYTES).collect();
    let envelope = match tokio::time::timeout(shared.limits.body_timeout, read).await {
        Ok(Ok(body)) => serde_json::from_slice::<Envelope>(&body.to_bytes()),
        _ => {
            shared.metrics.notification("invalid");
            return answer(StatusCode::BAD_REQUEST, "cannot read the notification\n");
        }
    };
    let envelope = match envelope {
        Ok(envelope) => envelope,
        Err(error) => {
            shared.metrics.notification("invalid");
            tracing::warn!(%error, "a notification that is not an event envelope");
            return answer(StatusCode::BAD_REQUEST, &format!("not an event envelope: {error}\n"));
        }
    };
    for event in &envelope.events {
        let repository = event.target.repository.as_str();
        // Nothing is kept, looked up or logged in full for a name no registry would store:
        // each repository the gate hears of costs memory and, with Redis, a key.
        if let Err(error) = check_target(event) {
            shared.metrics.notification("invalid");
            tracing::warn!(%error, "ignored a notification event");
            continue;
        }
        let (tag, digest) = match forget(event) {
            Forget::Nothing => {
                shared.metrics.notification("ignored");
                continue;
            }
            Forget::Tag { tag, digest } => (Some(tag), digest),
            Forget::Repository => (None, event.target.digest.clone()),
        };
        // The gates' own writes come back as notifications too: one that agrees with the
        // index changes nothing.
        let marked = match &shared.index {
            Some(index) => index.notified(repository, tag.as_deref(), digest.as_deref()).await,
            None => Ok(true),
        };
        let applied = match marked {
            Ok(false) => {
                shared.metrics.notification("ignored");
                continue;
            }
            Ok(true) => shared.coordinator.changed(repository).await.map_err(|e| e.to_string()),
            Err(error) => Err(error.to_string()),
        };
        if let Err(error) = applied {
            // The registry retries a notification that was not accepted.
            shared.metrics.coordination_error();
            tracing::warn!(repository, %error, "could not apply a notification");
            return answer(StatusCode::SERVICE_UNAVAILABLE, &format!("{error}\n"));
        }
        shared.cache.invalidate(Some(repository));
        shared.metrics.notification("applied");
        tracing::info!(repository, action = %event.action, tag = ?event.target.tag, "a change made around the gates: looking it up again");
    }
    answer(StatusCode::OK, "")
}

/// The event's repository, tag and digest, checked against the distribution grammar and
/// lengths.
fn check_target(event: &Event) -> Result<(), String> {
    check_repository(&event.target.repository)?;
    if let Some(tag) = &event.target.tag {
        check_tag(tag)?;
    }
    if let Some(digest) = &event.target.digest {
        check_digest(digest)?;
    }
    Ok(())
}

/// Compare without leaking, through timing, how much of the token matched.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn answer(status: StatusCode, text: &str) -> Response<Body> {
    Response::builder()
        .status(status)
        .header(http::header::CONTENT_TYPE, "text/plain")
        .body(full(text.to_string()))
        .expect("valid response")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(json: &str) -> Event {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn events_forget_the_tags_they_touch() {
        let pushed = event(
            r#"{"action":"push","target":{"repository":"a","digest":"sha256:1","tag":"1.0","mediaType":"x"}}"#,
        );
        assert_eq!(
            forget(&pushed),
            Forget::Tag { tag: "1.0".into(), digest: Some("sha256:1".into()) }
        );
        let deleted =
            event(r#"{"action":"delete","target":{"repository":"a","digest":"sha256:1"}}"#);
        assert_eq!(forget(&deleted), Forget::Repository);
        let by_digest =
            event(r#"{"action":"push","target":{"repository":"a","digest":"sha256:1"}}"#);
        assert_eq!(forget(&by_digest), Forget::Nothing);
        let pulled = event(r#"{"action":"pull","target":{"repository":"a","tag":"1.0"}}"#);
        assert_eq!(forget(&pulled), Forget::Nothing);
    }

    #[test]
    fn targets_no_registry_would_store_are_refused() {
        let digest = format!("sha256:{}", "a".repeat(64));
        let named = |repository: &str, tag: &str| {
            event(&format!(
                r#"{{"action":"push","target":{{"repository":"{repository}","digest":"{digest}","tag":"{tag}"}}}}"#
            ))
        };
        assert_eq!(check_target(&named("team/app", "1.0")), Ok(()));
        let long = "a".repeat(1 << 20);
        assert!(check_target(&named(&long, "1.0")).unwrap_err().contains("at most 255 bytes"));
        assert!(check_target(&named("Team/App", "1.0")).is_err());
        assert!(check_target(&named("team/app", ".bad")).is_err());
        let bad_digest =
            event(r#"{"action":"delete","target":{"repository":"a","digest":"sha256:1"}}"#);
        assert!(check_target(&bad_digest).is_err());
    }

    #[test]
    fn tokens_compare_whole() {
        assert!(same(b"secret-token-123", b"secret-token-123"));
        assert!(!same(b"secret-token-12", b"secret-token-123"));
        assert!(!same(b"", b"x"));
    }
}
