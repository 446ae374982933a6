//! Tests of the identity checks: htpasswd, bearer tokens and a trusted proxy, against the
//! files in `testdata/`.

use super::*;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{EncodingKey, Header, encode};
use serde_json::json;

fn testdata(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src/identity/testdata").join(name)
}

fn now() -> u64 {
    jsonwebtoken::get_current_timestamp()
}

fn identity(yaml: &str) -> Result<Identity, String> {
    let spec: IdentitySpec = serde_yaml_ng::from_str(yaml).unwrap();
    Identity::load(&spec.relative_to(&testdata("")))
}

fn jwt_identity() -> Identity {
    identity(
        "jwt: {public_key: signer.pem, issuer: token-issuer, audience: registry.test, groups_claim: groups}",
    )
    .unwrap()
}

fn sign(key: &str, claims: serde_json::Value) -> String {
    let pem = std::fs::read(testdata(key)).unwrap();
    encode(&Header::new(Algorithm::RS256), &claims, &EncodingKey::from_rsa_pem(&pem).unwrap())
        .unwrap()
}

fn good_claims() -> serde_json::Value {
    json!({"sub": "ci-bot", "iss": "token-issuer", "aud": "registry.test",
           "exp": now() + 300, "groups": ["ci", "release"]})
}

fn headers(authorization: &str) -> http::HeaderMap {
    let mut headers = http::HeaderMap::new();
    headers.insert(AUTHORIZATION, HeaderValue::from_str(authorization).unwrap());
    headers
}

fn bearer(token: &str) -> http::HeaderMap {
    headers(&format!("Bearer {token}"))
}

fn basic(user: &str, password: &str) -> http::HeaderMap {
    let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    headers(&format!("Basic {encoded}"))
}

const LOCAL: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

fn rejected(identity: &Identity, headers: &http::HeaderMap) -> String {
    match identity.establish(headers, LOCAL) {
        Err(Unauthorized::BadToken(why)) => why,
        other => panic!("expected a rejected token, got {other:?}"),
    }
}

#[test]
fn a_token_signed_by_the_configured_key_gives_subject_and_groups() {
    let established =
        jwt_identity().establish(&bearer(&sign("signer.key", good_claims())), LOCAL).unwrap();
    assert_eq!(established.source, ActorSource::Jwt);
    assert_eq!(established.actor.id.as_deref(), Some("ci-bot"));
    assert_eq!(established.actor.groups, ["ci", "release"]);
}

#[test]
fn every_bad_token_is_refused() {
    let identity = jwt_identity();
    // Signed by another key.
    let why = rejected(&identity, &bearer(&sign("other.key", good_claims())));
    assert!(why.contains("InvalidSignature"), "{why}");
    // Expired (beyond the leeway).
    let mut claims = good_claims();
    claims["exp"] = json!(now() - 120);
    assert!(rejected(&identity, &bearer(&sign("signer.key", claims))).contains("Expired"));
    // Wrong issuer, wrong audience, no subject, no expiry.
    let mut claims = good_claims();
    claims["iss"] = json!("someone-else");
    assert!(rejected(&identity, &bearer(&sign("signer.key", claims))).contains("Issuer"));
    let mut claims = good_claims();
    claims["aud"] = json!("other.registry");
    assert!(rejected(&identity, &bearer(&sign("signer.key", claims))).contains("Audience"));
    for missing in ["sub", "exp"] {
        let mut claims = good_claims();
        claims.as_object_mut().unwrap().remove(missing);
        let why = rejected(&identity, &bearer(&sign("signer.key", claims)));
        assert!(why.contains(missing), "{missing}: {why}");
    }
    // Groups that are not strings.
    let mut claims = good_claims();
    claims["groups"] = json!([1, 2]);
    assert!(rejected(&identity, &bearer(&sign("signer.key", claims))).contains("groups"));
    // Unsigned (`alg: none`), with the claims that would otherwise pass.
    let unsigned = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#),
        URL_SAFE_NO_PAD.encode(good_claims().to_string())
    );
    rejected(&identity, &bearer(&unsigned));
    // HMAC keyed with the public key (algorithm confusion).
    let public = std::fs::read(testdata("signer.pem")).unwrap();
    let confused =
        encode(&Header::new(Algorithm::HS256), &good_claims(), &EncodingKey::from_secret(&public))
            .unwrap();
    assert!(rejected(&identity, &bearer(&confused)).contains("InvalidAlgorithm"));
    // Not a token at all.
    rejected(&identity, &bearer("not-a-token"));
}

#[test]
fn ec_keys_and_key_sets_verify_too() {
    let ec = identity("jwt: {public_key: ec.pem}").unwrap();
    let pem = std::fs::read(testdata("ec.key")).unwrap();
    let claims = json!({"sub": "ec-user", "exp": now() + 60});
    let token =
        encode(&Header::new(Algorithm::ES256), &claims, &EncodingKey::from_ec_pem(&pem).unwrap())
            .unwrap();
    assert_eq!(ec.establish(&bearer(&token), LOCAL).unwrap().actor.id.as_deref(), Some("ec-user"));
    // The RSA-signed token does not pass an EC key.
    rejected(&ec, &bearer(&sign("signer.key", good_claims())));

    // A key set with the RSA key of signer.pem under `kid` "k1".
    let set = identity("jwt: {jwks: jwks.json}").unwrap();
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some("k1".into());
    let pem = std::fs::read(testdata("signer.key")).unwrap();
    let token = encode(&header, &good_claims(), &EncodingKey::from_rsa_pem(&pem).unwrap()).unwrap();
    assert_eq!(set.establish(&bearer(&token), LOCAL).unwrap().source, ActorSource::Jwt);
    header.kid = Some("k2".into());
    let token = encode(&header, &good_claims(), &EncodingKey::from_rsa_pem(&pem).unwrap()).unwrap();
    assert!(rejected(&set, &bearer(&token)).contains("unknown key id `k2`"));
}

#[test]
fn htpasswd_checks_bcrypt_passwords() {
    let identity = identity("htpasswd: users.htpasswd").unwrap();
    let alice = identity.establish(&basic("alice", "wonderland"), LOCAL).unwrap();
    assert_eq!((alice.actor.id.as_deref(), alice.source), (Some("alice"), ActorSource::Htpasswd));
    // Remembered, and still right.
    assert!(identity.establish(&basic("alice", "wonderland"), LOCAL).is_ok());
    assert_eq!(identity.establish(&basic("alice", "wrong"), LOCAL), Err(Unauthorized::BadPassword));
    assert_eq!(identity.establish(&basic("mallory", "x"), LOCAL), Err(Unauthorized::BadPassword));
    assert_eq!(identity.establish(&headers("Basic !!!"), LOCAL), Err(Unauthorized::MalformedBasic));
    assert_eq!(identity.check_basic(&basic("ci-bot", "s3cret")), Ok(true));
    assert_eq!(identity.check_basic(&http::HeaderMap::new()), Ok(false));
    // Empty credentials (a client without any, answering the challenge) are anonymous.
    assert_eq!(identity.establish(&basic("", ""), LOCAL).unwrap(), Established::anonymous());
    // A bearer token is not believed without a `jwt` section.
    let established =
        identity.establish(&bearer(&sign("signer.key", good_claims())), LOCAL).unwrap();
    assert_eq!(established, Established::anonymous());
}

#[test]
fn files_that_cannot_be_trusted_are_refused_at_load() {
    let error = identity("htpasswd: sha1.htpasswd").unwrap_err();
    assert!(error.starts_with("htpasswd: ") && error.contains("`legacy` is not bcrypt"), "{error}");
    let error = identity("htpasswd: missing.htpasswd").unwrap_err();
    assert!(error.contains("cannot read"), "{error}");
    let error = identity("jwt: {public_key: users.htpasswd}").unwrap_err();
    assert!(error.starts_with("jwt.public_key: "), "{error}");
    let error = identity("jwt: {public_key: signer.pem, jwks: keys.json}").unwrap_err();
    assert!(error.contains("exactly one"), "{error}");
    let error = identity("trusted_header: {name: X-User, from: [nonsense]}").unwrap_err();
    assert_eq!(error, "trusted_header.from[0]: `nonsense` is not an address or CIDR");
    let error = identity("trusted_header: {name: Authorization, from: [127.0.0.1]}").unwrap_err();
    assert!(error.contains("cannot be the trusted header"), "{error}");
}

#[test]
fn a_trusted_header_counts_only_from_trusted_peers() {
    let identity =
        identity("trusted_header: {name: X-Forwarded-User, from: [\"127.0.0.1/32\"]}").unwrap();
    let mut headers = http::HeaderMap::new();
    headers.insert("x-forwarded-user", HeaderValue::from_static("ci-bot"));
    let trusted = identity.establish(&headers, LOCAL).unwrap();
    assert_eq!(trusted.actor.id.as_deref(), Some("ci-bot"));
    assert_eq!(trusted.source, ActorSource::TrustedHeader);
    let elsewhere: IpAddr = "127.0.0.2".parse().unwrap();
    assert_eq!(identity.establish(&headers, elsewhere).unwrap(), Established::anonymous());
}

#[test]
fn anonymous_requests_can_be_refused() {
    let identity = identity("htpasswd: users.htpasswd\nanonymous: deny").unwrap();
    let refused = identity.establish(&http::HeaderMap::new(), LOCAL).unwrap_err();
    assert_eq!(refused, Unauthorized::AnonymousDenied);
    assert_eq!(refused.scheme(&identity), Scheme::Basic);
    assert_eq!(identity.establish(&basic("", ""), LOCAL), Err(Unauthorized::AnonymousDenied));
    let open = super::Identity::anonymous();
    assert_eq!(open.establish(&http::HeaderMap::new(), LOCAL).unwrap(), Established::anonymous());
    assert!(open.is_anonymous());
}

/// A token signed with signer.key under a header written by hand.
fn sign_with_header(header: &str, claims: &serde_json::Value) -> String {
    let pem = std::fs::read(testdata("signer.key")).unwrap();
    let signing_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let key = EncodingKey::from_rsa_pem(&pem).unwrap();
    let signature =
        jsonwebtoken::crypto::sign(signing_input.as_bytes(), &key, Algorithm::RS256).unwrap();
    format!("{signing_input}.{signature}")
}

#[test]
fn a_token_not_yet_valid_or_with_critical_extensions_is_refused() {
    let identity = jwt_identity();
    // `nbf` an hour ahead (far beyond the 30 s leeway).
    let mut claims = good_claims();
    claims["nbf"] = json!(now() + 3600);
    let why = rejected(&identity, &bearer(&sign("signer.key", claims)));
    assert!(why.contains("ImmatureSignature"), "{why}");
    // `nbf` just passed is fine.
    let mut claims = good_claims();
    claims["nbf"] = json!(now() - 5);
    assert!(identity.establish(&bearer(&sign("signer.key", claims)), LOCAL).is_ok());
    // A header with `crit`, properly signed: RFC 7515 §4.1.11 requires refusing it.
    let critical = sign_with_header(
        r#"{"alg":"RS256","typ":"JWT","crit":["exp-policy"],"exp-policy":"x"}"#,
        &good_claims(),
    );
    assert!(rejected(&identity, &bearer(&critical)).contains("crit"));
    // The same header without `crit` passes, so it is `crit` that is refused.
    let plain = sign_with_header(r#"{"alg":"RS256","typ":"JWT","exp-policy":"x"}"#, &good_claims());
    assert!(identity.establish(&bearer(&plain), LOCAL).is_ok());
}

#[test]
fn wrong_passwords_are_throttled_per_user() {
    let identity = identity("htpasswd: users.htpasswd").unwrap();
    for _ in 0..MAX_FAILURES {
        assert_eq!(
            identity.establish(&basic("alice", "guess"), LOCAL),
            Err(Unauthorized::BadPassword)
        );
    }
    // Now even the right password is not checked (no bcrypt run) until the window passes...
    let throttled = identity.establish(&basic("alice", "wonderland"), LOCAL).unwrap_err();
    let Unauthorized::Throttled { user, retry_after_s } = &throttled else {
        panic!("expected throttling, got {throttled:?}")
    };
    assert_eq!(user, "alice");
    assert!((1..=FAILURE_WINDOW.as_secs()).contains(retry_after_s), "{retry_after_s}");
    // ...while other users are not affected.
    assert!(identity.establish(&basic("ci-bot", "s3cret"), LOCAL).is_ok());
    // After the window, the user may try again.
    let htpasswd = identity.htpasswd.as_ref().unwrap();
    let later = Instant::now() + FAILURE_WINDOW + Duration::from_secs(1);
    assert_eq!(htpasswd.throttle("alice", later), Ok(()));
    htpasswd.failed("alice", later);
    assert_eq!(htpasswd.throttle("alice", later), Ok(()), "one failure in a new window");
}
