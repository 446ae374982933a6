//! The gate's own answers to a client, in the OCI distribution error format: a denial that
//! names each policy's reason, warnings as `Warning` headers, a challenge when the client
//! must authenticate, and what the client is told when the upstream fails. Each carries
//! `Docker-Distribution-Api-Version`, as every answer of a registry does.

use super::Shared;
use super::config::Rules;
use super::identity::{Scheme, Unauthorized};
use super::upstream::{Body, UpstreamError, full};
use http::header::{CONTENT_TYPE, WWW_AUTHENTICATE};
use http::{HeaderValue, Response, StatusCode};
use serde_json::json;
use tagpolicy::Decision;
use tagpolicy::Request;

/// Most bytes of `Warning` headers on one response (the spec's limit).
const MAX_WARNING_BYTES: usize = 4096;
/// Most bytes of a denial's one-line message.
const MAX_MESSAGE_BYTES: usize = 2048;

/// What a registry says it speaks, on every answer.
pub(crate) const API_VERSION: (&str, &str) = ("docker-distribution-api-version", "registry/2.0");

/// 409 `DENIED` with a one-line message a person reads in the client's output. Not 403: a
/// refusal by policy is no matter of credentials, and clients take a 403 for a challenge to
/// authenticate again (oras-py retries it for minutes without showing the reason); 409 says
/// the request conflicts with the repository as it is, and every client reads the body.
pub(crate) fn denial(request: &Request, decision: &Decision) -> Response<Body> {
    let mut message = decision
        .denials()
        .map(|f| format!("{}: {}", f.policy, f.reason))
        .collect::<Vec<_>>()
        .join("; ")
        .replace(|c: char| c.is_control(), " ");
    message = tagpolicy::truncate(message, MAX_MESSAGE_BYTES);
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
    oci_error(StatusCode::CONFLICT, "DENIED", &message, Some(detail))
}

/// Add a `Warning: 299 - "..."` header per warning, within the spec's 4096 bytes.
pub(crate) fn with_warnings(mut response: Response<Body>, decision: &Decision) -> Response<Body> {
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
pub(crate) async fn unauthorized(
    shared: &Shared,
    rules: &Rules,
    refused: &Unauthorized,
) -> Response<Body> {
    if let Unauthorized::Throttled { retry_after_s, .. } = refused {
        shared.metrics.refused("password_throttled");
        let mut response =
            oci_error(StatusCode::TOO_MANY_REQUESTS, "TOOMANYREQUESTS", &refused.to_string(), None);
        response.headers_mut().insert(http::header::RETRY_AFTER, HeaderValue::from(*retry_after_s));
        return response;
    }
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

pub(crate) fn upstream_failure(shared: &Shared, error: UpstreamError) -> Response<Body> {
    match error {
        UpstreamError::Refused(response) => {
            let (parts, body) = (*response).into_parts();
            Response::from_parts(parts, full(body))
        }
        UpstreamError::WriteTimeout(timeout) => {
            shared.metrics.timeout("upstream_write");
            tracing::error!(?timeout, "the upstream did not answer a write in time");
            oci_error(
                StatusCode::GATEWAY_TIMEOUT,
                "UNAVAILABLE",
                &format!(
                    "the upstream registry {} did not answer a write within {}; it may have applied it, check before you retry",
                    shared.upstream.base(),
                    humantime::format_duration(timeout)
                ),
                None,
            )
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
        UpstreamError::Tls(_) => {
            tracing::error!(%error, "upstream TLS refused");
            oci_error(
                StatusCode::BAD_GATEWAY,
                "UNAVAILABLE",
                &format!("{error}; nothing was changed"),
                None,
            )
        }
        UpstreamError::Invalid(_) => oci_error(
            StatusCode::BAD_GATEWAY,
            "UNKNOWN",
            &format!("{error}; nothing was changed"),
            None,
        ),
        UpstreamError::AccountRefused(_) => oci_error(
            StatusCode::BAD_GATEWAY,
            "UNAVAILABLE",
            &format!("{error}; nothing was changed"),
            None,
        ),
    }
}

/// A response with the OCI distribution error body.
pub(crate) fn oci_error(
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
        .header(API_VERSION.0, API_VERSION.1)
        .body(full(body))
        .expect("valid headers")
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use http_body_util::BodyExt;
    use tagpolicy::{Actor, Operation, TagChange};
    use tagpolicy::{Finding, Severity};

    #[test]
    fn a_denial_is_one_line_with_the_details() {
        let request = Request {
            repository: "team/app".into(),
            actor: Actor::anonymous(),
            operation: Operation::DeleteTags(vec![TagChange { tag: "1.0".into(), current: None }]),
            time: tagpolicy::Instant::EPOCH,
        };
        let decision = Decision::from_findings(vec![Finding::new(
            "immutable-tags",
            Severity::Deny,
            Some("1.0".into()),
            "tag `1.0` is\nimmutable",
        )]);
        let response = denial(&request, &decision);
        assert_eq!(response.status(), StatusCode::CONFLICT);
        assert_eq!(response.headers()["docker-distribution-api-version"], "registry/2.0");
        let body = futures_body(response);
        let value: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(value["errors"][0]["code"], "DENIED");
        assert_eq!(value["errors"][0]["message"], "immutable-tags: tag `1.0` is immutable");
        assert_eq!(value["errors"][0]["detail"]["tags"][0], "1.0");
    }

    #[test]
    fn warnings_are_quoted_and_capped() {
        let findings = (0..100)
            .map(|i| {
                Finding::new("p", Severity::Warn, None, format!("say \"{i}\" {}", "x".repeat(100)))
            })
            .collect();
        let response = with_warnings(
            crate::admin::text(StatusCode::OK, String::new(), "text/plain"),
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
