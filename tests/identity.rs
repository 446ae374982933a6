//! End to end: the gate establishes the actor itself (bcrypt htpasswd, signed bearer tokens,
//! a trusted front proxy's header) in front of the real registry, and an owner rule
//! (`build-.*` only for `ci-bot`) holds against every forged or unverified identity.

mod common;
#[path = "support/registry.rs"]
mod registry;

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use registry::{Client, Gate, Layout, Registry, skopeo_copy, text};
use serde_json::json;
use std::io::{Read, Write};
use std::path::Path;
use std::process::Command;

struct Setup {
    _registry: Registry,
    gate: Gate,
    keys: tempfile::TempDir,
    through_gate: Client,
    direct: Client,
}

fn openssl(args: &[&str], dir: &Path) {
    let out = Command::new("openssl").args(args).current_dir(dir).output().unwrap();
    assert!(out.status.success(), "openssl {args:?}: {}", text(&out));
}

fn setup() -> Setup {
    let keys = tempfile::tempdir().unwrap();
    let dir = keys.path();
    // As the README shows: a signing key pair for the token server, and another key.
    for name in ["signer", "other"] {
        openssl(
            &[
                "genpkey",
                "-algorithm",
                "RSA",
                "-pkeyopt",
                "rsa_keygen_bits:2048",
                "-out",
                &format!("{name}.key"),
            ],
            dir,
        );
    }
    openssl(&["pkey", "-in", "signer.key", "-pubout", "-out", "signer.pem"], dir);
    let users = format!(
        "alice:{}\nci-bot:{}\n",
        bcrypt::hash("wonderland", 4).unwrap(),
        bcrypt::hash("s3cret", 4).unwrap()
    );
    std::fs::write(dir.join("users.htpasswd"), users).unwrap();
    let registry = Registry::start();
    let config = format!(
        r#"identity:
  htpasswd: {dir}/users.htpasswd
  jwt: {{public_key: {dir}/signer.pem, issuer: test-issuer, audience: registry.test, groups_claim: groups}}
  trusted_header: {{name: X-Forwarded-User, from: ["127.0.0.1/32"]}}
rules:
  - repositories: ["team/**"]
    policies:
      - policy: immutable-tags
        settings: {{default: mutable, owners: [{{pattern: "build-.*", actors: ["ci-bot"]}}]}}
"#,
        dir = dir.display()
    );
    let gate = Gate::start(&registry.url(), &config);
    let through_gate = Client::new(&gate.url());
    let direct = Client::new(&registry.url());
    Setup { _registry: registry, gate, keys, through_gate, direct }
}

impl Setup {
    fn token(&self, key: &str, claims: serde_json::Value) -> String {
        let pem = std::fs::read(self.keys.path().join(key)).unwrap();
        jsonwebtoken::encode(
            &Header::new(Algorithm::RS256),
            &claims,
            &EncodingKey::from_rsa_pem(&pem).unwrap(),
        )
        .unwrap()
    }

    /// PUT a manifest under `tag` with an `Authorization` header, or without one.
    fn put(&self, tag: &str, authorization: Option<&str>) -> registry::Reply {
        let (manifest, _) = self.direct.image_manifest("team/app", tag);
        self.through_gate.put_manifest_with("team/app", tag, &manifest, authorization)
    }
}

fn claims(sub: &str, expires_in: i64) -> serde_json::Value {
    let now = jsonwebtoken::get_current_timestamp() as i64;
    json!({"sub": sub, "iss": "test-issuer", "aud": "registry.test", "exp": now + expires_in,
           "groups": ["ci"]})
}

#[test]
fn only_a_verified_ci_bot_may_create_build_tags() {
    let setup = setup();
    // A token signed by the configured key, for ci-bot.
    let token = setup.token("signer.key", claims("ci-bot", 300));
    let created = setup.put("build-1", Some(&format!("Bearer {token}")));
    assert_eq!(created.status, 201, "{}", created.body);
    let logged = setup.gate.decisions();
    assert_eq!(logged[0]["actor"], "ci-bot");
    assert_eq!(logged[0]["actor_source"], "jwt");

    // The same claims signed by another key, unsigned, or expired: 401 with a challenge.
    let forged = setup.token("other.key", claims("ci-bot", 300));
    let unsigned = {
        use base64::Engine;
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        format!(
            "{}.{}.",
            b64.encode(r#"{"alg":"none","typ":"JWT"}"#),
            b64.encode(claims("ci-bot", 300).to_string())
        )
    };
    let expired = setup.token("signer.key", claims("ci-bot", -600));
    for (what, token) in [("another key", forged), ("alg none", unsigned), ("expired", expired)] {
        let refused = setup.put("build-2", Some(&format!("Bearer {token}")));
        assert_eq!(refused.status, 401, "{what}: {}", refused.body);
        assert_eq!(refused.json()["errors"][0]["code"], "UNAUTHORIZED", "{what}");
        assert!(!refused.header_all("www-authenticate").is_empty(), "{what}: no challenge");
    }
    // No token at all: anonymous, and the owner rule refuses.
    let anonymous = setup.put("build-2", None);
    assert_eq!(anonymous.status, 409, "{}", anonymous.body);
    assert!(anonymous.body.contains("build-2"), "{}", anonymous.body);
    assert_eq!(setup.direct.tags("team/app"), ["build-1"]);
}

#[test]
fn htpasswd_users_push_with_skopeo() {
    let setup = setup();
    let images = tempfile::tempdir().unwrap();
    let image = Layout::image(images.path(), 70, 1024);
    let copy = |creds: &str, tag: &str| {
        Command::new("skopeo")
            .args(["copy", "--retry-times", "0", "--dest-tls-verify=false", "--dest-creds", creds])
            .arg(image.oci_ref())
            .arg(format!("docker://{}/team/app:{tag}", setup.gate.address))
            .output()
            .unwrap()
    };
    // alice is who she says, but not ci-bot.
    let out = copy("alice:wonderland", "build-3");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("denied: immutable-tags:"),
        "{}",
        text(&out)
    );
    // A wrong password never becomes an identity.
    let out = copy("alice:guess", "latest");
    assert!(!out.status.success(), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr).to_lowercase();
    assert!(
        stderr.contains("unauthorized") || stderr.contains("authentication required"),
        "{stderr}"
    );
    // Without credentials skopeo answers the gate's challenge with empty ones: anonymous,
    // so a tag no owner rule covers may move, and a build tag may not.
    let anonymous =
        |tag: &str| skopeo_copy(&image, &setup.gate.address, &format!("team/app:{tag}"), false);
    let out = anonymous("latest");
    assert!(out.status.success(), "{}", text(&out));
    let out = anonymous("build-3");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    // ci-bot with its password may.
    let out = copy("ci-bot:s3cret", "build-3");
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(setup.direct.digest_of("team/app", "build-3"), Some(image.digest.clone()));
    let sources: Vec<String> = setup
        .gate
        .decisions()
        .iter()
        .map(|d| format!("{} {} {}", d["actor"], d["actor_source"], d["decision"]))
        .collect();
    assert_eq!(
        sources,
        [
            r#""alice" "htpasswd" "deny""#,
            r#"null "anonymous" "allow""#,
            r#"null "anonymous" "deny""#,
            r#""ci-bot" "htpasswd" "allow""#
        ]
    );
    // Without credentials the gate asks for them at the login check.
    let login = ureq::get(&format!("{}/v2/", setup.gate.url())).call();
    match login {
        Err(ureq::Error::Status(401, response)) => {
            assert_eq!(response.header("www-authenticate"), Some("Basic realm=\"tagpolicy-gate\""));
        }
        other => panic!("expected 401, got {other:?}"),
    }
}

/// A raw HTTP/1.1 manifest PUT from a chosen local address; returns the status code.
fn put_from(source: &str, gate: &str, tag: &str, manifest: &[u8], header: &str) -> u16 {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket.bind(&source.parse::<std::net::SocketAddr>().unwrap().into()).unwrap();
    socket.connect(&gate.parse::<std::net::SocketAddr>().unwrap().into()).unwrap();
    let mut stream: std::net::TcpStream = socket.into();
    write!(
        stream,
        "PUT /v2/team/app/manifests/{tag} HTTP/1.1\r\nHost: {gate}\r\n{header}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        registry::MANIFEST,
        manifest.len()
    )
    .unwrap();
    stream.write_all(manifest).unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    response.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[test]
fn a_trusted_header_counts_only_from_the_trusted_peer() {
    let setup = setup();
    let (manifest, _) = setup.direct.image_manifest("team/app", "proxied");
    let header = "X-Forwarded-User: ci-bot";
    // 127.0.0.2 is loopback too, but not in `from`: the header is stripped, the request anonymous.
    let status = put_from("127.0.0.2:0", &setup.gate.address, "build-9", &manifest, header);
    assert_eq!(status, 409);
    let status = put_from("127.0.0.1:0", &setup.gate.address, "build-9", &manifest, header);
    assert_eq!(status, 201);
    let sources: Vec<String> = setup
        .gate
        .decisions()
        .iter()
        .map(|d| format!("{} {}", d["actor"], d["actor_source"]))
        .collect();
    assert_eq!(sources, ["null \"anonymous\"", "\"ci-bot\" \"trusted_header\""]);
}
