//! The gate in production shape: clients speak TLS to the gate (skopeo, buildah, HTTP/2 and
//! HTTP/1.1), the gate speaks TLS to a CNCF distribution registry that requires bearer tokens
//! from a token server of the test's own; certificates are made here (tests/support/pki.rs).
//! Everything runs on 127.0.0.1.

mod common;
#[path = "support/pki.rs"]
mod pki;
#[path = "support/registry.rs"]
mod registry;
#[path = "support/stand_in.rs"]
mod stand_in;
#[path = "support/token_server.rs"]
mod token_server;

use pki::{Authority, Signer};
use registry::{Client, Gate, Layout, LowercaseDir, Registry, TokenAuth, skopeo_copy_with, text};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

const NAMES: &[&str] = &["127.0.0.1", "localhost"];

/// A test CA; a registry serving HTTPS with a certificate it signed, requiring tokens from
/// the token server; and a gate in front of it, serving HTTPS itself and verifying the same
/// tokens for its identity.
struct World {
    dir: tempfile::TempDir,
    ca: Authority,
    signer: Signer,
    registry: Registry,
    gate: Gate,
}

impl World {
    fn start(rules: &str) -> World {
        let dir = tempfile::tempdir().unwrap();
        let ca = Authority::new("tagpolicy test CA");
        let ca_path = ca.write(dir.path(), "ca.pem");
        // The directory skopeo and buildah read CAs from (`*.crt`).
        let certs = dir.path().join("client-certs");
        std::fs::create_dir(&certs).unwrap();
        ca.write(&certs, "ca.crt");

        let signer = Signer::new();
        let bundle = dir.path().join("token-signer.pem");
        std::fs::write(&bundle, &signer.cert_pem).unwrap();
        let public_key = dir.path().join("token-signer.pub.pem");
        std::fs::write(&public_key, &signer.public_key_pem).unwrap();
        let realm = token_server::start(signer.clone());

        let registry_pair = ca.server(NAMES, 1).write(dir.path(), "registry");
        let registry = Registry::start_with(
            Some(registry_pair),
            Some(TokenAuth {
                realm,
                service: token_server::SERVICE.into(),
                issuer: token_server::ISSUER.into(),
                root_cert_bundle: bundle,
            }),
        );
        let live = rotate_to(dir.path(), &ca.server(NAMES, 100), "v1");
        let gate = Gate::start(
            &registry.url(),
            &format!(
                "tls: {{cert: {live}/gate.pem, key: {live}/gate.key}}\nupstream_ca: {}\n\
                 identity:\n  jwt: {{public_key: {}, issuer: {}, audience: {}}}\n{rules}",
                ca_path.display(),
                public_key.display(),
                token_server::ISSUER,
                token_server::SERVICE,
                live = live.display(),
            ),
        );
        World { dir, ca, signer, registry, gate }
    }

    fn cert_dir(&self) -> PathBuf {
        self.dir.path().join("client-certs")
    }

    /// A client of the registry itself, with a token for everything in `repository`.
    fn direct(&self, repository: &str) -> Client {
        let token = token_server::token(
            &self.signer,
            "admin",
            &[&format!("repository:{repository}:pull,push,delete")],
        );
        Client::with(&self.registry.url(), Some(&self.ca.pem), Some(format!("Bearer {token}")))
    }

    /// A client of the gate as `user`, with a token for `scope`.
    fn through_gate(&self, user: &str, scope: &str) -> Client {
        let token = token_server::token(&self.signer, user, &[scope]);
        Client::with(&self.gate.url(), Some(&self.ca.pem), Some(format!("Bearer {token}")))
    }

    fn metrics(&self) -> String {
        Client::with(&self.gate.url(), Some(&self.ca.pem), None).get("/metrics").body
    }
}

/// Put `issued` in `BASE/VERSION/gate.{pem,key}` and point `BASE/live` at it atomically
/// (a symlink swapped by rename), as Kubernetes updates a mounted secret; `BASE/live`.
fn rotate_to(base: &Path, issued: &pki::Issued, version: &str) -> PathBuf {
    let dir = base.join(version);
    std::fs::create_dir(&dir).unwrap();
    issued.write(&dir, "gate");
    let next = base.join("live.next");
    let _ = std::fs::remove_file(&next);
    std::os::unix::fs::symlink(&dir, &next).unwrap();
    std::fs::rename(&next, base.join("live")).unwrap();
    base.join("live")
}

const RULES: &str = r#"rules:
  - repositories: ["team/**"]
    policies:
      - policy: immutable-tags
        settings:
          mutable: ["latest", "dev-.*"]
          owners: [{pattern: "build-.*", actors: ["ci-bot"]}]
"#;

fn skopeo(world: &World, user: &str, layout: &Layout, reference: &str) -> std::process::Output {
    let (_, password) = token_server::USERS.iter().find(|(u, _)| *u == user).unwrap();
    let cert_dir = world.cert_dir();
    skopeo_copy_with(
        layout,
        &world.gate.address,
        reference,
        &[
            "--dest-cert-dir",
            cert_dir.to_str().unwrap(),
            "--dest-creds",
            &format!("{user}:{password}"),
        ],
    )
}

#[test]
fn skopeo_and_buildah_push_over_tls_to_a_token_auth_registry() {
    let world = World::start(RULES);
    let direct = world.direct("team/app");
    // buildah pulls from here too, and wants a lowercase path.
    let images = LowercaseDir::new();
    let first = Layout::image(images.path(), 1, 4096);
    let second = Layout::image(images.path(), 2, 4096);

    // A new tag: skopeo is challenged, fetches a token, and pushes through the gate.
    let out = skopeo(&world, "alice", &first, "team/app:1.0.0");
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(direct.digest_of("team/app", "1.0.0"), Some(first.digest.clone()));

    // A move of the release tag is denied, with the reason in skopeo's output.
    let out = skopeo(&world, "alice", &second, "team/app:1.0.0");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("denied: immutable-tags: tag `1.0.0` is immutable"),
        "{}",
        text(&out)
    );
    assert_eq!(direct.digest_of("team/app", "1.0.0"), Some(first.digest.clone()));

    // A multi-tag push over HTTP/1.1 with the client's token: the gate writes the tags
    // upstream with that token.
    let client = world.through_gate("alice", "repository:team/app:pull,push");
    let (manifest, digest) = client.image_manifest("team/app", "multi");
    let pushed =
        client.put_manifest("team/app", &format!("{digest}?tag=2.0.0&tag=latest"), &manifest);
    assert_eq!(pushed.status, 201, "{}", pushed.body);
    assert_eq!(direct.digest_of("team/app", "2.0.0"), Some(digest.clone()));
    assert_eq!(direct.digest_of("team/app", "latest"), Some(digest.clone()));

    // Deletion: of the release tag's manifest, denied; of a dev tag's, allowed.
    let out = skopeo(&world, "alice", &second, "team/app:dev-1");
    assert!(out.status.success(), "{}", text(&out));
    let delete = |reference: &str| {
        Command::new("skopeo")
            .args(["delete", "--cert-dir", world.cert_dir().to_str().unwrap()])
            .args(["--creds", "alice:wonderland"])
            .arg(format!("docker://{}/team/app@{reference}", world.gate.address))
            .output()
            .unwrap()
    };
    let out = delete(&first.digest);
    assert!(!out.status.success(), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("`1.0.0`"), "{}", text(&out));
    let out = delete(&second.digest);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(direct.digest_of("team/app", "dev-1"), None);

    // buildah pushes through the TLS gate too.
    let buildah = registry::Buildah::new();
    let buildah = |args: &[&str]| buildah.run(args);
    let out = buildah(&["pull", "--quiet", &first.oci_ref()]);
    assert!(out.status.success(), "{}", text(&out));
    let image = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let cert_dir = world.cert_dir();
    let push = |tag: &str| {
        buildah(&[
            "push",
            "--retry",
            "0",
            "--cert-dir",
            cert_dir.to_str().unwrap(),
            "--creds",
            "alice:wonderland",
            &image,
            &format!("docker://{}/team/built:{tag}", world.gate.address),
        ])
    };
    let out = push("3.0.0");
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(world.direct("team/built").tags("team/built"), ["3.0.0"]);

    // The gate verified the tokens: the decision log names the user.
    let decisions = world.gate.decisions();
    assert!(!decisions.is_empty());
    for decision in &decisions {
        assert_eq!(decision["actor"], "alice", "{decision}");
        assert_eq!(decision["actor_source"], "jwt", "{decision}");
    }
}

#[test]
fn buildah_shows_the_denial_over_tls() {
    let world = World::start(RULES);
    let direct = world.direct("team/built");
    // buildah names a pulled image after its path, which must be lowercase.
    let images = LowercaseDir::new();
    let buildah = registry::Buildah::new();
    let cert_dir = world.cert_dir();
    let push = |seed: u64, tag: &str| {
        let layout = Layout::image(images.path(), seed, 2048);
        let out = buildah.run(&["pull", "--quiet", &layout.oci_ref()]);
        assert!(out.status.success(), "{}", text(&out));
        let image = String::from_utf8_lossy(&out.stdout).trim().to_string();
        buildah.run(&[
            "push",
            "--retry",
            "0",
            "--cert-dir",
            cert_dir.to_str().unwrap(),
            "--creds",
            "alice:wonderland",
            &image,
            &format!("docker://{}/team/built:{tag}", world.gate.address),
        ])
    };
    let out = push(31, "4.0.0");
    assert!(out.status.success(), "{}", text(&out));
    // buildah writes its own manifest: read what it pushed rather than the layout's digest.
    let pushed = direct.digest_of("team/built", "4.0.0");
    assert!(pushed.is_some());

    // Another image under the release tag: denied, with the policy's reason in buildah's output.
    let out = push(32, "4.0.0");
    assert_eq!(out.status.code(), Some(125), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("denied: immutable-tags: tag `4.0.0` is immutable"),
        "buildah should show the reason: {}",
        text(&out)
    );
    assert_eq!(direct.digest_of("team/built", "4.0.0"), pushed);
    let decisions = world.gate.decisions();
    let outcomes: Vec<&str> = decisions.iter().map(|d| d["decision"].as_str().unwrap()).collect();
    assert_eq!(outcomes, ["allow", "deny"], "{decisions:?}");
    assert_eq!(decisions[1]["actor"], "alice", "{}", decisions[1]);
}

/// One request with curl over HTTP/2 (skopeo and buildah speak HTTP/1.1 to a registry even
/// over TLS): status, response headers, body and the HTTP version used.
fn curl_h2(
    world: &World,
    method: &str,
    url: &str,
    token: &str,
    body: &[u8],
) -> (u16, String, String, String) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("body"), body).unwrap();
    let ca = world.dir.path().join("ca.pem");
    let out = Command::new("curl")
        .args(["--silent", "--show-error", "--http2", "--cacert", ca.to_str().unwrap()])
        .args(["-X", method, "-H", &format!("Authorization: Bearer {token}")])
        .args(["-H", &format!("Content-Type: {}", registry::MANIFEST)])
        .args(["--data-binary", &format!("@{}", dir.path().join("body").display())])
        .args(["-D", dir.path().join("head").to_str().unwrap()])
        .args(["-o", dir.path().join("out").to_str().unwrap()])
        .args(["-w", "%{http_code} %{http_version}", url])
        .output()
        .expect("curl (Debian package curl) must be installed");
    assert!(out.status.success(), "{}", text(&out));
    let written = String::from_utf8_lossy(&out.stdout).to_string();
    let (status, version) = written.split_once(' ').unwrap();
    let read = |name: &str| std::fs::read_to_string(dir.path().join(name)).unwrap_or_default();
    (status.parse().unwrap(), read("head"), read("out"), version.to_string())
}

#[test]
fn http2_clients_are_decided_like_any_other() {
    let world = World::start(RULES);
    let token = token_server::token(&world.signer, "alice", &["repository:team/h2:pull,push"]);
    let client = world.through_gate("alice", "repository:team/h2:pull,push");
    let (first, first_digest) = client.image_manifest("team/h2", "first");
    let (second, _) = client.image_manifest("team/h2", "second");
    let gate = world.gate.url();

    // An upload starts over HTTP/2: the upstream's Location points back at the gate, over
    // https (the gate passes `:authority` as `Host`, and says the client used TLS).
    let (status, head, _, version) =
        curl_h2(&world, "POST", &format!("{gate}/v2/team/h2/blobs/uploads/"), &token, b"");
    assert_eq!((status, version.as_str()), (202, "2"), "{head}");
    let location = head.lines().find_map(|l| l.strip_prefix("location: ")).unwrap();
    assert!(location.starts_with(&format!("{gate}/v2/team/h2/blobs/uploads/")), "{location}");

    let url = |tag: &str| format!("{gate}/v2/team/h2/manifests/{tag}");
    let (status, _, body, version) = curl_h2(&world, "PUT", &url("1.0.0"), &token, &first);
    assert_eq!((status, version.as_str()), (201, "2"), "{body}");
    let (status, _, body, _) = curl_h2(&world, "PUT", &url("1.0.0"), &token, &second);
    assert_eq!(status, 409, "{body}");
    assert!(body.contains("DENIED") && body.contains("immutable"), "{body}");
    // A spelling the gate refuses is refused over HTTP/2 as well.
    let encoded = format!("{gate}/v2/team%2Fh2/manifests/1.0.0");
    let (status, _, body, _) = curl_h2(&world, "PUT", &encoded, &token, &second);
    assert_eq!(status, 400, "{body}");
    assert_eq!(world.direct("team/h2").digest_of("team/h2", "1.0.0"), Some(first_digest));
    let metrics = world.metrics();
    assert!(
        metrics.contains(r#"tagpolicy_gate_connections_total{protocol="h2 over tls"}"#),
        "{metrics}"
    );
}

#[test]
fn a_tls_gate_in_front_of_a_plain_registry() {
    // TLS ends at the gate; the registry listens in plain HTTP on loopback.
    let dir = tempfile::tempdir().unwrap();
    let ca = Authority::new("tagpolicy test CA");
    let certs = dir.path().join("client-certs");
    std::fs::create_dir(&certs).unwrap();
    ca.write(&certs, "ca.crt");
    let (cert, key) = ca.server(NAMES, 7).write(dir.path(), "gate");
    let registry = Registry::start();
    let gate = Gate::start(
        &registry.url(),
        &format!("tls: {{cert: {}, key: {}}}\n{RULES}", cert.display(), key.display()),
    );
    assert!(gate.url().starts_with("https://"), "{}", gate.url());
    // The registry builds upload locations for the client: back at the gate, over https,
    // because the gate tells it the client used TLS.
    let client = Client::with(&gate.url(), Some(&ca.pem), None);
    let started = client.post("/v2/team/app/blobs/uploads/");
    assert_eq!(started.status, 202, "{}", started.body);
    let location = started.header_all("location")[0];
    assert!(location.starts_with(&format!("{}/v2/team/app/", gate.url())), "{location}");

    let images = tempfile::tempdir().unwrap();
    let layout = Layout::image(images.path(), 5, 2048);
    let cert_dir = certs.to_str().unwrap();
    let out =
        skopeo_copy_with(&layout, &gate.address, "team/app:1.0.0", &["--dest-cert-dir", cert_dir]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(Client::new(&registry.url()).digest_of("team/app", "1.0.0"), Some(layout.digest));
}

#[test]
fn owner_rules_see_the_token_subject() {
    let world = World::start(RULES);
    let images = tempfile::tempdir().unwrap();
    let layout = Layout::image(images.path(), 3, 1024);
    let out = skopeo(&world, "alice", &layout, "team/app:build-7");
    assert!(!out.status.success(), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("ci-bot"), "{}", text(&out));
    let out = skopeo(&world, "ci-bot", &layout, "team/app:build-7");
    assert!(out.status.success(), "{}", text(&out));
    let direct = world.direct("team/app");
    assert_eq!(direct.digest_of("team/app", "build-7"), Some(layout.digest));
}

#[test]
fn a_token_for_another_repository_gets_the_upstreams_answer() {
    let world = World::start(RULES);
    let direct = world.direct("team/app");
    let (manifest, _) = direct.image_manifest("team/app", "x");
    let scope = "repository:other/x:pull,push";
    let through_gate =
        world.through_gate("alice", scope).put_manifest("team/app", "1.0.0", &manifest);
    let token = token_server::token(&world.signer, "alice", &[scope]);
    let straight =
        Client::with(&world.registry.url(), Some(&world.ca.pem), Some(format!("Bearer {token}")))
            .put_manifest("team/app", "1.0.0", &manifest);
    assert_eq!(straight.status, 401, "{}", straight.body);
    assert_eq!(through_gate.status, straight.status, "{}", through_gate.body);
    assert_eq!(through_gate.json()["errors"][0]["code"], straight.json()["errors"][0]["code"]);
    // The challenge asks for the scope the push needs (distribution lists the actions in
    // either order).
    let challenge = |reply: &registry::Reply| {
        let header = reply.header_all("www-authenticate")[0].to_string();
        let (before, rest) = header.split_once("scope=\"repository:team/app:").unwrap();
        let (actions, after) = rest.split_once('"').unwrap();
        let mut actions: Vec<&str> = actions.split(',').collect();
        actions.sort();
        format!("{before}{}{after}", actions.join(","))
    };
    assert_eq!(challenge(&through_gate), challenge(&straight));
    assert!(through_gate.header_all("www-authenticate")[0].contains("insufficient_scope"));
    assert_eq!(direct.tags("team/app"), Vec::<String>::new());
}

/// The certificate the gate presents to a new connection, as DER.
fn served_certificate(world: &World) -> Vec<u8> {
    let config = Arc::new(registry::tls_client(&world.ca.pem));
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
    let mut connection = rustls::ClientConnection::new(config, name).unwrap();
    let mut socket = std::net::TcpStream::connect(&world.gate.address).unwrap();
    while connection.is_handshaking() {
        connection.complete_io(&mut socket).unwrap();
    }
    connection.peer_certificates().unwrap()[0].to_vec()
}

#[test]
fn the_certificate_rotates_while_pushes_run() {
    let world = World::start(RULES);
    let token = token_server::token(&world.signer, "alice", &["repository:team/app:pull,push"]);
    let authorization = format!("Bearer {token}");
    let client = Client::with(&world.gate.url(), Some(&world.ca.pem), Some(authorization.clone()));
    let (manifest, _) = client.image_manifest("team/app", "x");
    let stop = Arc::new(AtomicBool::new(false));
    let pushed = Arc::new(AtomicUsize::new(0));
    let pusher = {
        let (stop, pushed) = (stop.clone(), pushed.clone());
        let (url, ca) = (world.gate.url(), world.ca.pem.clone());
        std::thread::spawn(move || {
            let mut failures = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let n = pushed.fetch_add(1, Ordering::Relaxed) + 1;
                // A client (so a connection, so a TLS handshake) per push: a kept-alive
                // connection would keep its certificate and never handshake during the rotation.
                let client = Client::with(&url, Some(&ca), Some(authorization.clone()));
                match client.try_put_manifest("team/app", &format!("dev-{n}"), &manifest) {
                    Ok(reply) if reply.status == 201 => {}
                    Ok(reply) => failures.push(format!("dev-{n}: {} {}", reply.status, reply.body)),
                    Err(error) => failures.push(format!("dev-{n}: {error}")),
                }
            }
            failures
        })
    };
    let first = served_certificate(&world);
    let next = world.ca.server(NAMES, 101);
    rotate_to(world.dir.path(), &next, "v2");
    let deadline = Instant::now() + Duration::from_secs(20);
    while served_certificate(&world) != next.der {
        assert!(Instant::now() < deadline, "the new certificate (serial 101) is never served");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_ne!(first, next.der);
    // Pushes go on with handshakes on the new certificate.
    let rotated_at = pushed.load(Ordering::Relaxed);
    registry::eventually("pushes after the rotation", || {
        pushed.load(Ordering::Relaxed) > rotated_at + 5
    });

    // A pair that does not match is refused; the running one stays.
    let broken = pki::Issued {
        cert_pem: world.ca.server(NAMES, 102).cert_pem,
        key_pem: world.ca.server(NAMES, 103).key_pem,
        der: Vec::new(),
    };
    rotate_to(world.dir.path(), &broken, "v3");
    let deadline = Instant::now() + Duration::from_secs(20);
    while !world.metrics().contains(r#"tagpolicy_gate_certificate_reloads_total{result="error"} 1"#)
    {
        assert!(Instant::now() < deadline, "{}", world.metrics());
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(served_certificate(&world), next.der);
    assert!(world.gate.log().contains("TLS certificate not reloaded"), "{}", world.gate.log());

    stop.store(true, Ordering::Relaxed);
    let failures = pusher.join().unwrap();
    let pushed = pushed.load(Ordering::Relaxed);
    assert!(
        failures.is_empty(),
        "{} of {pushed} pushes failed during the rotation: {failures:?}",
        failures.len()
    );
    assert!(pushed > 5, "the pusher barely ran");
    assert!(
        world.metrics().contains(r#"tagpolicy_gate_certificate_reloads_total{result="ok"} 1"#),
        "{}",
        world.metrics()
    );
}

#[test]
fn a_wrong_upstream_certificate_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Authority::new("tagpolicy test CA");
    let ca_path = ca.write(dir.path(), "ca.pem");
    let good = ca.server(NAMES, 1).write(dir.path(), "good");
    let mut registry = Registry::start_with(Some(good.clone()), None);
    let gate =
        Gate::start(&registry.url(), &format!("upstream_ca: {}\n{RULES}", ca_path.display()));
    let through_gate = Client::new(&gate.url());
    let direct = Client::with(&registry.url(), Some(&ca.pem), None);
    let (manifest, _) = direct.image_manifest("team/app", "x");
    assert_eq!(through_gate.put_manifest("team/app", "1.0.0", &manifest).status, 201);

    let unknown =
        Authority::new("nobody trusts this CA").server(NAMES, 2).write(dir.path(), "unknown");
    let wrong_name = ca.server(&["registry.invalid"], 3).write(dir.path(), "wrong-name");
    let expired = ca.expired_server(NAMES, 4).write(dir.path(), "expired");
    let other = br#"{"schemaVersion":2,"other":true}"#;
    let cases = [
        (Some(unknown), "TLS certificate: invalid peer certificate: UnknownIssuer"),
        (
            Some(wrong_name),
            "TLS certificate: invalid peer certificate: certificate not valid for name",
        ),
        (Some(expired), "TLS certificate: invalid peer certificate: certificate expired"),
        // The registry speaks plain HTTP now: the gate does not fall back to it.
        (None, "TLS with the upstream registry failed"),
    ];
    for (pair, why) in cases {
        registry.stop();
        registry.tls = pair;
        registry.restart();
        for reply in [
            through_gate.put_manifest("team/app", "1.0.0", other),
            through_gate.put_manifest("team/app", "2.0.0", other),
            through_gate.get("/v2/"),
        ] {
            assert_eq!(reply.status, 502, "{why}: {}", reply.body);
            let message = reply.json()["errors"][0]["message"].as_str().unwrap().to_string();
            assert!(message.contains(why), "{why}: {message}");
        }
    }
    registry.stop();
    registry.tls = Some(good);
    registry.restart();
    assert_eq!(direct.tags("team/app"), ["1.0.0"]);
}

#[test]
fn a_registry_that_requires_a_client_certificate_gets_the_gates() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Authority::new("tagpolicy test CA");
    let ca_path = ca.write(dir.path(), "ca.pem");
    let clients = Authority::new("tagpolicy test client CA");
    let client_ca = clients.write(dir.path(), "client-ca.pem");
    let (client_cert, client_key) =
        clients.server(&["tagpolicy-gate"], 9).write(dir.path(), "client");
    let server = ca.server(NAMES, 1).write(dir.path(), "registry");
    let registry = Registry::start_with_client_ca(server, client_ca);

    // Without a client certificate the registry ends the handshake: 502, nothing changed.
    let without =
        Gate::start(&registry.url(), &format!("upstream_ca: {}\n{RULES}", ca_path.display()));
    let reply = Client::new(&without.url()).get("/v2/");
    assert_eq!(reply.status, 502, "{}", reply.body);
    assert!(reply.body.contains("TLS with the upstream registry failed"), "{}", reply.body);

    // With the gate's client certificate it is served.
    let with = Gate::start(
        &registry.url(),
        &format!(
            "upstream_ca: {}\nupstream_client_cert: {{cert: {}, key: {}}}\n{RULES}",
            ca_path.display(),
            client_cert.display(),
            client_key.display()
        ),
    );
    let through_gate = Client::new(&with.url());
    // The registry speaks https, the gate plain HTTP: upload locations follow the client's side.
    let started = through_gate.post("/v2/team/app/blobs/uploads/");
    assert_eq!(started.status, 202, "{}", started.body);
    let location = started.header_all("location")[0];
    assert!(location.starts_with(&format!("{}/v2/team/app/", with.url())), "{location}");
    let (manifest, digest) = through_gate.image_manifest("team/app", "mtls");
    assert_eq!(through_gate.put_manifest("team/app", "1.0.0", &manifest).status, 201);
    assert_eq!(through_gate.digest_of("team/app", "1.0.0"), Some(digest));
}

/// Open a TLS connection to `gate` that speaks HTTP/2 (by ALPN) and send the connection
/// preface with a SETTINGS frame of `settings` (its payload), `at_once` (raw frames), then
/// `trickled` one byte every 100 ms. Reads whatever comes and never acknowledges anything.
/// Returns how long the gate took to close the connection; fails if it did not within 30 s.
fn http2_client_closed_after(
    gate: &Gate,
    ca_pem: &str,
    settings: &[u8],
    at_once: &[u8],
    trickled: &[u8],
) -> Duration {
    use std::io::{Read, Write};
    let mut config = registry::tls_client(ca_pem);
    config.alpn_protocols = vec![b"h2".to_vec()];
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
    let connection = rustls::ClientConnection::new(Arc::new(config), name).unwrap();
    let socket = std::net::TcpStream::connect(&gate.address).unwrap();
    socket.set_read_timeout(Some(Duration::from_millis(100))).unwrap();
    let mut stream = rustls::StreamOwned::new(connection, socket);
    let started = Instant::now();
    let mut opening = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    opening.extend(http2_frame(4, 0, 0, settings));
    opening.extend(at_once);
    stream.write_all(&opening).unwrap();
    stream.flush().unwrap();
    assert_eq!(stream.conn.alpn_protocol(), Some(&b"h2"[..]), "the gate must choose HTTP/2");
    let mut pending = trickled.iter();
    let mut sink = [0u8; 4096];
    loop {
        assert!(started.elapsed() < Duration::from_secs(30), "the gate kept the connection open");
        if let Some(byte) = pending.next() {
            // The gate may have closed already; the read below says so.
            let _ = stream.write_all(&[*byte]).and_then(|()| stream.flush());
        }
        match stream.read(&mut sink) {
            Ok(0) => return started.elapsed(),
            Ok(_) => {} // SETTINGS, pings, GOAWAY
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return started.elapsed(), // reset, or closed without close_notify
        }
    }
}

/// A gate serving TLS (with a certificate of a CA made here) in front of `registry`, with
/// `limits`; the folder holds its certificate and key.
fn tls_gate(registry: &Registry, limits: &str) -> (Gate, Authority, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let ca = Authority::new("tagpolicy test CA");
    let (cert, key) = ca.server(NAMES, 9).write(dir.path(), "gate");
    let gate = Gate::start(
        &registry.url(),
        &format!(
            "tls: {{cert: {}, key: {}}}\nlimits: {limits}\n{RULES}",
            cert.display(),
            key.display()
        ),
    );
    (gate, ca, dir)
}

#[test]
fn idle_and_trickling_http2_connections_are_closed() {
    // HTTP/2 has no header timeout of its own in the server library: a client that answers
    // pings but sends no request, or trickles one HEADERS frame, would keep its connection
    // (and its slot under `max_connections`) for ever.
    let registry = Registry::start();
    let (gate, ca, _dir) = tls_gate(&registry, "{header_timeout: 1s}");
    let idle = http2_client_closed_after(&gate, &ca.pem, b"", b"", b"");
    // A HEADERS frame (type 1, END_HEADERS) announcing 64 bytes, then one byte every 100 ms.
    let trickle = http2_frame(1, 4, 1, &[0x82; 64]);
    let trickling = http2_client_closed_after(&gate, &ca.pem, b"", b"", &trickle);
    // Generous bounds: the point is that the wait ends, near the 1 s limit (plus its GOAWAY
    // grace of one more limit at most), not after the client's 7.3 s of trickling.
    for (what, waited) in [("idle", idle), ("trickling", trickling)] {
        assert!(waited >= Duration::from_millis(900), "{what}: closed after {waited:?}");
        assert!(waited < Duration::from_secs(6), "{what}: closed after {waited:?}");
    }
    let metrics = Client::with(&gate.url(), Some(&ca.pem), None).get("/metrics").body;
    assert!(metrics.contains(r#"tagpolicy_gate_timeouts_total{phase="header"} 2"#), "{metrics}");
    assert!(
        gate.log().matches("closed: HTTP/2 connection without a request in time").count() == 2,
        "{}",
        gate.log()
    );
    // A connection that does send requests is served as before.
    let client = Client::with(&gate.url(), Some(&ca.pem), None);
    assert_eq!(client.get("/v2/").status, 200);
}

/// One HTTP/2 frame: `kind`, `flags`, `stream`, `payload`.
fn http2_frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let length = u32::try_from(payload.len()).unwrap().to_be_bytes();
    let mut frame = vec![length[1], length[2], length[3], kind, flags];
    frame.extend(stream.to_be_bytes());
    frame.extend(payload);
    frame
}

#[test]
fn an_http2_client_that_grants_no_window_is_closed_within_the_idle_timeout() {
    // The client asks for a blob with an initial stream window of 0: the gate may send the
    // headers, never a byte of the body. Nothing on the socket stalls (it reads everything),
    // so only the watch on handed-over frames can tell that the client stopped taking.
    let registry = Registry::start();
    let digest = Client::new(&registry.url()).upload_blob("team/h2", &vec![7u8; 1 << 20]);
    let (gate, ca, _dir) = tls_gate(&registry, "{idle_timeout: 2s, header_timeout: 30s}");
    // SETTINGS_INITIAL_WINDOW_SIZE (4) = 0.
    let no_window = [0, 4, 0, 0, 0, 0];
    // HEADERS (END_STREAM | END_HEADERS) for GET https://<gate>/v2/team/h2/blobs/<digest>:
    // `:method GET` and `:scheme https` from the static table, `:path` and `:authority` as
    // literals with indexed names.
    let path = format!("/v2/team/h2/blobs/{digest}");
    let mut block = vec![0x82, 0x87, 0x04, u8::try_from(path.len()).unwrap()];
    block.extend(path.as_bytes());
    block.extend([0x01, u8::try_from(gate.address.len()).unwrap()]);
    block.extend(gate.address.as_bytes());
    let request = http2_frame(1, 0x5, 1, &block);
    let waited = http2_client_closed_after(&gate, &ca.pem, &no_window, &request, b"");
    assert!(waited >= Duration::from_millis(1900), "closed after {waited:?}");
    assert!(waited < Duration::from_secs(15), "closed after {waited:?}");
    let metrics = Client::with(&gate.url(), Some(&ca.pem), None).get("/metrics").body;
    assert!(
        metrics.contains(r#"tagpolicy_gate_timeouts_total{phase="client_write"} 1"#),
        "{metrics}"
    );
    assert!(gate.log().contains("stopped taking a response"), "{}", gate.log());
}
