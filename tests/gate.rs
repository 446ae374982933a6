//! End to end: the real CNCF distribution registry, `tagpolicy serve` in front of it, and
//! the real clients skopeo and buildah pushing images written here as OCI layouts.
//! Needs the Debian packages docker-registry, skopeo and buildah (`.ci/run` installs them).

mod common;
#[path = "support/registry.rs"]
mod registry;
#[path = "support/stand_in.rs"]
mod stand_in;

use registry::{Client, Gate, Layout, LowercaseDir, Registry, eventually, skopeo_copy, text};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// Release tags immutable; `latest`, series (`1.2`) and `dev-*` tags mutable.
const RULES: &str = r#"rules:
  - repositories: ["team/**"]
    policies:
      - policy: immutable-tags
        settings: {mutable: ["latest", "\\d+\\.\\d+", "dev-.*"]}
"#;

fn setup() -> (Registry, Gate, Client, Client) {
    let registry = Registry::start();
    let gate = Gate::start(&registry.url(), RULES);
    let through_gate = Client::new(&gate.url());
    let direct = Client::new(&registry.url());
    (registry, gate, through_gate, direct)
}

#[test]
fn skopeo_pushes_follow_the_rules() {
    let (_registry, gate, _, direct) = setup();
    let images = tempfile::tempdir().unwrap();
    let first = Layout::image(images.path(), 1, 4096);
    let second = Layout::image(images.path(), 2, 4096);

    // New tags are allowed.
    for tag in ["1.2.3", "latest"] {
        let out = skopeo_copy(&first, &gate.address, &format!("team/app:{tag}"), false);
        assert!(out.status.success(), "{}", text(&out));
    }
    assert_eq!(direct.digest_of("team/app", "1.2.3"), Some(first.digest.clone()));

    // `latest` may move.
    let out = skopeo_copy(&second, &gate.address, "team/app:latest", false);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(direct.digest_of("team/app", "latest"), Some(second.digest.clone()));

    // A release tag may not: skopeo fails and prints the policy's reason.
    let out = skopeo_copy(&second, &gate.address, "team/app:1.2.3", false);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("denied: immutable-tags: tag `1.2.3` is immutable"),
        "skopeo should show the reason: {stderr}"
    );
    assert_eq!(direct.digest_of("team/app", "1.2.3"), Some(first.digest.clone()));

    // Re-pushing the identical image under the release tag is fine.
    let out = skopeo_copy(&first, &gate.address, "team/app:1.2.3", false);
    assert!(out.status.success(), "{}", text(&out));

    // The decision log and the metrics saw all of it.
    let decisions = gate.decisions();
    let outcomes: Vec<&str> = decisions.iter().map(|d| d["decision"].as_str().unwrap()).collect();
    assert_eq!(outcomes, ["allow", "allow", "allow", "deny", "allow"]);
    assert_eq!(decisions[3]["tags"][0], "1.2.3");
    assert_eq!(decisions[3]["digest"], second.digest.as_str());
    assert_eq!(decisions[3]["policies"][0], "immutable-tags");
    assert!(decisions[3]["reasons"][0]["reason"].as_str().unwrap().contains("immutable"));
    let metrics = gate.metrics();
    assert!(
        metrics.contains(
            r#"tagpolicy_gate_decisions_total{policy="immutable-tags",outcome="deny"} 1"#
        ),
        "{metrics}"
    );
    assert!(metrics.contains(r#"tagpolicy_gate_requests_total{route="identical"} 1"#), "{metrics}");
}

#[test]
fn buildah_shows_the_denial() {
    let (_registry, gate, _, direct) = setup();
    // buildah names a pulled image after its path, which must be lowercase (tempfile's
    // random names are not).
    let images = LowercaseDir::new();
    let buildah = registry::Buildah::new();
    let buildah = |args: &[&str]| buildah.run(args);
    for (seed, tag) in [(11, "2.0.0"), (12, "2.0.0")] {
        let layout = Layout::image(images.path(), seed, 2048);
        let name = format!("localhost/seed-{seed}:latest");
        let out = buildah(&["pull", "--quiet", &layout.oci_ref()]);
        assert!(out.status.success(), "{}", text(&out));
        let image_id = String::from_utf8_lossy(&out.stdout).trim().to_string();
        let out = buildah(&["tag", &image_id, &name]);
        assert!(out.status.success(), "{}", text(&out));
        let destination = format!("docker://{}/team/built:{tag}", gate.address);
        let out = buildah(&["push", "--tls-verify=false", "--retry", "0", &name, &destination]);
        if seed == 11 {
            assert!(out.status.success(), "{}", text(&out));
        } else {
            assert_eq!(out.status.code(), Some(125), "{}", text(&out));
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(
                stderr.contains("denied: immutable-tags: tag `2.0.0` is immutable"),
                "buildah should show the reason: {stderr}"
            );
        }
    }
    assert_eq!(direct.tags("team/built"), ["2.0.0"]);
}

#[test]
fn a_multi_arch_index_is_pushed_with_skopeo_copy_all() {
    let (_registry, gate, _, direct) = setup();
    let images = tempfile::tempdir().unwrap();
    let index = Layout::multi_arch(images.path(), 20);
    let out = skopeo_copy(&index, &gate.address, "team/multi:3.0.0", true);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(direct.digest_of("team/multi", "3.0.0"), Some(index.digest.clone()));
    // The children went by digest: no decision for them, one for the index's tag.
    let decisions = gate.decisions();
    assert_eq!(decisions.len(), 1, "{decisions:?}");
    assert_eq!(decisions[0]["digest"], index.digest.as_str());
    // Pushing another index under the release tag is refused.
    let other = Layout::multi_arch(images.path(), 30);
    let out = skopeo_copy(&other, &gate.address, "team/multi:3.0.0", true);
    assert!(!out.status.success(), "{}", text(&out));
    assert_eq!(direct.digest_of("team/multi", "3.0.0"), Some(index.digest));
}

#[test]
fn deletions_by_tag_and_by_digest_are_decided() {
    let (_registry, gate, through_gate, direct) = setup();
    let (release, release_digest) = direct.image_manifest("team/del", "release");
    let (dev, dev_digest) = direct.image_manifest("team/del", "dev");
    assert_eq!(direct.put_manifest("team/del", "4.0.0", &release).status, 201);
    assert_eq!(direct.put_manifest("team/del", "dev-1", &dev).status, 201);

    // A release tag cannot be deleted, by tag or through its digest.
    let by_tag = through_gate.delete_manifest("team/del", "4.0.0");
    assert_eq!(by_tag.status, 409, "{}", by_tag.body);
    assert!(by_tag.json()["errors"][0]["message"].as_str().unwrap().contains("`4.0.0`"));
    let by_digest = through_gate.delete_manifest("team/del", &release_digest);
    assert_eq!(by_digest.status, 409, "{}", by_digest.body);
    assert_eq!(by_digest.json()["errors"][0]["detail"]["tags"][0], "4.0.0");
    assert_eq!(direct.digest_of("team/del", "4.0.0"), Some(release_digest));

    // A mutable tag may go. Distribution 2.8 cannot delete a tag alone (it answers 400
    // DIGEST_INVALID), and the gate passes its answer on; by digest it works.
    let by_tag = through_gate.delete_manifest("team/del", "dev-1");
    assert_eq!(by_tag.status, 400, "{}", by_tag.body);
    assert_eq!(by_tag.json()["errors"][0]["code"], "DIGEST_INVALID");
    let out = std::process::Command::new("skopeo")
        .args(["delete", "--tls-verify=false"])
        .arg(format!("docker://{}/team/del:dev-1", gate.address))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(direct.digest_of("team/del", &dev_digest), None);
    let operations: Vec<String> =
        gate.decisions().iter().map(|d| format!("{} {}", d["operation"], d["decision"])).collect();
    assert_eq!(
        operations,
        [
            r#""delete_tags" "deny""#,
            r#""delete_manifest" "deny""#,
            r#""delete_tags" "allow""#,
            r#""delete_manifest" "allow""#
        ]
    );
}

#[test]
fn a_multi_tag_push_is_applied_whole_or_not_at_all() {
    let (_registry, gate, through_gate, direct) = setup();
    let (first, first_digest) = direct.image_manifest("team/tags", "first");
    let pushed = through_gate.put_manifest(
        "team/tags",
        &format!("{first_digest}?tag=5.0.0&tag=5.0&tag=latest"),
        &first,
    );
    assert_eq!(pushed.status, 201, "{}", pushed.body);
    assert_eq!(pushed.header_all("oci-tag"), ["5.0.0", "5.0", "latest"]);
    // The rest of the answer is the registry's to the push by digest: a `Location` on the
    // gate (distribution builds it from the client's `Host`), its digest and API version.
    let location = format!("{}/v2/team/tags/manifests/{first_digest}", gate.url());
    assert_eq!(pushed.header_all("location"), [location.as_str()]);
    assert_eq!(pushed.header_all("docker-content-digest"), [first_digest.as_str()]);
    assert_eq!(pushed.header_all("docker-distribution-api-version"), ["registry/2.0"]);
    assert_eq!(direct.tags("team/tags"), ["5.0", "5.0.0", "latest"]);
    for tag in ["5.0.0", "5.0", "latest"] {
        assert_eq!(direct.digest_of("team/tags", tag).as_deref(), Some(first_digest.as_str()));
    }

    // One refused tag refuses the push: `5.0` and `latest` could move, `5.0.0` cannot.
    let (second, second_digest) = direct.image_manifest("team/tags", "second");
    let refused = through_gate.put_manifest(
        "team/tags",
        &format!("{second_digest}?tag=5.0&tag=latest&tag=5.0.0&tag=5.0.1"),
        &second,
    );
    assert_eq!(refused.status, 409, "{}", refused.body);
    assert_eq!(refused.header_all("docker-distribution-api-version"), ["registry/2.0"]);
    let error = &refused.json()["errors"][0];
    assert_eq!(error["code"], "DENIED");
    assert!(error["message"].as_str().unwrap().contains("`5.0.0` is immutable"), "{error}");
    assert_eq!(error["detail"]["tags"], serde_json::json!(["5.0", "latest", "5.0.0", "5.0.1"]));
    // Nothing changed upstream: same tags, same digests, the new manifest not stored.
    assert_eq!(direct.tags("team/tags"), ["5.0", "5.0.0", "latest"]);
    for tag in ["5.0.0", "5.0", "latest"] {
        assert_eq!(direct.digest_of("team/tags", tag).as_deref(), Some(first_digest.as_str()));
    }
    assert_eq!(direct.digest_of("team/tags", &second_digest), None);

    // A manifest whose bytes do not match the digest in the URL is refused before anything.
    let mismatched =
        through_gate.put_manifest("team/tags", &format!("{first_digest}?tag=x"), &second);
    assert_eq!(mismatched.status, 400);
    assert_eq!(mismatched.json()["errors"][0]["code"], "DIGEST_INVALID");
}

#[test]
fn a_large_blob_streams_through_without_the_gate_holding_it() {
    let (_registry, gate, _, direct) = setup();
    let images = tempfile::tempdir().unwrap();
    let small = Layout::image(images.path(), 40, 1024);
    let out = skopeo_copy(&small, &gate.address, "team/big:warmup", false);
    assert!(out.status.success(), "{}", text(&out));
    let before = gate.peak_rss_kib();

    let big = Layout::image(images.path(), 41, 100 << 20);
    let out = skopeo_copy(&big, &gate.address, "team/big:1.0.0", false);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(direct.digest_of("team/big", "1.0.0"), Some(big.digest));
    let after = gate.peak_rss_kib();
    eprintln!("gate peak RSS: {before} KiB before, {after} KiB after a 100 MiB layer");
    // 100 MiB went through; the gate's peak memory may grow by buffers, not by the layer.
    assert!(
        after < before + 24 * 1024,
        "peak RSS grew from {before} KiB to {after} KiB for a 100 MiB layer"
    );
}

#[test]
fn an_unreachable_upstream_changes_nothing() {
    let (mut registry, gate, through_gate, direct) = setup();
    let (manifest, digest) = direct.image_manifest("team/down", "one");
    assert_eq!(through_gate.put_manifest("team/down", "6.0.0", &manifest).status, 201);
    let ready = |url: &str| ureq::get(&format!("{url}/readyz")).call().is_ok();
    assert!(ready(&gate.url()));

    registry.stop();
    let refused = through_gate.put_manifest("team/down", "6.0.0", b"{}");
    assert_eq!(refused.status, 503, "{}", refused.body);
    let error = &refused.json()["errors"][0];
    assert_eq!(error["code"], "UNAVAILABLE");
    assert!(error["message"].as_str().unwrap().contains("nothing was changed"), "{error}");
    let pull = ureq::get(&format!("{}/v2/team/down/tags/list", gate.url())).call();
    assert!(matches!(pull, Err(ureq::Error::Status(503, _))), "{pull:?}");
    assert!(!ready(&gate.url()));
    // The gate itself is healthy; only its upstream is not.
    assert!(ureq::get(&format!("{}/healthz", gate.url())).call().is_ok());
    let images = tempfile::tempdir().unwrap();
    let out = skopeo_copy(
        &Layout::image(images.path(), 50, 512),
        &gate.address,
        "team/down:7.0.0",
        false,
    );
    assert!(!out.status.success(), "{}", text(&out));

    registry.restart();
    assert!(ready(&gate.url()));
    assert_eq!(direct.digest_of("team/down", "6.0.0"), Some(digest));
    assert_eq!(direct.tags("team/down"), ["6.0.0"]);
}

#[test]
fn a_hot_reload_while_pushes_run() {
    let (_registry, gate, through_gate, direct) = setup();
    let (manifest, _) = direct.image_manifest("team/reload", "base");
    let (other, _) = direct.image_manifest("team/reload", "other");
    assert_eq!(through_gate.put_manifest("team/reload", "latest", &manifest).status, 201);

    // Pushes of new tags go on all the time; every one must be answered 201.
    let stop = Arc::new(AtomicBool::new(false));
    let pushed = Arc::new(AtomicUsize::new(0));
    let pusher = {
        let (stop, pushed, url, manifest) =
            (stop.clone(), pushed.clone(), gate.url(), manifest.clone());
        std::thread::spawn(move || {
            let client = Client::new(&url);
            let mut failures = Vec::new();
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                let reply = client.put_manifest("team/reload", &format!("dev-{n}"), &manifest);
                if reply.status != 201 {
                    failures.push(format!("dev-{n}: {} {}", reply.status, reply.body));
                }
                pushed.fetch_add(1, Ordering::Relaxed);
            }
            failures
        })
    };

    // Reload by SIGHUP, by editing the file, and with an invalid file; then make `latest`
    // immutable too.
    let path = gate.config_path();
    let upstream = _registry.url();
    gate.hangup();
    std::thread::sleep(std::time::Duration::from_millis(300));
    std::fs::write(&path, Gate::config_text(&upstream, &format!("{RULES}\n# edited\n"))).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1500));
    std::fs::write(&path, Gate::config_text(&upstream, "rules: [oops")).unwrap();
    // Reloads happen in the background: wait for the refusal to be counted (a loaded CI
    // machine may take longer than the 1 s poll).
    let error_counted = r#"tagpolicy_gate_reloads_total{result="error"} 1"#;
    eventually("the invalid file is refused", || gate.metrics().contains(error_counted));
    // The invalid file was refused: `latest` still moves.
    assert_eq!(through_gate.put_manifest("team/reload", "latest", &other).status, 201);
    let stricter = RULES.replace(r#"["latest", "\\d+\\.\\d+", "dev-.*"]"#, r#"["dev-.*"]"#);
    std::fs::write(&path, Gate::config_text(&upstream, &stricter)).unwrap();
    gate.hangup();
    // Until the stricter rules are in, `latest` moves back and forth; then it is refused.
    let mut images = [&manifest, &other].into_iter().cycle();
    eventually("the stricter rules apply", || {
        through_gate.put_manifest("team/reload", "latest", images.next().unwrap()).status == 409
    });

    stop.store(true, Ordering::Relaxed);
    let failures = pusher.join().unwrap();
    assert!(failures.is_empty(), "pushes failed during reloads: {failures:?}");
    assert!(pushed.load(Ordering::Relaxed) > 10, "the pusher barely ran");

    let metrics = gate.metrics();
    assert!(metrics.contains(error_counted), "{metrics}");
    assert!(metrics.contains(r#"tagpolicy_gate_reloads_total{result="ok"}"#), "{metrics}");
    assert!(gate.log().contains("configuration not reloaded"), "{}", gate.log());
}

#[test]
fn racing_pushes_to_one_new_immutable_tag_have_one_winner() {
    const ROUNDS: usize = 25;
    const RACERS: usize = 20;
    let (_registry, gate, _, direct) = setup();
    let manifests: Vec<(Vec<u8>, String)> =
        (0..RACERS).map(|i| direct.image_manifest("team/race", &format!("racer-{i}"))).collect();
    let manifests = Arc::new(manifests);
    for round in 0..ROUNDS {
        let tag = format!("9.{round}.0");
        let barrier = Arc::new(std::sync::Barrier::new(RACERS));
        let racers: Vec<_> = (0..RACERS)
            .map(|i| {
                let (barrier, manifests, url, tag) =
                    (barrier.clone(), manifests.clone(), gate.url(), tag.clone());
                std::thread::spawn(move || {
                    let client = Client::new(&url);
                    barrier.wait();
                    client.put_manifest("team/race", &tag, &manifests[i].0).status
                })
            })
            .collect();
        let statuses: Vec<u16> = racers.into_iter().map(|r| r.join().unwrap()).collect();
        let winners: Vec<usize> = (0..RACERS).filter(|&i| statuses[i] == 201).collect();
        assert_eq!(winners.len(), 1, "round {round}: statuses {statuses:?}");
        assert_eq!(statuses.iter().filter(|&&s| s == 409).count(), RACERS - 1, "{statuses:?}");
        assert_eq!(direct.digest_of("team/race", &tag), Some(manifests[winners[0]].1.clone()));
    }
}

#[test]
fn policies_read_the_repository_through_the_gate_and_audit_mode_warns() {
    let registry = Registry::start();
    // min-tags asks the repository (through the gate, from the upstream) whether the image
    // is new; semver-series in audit mode only warns.
    let gate = Gate::start(
        &registry.url(),
        r#"rules:
  - repositories: ["team/**"]
    policies:
      - policy: min-tags
        settings: {min_tags: 2}
      - policy: semver-series
        mode: audit
"#,
    );
    let (through_gate, direct) = (Client::new(&gate.url()), Client::new(&registry.url()));
    let (manifest, digest) = direct.image_manifest("team/min", "one");
    let alone = through_gate.put_manifest("team/min", &format!("{digest}?tag=1.0.0"), &manifest);
    assert_eq!(alone.status, 409, "{}", alone.body);
    assert!(alone.body.contains("at least 2 tags"), "{}", alone.body);
    let both =
        through_gate.put_manifest("team/min", &format!("{digest}?tag=1.0.0&tag=1.0"), &manifest);
    assert_eq!(both.status, 201, "{}", both.body);
    // The image is tagged now (read from the upstream): one more tag alone is fine.
    let more = through_gate.put_manifest("team/min", "stable", &manifest);
    assert_eq!(more.status, 201, "{}", more.body);
    // An older release under the series tag: semver-series would deny, audit only warns.
    let (older, older_digest) = direct.image_manifest("team/min", "older");
    let warned =
        through_gate.put_manifest("team/min", &format!("{older_digest}?tag=0.9.0&tag=1.0"), &older);
    assert_eq!(warned.status, 201, "{}", warned.body);
    let warnings = warned.header_all("warning");
    assert!(
        warnings.iter().any(|w| w.starts_with("299 - \"semver-series: audit: would deny:")),
        "{warnings:?}"
    );
    assert_eq!(direct.digest_of("team/min", "1.0"), Some(older_digest));
}

/// A stand-in upstream that applies no `?tag=` itself and fails the write of tag `bad`, to see
/// the gate undo a half-applied multi-tag push.
mod failing_upstream {
    use super::stand_in::{self, Answer, Seen};
    use std::sync::{Arc, Mutex};

    pub const OLD: &[u8] = br#"{"schemaVersion":2,"old":true}"#;

    pub fn old_digest() -> String {
        format!("sha256:{}", super::registry::sha256_hex(OLD))
    }

    /// The upstream's URL, and its writes as `METHOD reference`, `(old)` when the body is
    /// the old manifest.
    pub fn start() -> (String, impl Fn() -> Vec<String>) {
        let (url, seen) = stand_in::start(answer);
        let writes = move || writes(&seen);
        (url, writes)
    }

    fn writes(seen: &Arc<Mutex<Vec<Seen>>>) -> Vec<String> {
        seen.lock()
            .unwrap()
            .iter()
            .filter(|s| s.method != "HEAD" && s.method != "GET")
            .map(|s| {
                let reference = s.path.trim_start_matches("/v2/team/x/manifests/");
                let old = if s.body == OLD { " (old)" } else { "" };
                format!("{} {reference}{old}", s.method)
            })
            .collect()
    }

    /// The same upstream, but any request without exactly `authorization` gets a 401 bearer
    /// challenge, as a token-auth registry answers; also every request it saw.
    pub fn start_requiring(
        authorization: &'static str,
    ) -> (String, impl Fn() -> Vec<String>, Arc<Mutex<Vec<Seen>>>) {
        let (url, seen) = stand_in::start(move |request| {
            let sent = request.headers.get("authorization").and_then(|v| v.to_str().ok());
            if sent != Some(authorization) {
                return Answer::Reply {
                    status: 401,
                    headers: vec![(
                        "www-authenticate",
                        r#"Bearer realm="http://127.0.0.1:1/token",service="stand-in""#.into(),
                    )],
                    body: br#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}"#
                        .to_vec(),
                };
            }
            answer(request)
        });
        let log = seen.clone();
        (url, move || writes(&log), seen)
    }

    fn answer(request: &Seen) -> Answer {
        let reference = request.path.trim_start_matches("/v2/team/x/manifests/");
        let found = |digest: String, body: Vec<u8>| Answer::Reply {
            status: 200,
            headers: vec![
                ("content-type", "application/vnd.oci.image.manifest.v1+json".into()),
                ("docker-content-digest", digest),
            ],
            body,
        };
        match (request.method.as_str(), reference) {
            ("HEAD", "stable") => found(old_digest(), Vec::new()),
            ("GET", reference) if reference == old_digest() => found(old_digest(), OLD.to_vec()),
            ("HEAD" | "GET", _) => Answer::status(404),
            ("PUT", "bad") => Answer::Reply {
                status: 500,
                headers: Vec::new(),
                body: br#"{"errors":[{"code":"UNKNOWN","message":"disk full"}]}"#.to_vec(),
            },
            ("PUT", _) => Answer::status(201),
            ("DELETE", _) => Answer::status(202),
            _ => Answer::status(405),
        }
    }
}

#[test]
fn a_failed_tag_write_undoes_the_tags_already_written() {
    let (upstream, writes) = failing_upstream::start();
    let gate = Gate::start(&upstream, "rules: []\n");
    let manifest = br#"{"schemaVersion":2,"new":true}"#;
    let digest = format!("sha256:{}", registry::sha256_hex(manifest));
    let reply = Client::new(&gate.url()).put_manifest(
        "team/x",
        &format!("{digest}?tag=stable&tag=fresh&tag=bad"),
        manifest,
    );
    assert_eq!(reply.status, 502, "{}", reply.body);
    let message = reply.json()["errors"][0]["message"].as_str().unwrap().to_string();
    assert!(message.contains("tag `bad` could not be written upstream (HTTP 500"), "{message}");
    assert!(message.contains("removed the new tag `fresh`"), "{message}");
    assert!(
        message.contains(&format!("restored `stable` to `{}`", failing_upstream::old_digest())),
        "{message}"
    );
    assert_eq!(
        writes(),
        [
            format!("PUT {digest}"),
            "PUT stable".to_string(),
            "PUT fresh".to_string(),
            "PUT bad".to_string(),
            "DELETE fresh".to_string(),
            "PUT stable (old)".to_string(),
        ]
    );
}

/// The same half-applied push against an upstream that requires credentials on every request:
/// the gate's own requests (the lookups, the tag writes and the undo) must all carry the
/// client's `Authorization`, or a token-auth registry would refuse the undo and leave the push
/// half applied.
#[test]
fn the_undo_of_a_failed_tag_write_uses_the_clients_credentials() {
    const AUTHORIZATION: &str = "Bearer token-of-the-client";
    let (upstream, writes, seen) = failing_upstream::start_requiring(AUTHORIZATION);
    let gate = Gate::start(&upstream, "rules: []\n");
    let manifest = br#"{"schemaVersion":2,"new":true}"#;
    let digest = format!("sha256:{}", registry::sha256_hex(manifest));
    let target = format!("{digest}?tag=stable&tag=fresh&tag=bad");

    // Without credentials the upstream's challenge reaches the client and nothing is written:
    // the stand-in does refuse what lacks them. (Another repository: the gate's lookups run
    // side by side, and some of this push's may reach the stand-in after the answer.)
    let anonymous = Client::new(&gate.url()).put_manifest("team/anonymous", &target, manifest);
    assert_eq!(anonymous.status, 401, "{}", anonymous.body);
    assert!(writes().is_empty(), "{:?}", writes());

    let client = Client::with(&gate.url(), None, Some(AUTHORIZATION.to_string()));
    let reply = client.put_manifest("team/x", &target, manifest);
    assert_eq!(reply.status, 502, "{}", reply.body);
    let message = reply.json()["errors"][0]["message"].as_str().unwrap().to_string();
    assert!(message.contains("tag `bad` could not be written upstream (HTTP 500"), "{message}");
    assert!(message.contains("removed the new tag `fresh`"), "{message}");
    let old = failing_upstream::old_digest();
    assert!(message.contains(&format!("restored `stable` to `{old}`")), "{message}");
    assert_eq!(
        writes(),
        [
            format!("PUT {digest}"),
            "PUT stable".to_string(),
            "PUT fresh".to_string(),
            "PUT bad".to_string(),
            "DELETE fresh".to_string(),
            "PUT stable (old)".to_string(),
        ]
    );
    let seen: Vec<stand_in::Seen> = seen
        .lock()
        .unwrap()
        .iter()
        .filter(|s| s.path.starts_with("/v2/team/x/"))
        .cloned()
        .collect();
    let requests: Vec<String> = seen
        .iter()
        .map(|s| format!("{} {}", s.method, s.path.trim_start_matches("/v2/team/x/manifests/")))
        .collect();
    // The lookups are among them: each tag's current digest, and the old manifest to restore.
    for lookup in ["HEAD stable", "HEAD fresh", "HEAD bad", &format!("GET {old}")] {
        assert!(requests.iter().any(|r| r == lookup), "no `{lookup}` in {requests:?}");
    }
    let without: Vec<&String> = seen
        .iter()
        .zip(&requests)
        .filter(|(s, _)| {
            s.headers.get("authorization").and_then(|v| v.to_str().ok()) != Some(AUTHORIZATION)
        })
        .map(|(_, request)| request)
        .collect();
    assert!(without.is_empty(), "without the client's credentials: {without:?} (of {requests:?})");
}

/// A stand-in for a registry with the referrers API (OCI 1.1) that, like distribution, ignores
/// `tag` parameters, and names itself in its `Location`s (as distribution does when
/// configured with `http.host`): what it answers a push must reach the client.
mod subject_upstream {
    use super::stand_in::{self, Answer, Seen};
    use std::collections::HashMap;
    use std::sync::{Arc, Mutex, OnceLock};

    pub const SUBJECT: &str =
        "sha256:9d8b2ec1e5f3b5e5a4d0fbb1c2f8f9b6e9e1c3a7d2b4f6a8c0e2d4f6a8b0c2d4";

    /// An artifact manifest whose `subject` is [`SUBJECT`], with its digest.
    pub fn artifact() -> (Vec<u8>, String) {
        let manifest = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "artifactType": "application/vnd.example.signature",
            "config": {
                "mediaType": "application/vnd.oci.empty.v1+json",
                "digest": "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a",
                "size": 2
            },
            "layers": [],
            "subject": {
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": SUBJECT,
                "size": 1234
            }
        });
        let bytes = serde_json::to_vec(&manifest).unwrap();
        let digest = format!("sha256:{}", super::registry::sha256_hex(&bytes));
        (bytes, digest)
    }

    /// The upstream's URL and every request it saw.
    pub fn start() -> (String, Arc<Mutex<Vec<Seen>>>) {
        let own_url: Arc<OnceLock<String>> = Arc::new(OnceLock::new());
        let stored: Mutex<HashMap<String, Vec<u8>>> = Mutex::new(HashMap::new());
        let url = own_url.clone();
        let (started, seen) = stand_in::start(move |request| {
            answer(request, url.get().map_or("", String::as_str), &stored)
        });
        own_url.set(started.clone()).unwrap();
        (started, seen)
    }

    fn answer(request: &Seen, own_url: &str, stored: &Mutex<HashMap<String, Vec<u8>>>) -> Answer {
        let Some((repository, reference)) =
            request.path.strip_prefix("/v2/").and_then(|p| p.split_once("/manifests/"))
        else {
            return Answer::status(404);
        };
        let mut stored = stored.lock().unwrap();
        match request.method.as_str() {
            "PUT" => {
                let digest = format!("sha256:{}", super::registry::sha256_hex(&request.body));
                stored.insert(reference.to_string(), request.body.clone());
                stored.insert(digest.clone(), request.body.clone());
                let mut headers = vec![
                    ("location", format!("{own_url}/v2/{repository}/manifests/{digest}")),
                    ("docker-content-digest", digest),
                    ("docker-distribution-api-version", "registry/2.0".to_string()),
                    // Hop-by-hop: for the connection to the gate only.
                    ("keep-alive", "timeout=5".to_string()),
                ];
                let manifest: serde_json::Value =
                    serde_json::from_slice(&request.body).unwrap_or_default();
                if let Some(subject) = manifest["subject"]["digest"].as_str() {
                    headers.push(("oci-subject", subject.to_string()));
                }
                Answer::Reply { status: 201, headers, body: Vec::new() }
            }
            "GET" | "HEAD" => match stored.get(reference) {
                Some(body) => Answer::Reply {
                    status: 200,
                    headers: vec![
                        ("content-type", "application/vnd.oci.image.manifest.v1+json".into()),
                        (
                            "docker-content-digest",
                            format!("sha256:{}", super::registry::sha256_hex(body)),
                        ),
                    ],
                    body: if request.method == "GET" { body.clone() } else { Vec::new() },
                },
                None => Answer::status(404),
            },
            _ => Answer::status(405),
        }
    }
}

/// A `?tag=` push of a manifest with a `subject`, whose second tag the gate writes itself: the
/// client gets the registry's answer to the push (its `OCI-Subject`, so that an OCI 1.1
/// client knows the registry keeps referrers and writes no fallback tag; its API version; its
/// digest) with an `OCI-Tag` per tag, and a `Location` on the gate that it can follow.
#[test]
fn a_tag_push_answers_with_the_registrys_own_headers() {
    let (pushed, writes) = push_artifact("team/sig", "1.0?tag=latest");
    assert_eq!(pushed.header_all("oci-tag"), ["1.0", "latest"]);
    // The gate wrote `latest` itself: the registry ignored the parameter.
    let write = |path: &str, query: &str| (path.to_string(), query.to_string());
    assert_eq!(
        writes,
        [
            write("/v2/team/sig/manifests/1.0", "tag=latest"),
            write("/v2/team/sig/manifests/latest", "")
        ]
    );
}

/// A single push's answer is the registry's, headers and all, with a `Location` the client
/// can follow through the gate.
#[test]
fn a_single_push_answers_with_the_registrys_own_headers() {
    let (_, writes) = push_artifact("team/one", "sig");
    assert_eq!(writes.len(), 1, "{writes:?}");
}

/// Push the artifact as `reference` of `repository` through a gate in front of the stand-in,
/// and check that the answer is the registry's: its status, `OCI-Subject`, API version and
/// digest, no hop-by-hop header, and a `Location` on the gate that reads the artifact back.
/// Returns the answer and the PUTs the registry saw (path, query).
fn push_artifact(repository: &str, reference: &str) -> (registry::Reply, Vec<(String, String)>) {
    let (upstream, seen) = subject_upstream::start();
    let gate = Gate::start(&upstream, "rules: []\n");
    let (manifest, digest) = subject_upstream::artifact();
    let client = Client::new(&gate.url());

    let pushed = client.put_manifest(repository, reference, &manifest);
    assert_eq!(pushed.status, 201, "{}", pushed.body);
    assert_eq!(pushed.header_all("oci-subject"), [subject_upstream::SUBJECT]);
    assert_eq!(pushed.header_all("docker-distribution-api-version"), ["registry/2.0"]);
    assert_eq!(pushed.header_all("docker-content-digest"), [digest.as_str()]);
    assert!(pushed.header_all("keep-alive").is_empty(), "{:?}", pushed.headers);
    let path = format!("/v2/{repository}/manifests/{digest}");
    let location = format!("{}{path}", gate.url());
    assert_eq!(pushed.header_all("location"), [location.as_str()]);
    let read = client.get(&path);
    assert_eq!(read.status, 200, "{}", read.body);
    assert_eq!(read.body.as_bytes(), manifest);

    let seen = seen.lock().unwrap();
    let writes = seen.iter().filter(|s| s.method == "PUT");
    (pushed, writes.map(|s| (s.path.clone(), s.query.clone())).collect())
}

/// Writes outside the decided API are refused unless listed in `pass_writes`: a blob deletion
/// (which changes no tag, but an operator may want it only through the registry's own
/// clean-up) is refused with 403 naming it and the blob stays; listed by a reload, it passes to
/// the registry, which deletes the blob, and the gate warns that listed writes bypass the
/// policies.
#[test]
fn a_blob_deletion_passes_only_when_listed() {
    let (registry, gate, _, direct) = setup();
    let digest = direct.upload_blob("team/blobs", b"a blob that only a listed write may delete");
    let blob = format!("/v2/team/blobs/blobs/{digest}");
    let delete = || registry::raw_request(&gate.address, "DELETE", &blob, &[], b"");

    let refused = delete();
    assert_eq!(refused.status, 403, "{refused:?}");
    let error: serde_json::Value = serde_json::from_str(&refused.body).unwrap();
    assert_eq!(error["errors"][0]["code"], "DENIED", "{error}");
    let message = error["errors"][0]["message"].as_str().unwrap();
    assert!(message.contains(&format!("`DELETE {blob}`")), "{message}");
    assert_eq!(direct.get(&blob).status, 200, "the blob must still be there");
    assert!(!gate.log().contains("bypass the policies"), "{}", gate.log());

    let listed = format!("{RULES}pass_writes: [\"/v2/team/*/blobs/sha256:*\"]\n");
    std::fs::write(gate.config_path(), Gate::config_text(&registry.url(), &listed)).unwrap();
    gate.hangup();
    eventually("the configuration is reloaded", || gate.log().contains("configuration reloaded"));
    let warning = "WARNING: writes to `/v2/team/*/blobs/sha256:*` pass through undecided: they \
                   bypass the policies";
    assert!(gate.log().contains(warning), "{}", gate.log());

    let passed = delete();
    assert_eq!(passed.status, 202, "{passed:?}");
    assert_eq!(direct.get(&blob).status, 404, "the blob must be gone");
    // Passed undecided: counted, but no decision.
    assert!(gate.decisions().is_empty(), "{:?}", gate.decisions());
    let metrics = gate.metrics();
    assert!(
        metrics.contains(r#"tagpolicy_gate_requests_total{route="listed_write"} 1"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"tagpolicy_gate_refused_total{reason="unknown_write"} 1"#),
        "{metrics}"
    );
}

/// A registry's own management API listed in `pass_writes` (as for Harbor): a listed write
/// reaches the upstream as the client sent it, an unlisted one is refused and never reaches
/// it; the gate warns at start and again on every reload.
#[test]
fn a_listed_management_api_write_reaches_the_upstream_unchanged() {
    let (upstream, seen) = stand_in::start(|_| stand_in::Answer::Reply {
        status: 201,
        headers: vec![("content-type", "application/json".into())],
        body: br#"{"id":7}"#.to_vec(),
    });
    let gate = Gate::start(&upstream, "pass_writes: [\"/api/v2.0/**\"]\nrules: []\n");
    let warning =
        "WARNING: writes to `/api/v2.0/**` pass through undecided: they bypass the policies";
    eventually("the start-up warning", || gate.log().contains(warning));

    let body = br#"{"project_name":"team","metadata":{"public":"false"}}"#;
    let listed = registry::raw_request(
        &gate.address,
        "POST",
        "/api/v2.0/projects?dry_run=false",
        &[("Content-Type", "application/json"), ("Authorization", "Basic YWRtaW46eA==")],
        body,
    );
    assert_eq!(listed.status, 201, "{listed:?}");
    assert!(listed.body.contains(r#"{"id":7}"#), "{listed:?}");
    let unlisted = registry::raw_request(
        &gate.address,
        "DELETE",
        "/api/v1/repository/team/app/tag/1.0.0",
        &[],
        b"",
    );
    assert_eq!(unlisted.status, 403, "{unlisted:?}");
    assert!(unlisted.body.contains(r#""code":"DENIED""#), "{unlisted:?}");
    assert!(
        unlisted.body.contains("`DELETE /api/v1/repository/team/app/tag/1.0.0`"),
        "{unlisted:?}"
    );

    // Exactly the listed request reached the upstream, with its method, target, headers and
    // body as sent.
    let reached: Vec<stand_in::Seen> = seen.lock().unwrap().clone();
    assert_eq!(reached.len(), 1, "{reached:?}");
    let request = &reached[0];
    assert_eq!(
        (request.method.as_str(), request.path.as_str(), request.query.as_str()),
        ("POST", "/api/v2.0/projects", "dry_run=false")
    );
    assert_eq!(request.body, body);
    assert_eq!(request.headers["content-type"], "application/json");
    assert_eq!(request.headers["authorization"], "Basic YWRtaW46eA==");
    assert!(gate.decisions().is_empty(), "{:?}", gate.decisions());

    // A reload warns again.
    gate.hangup();
    eventually("the warning on reload", || gate.log().matches(warning).count() >= 2);
}

/// A request of the spelling corpus, with its placeholders filled in.
struct Spelled {
    method: String,
    target: String,
    headers: Vec<(String, String)>,
}

/// `tests/gate/spellings.txt`, filled in for `tag`, plus each of its first four (plain)
/// requests with each path segment percent-encoded in turn, whole and its first character.
fn spellings(tag: &str, digest: &str, other: &str) -> Vec<Spelled> {
    let fill = |text: &str| {
        text.replace("{tag}", tag).replace("{digest}", digest).replace("{other}", other)
    };
    let listed: Vec<Spelled> = include_str!("gate/spellings.txt")
        .lines()
        .filter(|line| !line.trim().is_empty() && !line.starts_with('#'))
        .map(|line| {
            let mut parts = line.split(" | ");
            let (method, target) = parts.next().unwrap().split_once(' ').unwrap();
            let headers = parts
                .map(|header| {
                    let (name, value) = header.split_once(": ").unwrap();
                    (name.to_string(), fill(value))
                })
                .collect();
            Spelled { method: method.to_string(), target: fill(target), headers }
        })
        .collect();
    let encode = |text: &str| text.bytes().map(|b| format!("%{b:02X}")).collect::<String>();
    let mut generated = Vec::new();
    for plain in &listed[..4] {
        let (path, query) = match plain.target.split_once('?') {
            Some((path, query)) => (path, format!("?{query}")),
            None => (plain.target.as_str(), String::new()),
        };
        let segments: Vec<&str> = path.split('/').skip(1).collect();
        for (i, segment) in segments.iter().enumerate() {
            let first = segment.chars().next().unwrap().to_string();
            for spelled in [encode(segment), format!("{}{}", encode(&first), &segment[1..])] {
                let mut changed = segments.clone();
                changed[i] = &spelled;
                generated.push(Spelled {
                    method: plain.method.clone(),
                    target: format!("/{}{query}", changed.join("/")),
                    headers: Vec::new(),
                });
            }
        }
    }
    listed.into_iter().chain(generated).collect()
}

impl Spelled {
    fn send(&self, address: &str, manifest: &[u8]) -> registry::RawReply {
        let mut headers: Vec<(&str, &str)> =
            self.headers.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
        let with_body =
            matches!(self.method.to_ascii_uppercase().as_str(), "PUT" | "POST" | "PATCH");
        if with_body {
            headers.push(("Content-Type", registry::MANIFEST));
        }
        registry::raw_request(
            address,
            &self.method,
            &self.target,
            &headers,
            if with_body { manifest } else { b"" },
        )
    }
}

/// The gate's promise, for every spelling in the corpus: sent through the gate, a request
/// changes a tag only if a policy allowed that change (it is in the decision log); the
/// release tag `1.0.0` never changes. The same requests sent to the registry directly show
/// which spellings it applies, i.e. which would be bypasses if the gate passed them.
#[test]
fn every_spelling_of_a_tag_change_is_decided_or_refused() {
    let (registry, gate, _, direct) = setup();
    let registry_address = format!("127.0.0.1:{}", registry.port);
    let repository = "team/app";
    let (original, digest) = direct.image_manifest(repository, "original");
    let (other, other_digest) = direct.image_manifest(repository, "other");
    let start = || -> std::collections::BTreeMap<String, String> {
        // Deleting the other manifest removes any tag a request moved or added onto it.
        direct.delete_manifest(repository, &other_digest);
        for tag in ["1.0.0", "latest"] {
            assert_eq!(direct.put_manifest(repository, tag, &original).status, 201);
        }
        let state = direct.tag_map(repository);
        assert_eq!(state.len(), 2, "{state:?}");
        state
    };
    let mut requests = 0;
    let mut applied_directly = Vec::new();
    let mut failures = Vec::new();
    for tag in ["1.0.0", "latest"] {
        for spelled in spellings(tag, &digest, &other_digest) {
            let line = format!("{} {}", spelled.method, spelled.target);
            requests += 1;
            if tag == "1.0.0" {
                let before = start();
                let reply = spelled.send(&registry_address, &other);
                if direct.tag_map(repository) != before {
                    applied_directly.push(format!("{line} (HTTP {})", reply.status));
                }
            }
            let before = start();
            let logged = gate.decisions().len();
            let reply = spelled.send(&gate.address, &other);
            let after = direct.tag_map(repository);
            let allowed: Vec<String> = gate.decisions()[logged..]
                .iter()
                .filter(|d| d["decision"] != "deny")
                .flat_map(|d| d["tags"].as_array().unwrap().clone())
                .map(|t| t.as_str().unwrap().to_string())
                .collect();
            let names: std::collections::BTreeSet<&String> =
                before.keys().chain(after.keys()).collect();
            for name in names {
                if before.get(name) != after.get(name) && !allowed.contains(name) {
                    failures.push(format!(
                        "{line}: tag `{name}` changed from {:?} to {:?} without an allowing decision (HTTP {})",
                        before.get(name),
                        after.get(name),
                        reply.status
                    ));
                }
            }
            if after.get("1.0.0") != Some(&digest) {
                failures.push(format!("{line}: the release tag moved (HTTP {})", reply.status));
            }
            // Reads and blob uploads pass; anything else that names the release tag is refused.
            let passes = spelled.method == "GET" || spelled.target.contains("/blobs/uploads/");
            if tag == "1.0.0" && !passes && !(400..500).contains(&reply.status) {
                failures.push(format!("{line}: HTTP {}, expected a refusal", reply.status));
            }
            if reply.status >= 500 || reply.status == 0 {
                failures.push(format!("{line}: HTTP {}\n{}", reply.status, reply.head));
            }
        }
    }
    eprintln!(
        "{requests} requests through the gate; the registry itself applies {} of them:\n  {}",
        applied_directly.len(),
        applied_directly.join("\n  ")
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // The corpus holds real bypasses: spellings that the registry applies as a tag change.
    assert!(applied_directly.len() >= 10, "{applied_directly:?}");
}
