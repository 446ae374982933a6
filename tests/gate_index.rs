//! The gate's repository index, end to end: a repository of 20,000 tags in CNCF distribution
//! decided through the gate with its default limits (series tags, a new image under
//! `min-tags`, a series moved back, an immutable tag moved, a manifest deleted by digest),
//! each push after the fill costing a constant number of upstream requests, counted in the
//! registry's access log; a tag list larger than any answer the gate reads whole; a registry
//! that hides what a client may not see, whose answers to one client never decide for
//! another; replicas sharing the index in Redis, corrected by notifications and by the
//! background check; the grace period of `immutable-tags` through the gate.

mod common;
#[path = "support/redis.rs"]
mod redis;
#[path = "support/registry.rs"]
mod registry;
#[path = "support/stand_in.rs"]
mod stand_in;

use redis::Redis;
use registry::{Client, Gate, Registry, eventually, sha256_hex};
use stand_in::{Answer, Seen};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The rules of the large repository: releases never move, series tags follow the newest
/// release, a new image arrives with a release tag and at least one more.
const RULES: &str = r#"
rules:
  - repositories: ["big/**", "team/**"]
    policies:
      - policy: immutable-tags
        settings: {mutable: ["latest", "\\d+(\\.\\d+)?"]}
      - policy: semver-series
      - policy: min-tags
        settings: {min_tags: 2, required: ["\\d+\\.\\d+\\.\\d+"]}
"#;

/// Point `tags` of `repository` at their digests by writing distribution's tag links on
/// disk, as a registry that has held them for years would have them (each digest must be a
/// manifest the registry already stores). Thousands of tags in a second, where pushing
/// them would take minutes.
fn link_tags(registry: &Registry, repository: &str, tags: &[(String, String)]) {
    let base = registry
        .dir
        .path()
        .join("data/docker/registry/v2/repositories")
        .join(repository)
        .join("_manifests/tags");
    for (tag, digest) in tags {
        let hex = digest.strip_prefix("sha256:").unwrap();
        let dir = base.join(tag);
        for link in [dir.join("current"), dir.join("index/sha256").join(hex)] {
            std::fs::create_dir_all(&link).unwrap();
            std::fs::write(link.join("link"), digest).unwrap();
        }
    }
}

/// The requests the registry answered since `since` (an index into its access log).
fn requests_since(registry: &Registry, since: usize) -> Vec<String> {
    registry.requests().into_iter().skip(since).collect()
}

/// A manifest of `image` pushed straight to the registry under `tag`; its bytes and digest.
fn stored(direct: &Client, repository: &str, image: &str, tag: &str) -> (Vec<u8>, String) {
    let (manifest, digest) = direct.image_manifest(repository, image);
    assert_eq!(direct.put_manifest(repository, tag, &manifest).status, 201);
    (manifest, digest)
}

/// The registry's answers to what one push through the gate sent it, and the push's reply.
fn counted(
    registry: &Registry,
    push: impl FnOnce() -> registry::Reply,
) -> (registry::Reply, Vec<String>) {
    // The access log is written as requests are answered; wait until it stops growing.
    let settle = || {
        let mut last = registry.requests().len();
        loop {
            std::thread::sleep(Duration::from_millis(100));
            let now = registry.requests().len();
            if now == last {
                return now;
            }
            last = now;
        }
    };
    let before = settle();
    let reply = push();
    settle();
    (reply, requests_since(registry, before))
}

#[test]
fn twenty_thousand_tags_cost_the_same_upstream_requests_per_push_as_a_few() {
    let registry = Registry::start();
    let direct = Client::new(&registry.url());
    let repository = "big/app";
    // Image `fill` carries every release 1.m.p but the newest, 1.99.199, which `newest` carries.
    let (fill, fill_digest) = stored(&direct, repository, "fill", "1.0.0");
    let (newest, newest_digest) = stored(&direct, repository, "newest", "1.99.199");
    let mut tags = Vec::new();
    for minor in 0..100 {
        for patch in 0..200 {
            let tag = format!("1.{minor}.{patch}");
            if tag != "1.0.0" && tag != "1.99.199" {
                tags.push((tag, fill_digest.clone()));
            }
        }
    }
    link_tags(&registry, repository, &tags);
    assert_eq!(direct.tags(repository).len(), 20_000);

    let gate = Gate::start(
        &registry.url(),
        &format!("authoritative: true\nupstream_read: anonymous\n{RULES}"),
    );
    let client = Client::new(&gate.url());

    // The first push reads the repository into the index: its list once, each tag's digest.
    let started = Instant::now();
    let (reply, first) = counted(&registry, || client.put_manifest(repository, "1.99", &newest));
    let fill_took = started.elapsed();
    assert_eq!(reply.status, 201, "the series tag on the newest release: {}", reply.body);
    let listed = first.iter().filter(|r| r.contains("/tags/list")).count();
    let heads = first.iter().filter(|r| r.starts_with("HEAD ")).count();
    assert_eq!(listed, 1, "the tag list is read once");
    assert!(heads >= 20_000, "{heads} digest lookups for 20,000 tags");
    println!(
        "fill: {} requests, {fill_took:?}, gate peak RSS {} KiB",
        first.len(),
        gate.peak_rss_kib()
    );

    // After the fill, each push costs its own write(s) and, for a denial, one lookup that
    // checks the client may read what the denial shows: never a lookup per tag.
    let (extra, _) = direct.image_manifest(repository, "extra");
    let (single, _) = direct.image_manifest(repository, "single");
    let (release, release_digest) = direct.image_manifest(repository, "release-2");
    /// What a push is, the push, its status, a part of its answer, the most upstream requests.
    type Case<'a> = (&'a str, Box<dyn Fn() -> registry::Reply + 'a>, u16, &'a str, usize);
    let cases: Vec<Case> = vec![
        (
            "a series tag moved back to an older release",
            Box::new(|| client.put_manifest(repository, "1.99", &fill)),
            409,
            "must point at the newest release of series 1.99 (1.99.199), but this image carries only 1.99.198",
            1,
        ),
        (
            "a new image with a release tag and latest, in one push",
            Box::new(|| {
                client.put_manifest(
                    repository,
                    &format!("{release_digest}?tag=2.0.0&tag=latest"),
                    &release,
                )
            }),
            201,
            "",
            3,
        ),
        (
            "a new image with one tag",
            Box::new(|| client.put_manifest(repository, "nightly", &single)),
            409,
            "a new image must arrive with at least 2 tags",
            1,
        ),
        (
            "an immutable release tag moved",
            Box::new(|| client.put_manifest(repository, "1.0.0", &extra)),
            409,
            "tag `1.0.0` is immutable",
            1,
        ),
        (
            "the image that carries 19,999 releases deleted by digest",
            Box::new(|| client.delete_manifest(repository, &fill_digest)),
            409,
            "cannot be deleted",
            1,
        ),
        (
            "the series tag again, identical",
            Box::new(|| client.put_manifest(repository, "1.99", &newest)),
            201,
            "",
            1,
        ),
    ];
    for (what, push, status, reason, most) in cases {
        let (reply, sent) = counted(&registry, push);
        assert_eq!(reply.status, status, "{what}: {}", reply.body);
        assert!(reply.body.contains(reason), "{what}: {}", reply.body);
        let shown: Vec<&String> = sent.iter().take(5).collect();
        assert!(
            sent.len() <= most,
            "{what}: {} upstream requests, the first: {shown:?}",
            sent.len()
        );
        assert!(!sent.iter().any(|r| r.contains("/tags/list")), "{what}: {shown:?}");
    }
    assert_eq!(direct.digest_of(repository, "1.99"), Some(newest_digest));
    assert_eq!(direct.digest_of(repository, "1.0.0"), Some(fill_digest.clone()));
    assert_eq!(direct.digest_of(repository, "2.0.0"), Some(release_digest));
    // The policies decided within their default 50 ms: the index's time is not theirs.
    assert!(!gate.log().contains("deadline"), "{}", gate.log());
    let metrics = gate.metrics();
    assert!(metrics.contains(r#"tagpolicy_gate_index_fills_total{result="ok"} 1"#), "{metrics}");
    // 20,000 read, and `1.99`, `2.0.0` and `latest` pushed.
    assert!(metrics.contains("tagpolicy_gate_index_tags 20003"), "{metrics}");
}

/// A stand-in registry of one repository that hides what a client may not read: for any
/// credentials but the reader's or the admin's, every tag and the repository are unknown
/// (404), as some registries answer rather than 401 or 403. Only the admin may write. A PUT
/// by digest ignores `?tag=` (as distribution 2.8 does). Returns its URL, its tags, and every
/// request it saw.
type Tags = Arc<Mutex<BTreeMap<String, String>>>;

fn hiding_registry(tags: BTreeMap<String, String>) -> (String, Tags, Arc<Mutex<Vec<Seen>>>) {
    let tags = Arc::new(Mutex::new(tags));
    let state = tags.clone();
    let (url, seen) = stand_in::start(move |request| {
        let who = request
            .headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        let sees = who == "Basic cmVhZGVyOnJlYWQ=" || who == "Basic YWRtaW46YWRtaW4="; // reader:read, admin:admin
        let mut tags = state.lock().unwrap();
        let reference = request.path.rsplit('/').next().unwrap_or_default().to_string();
        match request.method.as_str() {
            "GET" if request.path == "/v2/" => Answer::status(200),
            _ if !sees => Answer::Reply {
                status: 404,
                headers: vec![("content-type", "application/json".into())],
                body: br#"{"errors":[{"code":"NAME_UNKNOWN","message":"repository name not known to registry"}]}"#.to_vec(),
            },
            "GET" if request.path.ends_with("/tags/list") => {
                let list: Vec<&String> = tags.keys().collect();
                Answer::Reply {
                    status: 200,
                    headers: vec![("content-type", "application/json".into())],
                    body: serde_json::json!({"name": "team/app", "tags": list}).to_string().into_bytes(),
                }
            }
            "HEAD" | "GET" if request.path.contains("/manifests/") => {
                let digest = if reference.starts_with("sha256:") {
                    tags.values().find(|d| **d == reference).cloned()
                } else {
                    tags.get(&reference).cloned()
                };
                match digest {
                    Some(digest) => Answer::Reply {
                        status: 200,
                        headers: vec![
                            ("docker-content-digest", digest),
                            ("content-type", registry::MANIFEST.into()),
                        ],
                        body: Vec::new(),
                    },
                    None => Answer::status(404),
                }
            }
            "PUT" if who == "Basic YWRtaW46YWRtaW4=" => {
                let digest = format!("sha256:{}", sha256_hex(&request.body));
                if !reference.starts_with("sha256:") {
                    tags.insert(reference, digest.clone());
                }
                Answer::Reply { status: 201, headers: vec![("docker-content-digest", digest)], body: Vec::new() }
            }
            "PUT" => Answer::Reply {
                status: 403,
                headers: vec![("content-type", "application/json".into())],
                body: br#"{"errors":[{"code":"DENIED","message":"requested access to the resource is denied"}]}"#.to_vec(),
            },
            _ => Answer::status(404),
        }
    });
    (url, tags, seen)
}

/// One client's view must not decide for another, whether or not the gate reads with an
/// account of its own: a low-privilege client to whom the registry says `1.0.0` does not
/// exist cannot make the gate believe it, and the admin's multi-tag push then cannot move it.
#[test]
fn what_one_client_cannot_see_never_decides_for_another() {
    let dir = tempfile::tempdir().unwrap();
    let password = dir.path().join("reader.password");
    std::fs::write(&password, "read\n").unwrap();
    let accounts = [
        format!(
            "authoritative: true\nupstream_read: {{username: reader, password_file: {}}}\n",
            password.display()
        ),
        "authoritative: true\n".to_string(),
    ];
    let low = "Basic bG93Omxvdw=="; // low:low
    let admin = "Basic YWRtaW46YWRtaW4=";
    for account in accounts {
        let released = format!("sha256:{}", "1".repeat(64));
        let (url, tags, seen) =
            hiding_registry([("1.0.0".to_string(), released.clone())].into_iter().collect());
        let gate = Gate::start(&url, &format!("{account}{RULES}"));
        let as_low = Client::with(&gate.url(), None, Some(low.into()));
        let as_admin = Client::with(&gate.url(), None, Some(admin.into()));
        let other = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:0000000000000000000000000000000000000000000000000000000000000000","size":2},"layers":[]}"#;
        let other_digest = format!("sha256:{}", sha256_hex(other));

        // The low-privilege client pushes `1.0.0`: refused (by the registry, 403 or 404, or
        // the gate, 409), and told nothing of what is there.
        let reply = as_low.put_manifest("team/app", "1.0.0", other);
        let status = reply.status;
        assert!(matches!(status, 403 | 404 | 409), "{account}: {status} {}", reply.body);
        assert!(
            !reply.body.contains(&released[..19]),
            "{account}: the low client saw {}",
            reply.body
        );

        // The admin's push of two tags, one of them the existing release: denied whole.
        let reply =
            as_admin.put_manifest("team/app", &format!("{other_digest}?tag=1.0.0&tag=1.0"), other);
        assert_eq!(reply.status, 409, "{account}: {}", reply.body);
        assert!(reply.body.contains("tag `1.0.0` is immutable"), "{account}: {}", reply.body);
        assert_eq!(tags.lock().unwrap().get("1.0.0"), Some(&released), "{account}");
        assert_eq!(tags.lock().unwrap().get("1.0"), None, "{account}");
        // With an account, every lookup of the gate's own was made with it.
        if account.contains("upstream_read") {
            let seen = seen.lock().unwrap();
            let own: Vec<&Seen> = seen
                .iter()
                .filter(|s| s.method == "HEAD" || s.path.ends_with("/tags/list"))
                .collect();
            let as_reader = own
                .iter()
                .filter(|s| {
                    s.headers.get("authorization").is_some_and(|v| v == "Basic cmVhZGVyOnJlYWQ=")
                })
                .count();
            assert!(as_reader >= 2, "{account}: {own:?}");
        }
    }
}

/// A tag list of more than the 4 MiB the gate reads of any other answer (35,000 tags of 120
/// characters, sent at once as CNCF distribution 2.8 does), read as a stream into the index.
#[test]
fn a_tag_list_larger_than_any_answer_the_gate_reads_whole_fills_the_index() {
    let digest = format!("sha256:{}", "a".repeat(64));
    let count = 35_001;
    let names: Vec<String> =
        (0..count).map(|i| format!("build-{i:06}-{}", "x".repeat(107))).collect();
    let body = serde_json::json!({"name": "team/app", "tags": names}).to_string().into_bytes();
    assert!(body.len() > 4 << 20, "{} bytes", body.len());
    let (url, _) = stand_in::start(move |request| {
        if request.path.ends_with("/tags/list") {
            return Answer::Reply {
                status: 200,
                headers: vec![("content-type", "application/json".into())],
                body: body.clone(),
            };
        }
        if request.path.contains("/manifests/build-") || request.path.ends_with("/manifests/1.0.0")
        {
            let known = request.path.contains("/manifests/build-");
            return match (request.method.as_str(), known) {
                ("HEAD" | "GET", true) => Answer::Reply {
                    status: 200,
                    headers: vec![("docker-content-digest", digest.clone())],
                    body: Vec::new(),
                },
                ("PUT", _) => Answer::status(201),
                _ => Answer::status(404),
            };
        }
        // The push by digest: created, as a registry answers (the client gets this answer).
        Answer::status(if request.method == "PUT" { 201 } else { 200 })
    });
    let gate =
        Gate::start(&url, &format!("authoritative: true\nupstream_read: anonymous\n{RULES}"));
    let manifest = br#"{"schemaVersion":2,"layers":[]}"#;
    // `1.0.0` and `latest`: a new image with a release tag (min-tags, semver-series).
    let digest = format!("sha256:{}", sha256_hex(manifest));
    let reply = Client::new(&gate.url()).put_manifest(
        "team/app",
        &format!("{digest}?tag=1.0.0&tag=latest"),
        manifest,
    );
    assert_eq!(reply.status, 201, "{}", reply.body);
    let metrics = gate.metrics();
    assert!(metrics.contains(&format!("tagpolicy_gate_index_tags {}", count + 2)), "{metrics}");
    println!(
        "gate peak RSS after indexing {count} tags of 120 characters: {} KiB",
        gate.peak_rss_kib()
    );
}

/// Gates sharing the index in Redis: one fills it, the other uses it; a notification of a
/// write around the gates corrects one tag; a write around the gates without a notification
/// is found by the background check.
#[test]
fn replicas_share_the_index_and_it_is_corrected() {
    let redis = Redis::start();
    let dir = tempfile::tempdir().unwrap();
    let (token, notifications) = registry::notifications_token(dir.path());
    let mut registry = Registry::start();
    let direct = Client::new(&registry.url());
    let repository = "team/app";
    let (_, base) = stored(&direct, repository, "base", "1.0.0");
    let tags: Vec<(String, String)> =
        (1..500).map(|i| (format!("1.0.{i}"), base.clone())).collect();
    link_tags(&registry, repository, &tags);
    let config = format!(
        "coordination: {{redis: {}, lease: 2s}}\nupstream_read: anonymous\n{notifications}\
         index: {{verify_every: 2s, verify_rate: 1000}}\n{RULES}",
        redis.url(),
    );
    let (a, b) = (Gate::start(&registry.url(), &config), Gate::start(&registry.url(), &config));

    // A fills the index; B uses it: its push reads no tag list.
    let (series, _) = direct.image_manifest(repository, "series");
    assert_eq!(direct.put_manifest(repository, "1.0.500", &series).status, 201);
    let (reply, _) =
        counted(&registry, || Client::new(&a.url()).put_manifest(repository, "1.0", &series));
    assert_eq!(reply.status, 201, "{}", reply.body);
    let (reply, sent) =
        counted(&registry, || Client::new(&b.url()).put_manifest(repository, "latest", &series));
    assert_eq!(reply.status, 201, "{}", reply.body);
    assert!(!sent.iter().any(|r| r.contains("/tags/list")), "B read the list again: {sent:?}");
    assert!(sent.len() <= 3, "{sent:?}");
    assert_eq!(redis.cli(&["ZCARD", "tagpolicy:index-names:team/app"]), "503");

    // Around the gates, reported by a notification to B: `1.0.7` moves to another image.
    registry.stop();
    registry.extra_config = registry::notifications_to(&b.url(), &token);
    registry.restart();
    let (moved, moved_digest) = direct.image_manifest(repository, "moved");
    assert_eq!(direct.put_manifest(repository, "1.0.7", &moved).status, 201);
    eventually("the notification is applied and the tag looked up again", || {
        redis.cli(&["HGET", "tagpolicy:index-tags:team/app", "1.0.7"]) == moved_digest
    });
    // A decides on it: `1.0.7` now names the moved image, and may not move back.
    let (back, _) = direct.image_manifest(repository, "back");
    let reply = Client::new(&a.url()).put_manifest(repository, "1.0.7", &back);
    assert_eq!(reply.status, 409, "{}", reply.body);
    assert!(reply.body.contains(&moved_digest[..19]), "{}", reply.body);

    // Around the gates with no notification (written on disk): the background check finds it.
    registry.stop();
    registry.extra_config = String::new();
    registry.restart();
    let (hidden, hidden_digest) = direct.image_manifest(repository, "hidden");
    assert_eq!(direct.put_manifest(repository, "hidden-source", &hidden).status, 201);
    link_tags(&registry, repository, &[("1.0.9".to_string(), hidden_digest.clone())]);
    eventually("the background check fixes the index", || {
        redis.cli(&["HGET", "tagpolicy:index-tags:team/app", "1.0.9"]) == hidden_digest
    });
    let checked = |gate: &Gate| {
        gate.metrics().contains(r#"tagpolicy_gate_index_corrections_total{source="check"}"#)
    };
    assert!(checked(&a) || checked(&b), "{}\n{}", a.metrics(), b.metrics());
}

/// `immutable-tags` with a grace period through the gate: the actor who created a release
/// may move it within the period, nobody else, and nobody after it.
#[test]
fn the_grace_period_lets_the_creator_fix_a_release_for_a_while() {
    let registry = Registry::start();
    let direct = Client::new(&registry.url());
    let rules = r#"
identity: {trusted_header: {name: X-Actor, from: ["127.0.0.1/32"]}}
rules:
  - repositories: ["team/**"]
    policies:
      - policy: immutable-tags
        settings: {mutable: [latest], grace: {period: 4s, same_actor: true}}
"#;
    let gate = Gate::start(
        &registry.url(),
        &format!("authoritative: true\nupstream_read: anonymous\n{rules}"),
    );
    let client = Client::new(&gate.url());
    let push = |actor: &str, tag: &str, manifest: &[u8]| {
        client.put_manifest_headers("team/app", tag, manifest, &[("X-Actor", actor)])
    };
    let ci = |tag: &str, manifest: &[u8]| push("ci-bot", tag, manifest);
    let alice = |tag: &str, manifest: &[u8]| push("alice", tag, manifest);
    let (broken, _) = direct.image_manifest("team/app", "broken");
    let (fixed, fixed_digest) = direct.image_manifest("team/app", "fixed");
    let (other, _) = direct.image_manifest("team/app", "other");
    assert_eq!(ci("1.2.3", &broken).status, 201);
    let reply = alice("1.2.3", &other);
    assert_eq!(reply.status, 409, "{}", reply.body);
    assert!(
        reply.body.contains("only `ci-bot`, who created it, may move it in its 4s grace period"),
        "{}",
        reply.body
    );
    let reply = ci("1.2.3", &fixed);
    assert_eq!(reply.status, 201, "{}", reply.body);
    std::thread::sleep(Duration::from_millis(4500));
    let reply = ci("1.2.3", &other);
    assert_eq!(reply.status, 409, "{}", reply.body);
    assert!(reply.body.contains("its 4s grace period after creation has passed"), "{}", reply.body);
    assert_eq!(direct.digest_of("team/app", "1.2.3"), Some(fixed_digest));
}

/// Each repository the gates index is listed for the background check. Its keys expire
/// when it sees no change; its entry in the list leaves when the check visits it, or, with
/// the check off, when a later fill samples it: the list does not grow with every
/// repository ever seen.
#[test]
fn repositories_whose_index_expired_leave_the_list() {
    let redis = Redis::start();
    let registry = Registry::start();
    let config = format!(
        "coordination: {{redis: {}, lease: 2s}}\nupstream_read: anonymous\nauthoritative: true\n\
         index: {{verify_every: 0s}}\n{RULES}",
        redis.url(),
    );
    let gate = Gate::start(&registry.url(), &config);
    let direct = Client::new(&registry.url());
    let push = |repository: &str| {
        let (manifest, _) = direct.image_manifest(repository, "image");
        let reply = Client::new(&gate.url()).put_manifest(repository, "1.0.0", &manifest);
        // Decided either way (`min-tags` wants two tags): the repository was indexed.
        assert!(matches!(reply.status, 201 | 409), "{}: {}", reply.status, reply.body);
    };
    let listed = || redis.cli(&["ZCARD", "tagpolicy:index-repositories"]).parse::<usize>().unwrap();
    for n in 0..40 {
        push(&format!("team/old-{n}"));
    }
    assert_eq!(listed(), 40);
    // Their index expires (`idle_expiry` is a minute at least; the keys are dropped here as
    // Redis would drop them).
    let expired = redis.cli(&["--scan", "--pattern", "tagpolicy:index-*:team/old-*"]);
    for key in expired.lines() {
        redis.cli(&["DEL", key]);
    }
    for n in 0..20 {
        push(&format!("team/new-{n}"));
    }
    // 20 fills, each sampling 16 of at most 60 entries: a stale entry survives all of them
    // with a probability below 1 in 1,000.
    let left = listed();
    assert!(
        (20..=23).contains(&left),
        "{left} listed: {}",
        redis.cli(&["ZRANGE", "tagpolicy:index-repositories", "0", "-1"])
    );
}
