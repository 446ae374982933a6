//! Why a decided write was not made, as the client's answer: the repository could not be
//! held, the index could not be read, or a lookup of the gate's own failed.

use super::exchange::Exchange;
use crate::answer::{oci_error, upstream_failure};
use crate::coordination::CoordinationError;
use crate::index::IndexError;
use crate::route::WriteMethod;
use crate::upstream::{Body, UpstreamError};
use http::header::{HeaderValue, RETRY_AFTER, WWW_AUTHENTICATE};
use http::{Response, StatusCode};

impl Exchange<'_> {
    /// The index cannot be used for this change: 503 (or the upstream's refusal of the
    /// gate's account), nothing written.
    pub(super) fn index_failure(&self, error: IndexError) -> Response<Body> {
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

    /// The change cannot be coordinated: 503, nothing written.
    pub(super) fn coordination_failure(&self, error: CoordinationError) -> Response<Body> {
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

    /// A lookup of the gate's own failed. A refusal (401 with a bearer challenge) is the
    /// upstream's answer to a read, so its challenge asks for `pull`; the client is about to
    /// write, so the challenge asks for what the write needs as well (as the upstream would
    /// for the write itself), and a single token request serves both.
    pub(super) fn lookup_failure(&self, error: UpstreamError) -> Response<Body> {
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
