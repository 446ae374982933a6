//! The gate's own account for what it reads of the upstream (`upstream_read`): the tags and
//! digests it indexes and decides on, and the image facts policies read. Reads made with it
//! are the gate's view, the same for every client; reads made with a client's credentials
//! decide that client's request only.
//!
//! A registry asks for credentials with a challenge (`WWW-Authenticate`): `Basic`, answered
//! with the account's user name and password, or `Bearer`, answered with a token from the
//! realm the challenge names (the distribution token protocol), kept per scope until it
//! expires.

use http::HeaderValue;
use http::header::WWW_AUTHENTICATE;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// Tokens kept at most (one per repository read); past this the oldest half is dropped.
const MAX_TOKENS: usize = 4096;
/// A token is used until this long before it expires.
const EXPIRY_MARGIN: Duration = Duration::from_secs(10);
/// What the token protocol assumes when a token server does not say (`expires_in`).
const DEFAULT_TOKEN_LIFETIME: Duration = Duration::from_secs(60);
/// Largest token answer read.
pub const MAX_TOKEN_ANSWER_BYTES: usize = 64 << 10;

/// Who the gate is to the upstream when it reads.
pub struct ReadAccount {
    /// User name and password; `None`: anonymous (the operator's word that anonymous reads
    /// see every repository the gate governs).
    credentials: Option<(String, String)>,
    tokens: Mutex<HashMap<String, (HeaderValue, Instant)>>,
    /// How the upstream asks for credentials (its answer to `GET /v2/`), and until when that
    /// is taken as known: the gate answers it before its first read of a repository, since
    /// a registry that hides what a reader may not see answers 404, not a challenge.
    challenge: Mutex<Option<(Option<Challenge>, Instant)>>,
}

/// How long the upstream's way of asking for credentials is taken as known.
const CHALLENGE_LIFETIME: Duration = Duration::from_secs(300);

/// How the upstream asked for credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Challenge {
    Basic,
    Bearer { realm: String, service: Option<String>, scope: Option<String> },
}

impl ReadAccount {
    pub fn anonymous() -> Self {
        ReadAccount { credentials: None, tokens: Mutex::default(), challenge: Mutex::default() }
    }

    pub fn with_password(username: String, password: String) -> Self {
        ReadAccount {
            credentials: Some((username, password)),
            tokens: Mutex::default(),
            challenge: Mutex::default(),
        }
    }

    /// The upstream's challenge as last learned (`Some(None)`: it asks for none), if still
    /// taken as known.
    pub fn known_challenge(&self) -> Option<Option<Challenge>> {
        let known = self.challenge.lock();
        known.as_ref().filter(|(_, until)| Instant::now() < *until).map(|(c, _)| c.clone())
    }

    /// Remember how the upstream asks for credentials.
    pub fn learn_challenge(&self, challenge: Option<Challenge>) {
        let until = Instant::now() + CHALLENGE_LIFETIME;
        *self.challenge.lock() = Some((challenge, until));
    }

    /// For the start-up log.
    pub fn describe(&self) -> String {
        match &self.credentials {
            Some((user, _)) => format!("as `{user}`"),
            None => "anonymously".to_string(),
        }
    }

    /// The `Authorization` to send for `scope`, if one is known.
    pub fn authorization(&self, scope: &str) -> Option<HeaderValue> {
        let tokens = self.tokens.lock();
        let (value, until) = tokens.get(scope)?;
        (Instant::now() < *until).then(|| value.clone())
    }

    /// Basic credentials, for a `Basic` challenge or a token request.
    pub fn basic(&self) -> Option<HeaderValue> {
        use base64::Engine as _;
        let (user, password) = self.credentials.as_ref()?;
        let encoded =
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        HeaderValue::from_str(&format!("Basic {encoded}")).ok()
    }

    /// Remember `value` as the answer for `scope` for `lifetime`.
    pub fn remember(&self, scope: &str, value: HeaderValue, lifetime: Duration) {
        let until = Instant::now() + lifetime.saturating_sub(EXPIRY_MARGIN);
        let mut tokens = self.tokens.lock();
        if tokens.len() >= MAX_TOKENS {
            let now = Instant::now();
            tokens.retain(|_, (_, until)| *until > now);
            if tokens.len() >= MAX_TOKENS {
                tokens.clear();
            }
        }
        tokens.insert(scope.to_string(), (value, until));
    }
}

/// The challenge of a 401 answer, if it has one the gate can answer.
pub fn challenge(headers: &http::HeaderMap) -> Option<Challenge> {
    let text = headers.get(WWW_AUTHENTICATE)?.to_str().ok()?.trim();
    let (scheme, rest) = text.split_once(' ').unwrap_or((text, ""));
    if scheme.eq_ignore_ascii_case("basic") {
        return Some(Challenge::Basic);
    }
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let parameters = parameters(rest);
    let get = |name: &str| {
        parameters.iter().find(|(key, _)| key.eq_ignore_ascii_case(name)).map(|(_, v)| v.clone())
    };
    Some(Challenge::Bearer { realm: get("realm")?, service: get("service"), scope: get("scope") })
}

/// `key="value", key=value` pairs of a challenge.
fn parameters(text: &str) -> Vec<(String, String)> {
    let mut found = Vec::new();
    let mut rest = text.trim();
    while let Some((key, after)) = rest.split_once('=') {
        let key = key.trim().trim_start_matches(',').trim().to_string();
        let after = after.trim_start();
        let (value, remaining) = if let Some(quoted) = after.strip_prefix('"') {
            let mut value = String::new();
            let mut chars = quoted.char_indices();
            let mut end = quoted.len();
            while let Some((index, c)) = chars.next() {
                match c {
                    '\\' => {
                        if let Some((_, escaped)) = chars.next() {
                            value.push(escaped);
                        }
                    }
                    '"' => {
                        end = index + 1;
                        break;
                    }
                    c => value.push(c),
                }
            }
            (value, &quoted[end.min(quoted.len())..])
        } else {
            let end = after.find(',').unwrap_or(after.len());
            (after[..end].trim().to_string(), &after[end..])
        };
        found.push((key, value));
        rest = remaining.trim_start().trim_start_matches(',').trim_start();
    }
    found
}

/// The token (and how long it lives) in a token server's answer.
pub fn token_answer(body: &[u8]) -> Result<(String, Duration), String> {
    #[derive(serde::Deserialize)]
    struct Answer {
        token: Option<String>,
        access_token: Option<String>,
        expires_in: Option<u64>,
    }
    let answer: Answer = serde_json::from_slice(body)
        .map_err(|e| format!("a token answer that is not JSON: {e}"))?;
    let token = answer
        .token
        .or(answer.access_token)
        .filter(|token| !token.is_empty())
        .ok_or("a token answer without a token")?;
    let lifetime = answer.expires_in.map_or(DEFAULT_TOKEN_LIFETIME, Duration::from_secs);
    Ok((token, lifetime))
}

/// Whether a realm may be sent the account's password: over HTTPS, or over plain HTTP only
/// to a loopback address or when the upstream itself is plain HTTP (the operator's choice).
pub fn realm_allowed(realm: &http::Uri, upstream_is_https: bool) -> bool {
    match realm.scheme_str() {
        Some("https") => true,
        Some("http") => {
            let host =
                realm.host().unwrap_or_default().trim_start_matches('[').trim_end_matches(']');
            let loopback = host == "localhost"
                || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback());
            loopback || !upstream_is_https
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(value: &'static str) -> http::HeaderMap {
        let mut headers = http::HeaderMap::new();
        headers.insert(WWW_AUTHENTICATE, HeaderValue::from_static(value));
        headers
    }

    #[test]
    fn challenges_are_read() {
        assert_eq!(challenge(&headers(r#"Basic realm="registry""#)), Some(Challenge::Basic));
        assert_eq!(
            challenge(&headers(
                r#"Bearer realm="https://auth.example/token",service="registry.example",scope="repository:team/app:pull",error="insufficient_scope""#
            )),
            Some(Challenge::Bearer {
                realm: "https://auth.example/token".into(),
                service: Some("registry.example".into()),
                scope: Some("repository:team/app:pull".into()),
            })
        );
        assert_eq!(
            challenge(&headers(r#"Bearer realm="https://a/t", service="s\"x""#)),
            Some(Challenge::Bearer {
                realm: "https://a/t".into(),
                service: Some("s\"x".into()),
                scope: None
            })
        );
        assert_eq!(challenge(&headers("Bearer service=x")), None, "no realm");
        assert_eq!(challenge(&headers("Negotiate abc")), None);
    }

    #[test]
    fn token_answers_are_read() {
        let (token, lifetime) = token_answer(br#"{"token":"t1","expires_in":300}"#).unwrap();
        assert_eq!((token.as_str(), lifetime), ("t1", Duration::from_secs(300)));
        let (token, lifetime) = token_answer(br#"{"access_token":"t2"}"#).unwrap();
        assert_eq!((token.as_str(), lifetime), ("t2", DEFAULT_TOKEN_LIFETIME));
        assert!(token_answer(br#"{"token":""}"#).is_err());
        assert!(token_answer(b"<html>").is_err());
    }

    #[test]
    fn passwords_go_to_https_realms_or_loopback_only() {
        let uri = |text: &str| text.parse::<http::Uri>().unwrap();
        assert!(realm_allowed(&uri("https://auth.example/token"), true));
        assert!(realm_allowed(&uri("http://127.0.0.1:5002/token"), true));
        assert!(realm_allowed(&uri("http://[::1]:5002/token"), true));
        assert!(!realm_allowed(&uri("http://auth.example/token"), true));
        assert!(realm_allowed(&uri("http://auth.example/token"), false));
        assert!(!realm_allowed(&uri("ftp://auth.example/token"), false));
    }

    #[test]
    fn tokens_are_kept_per_scope_until_they_expire() {
        let account = ReadAccount::with_password("reader".into(), "secret".into());
        assert!(account.basic().unwrap().to_str().unwrap().starts_with("Basic "));
        account.remember(
            "repository:a:pull",
            HeaderValue::from_static("Bearer t"),
            Duration::from_secs(60),
        );
        assert_eq!(account.authorization("repository:a:pull").unwrap(), "Bearer t");
        assert_eq!(account.authorization("repository:b:pull"), None);
        account.remember(
            "repository:b:pull",
            HeaderValue::from_static("Bearer u"),
            Duration::from_secs(5),
        );
        assert_eq!(account.authorization("repository:b:pull"), None, "expires within the margin");
        assert_eq!(ReadAccount::anonymous().basic(), None);
    }
}
