//! Policies shipped through a registry, end to end: `tagpolicy push`, `pull`, `sign` and
//! `inspect` against CNCF distribution (`docker-registry`) serving HTTPS with htpasswd auth on
//! 127.0.0.1, and gates whose policies come from it by digest and by signed tag.
//!
//! cosign itself is not installable here: compatibility is checked against signatures made
//! inside the tests from cosign's documented format (the simple-signing payload written by
//! hand, signed with `openssl dgst -sha256 -sign` and an EC P-256 key), and ours are verified
//! with `openssl dgst -verify`.

#[path = "common/mod.rs"]
mod common;
#[path = "support/pki.rs"]
mod pki;
#[path = "support/registry.rs"]
mod registry;

use base64::Engine as _;
use registry::{Client, Gate, MANIFEST, Registry, sha256_hex};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

const USER: &str = "ci";
const PASSWORD: &str = "s3cret-for-tests";

/// A registry for policies (HTTPS, htpasswd), its CA, two signing keys, and a cache.
struct Fixture {
    dir: tempfile::TempDir,
    registry: Registry,
    ca: PathBuf,
}

fn run(command: &mut Command) -> Output {
    command.output().unwrap()
}

fn text(output: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn openssl(args: &[&str]) {
    let output = run(Command::new("openssl").args(args));
    assert!(output.status.success(), "openssl {args:?}: {}", text(&output));
}

impl Fixture {
    fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let authority = pki::Authority::new("policy registry CA");
        let ca = authority.write(dir.path(), "ca");
        let tls = authority.server(&["127.0.0.1", "localhost"], 1).write(dir.path(), "registry");
        let htpasswd = run(Command::new("htpasswd").args(["-Bbn", USER, PASSWORD]));
        assert!(htpasswd.status.success(), "{}", text(&htpasswd));
        std::fs::write(dir.path().join("htpasswd"), &htpasswd.stdout).unwrap();
        std::fs::write(dir.path().join("password"), format!("{PASSWORD}\n")).unwrap();
        let registry = Registry::start_with_tls_config(
            tls,
            &format!(
                "auth: {{htpasswd: {{realm: policies, path: {}}}}}",
                dir.path().join("htpasswd").display()
            ),
        );
        // skopeo reads CAs from `*.crt` in a folder.
        std::fs::create_dir_all(dir.path().join("certs")).unwrap();
        std::fs::copy(&ca, dir.path().join("certs/ca.crt")).unwrap();
        for name in ["ci", "other"] {
            let ec = dir.path().join(format!("{name}.ec"));
            let key = dir.path().join(format!("{name}.key"));
            let public = dir.path().join(format!("{name}.pub"));
            openssl(&["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", p(&ec)]);
            openssl(&["pkcs8", "-topk8", "-nocrypt", "-in", p(&ec), "-out", p(&key)]);
            openssl(&["ec", "-in", p(&key), "-pubout", "-out", p(&public)]);
        }
        Fixture { dir, registry, ca }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn host(&self) -> String {
        format!("127.0.0.1:{}", self.registry.port)
    }

    /// `host/policies/<name>`.
    fn repository(&self, name: &str) -> String {
        format!("{}/policies/{name}", self.host())
    }

    /// `tagpolicy SUBCOMMAND ARGS… --registry-ca CA` with the CI credentials in the
    /// environment and a cache of this fixture's own.
    fn tagpolicy(&self, args: &[&str]) -> Output {
        self.tagpolicy_with(args, Some((USER, PASSWORD)), "cache")
    }

    fn tagpolicy_with(
        &self,
        args: &[&str],
        credentials: Option<(&str, &str)>,
        cache: &str,
    ) -> Output {
        let mut command = Command::new(env!("CARGO_BIN_EXE_tagpolicy"));
        command
            .args(args)
            .arg("--registry-ca")
            .arg(&self.ca)
            .env("TAGPOLICY_CACHE_DIR", self.path(cache))
            .env_remove("TAGPOLICY_REGISTRY_USERNAME")
            .env_remove("TAGPOLICY_REGISTRY_PASSWORD")
            .env_remove("REGISTRY_AUTH_FILE")
            .env("HOME", self.dir.path())
            .env("DOCKER_CONFIG", self.path("no-docker-config"))
            .env_remove("XDG_RUNTIME_DIR")
            .env_remove("XDG_CONFIG_HOME");
        if let Some((user, password)) = credentials {
            command
                .env("TAGPOLICY_REGISTRY_USERNAME", user)
                .env("TAGPOLICY_REGISTRY_PASSWORD", password);
        }
        run(&mut command)
    }

    /// `tagpolicy push POLICY REF --policy-version VERSION --output json`: the pushed digest.
    fn push(&self, policy: &str, reference: &str, version: &str) -> String {
        let out = self.tagpolicy(&[
            "push",
            policy,
            reference,
            "--policy-version",
            version,
            "--output",
            "json",
        ]);
        assert!(out.status.success(), "push: {}", text(&out));
        let pushed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        pushed["digest"].as_str().unwrap().to_string()
    }

    fn sign(&self, key: &str, reference: &str) {
        let key = self.path(key);
        let out = self.tagpolicy(&["sign", "--key", p(&key), reference]);
        assert!(out.status.success(), "sign: {}", text(&out));
    }

    /// A client of the registry itself, with the CI credentials.
    fn client(&self) -> Client {
        let basic = base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASSWORD}"));
        let ca = std::fs::read_to_string(&self.ca).unwrap();
        Client::with(&self.registry.url(), Some(&ca), Some(format!("Basic {basic}")))
    }

    /// `policy_registries` for a gate: this registry's CA and credentials, a cache, and the
    /// keys to verify with (none: digests only).
    fn gate_settings(&self, keys: &[&str], refresh: &str) -> String {
        let verify = if keys.is_empty() {
            String::new()
        } else {
            let keys: Vec<String> =
                keys.iter().map(|k| format!("\"{}\"", self.path(k).display())).collect();
            format!("\n  verify: {{keys: [{}]}}", keys.join(", "))
        };
        format!(
            "policy_registries:\n  ca: [\"{}\"]\n  credentials: {{\"{}\": {{username: {USER}, password_file: \"{}\"}}}}\n  cache: \"{}\"\n  refresh: {refresh}{verify}\n",
            self.ca.display(),
            self.host(),
            self.path("password").display(),
            self.path("gate-cache").display(),
        )
    }
}

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// The component bytes of an embedded policy, through `tagpolicy inspect --output json`'s sha256.
fn embedded_sha256(name: &str) -> String {
    let out = run(Command::new(env!("CARGO_BIN_EXE_tagpolicy")).args([
        "inspect",
        name,
        "--output",
        "json",
        "--no-cache",
    ]));
    assert!(out.status.success(), "{}", text(&out));
    let inspected: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    inspected["sha256"].as_str().unwrap().to_string()
}

#[test]
fn push_then_pull_round_trips_and_skopeo_reads_the_artifact() {
    let fixture = Fixture::new();
    let reference = format!("{}:1.0.0", fixture.repository("immutable-tags"));
    let digest = fixture.push("immutable-tags", &reference, "1.0.0");
    // The same bytes pushed again give the same digest.
    assert_eq!(fixture.push("immutable-tags", &reference, "1.0.0"), digest);

    // skopeo, independently, with the registry's CA and the same credentials.
    let raw = run(Command::new("skopeo").args([
        "inspect",
        "--raw",
        "--cert-dir",
        p(&fixture.path("certs")),
        "--creds",
        &format!("{USER}:{PASSWORD}"),
        &format!("docker://{reference}"),
    ]));
    assert!(raw.status.success(), "skopeo: {}", text(&raw));
    assert_eq!(format!("sha256:{}", sha256_hex(&raw.stdout)), digest);
    let manifest: serde_json::Value = serde_json::from_slice(&raw.stdout).unwrap();
    assert_eq!(manifest["mediaType"], MANIFEST);
    assert_eq!(manifest["config"]["mediaType"], "application/vnd.wasm.config.v0+json");
    let layers = manifest["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 1);
    assert_eq!(layers[0]["mediaType"], "application/wasm");
    let component_sha256 = embedded_sha256("immutable-tags");
    assert_eq!(layers[0]["digest"], format!("sha256:{component_sha256}"));
    assert_eq!(manifest["annotations"]["org.opencontainers.image.version"], "1.0.0");
    // The config names the component's exports and imports, as the layout asks.
    let config = fixture.client().get(&format!(
        "/v2/policies/immutable-tags/blobs/{}",
        manifest["config"]["digest"].as_str().unwrap()
    ));
    let config: serde_json::Value = serde_json::from_str(&config.body).unwrap();
    assert_eq!(config["architecture"], "wasm");
    assert_eq!(config["os"], "wasip2");
    assert_eq!(config["layerDigests"][0], layers[0]["digest"]);
    let exports = config["component"]["exports"].as_array().unwrap();
    assert!(exports.iter().any(|e| e == "tagpolicy:policy/policy@0.3.1"), "{config}");
    assert!(!config["component"]["imports"].as_array().unwrap().is_empty(), "{config}");

    // Pulled back by tag: the component, byte for byte, resolved to the pushed digest.
    let file = fixture.path("pulled.wasm");
    let out = fixture.tagpolicy(&["pull", &reference, "-o", p(&file), "--output", "json"]);
    assert!(out.status.success(), "pull: {}", text(&out));
    let pulled: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(pulled["digest"], digest);
    assert!(stderr(&out).contains(&digest), "the tag's digest is said: {}", text(&out));
    assert_eq!(sha256_hex(&std::fs::read(&file).unwrap()), component_sha256);

    // inspect shows the artifact and loads the component.
    let out = fixture.tagpolicy(&["inspect", &format!("oci://{reference}"), "--output", "json"]);
    assert!(out.status.success(), "inspect: {}", text(&out));
    let inspected: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(inspected["metadata"]["name"], "immutable-tags");
    assert_eq!(inspected["artifact"]["digest"], digest);
    assert_eq!(inspected["sha256"], component_sha256);

    // A scenario file names the policy by digest; `tagpolicy test` fetches it.
    let scenario = fixture.path("release.yaml");
    std::fs::write(
        &scenario,
        format!(
            "repository: team/app\npolicies:\n  - policy: oci://{}@{digest}\n    sha256: {component_sha256}\nstate:\n  \"1.0.0\": app-1\npushes:\n  - name: a release tag does not move\n    image: app-2\n    tags: [\"1.0.0\"]\n    expect: deny\n  - name: a new tag is fine\n    image: app-2\n    tags: [\"1.0.1\"]\n    expect: allow\n",
            fixture.repository("immutable-tags")
        ),
    )
    .unwrap();
    let out = fixture.tagpolicy(&["test", p(&scenario)]);
    assert!(out.status.success(), "test: {}", text(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("2 passed"), "{}", text(&out));

    // Wrong or no credentials: refused, saying so.
    for credentials in [Some((USER, "wrong")), None] {
        let out = fixture.tagpolicy_with(&["pull", &reference], credentials, "cache-2");
        assert_eq!(out.status.code(), Some(2), "{}", text(&out));
        assert!(stderr(&out).contains("refused the credentials"), "{}", text(&out));
    }
    // The same credentials from an auth file (podman's `auth.json`, `$REGISTRY_AUTH_FILE`).
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASSWORD}"));
    let auth_file = fixture.path("auth.json");
    std::fs::write(
        &auth_file,
        format!(r#"{{"auths": {{"{}": {{"auth": "{auth}"}}}}}}"#, fixture.host()),
    )
    .unwrap();
    let out = run(Command::new(env!("CARGO_BIN_EXE_tagpolicy"))
        .args([
            "pull",
            &reference,
            "-o",
            p(&fixture.path("again.wasm")),
            "--registry-ca",
            p(&fixture.ca),
        ])
        .env("REGISTRY_AUTH_FILE", &auth_file)
        .env("TAGPOLICY_CACHE_DIR", fixture.path("cache-3"))
        .env_remove("TAGPOLICY_REGISTRY_USERNAME"));
    assert!(out.status.success(), "pull with an auth file: {}", text(&out));

    // TLS is verified: without the registry's CA the pull fails; nothing falls back.
    let out = run(Command::new(env!("CARGO_BIN_EXE_tagpolicy"))
        .args(["pull", &reference])
        .env("TAGPOLICY_REGISTRY_USERNAME", USER)
        .env("TAGPOLICY_REGISTRY_PASSWORD", PASSWORD)
        .env("TAGPOLICY_CACHE_DIR", fixture.path("cache-4")));
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(stderr(&out).to_lowercase().contains("certificate"), "{}", text(&out));
}

#[test]
fn plain_http_only_for_registries_listed_as_insecure() {
    let fixture = Fixture::new();
    let plain = Registry::start();
    let reference = format!("127.0.0.1:{}/policies/min-tags:1.0.0", plain.port);
    let out = fixture.tagpolicy(&["push", "min-tags", &reference]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(stderr(&out).contains("plain HTTP"), "the error says why: {}", text(&out));
    assert!(plain.log().lines().all(|l| !l.contains("PUT ")), "nothing was written");
    let listed = format!("127.0.0.1:{}", plain.port);
    let out = fixture.tagpolicy(&["push", "min-tags", &reference, "--insecure-registry", &listed]);
    assert!(out.status.success(), "{}", text(&out));
}

/// What the gate does with a tag moved to another image in `team/app`: `min-tags` allows it
/// (201), `immutable-tags` denies it (409).
struct Probe {
    /// The gate's URL: each move uses a new connection, since a kept-alive one may have been
    /// closed by the gate's idle timeout while the test waited (and a PUT is not retried).
    gate: String,
    first: Vec<u8>,
    second: Vec<u8>,
}

/// Each probe moves a tag of its own, across gates.
static ROUND: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

impl Probe {
    fn new(gate: &Gate, upstream: &Registry) -> Probe {
        let direct = Client::new(&upstream.url());
        let (first, _) = direct.image_manifest("team/app", "first");
        let (second, _) = direct.image_manifest("team/app", "second");
        Probe { gate: gate.url(), first, second }
    }

    fn with_gate(&self, gate: &Gate) -> Probe {
        Probe { gate: gate.url(), first: self.first.clone(), second: self.second.clone() }
    }

    /// The status of moving a freshly created tag.
    fn move_status(&self) -> u16 {
        let round = ROUND.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let tag = format!("r{round}");
        let through_gate = Client::new(&self.gate);
        let created = through_gate.put_manifest("team/app", &tag, &self.first);
        assert_eq!(created.status, 201, "{}", created.body);
        through_gate.put_manifest("team/app", &tag, &self.second).status
    }
}

fn wait_for(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn rules(policy: &str) -> String {
    format!("rules:\n  - repositories: [\"team/**\"]\n    policies:\n      - policy: {policy}\n")
}

/// `tagpolicy serve --check` of a gate configuration ending in `rest`.
fn gate_check(fixture: &Fixture, upstream: &Registry, rest: &str) -> Output {
    let config = fixture.path("gate.yaml");
    std::fs::write(&config, Gate::config_text(&upstream.url(), rest)).unwrap();
    run(Command::new(env!("CARGO_BIN_EXE_tagpolicy")).args([
        "serve",
        "--check",
        "--config",
        p(&config),
    ]))
}

#[test]
fn gates_load_policies_by_digest_and_by_signed_tag_and_follow_the_tag() {
    let mut fixture = Fixture::new();
    let upstream = Registry::start();
    let repository = fixture.repository("rule");
    let stable = format!("{repository}:stable");
    let first = fixture.push("min-tags", &stable, "1.0.0");

    // By digest, without keys: loaded and enforced.
    let by_digest = format!("oci://{repository}@{first}");
    let settings = fixture.gate_settings(&[], "1s");
    let gate = Gate::start(&upstream.url(), &format!("{settings}{}", rules(&by_digest)));
    let probe = Probe::new(&gate, &upstream);
    assert_eq!(probe.move_status(), 201, "min-tags allows moving a tag");
    drop(gate);

    // By tag with keys: refused until it is signed.
    let by_tag = format!("oci://{stable}");
    let settings = fixture.gate_settings(&["ci.pub"], "1s");
    let check = gate_check(&fixture, &upstream, &format!("{settings}{}", rules(&by_tag)));
    assert_eq!(check.status.code(), Some(2), "{}", text(&check));
    assert!(stderr(&check).contains("is not signed"), "{}", text(&check));
    fixture.sign("ci.key", &stable);
    let gate = Gate::start(&upstream.url(), &format!("{settings}{}", rules(&by_tag)));
    let probe = probe.with_gate(&gate);
    assert_eq!(probe.move_status(), 201);
    assert!(gate.log().contains("resolved policy tag"), "{}", gate.log());
    assert!(gate.log().contains(&first), "the resolution is logged: {}", gate.log());

    // A new version under the tag, unsigned: refused, the verified one stays.
    let second = fixture.push("immutable-tags", &stable, "1.1.0");
    wait_for("the unsigned version to be refused", Duration::from_secs(20), || {
        refreshes(&gate, "refused") > 0
    });
    assert!(gate.log().contains("is not signed"), "{}", gate.log());
    assert_eq!(probe.move_status(), 201, "still the verified min-tags");

    // Signed: swapped in without touching the gate.
    fixture.sign("ci.key", &stable);
    wait_for("the signed version to be swapped in", Duration::from_secs(20), || {
        gate.metrics().contains("tagpolicy_gate_policy_refreshes_total{result=\"swapped\"} 1")
    });
    assert_eq!(probe.move_status(), 409, "immutable-tags now denies the move");
    assert!(gate.log().contains("policy tag moved"), "{}", gate.log());
    assert!(gate.log().contains(&second), "{}", gate.log());

    // The older signed version put back under the tag: a rollback, refused.
    assert_eq!(fixture.push("min-tags", &stable, "1.0.0"), first);
    let refused_before = gate.log().matches("rollback").count();
    wait_for("the rollback to be refused", Duration::from_secs(20), || {
        gate.log().matches("rollback").count() > refused_before
    });
    assert_eq!(probe.move_status(), 409, "the newer version stays");
    drop(gate);

    // Restarted while the tag still names the older version: the recorded newer one is kept.
    let gate = Gate::start(&upstream.url(), &format!("{settings}{}", rules(&by_tag)));
    assert!(gate.log().contains("refused as a rollback"), "{}", gate.log());
    assert_eq!(probe.with_gate(&gate).move_status(), 409, "still 1.1.0 after a restart");
    let probe = probe.with_gate(&gate);

    // The registry goes away: the verified version stays, and the gate says so.
    fixture.registry.stop();
    wait_for("the registry to be reported unreachable", Duration::from_secs(30), || {
        refreshes(&gate, "unreachable") > 0
    });
    assert!(gate.metrics().contains("tagpolicy_gate_policy_stale 1"), "{}", gate.metrics());
    assert!(gate.log().contains("keeping the last verified version"), "{}", gate.log());
    assert_eq!(probe.move_status(), 409);
    drop(gate);

    // Restarted with the registry still down: from the cache, by tag and by digest.
    let gate = Gate::start(&upstream.url(), &format!("{settings}{}", rules(&by_tag)));
    assert!(gate.log().contains("using the last verified resolution"), "{}", gate.log());
    assert_eq!(probe.with_gate(&gate).move_status(), 409, "the last verified version, 1.1.0");
    drop(gate);
    let settings = fixture.gate_settings(&[], "1s");
    let gate = Gate::start(&upstream.url(), &format!("{settings}{}", rules(&by_digest)));
    assert_eq!(probe.with_gate(&gate).move_status(), 201, "min-tags by digest, from the cache");
}

/// `tagpolicy pull REF --verify-key …` with a cache of its own: the error, if any.
fn pull_error(fixture: &Fixture, reference: &str, keys: &[&str], cache: &str) -> Option<String> {
    let mut args = vec!["pull".to_string(), reference.to_string(), "-o".into()];
    args.push(fixture.path(&format!("{cache}.wasm")).display().to_string());
    for key in keys {
        args.push("--verify-key".into());
        args.push(fixture.path(key).display().to_string());
    }
    if keys.len() > 1 {
        args.extend(["--threshold".to_string(), keys.len().to_string()]);
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = fixture.tagpolicy_with(&args, Some((USER, PASSWORD)), cache);
    match out.status.code() {
        Some(0) => None,
        Some(2) => Some(stderr(&out)),
        _ => panic!("{}", text(&out)),
    }
}

/// A cosign signature manifest for `digest` made by hand: the simple-signing payload as
/// cosign writes it, signed by `openssl dgst -sha256 -sign` with `key`, pushed under
/// `sha256-<hex>.sig`.
fn push_openssl_signature(fixture: &Fixture, repository: &str, digest: &str, key: &str) {
    let name = format!("{}/policies/{repository}", fixture.host());
    let payload = format!(
        r#"{{"critical":{{"identity":{{"docker-reference":"{name}"}},"image":{{"docker-manifest-digest":"{digest}"}},"type":"cosign container image signature"}},"optional":null}}"#
    );
    let payload_file = fixture.path("payload.json");
    std::fs::write(&payload_file, &payload).unwrap();
    let signature_file = fixture.path("payload.sig");
    openssl(&[
        "dgst",
        "-sha256",
        "-sign",
        p(&fixture.path(key)),
        "-out",
        p(&signature_file),
        p(&payload_file),
    ]);
    let signature =
        base64::engine::general_purpose::STANDARD.encode(std::fs::read(&signature_file).unwrap());
    let client = fixture.client();
    let repository = format!("policies/{repository}");
    let payload_digest = client.upload_blob(&repository, payload.as_bytes());
    let config = format!(
        r#"{{"architecture":"","created":"0001-01-01T00:00:00Z","history":[{{"created":"0001-01-01T00:00:00Z"}}],"os":"","rootfs":{{"type":"layers","diff_ids":["{payload_digest}"]}},"config":{{}}}}"#
    );
    let config_digest = client.upload_blob(&repository, config.as_bytes());
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config.len()},
        "layers": [{
            "mediaType": "application/vnd.dev.cosign.simplesigning.v1+json",
            "digest": payload_digest,
            "size": payload.len(),
            "annotations": {"dev.cosignproject.cosign/signature": signature},
        }],
    });
    let tag = format!("sha256-{}.sig", digest.strip_prefix("sha256:").unwrap());
    let reply = client.put_manifest(&repository, &tag, manifest.to_string().as_bytes());
    assert_eq!(reply.status, 201, "{}", reply.body);
}

#[test]
fn unsigned_foreign_tampered_and_foreign_layout_artifacts_are_refused() {
    let fixture = Fixture::new();
    let reference = format!("{}:1.0.0", fixture.repository("floor"));
    let digest = fixture.push("min-tags", &reference, "1.0.0");

    let unsigned =
        pull_error(&fixture, &reference, &["ci.pub"], "c1").expect("unsigned is refused");
    assert!(unsigned.contains("is not signed") && unsigned.contains(&digest), "{unsigned}");

    fixture.sign("other.key", &reference);
    let foreign =
        pull_error(&fixture, &reference, &["ci.pub"], "c2").expect("foreign key is refused");
    assert!(foreign.contains("signed by 0 of the required 1"), "{foreign}");
    // A threshold of two keys: one signature is not enough, two are.
    let one_of_two = pull_error(&fixture, &reference, &["ci.pub", "other.pub"], "c3")
        .expect("one of two is refused");
    assert!(one_of_two.contains("signed by 1 of the required 2"), "{one_of_two}");
    fixture.sign("ci.key", &reference);
    assert_eq!(pull_error(&fixture, &reference, &["ci.pub", "other.pub"], "c4"), None);

    // A gate configured with the wrong key does not start, naming the policy.
    let upstream = Registry::start();
    let settings = fixture.gate_settings(&["other.pub"], "1m");
    let unsigned_ref = format!("{}:1.0.0", fixture.repository("unsigned"));
    fixture.push("min-tags", &unsigned_ref, "1.0.0");
    let check = gate_check(
        &fixture,
        &upstream,
        &format!("{settings}{}", rules(&format!("oci://{unsigned_ref}"))),
    );
    assert_eq!(check.status.code(), Some(2), "{}", text(&check));
    assert!(
        stderr(&check).contains("rules[0].policies[0]") && stderr(&check).contains("is not signed"),
        "{}",
        text(&check)
    );

    // A tampered component blob in the registry's storage (same size, one byte changed).
    let tampered_ref = format!("{}:1.0.0", fixture.repository("tampered"));
    fixture.push("immutable-tags", &tampered_ref, "1.0.0");
    fixture.sign("ci.key", &tampered_ref);
    let layer = format!("sha256:{}", embedded_sha256("immutable-tags"));
    let file = fixture.registry.blob_file(&layer);
    let mut bytes = std::fs::read(&file).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    std::fs::write(&file, &bytes).unwrap();
    let tampered =
        pull_error(&fixture, &tampered_ref, &["ci.pub"], "c5").expect("tampered is refused");
    assert!(tampered.contains("does not match digest") && tampered.contains(&layer), "{tampered}");

    // Kubewarden's older layout (config `application/vnd.wasm.config.v1+json`, layer
    // `application/vnd.wasm.content.layer.v1+wasm`), signed: not a policy component artifact.
    let client = fixture.client();
    let component = std::fs::read(fixture.path("c4.wasm")).unwrap();
    let layer_digest = client.upload_blob("policies/old-layout", &component);
    let config_digest = client.upload_blob("policies/old-layout", b"{}");
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": MANIFEST,
        "config": {"mediaType": "application/vnd.wasm.config.v1+json", "digest": config_digest, "size": 2},
        "layers": [{"mediaType": "application/vnd.wasm.content.layer.v1+wasm", "digest": layer_digest, "size": component.len()}],
    })
    .to_string();
    assert_eq!(
        client.put_manifest("policies/old-layout", "1.0.0", manifest.as_bytes()).status,
        201
    );
    let manifest_digest = format!("sha256:{}", sha256_hex(manifest.as_bytes()));
    push_openssl_signature(&fixture, "old-layout", &manifest_digest, "ci.key");
    let old_layout = format!("{}:1.0.0", fixture.repository("old-layout"));
    let wrong =
        pull_error(&fixture, &old_layout, &["ci.pub"], "c6").expect("wrong layout is refused");
    assert!(wrong.contains("not a Wasm component artifact"), "{wrong}");
    // `tagpolicy sign` refuses to sign it at all.
    let out = fixture.tagpolicy(&["sign", "--key", p(&fixture.path("ci.key")), &old_layout]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(stderr(&out).contains("not a policy component artifact"), "{}", text(&out));
}

#[test]
fn signatures_are_compatible_with_cosigns_key_pair_format() {
    let fixture = Fixture::new();
    // cosign's format, made by hand with openssl: verified here.
    let reference = format!("{}:1.0.0", fixture.repository("by-openssl"));
    let digest = fixture.push("min-tags", &reference, "1.0.0");
    push_openssl_signature(&fixture, "by-openssl", &digest, "ci.key");
    assert_eq!(pull_error(&fixture, &reference, &["ci.pub"], "c1"), None);
    // The same payload signed by another key does not count.
    assert!(pull_error(&fixture, &reference, &["other.pub"], "c2").is_some());

    // Ours, read back from the registry and verified with openssl.
    let reference = format!("{}:1.0.0", fixture.repository("by-tagpolicy"));
    let digest = fixture.push("min-tags", &reference, "1.0.0");
    fixture.sign("ci.key", &reference);
    let client = fixture.client();
    let tag = format!("sha256-{}.sig", digest.strip_prefix("sha256:").unwrap());
    let reply = client.get_manifest("policies/by-tagpolicy", &tag);
    assert_eq!(reply.status, 200, "{}", reply.body);
    let manifest: serde_json::Value = serde_json::from_str(&reply.body).unwrap();
    let layer = &manifest["layers"][0];
    assert_eq!(layer["mediaType"], "application/vnd.dev.cosign.simplesigning.v1+json");
    let payload = client
        .get(&format!("/v2/policies/by-tagpolicy/blobs/{}", layer["digest"].as_str().unwrap()));
    let parsed: serde_json::Value = serde_json::from_str(&payload.body).unwrap();
    assert_eq!(
        parsed["critical"]["identity"]["docker-reference"],
        fixture.repository("by-tagpolicy")
    );
    assert_eq!(parsed["critical"]["image"]["docker-manifest-digest"], digest);
    assert_eq!(parsed["critical"]["type"], "cosign container image signature");
    let signature = base64::engine::general_purpose::STANDARD
        .decode(layer["annotations"]["dev.cosignproject.cosign/signature"].as_str().unwrap())
        .unwrap();
    std::fs::write(fixture.path("ours.json"), payload.body.as_bytes()).unwrap();
    std::fs::write(fixture.path("ours.sig"), signature).unwrap();
    let verified = run(Command::new("openssl").args([
        "dgst",
        "-sha256",
        "-verify",
        p(&fixture.path("ci.pub")),
        "-signature",
        p(&fixture.path("ours.sig")),
        p(&fixture.path("ours.json")),
    ]));
    assert!(verified.status.success(), "openssl verifies ours: {}", text(&verified));
    assert!(String::from_utf8_lossy(&verified.stdout).contains("Verified OK"));
}

/// `tests/support/hostile_registry.py` serving `mode` over TLS on `port`, stopped on drop.
struct HostileRegistry(std::process::Child);

impl HostileRegistry {
    fn start(fixture: &Fixture, port: u16, mode: &str) -> HostileRegistry {
        use std::io::BufRead;
        let script = common::workspace().join("tests/support/hostile_registry.py");
        let mut child = Command::new("python3")
            .arg(script)
            .arg(port.to_string())
            .arg(fixture.path("registry.pem"))
            .arg(fixture.path("registry.key"))
            .arg(mode)
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        assert_eq!(line.trim(), "ready", "the hostile registry ({mode}) did not start");
        HostileRegistry(child)
    }
}

impl Drop for HostileRegistry {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Refreshes of the followed tag so far with `result` (the series exist from the start, at 0).
fn refreshes(gate: &Gate, result: &str) -> u64 {
    let series = format!("tagpolicy_gate_policy_refreshes_total{{result=\"{result}\"}} ");
    gate.metrics().lines().filter_map(|line| line.strip_prefix(&series)?.parse::<u64>().ok()).sum()
}

/// Refreshes of the followed tag that failed so far.
fn failed_refreshes(gate: &Gate) -> u64 {
    refreshes(gate, "unreachable") + refreshes(gate, "refused")
}

#[test]
fn a_hostile_policy_registry_cannot_grow_the_gate_or_stop_its_refreshes() {
    // Before the bounds, one refresh against an endless manifest took a gate from 24 to
    // 829 MiB, and an answer trickled a byte at a time stopped its refreshes for good.
    let mut fixture = Fixture::new();
    let upstream = Registry::start();
    let stable = format!("{}:stable", fixture.repository("rule"));
    fixture.push("immutable-tags", &stable, "1.0.0");
    fixture.sign("ci.key", &stable);
    let settings = fixture.gate_settings(&["ci.pub"], "1s");
    let followed = format!("oci://{stable}");
    let gate = Gate::start(&upstream.url(), &format!("{settings}{}", rules(&followed)));
    let probe = Probe::new(&gate, &upstream);
    assert_eq!(probe.move_status(), 409, "immutable-tags, verified");
    let port = fixture.registry.port;
    fixture.registry.stop();
    let before_kib = gate.peak_rss_kib();
    // (mode, failed refreshes to wait for: a trickled answer takes the whole 30 s deadline)
    for (mode, refreshes) in [("endless", 3), ("huge", 3), ("token", 3), ("trickle", 2)] {
        let _hostile = HostileRegistry::start(&fixture, port, mode);
        let failed = failed_refreshes(&gate);
        wait_for(mode, Duration::from_secs(90), || failed_refreshes(&gate) >= failed + refreshes);
        assert_eq!(probe.move_status(), 409, "{mode}: the verified version still decides");
        let peak_kib = gate.peak_rss_kib();
        assert!(
            peak_kib < before_kib + (64 << 10),
            "{mode}: peak RSS {peak_kib} KiB, {before_kib} KiB before the registry turned"
        );
        eprintln!("{mode}: peak RSS {peak_kib} KiB ({before_kib} KiB before)");
    }
    assert!(gate.log().contains("keeping the last verified version"), "{}", gate.log());
}
