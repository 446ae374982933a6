//! A token server of the tests' own on 127.0.0.1, as CNCF distribution's `auth: token`
//! expects one: `GET /token?service=S&scope=repository:NAME:ACTIONS` with basic credentials
//! answers a JWT signed (ES256) by a key the test made, carrying its certificate in `x5c`
//! and granting every action asked for on any repository.
#![allow(dead_code)]

use super::pki::Signer;
use super::stand_in::{self, Answer};
use base64::Engine as _;
use std::sync::Arc;

pub const ISSUER: &str = "tagpolicy-test-issuer";
pub const SERVICE: &str = "tagpolicy-test-registry";

/// Users and passwords the token server knows.
pub const USERS: &[(&str, &str)] = &[("alice", "wonderland"), ("ci-bot", "robot")];

#[derive(serde::Serialize)]
struct Access {
    #[serde(rename = "type")]
    kind: String,
    name: String,
    actions: Vec<String>,
}

#[derive(serde::Serialize)]
struct Claims {
    iss: String,
    sub: String,
    aud: String,
    exp: u64,
    nbf: u64,
    iat: u64,
    jti: String,
    access: Vec<Access>,
}

/// A token for `subject` with `scopes` (`repository:team/app:pull,push`).
pub fn token(signer: &Signer, subject: &str, scopes: &[&str]) -> String {
    let now = jsonwebtoken::get_current_timestamp();
    let access = scopes
        .iter()
        .filter_map(|scope| {
            let mut parts = scope.splitn(3, ':');
            let (kind, name, actions) = (parts.next()?, parts.next()?, parts.next()?);
            Some(Access {
                kind: kind.to_string(),
                name: name.to_string(),
                actions: actions.split(',').map(str::to_string).collect(),
            })
        })
        .collect();
    let claims = Claims {
        iss: ISSUER.into(),
        sub: subject.into(),
        aud: SERVICE.into(),
        exp: now + 600,
        nbf: now - 10,
        iat: now,
        jti: format!("{now}-{}", std::process::id()),
        access,
    };
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
    header.x5c = Some(vec![base64::engine::general_purpose::STANDARD.encode(&signer.cert_der)]);
    let key = jsonwebtoken::EncodingKey::from_ec_pem(signer.key_pem.as_bytes()).unwrap();
    jsonwebtoken::encode(&header, &claims, &key).unwrap()
}

/// Start the token server; its realm URL.
pub fn start(signer: Signer) -> String {
    let signer = Arc::new(signer);
    let (url, _) = stand_in::start(move |request| {
        let user = request
            .headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Basic "))
            .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
            .and_then(|b| String::from_utf8(b).ok())
            .and_then(|pair| {
                let (user, password) = pair.split_once(':')?;
                USERS.iter().any(|(u, p)| *u == user && *p == password).then(|| user.to_string())
            });
        let Some(user) = user else {
            return Answer::Reply {
                status: 401,
                headers: vec![("www-authenticate", "Basic realm=\"token\"".into())],
                body: b"{\"details\":\"wrong or no credentials\"}".to_vec(),
            };
        };
        let scopes: Vec<String> = form_urlencoded::parse(request.query.as_bytes())
            .filter(|(key, _)| key == "scope")
            .map(|(_, value)| value.into_owned())
            .collect();
        let scopes: Vec<&str> = scopes.iter().map(String::as_str).collect();
        let token = token(&signer, &user, &scopes);
        let body = serde_json::json!({"token": token, "access_token": token, "expires_in": 600});
        Answer::Reply {
            status: 200,
            headers: vec![("content-type", "application/json".into())],
            body: body.to_string().into_bytes(),
        }
    });
    format!("{url}/token")
}
