//! Several gates in front of one registry, coordinated through one Redis (started here on
//! 127.0.0.1): races between replicas, a replica killed or paused in the middle of a change,
//! Redis lost and back, writes around the gates reported by the registry's notifications,
//! and replicas that disagree on their settings.

mod common;
#[path = "support/redis.rs"]
mod redis;
#[path = "support/registry.rs"]
mod registry;
#[path = "support/stand_in.rs"]
mod stand_in;

use redis::Redis;
use registry::{Client, Gate, Registry, sha256_hex};
use stand_in::{Answer, Seen};
use std::collections::HashMap;
use std::sync::{Arc, Barrier, Mutex};
use std::time::{Duration, Instant};

/// Short enough for tests: a lease of 2 s, writes answered within 2 s (so a lock delay of
/// 3 s), and a long wait for a repository held by another replica.
fn config(redis: &Redis, extra: &str) -> String {
    let rules = r#"rules:
  - repositories: ["series/**"]
    policies:
      - policy: semver-series
  - repositories: ["team/**"]
    policies:
      - policy: immutable-tags
        settings: {mutable: ["latest"]}
"#;
    format!(
        "coordination: {{redis: {}, lease: 2s}}\nauthoritative: true\n\
         limits: {{upstream_write_timeout: 2s, lock_timeout: 30s}}\n{extra}{rules}",
        redis.url()
    )
}

fn replicas(count: usize, upstream: &str, redis: &Redis, extra: &str) -> Vec<Gate> {
    (0..count).map(|_| Gate::start(upstream, &config(redis, extra))).collect()
}

/// The value of one metric line (`name{labels}`), 0 if absent.
fn metric(gate: &Gate, line: &str) -> f64 {
    gate.metrics()
        .lines()
        .find_map(|l| l.strip_prefix(line)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or(0.0)
}

/// `base` (a manifest naming uploaded blobs) made unique by its label.
fn variant(base: &[u8], label: &str) -> (Vec<u8>, String) {
    let text = String::from_utf8(base.to_vec()).unwrap();
    let bytes = text.replace(r#""label":"base""#, &format!(r#""label":"{label}""#)).into_bytes();
    assert_ne!(bytes, base, "the base manifest must carry the label `base`");
    let digest = format!("sha256:{}", sha256_hex(&bytes));
    (bytes, digest)
}

/// Push until the replicas have waited out the quiet period of a store they found empty.
fn warm_up(gates: &[Gate], repository: &str, manifest: &[u8]) {
    for gate in gates {
        let reply = Client::new(&gate.url()).put_manifest(repository, "latest", manifest);
        assert_eq!(reply.status, 201, "{}", reply.body);
    }
}

#[test]
fn concurrent_pushes_through_three_replicas_make_one_winner_per_round() {
    let redis = Redis::start();
    let registry = Registry::start();
    let gates = replicas(3, &registry.url(), &redis, "");
    let direct = Client::new(&registry.url());
    let (base, _) = direct.image_manifest("team/race", "base");
    warm_up(&gates, "team/race", &base);
    let clients: Vec<Client> = gates.iter().map(|g| Client::new(&g.url())).collect();

    const ROUNDS: usize = 500;
    let started = Instant::now();
    let mut pushes = 0;
    for round in 0..ROUNDS {
        let tag = format!("r{round}");
        let contenders = 3 + round % 4;
        let images: Vec<_> =
            (0..contenders).map(|i| variant(&base, &format!("{tag}-{i}"))).collect();
        let barrier = Arc::new(Barrier::new(contenders));
        let statuses: Vec<(u16, String)> = std::thread::scope(|scope| {
            let handles: Vec<_> = images
                .iter()
                .enumerate()
                .map(|(i, (manifest, _))| {
                    // Spread over the replicas, a different one first each round.
                    let client = &clients[(round + i) % clients.len()];
                    let (barrier, tag) = (barrier.clone(), &tag);
                    scope.spawn(move || {
                        barrier.wait();
                        let reply = client.put_manifest("team/race", tag, manifest);
                        (reply.status, reply.body)
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        pushes += contenders;
        let winners: Vec<usize> = (0..contenders).filter(|&i| statuses[i].0 == 201).collect();
        assert_eq!(winners.len(), 1, "round {round}: {statuses:?}");
        for (i, (status, body)) in statuses.iter().enumerate() {
            if i != winners[0] {
                assert_eq!(*status, 409, "round {round}: {body}");
                assert!(body.contains("is immutable"), "round {round}: {body}");
            }
        }
        let winner = &images[winners[0]];
        assert_eq!(direct.digest_of("team/race", &tag), Some(winner.1.clone()), "round {round}");
        // The identical re-push (a CI retry) is fine through every replica at once.
        std::thread::scope(|scope| {
            for client in &clients {
                scope.spawn(|| {
                    let reply = client.put_manifest("team/race", &tag, &winner.0);
                    assert_eq!(reply.status, 201, "round {round} re-push: {}", reply.body);
                });
            }
        });
    }
    let elapsed = started.elapsed();

    // What reached the registry, from its own access log: per round, the winner's write and
    // the three identical re-pushes, nothing else.
    std::thread::sleep(Duration::from_millis(500));
    let log = registry.log();
    let mut writes: HashMap<String, usize> = HashMap::new();
    for line in log.lines().filter(|l| l.contains("\"PUT /v2/team/race/manifests/r")) {
        let tag = line.split("/manifests/").nth(1).unwrap().split(' ').next().unwrap();
        assert!(line.contains("HTTP/1.1\" 201 "), "a failed write reached the registry: {line}");
        *writes.entry(tag.to_string()).or_default() += 1;
    }
    for round in 0..ROUNDS {
        assert_eq!(writes.get(&format!("r{round}")), Some(&4), "round {round}");
    }
    let waits: f64 =
        gates.iter().map(|g| metric(g, "tagpolicy_gate_lease_wait_seconds_count")).sum();
    println!(
        "{ROUNDS} rounds, {pushes} racing pushes and {} re-pushes in {elapsed:?}; \
         {waits} leases; registry writes per round: 1 + 3 re-pushes",
        ROUNDS * 3
    );
}

/// A stand-in registry that keeps tags in memory and can hold one write or lookup.
struct Upstream {
    url: String,
    seen: Arc<Mutex<Vec<Seen>>>,
    tags: Arc<Mutex<HashMap<String, String>>>,
    /// Requests (`METHOD tag`) to hold once, with where to send their release.
    holds: Arc<Mutex<HashMap<String, tokio::sync::oneshot::Receiver<Answer>>>>,
}

impl Upstream {
    fn start() -> Upstream {
        let tags: Arc<Mutex<HashMap<String, String>>> = Arc::default();
        let holds: Arc<Mutex<HashMap<String, tokio::sync::oneshot::Receiver<Answer>>>> =
            Arc::default();
        let (state, held) = (tags.clone(), holds.clone());
        let (url, seen) = stand_in::start(move |request| {
            let tag = request.path.rsplit('/').next().unwrap_or_default().to_string();
            if let Some(later) = held.lock().unwrap().remove(&format!("{} {tag}", request.method)) {
                return Answer::Later(later);
            }
            let mut tags = state.lock().unwrap();
            match request.method.as_str() {
                "HEAD" | "GET" if request.path.contains("/manifests/") => match tags.get(&tag) {
                    Some(digest) => Answer::Reply {
                        status: 200,
                        headers: vec![("docker-content-digest", digest.clone())],
                        body: Vec::new(),
                    },
                    None => Answer::status(404),
                },
                "PUT" => {
                    tags.insert(tag, format!("sha256:{}", sha256_hex(&request.body)));
                    Answer::status(201)
                }
                "GET" if request.path.ends_with("/tags/list") => {
                    let list: Vec<&String> = tags.keys().collect();
                    let body = serde_json::json!({"name": "team/app", "tags": list});
                    Answer::Reply {
                        status: 200,
                        headers: vec![],
                        body: body.to_string().into_bytes(),
                    }
                }
                "GET" => Answer::status(200),
                _ => Answer::status(404),
            }
        });
        Upstream { url, seen, tags, holds }
    }

    /// Hold the next `METHOD tag` request until the test answers or drops the sender.
    fn hold(&self, method: &str, tag: &str) -> tokio::sync::oneshot::Sender<Answer> {
        let (send, receive) = tokio::sync::oneshot::channel();
        self.holds.lock().unwrap().insert(format!("{method} {tag}"), receive);
        send
    }

    fn wait_for(&self, method: &str, tag: &str, count: usize) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.count(method, tag) < count {
            assert!(Instant::now() < deadline, "`{method} {tag}` never reached the upstream");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn count(&self, method: &str, tag: &str) -> usize {
        let suffix = format!("/manifests/{tag}");
        self.seen
            .lock()
            .unwrap()
            .iter()
            .filter(|s| s.method == method && s.path.ends_with(&suffix))
            .count()
    }

    fn tag(&self, tag: &str) -> Option<String> {
        self.tags.lock().unwrap().get(tag).cloned()
    }
}

fn signal(gate: &Gate, signal: &str) {
    let status = std::process::Command::new("kill")
        .args([signal, &gate.pid().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

/// Two replicas in front of a stand-in upstream, past the quiet period of their new store,
/// and two different manifests with their digests.
struct Pair {
    _redis: Redis,
    upstream: Upstream,
    gates: Vec<Gate>,
    first: (Vec<u8>, String),
    second: (Vec<u8>, String),
}

impl Pair {
    fn start() -> Pair {
        Pair::start_with("")
    }

    /// Two replicas with `extra` configuration (e.g. an index).
    fn start_with(extra: &str) -> Pair {
        let redis = Redis::start();
        let upstream = Upstream::start();
        let gates = replicas(2, &upstream.url, &redis, extra);
        warm_up(&gates, "team/app", b"warm");
        let manifest = |image: &str| {
            let bytes = format!(r#"{{"image":"{image}"}}"#).into_bytes();
            let digest = format!("sha256:{}", sha256_hex(&bytes));
            (bytes, digest)
        };
        Pair {
            _redis: redis,
            upstream,
            gates,
            first: manifest("first"),
            second: manifest("second"),
        }
    }

    /// Push the first manifest as `tag` through replica A, from another thread.
    fn push_first_through_a(&self, tag: &str) -> std::thread::JoinHandle<registry::Reply> {
        let (url, tag, manifest) = (self.gates[0].url(), tag.to_string(), self.first.0.clone());
        std::thread::spawn(move || Client::new(&url).put_manifest("team/app", &tag, &manifest))
    }
}

/// Replica A's write is held by the upstream when A is killed; the write then lands (or is
/// dropped). A push through replica B must wait until that write has landed or never will,
/// read the repository again, and decide on what is really there.
fn killed_while_writing(lands: bool, extra: &str) {
    let pair = Pair::start_with(extra);
    let (upstream, a, b) = (&pair.upstream, &pair.gates[0], &pair.gates[1]);
    let ((_, first_digest), (second, second_digest)) = (pair.first.clone(), pair.second.clone());

    let release = upstream.hold("PUT", "1.0.0");
    let pusher = pair.push_first_through_a("1.0.0");
    upstream.wait_for("PUT", "1.0.0", 1);
    signal(a, "-KILL");
    let killed = Instant::now();
    let _ = pusher.join();
    if lands {
        // The upstream applies the write after all, within its write timeout.
        upstream.tags.lock().unwrap().insert("1.0.0".into(), first_digest.clone());
        let _ = release.send(Answer::status(201));
    } else {
        drop(release);
    }

    let (reconciled, delays) = (
        metric(b, "tagpolicy_gate_reconciliations_total"),
        metric(b, "tagpolicy_gate_lock_delay_waits_total"),
    );
    let reply = Client::new(&b.url()).put_manifest("team/app", "1.0.0", &second);
    let waited = killed.elapsed();
    if lands {
        assert_eq!(reply.status, 409, "{}", reply.body);
        assert!(reply.body.contains(&first_digest[..19]), "{}", reply.body);
        assert_eq!(upstream.tag("1.0.0"), Some(first_digest));
        assert_eq!(upstream.count("PUT", "1.0.0"), 1, "nothing is written twice");
    } else {
        assert_eq!(reply.status, 201, "{}", reply.body);
        assert_eq!(upstream.tag("1.0.0"), Some(second_digest));
        assert_eq!(upstream.count("PUT", "1.0.0"), 2, "the dropped write, then B's");
    }
    // B waited for A's lease to run out and then for its intent: the lock delay (3 s) from
    // when A recorded it, shortly before it was killed.
    assert!(waited >= Duration::from_millis(2500), "B decided after {waited:?}");
    assert_eq!(metric(b, "tagpolicy_gate_reconciliations_total"), reconciled + 1.0);
    assert_eq!(metric(b, "tagpolicy_gate_lock_delay_waits_total"), delays + 1.0);
    assert!(b.log().contains("a change was left in flight"), "{}", b.log());
}

#[test]
fn a_replica_killed_while_its_write_is_in_flight_that_then_lands() {
    killed_while_writing(true, "");
}

#[test]
fn a_replica_killed_while_its_write_is_in_flight_that_is_dropped() {
    killed_while_writing(false, "");
}

/// With the index (in Redis), the killed replica marked the tag dirty before its write: B
/// looks it up again before deciding, whatever the index said.
#[test]
fn a_replica_killed_mid_write_leaves_its_tag_to_be_read_again_in_the_index() {
    killed_while_writing(true, "upstream_read: anonymous\n");
    killed_while_writing(false, "upstream_read: anonymous\n");
}

#[test]
fn a_replica_paused_past_its_lease_sends_nothing_after_its_deadline() {
    let pair = Pair::start();
    let (upstream, a, b) = (&pair.upstream, &pair.gates[0], &pair.gates[1]);
    let (second, second_digest) = pair.second.clone();

    // A holds the repository and waits for the upstream to say where `2.0.0` points.
    let answer = upstream.hold("HEAD", "2.0.0");
    let pusher = pair.push_first_through_a("2.0.0");
    upstream.wait_for("HEAD", "2.0.0", 1);
    signal(a, "-STOP");
    std::thread::sleep(Duration::from_millis(2500));
    // A's lease has run out: B takes the repository and moves on.
    let reply = Client::new(&b.url()).put_manifest("team/app", "2.0.0", &second);
    assert_eq!(reply.status, 201, "{}", reply.body);
    signal(a, "-CONT");
    // A hears the stale answer ("absent") and would allow its push: it must not send it.
    let _ = answer.send(Answer::status(404));
    let from_a = pusher.join().unwrap();
    assert_eq!(from_a.status, 503, "{}", from_a.body);
    assert!(from_a.body.contains("lease on `team/app` ran out"), "{}", from_a.body);
    assert_eq!(upstream.count("PUT", "2.0.0"), 1, "only B's write");
    assert_eq!(upstream.tag("2.0.0"), Some(second_digest));
    assert_eq!(metric(a, "tagpolicy_gate_leases_lost_total"), 1.0);
}

#[test]
fn redis_lost_and_restarted_stops_tag_changes_and_then_resumes() {
    let mut redis = Redis::start();
    let registry = Registry::start();
    let gates = replicas(2, &registry.url(), &redis, "");
    let direct = Client::new(&registry.url());
    let (base, _) = direct.image_manifest("team/app", "base");
    warm_up(&gates, "team/app", &base);
    let clients: Vec<Client> = gates.iter().map(|g| Client::new(&g.url())).collect();

    let push = |n: usize| {
        let (manifest, digest) = variant(&base, &format!("n{n}"));
        let reply = clients[n % 2].put_manifest("team/app", &format!("n{n}"), &manifest);
        (reply.status, digest, reply.body)
    };
    let mut results = Vec::new();
    for n in 0..5 {
        results.push((n, push(n)));
    }
    redis.kill();
    let mut refused = 0;
    for n in 5..10 {
        let (status, digest, body) = push(n);
        assert_eq!(status, 503, "{body}");
        assert!(body.contains("cannot be reached"), "{body}");
        refused += 1;
        results.push((n, (status, digest, body)));
        // Reads are not held up by the coordination store.
        assert_eq!(clients[n % 2].get("/v2/team/app/tags/list").status, 200);
    }
    let metrics = gates[0].metrics();
    assert!(metrics.contains("tagpolicy_gate_coordination_errors_total"), "{metrics}");
    redis.restart();
    // The store came back empty: once the gates have reconnected and waited one lock delay,
    // changes go through again. Until then they are refused, and change nothing.
    let resumed = Instant::now();
    for n in 10..15 {
        loop {
            let (status, digest, body) = push(n);
            if status == 201 {
                results.push((n, (status, digest, body)));
                break;
            }
            assert_eq!(status, 503, "{body}");
            assert!(resumed.elapsed() < Duration::from_secs(20), "changes did not resume: {body}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    println!("{refused} changes refused while Redis was down; resumed in {:?}", resumed.elapsed());
    // No tag changed without a lease: exactly the pushes answered 201 are in the registry.
    for (n, (status, digest, _)) in &results {
        let now = direct.digest_of("team/app", &format!("n{n}"));
        if *status == 201 {
            assert_eq!(now.as_ref(), Some(digest), "n{n}");
        } else {
            assert_eq!(now, None, "n{n} changed without a lease");
        }
    }
}

#[test]
fn writes_through_one_replica_and_around_the_gates_are_seen_by_the_others() {
    let redis = Redis::start();
    let dir = tempfile::tempdir().unwrap();
    let (token, notifications) = registry::notifications_token(dir.path());
    let mut registry = Registry::start();
    // The gates keep an index, read with an account of their own.
    let extra = format!("{notifications}upstream_read: anonymous\n");
    let gates = replicas(2, &registry.url(), &redis, &extra);
    let (a, b) = (&gates[0], &gates[1]);
    let direct = Client::new(&registry.url());
    let (base, _) = direct.image_manifest("team/app", "base");
    warm_up(&gates, "team/app", &base);
    let (one, one_digest) = variant(&base, "one");
    let (two, two_digest) = variant(&base, "two");
    let (three, _) = variant(&base, "three");

    // Through A; B knows at once (the identical re-push is allowed, a move would not be) ...
    assert_eq!(Client::new(&a.url()).put_manifest("team/app", "1.0.0", &one).status, 201);
    let hits = metric(b, r#"tagpolicy_gate_tag_cache_total{result="hit"}"#);
    assert_eq!(Client::new(&b.url()).put_manifest("team/app", "1.0.0", &one).status, 201);
    // ... from what the gates keep in Redis, not from a lookup.
    assert_eq!(metric(b, r#"tagpolicy_gate_tag_cache_total{result="hit"}"#), hits + 1.0);

    // From now on the registry reports every write to replica B (in production, to the load
    // balancer in front of the gates). Not before: a notification of a gate's own write that
    // arrives before the gate has recorded it makes the gates forget that tag, which is safe
    // but would make the cache hit above a matter of timing.
    registry.stop();
    registry.extra_config = registry::notifications_to(&b.url(), &token);
    registry.restart();

    // Around the gates (an admin tool): the registry tells B, which makes both forget.
    let applied = metric(b, r#"tagpolicy_gate_notifications_total{result="applied"}"#);
    assert_eq!(direct.put_manifest("team/app", "1.0.0", &two).status, 201);
    let deadline = Instant::now() + Duration::from_secs(20);
    while metric(b, r#"tagpolicy_gate_notifications_total{result="applied"}"#) <= applied {
        assert!(Instant::now() < deadline, "no notification arrived:\n{}", b.metrics());
        std::thread::sleep(Duration::from_millis(50));
    }
    // A decides on the new state: `two` is what is there (identical, allowed), and a move
    // away from it names `two` as the current image.
    let again = Client::new(&a.url()).put_manifest("team/app", "1.0.0", &two);
    assert_eq!(again.status, 201, "{}", again.body);
    let moved = Client::new(&a.url()).put_manifest("team/app", "1.0.0", &three);
    assert_eq!(moved.status, 409, "{}", moved.body);
    assert!(moved.body.contains(&two_digest[..19]), "{}", moved.body);
    assert!(!moved.body.contains(&one_digest[..19]), "{}", moved.body);
    assert_eq!(direct.digest_of("team/app", "1.0.0"), Some(two_digest));

    // A notification without the token changes nothing.
    let forged = registry::raw_request(
        &b.address,
        "POST",
        "/tagpolicy/notifications",
        &[("Authorization", "Bearer wrong"), ("Content-Type", "application/json")],
        br#"{"events":[]}"#,
    );
    assert_eq!(forged.status, 401, "{}", forged.body);

    // Everything the gates keep in Redis expires unless used again: a repository seen once
    // leaves nothing behind for good. (The list of indexed repositories is one key for all;
    // its entries leave as their repositories' keys expire: gate_index.rs.)
    let keys = redis.cli(&["--scan"]);
    assert!(!keys.trim().is_empty(), "the gates keep nothing in Redis?");
    let shared = ["tagpolicy:index-repositories"];
    for key in keys.lines().filter(|key| !key.is_empty() && !shared.contains(key)) {
        let ttl = redis.cli(&["PTTL", key]);
        assert_ne!(ttl.trim(), "-1", "`{key}` never expires");
    }
}

#[test]
fn the_repository_state_policies_read_is_fresh_on_every_replica() {
    // Policies that read the repository (semver-series) get its tags from a cache that
    // replicas keep for `state_cache_seconds`; a change through another replica must
    // invalidate it at once.
    let redis = Redis::start();
    let registry = Registry::start();
    let gates = replicas(2, &registry.url(), &redis, "state_cache_seconds: 600\n");
    let (a, b) = (Client::new(&gates[0].url()), Client::new(&gates[1].url()));
    let direct = Client::new(&registry.url());
    let (warm, _) = direct.image_manifest("team/warm", "base");
    warm_up(&gates, "team/warm", &warm);
    let (base, _) = direct.image_manifest("series/app", "base");
    let (five, _) = variant(&base, "1.2.5");
    let (six, _) = variant(&base, "1.2.6");
    assert_eq!(a.put_manifest("series/app", "1.2.5", &five).status, 201);
    // A reads (and caches) the repository to decide `1.2`, which may not go to an image
    // without the series' newest release; a denial writes nothing, so the cache stays.
    let early = a.put_manifest("series/app", "1.2", &six);
    assert_eq!(early.status, 409, "{}", early.body);
    // That release, through B.
    assert_eq!(b.put_manifest("series/app", "1.2.6", &six).status, 201);
    // Through A, `1.2` may now follow 1.2.6, if A sees it.
    let follows = a.put_manifest("series/app", "1.2", &six);
    assert_eq!(follows.status, 201, "A decided on a stale view: {}", follows.body);
    // And may not go back to 1.2.5.
    let back = a.put_manifest("series/app", "1.2", &five);
    assert_eq!(back.status, 409, "{}", back.body);
}

#[test]
fn a_replica_with_other_settings_refuses_to_start() {
    let redis = Redis::start();
    let registry = Registry::start();
    let _a = Gate::start(&registry.url(), &config(&redis, ""));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gate.yaml");
    let other = config(&redis, "").replace("lease: 2s", "lease: 5s");
    std::fs::write(&path, Gate::config_text(&registry.url(), &other)).unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_tagpolicy"))
        .args(["serve", "--config"])
        .arg(&path)
        .env("TAGPOLICY_CACHE_DIR", common::workspace().join("target/test-cache"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    assert!(stderr.contains("is used by gates with other settings"), "{stderr}");
    assert!(
        stderr.contains(r#""lease_ms":2000"#) && stderr.contains(r#""lease_ms":5000"#),
        "{stderr}"
    );
    assert!(!String::from_utf8_lossy(&output.stdout).contains("listening"));
}

/// `GET path` on `port` of 127.0.0.1: the status and body, or `None` if nothing accepts.
fn probe(port: u16, path: &str) -> Option<(u16, String)> {
    let url = format!("http://127.0.0.1:{port}{path}");
    match ureq::get(&url).timeout(Duration::from_secs(5)).call() {
        Ok(reply) => Some((reply.status(), reply.into_string().unwrap())),
        Err(ureq::Error::Status(status, reply)) => Some((status, reply.into_string().unwrap())),
        Err(ureq::Error::Transport(_)) => None,
    }
}

fn port_of(gate: &Gate) -> u16 {
    gate.address.rsplit(':').next().unwrap().parse().unwrap()
}

/// Replica A (with the admin endpoints on a port of their own) and replica B, past the
/// quiet period of their new store; `limits` is added to the replicas' own.
fn stoppable_pair(upstream: &Upstream, redis: &Redis, limits: &str) -> (Vec<Gate>, u16) {
    let admin = registry::free_port();
    let with = |extra: &str| {
        config(redis, extra).replace("lock_timeout: 30s", &format!("lock_timeout: 30s{limits}"))
    };
    let gates = vec![
        Gate::start(&upstream.url, &with(&format!("admin_listen: 127.0.0.1:{admin}\n"))),
        Gate::start(&upstream.url, &with("")),
    ];
    warm_up(&gates, "team/app", b"warm");
    (gates, admin)
}

/// Replica A gets SIGTERM while the upstream holds the write it decided: it stops accepting
/// and says it is not ready at once, answers that write when the upstream does, and exits 0
/// with nothing of the change left behind, so that replica B changes the repository at once.
#[test]
fn a_replica_stopped_mid_write_answers_that_write_and_exits_cleanly() {
    let redis = Redis::start();
    let upstream = Upstream::start();
    let (mut gates, admin) = stoppable_pair(&upstream, &redis, "");
    assert_eq!(probe(admin, "/readyz"), Some((200, "ready\n".into())));
    let a_port = port_of(&gates[0]);
    let manifest = br#"{"image":"first"}"#.to_vec();
    let digest = format!("sha256:{}", sha256_hex(&manifest));

    let release = upstream.hold("PUT", "1.0.0");
    let pusher = {
        let (url, manifest) = (gates[0].url(), manifest.clone());
        std::thread::spawn(move || Client::new(&url).put_manifest("team/app", "1.0.0", &manifest))
    };
    upstream.wait_for("PUT", "1.0.0", 1);
    signal(&gates[0], "-TERM");
    let stopped = Instant::now();

    // Not ready, and no new connection, while the write is still held.
    let deadline = stopped + Duration::from_secs(5);
    while probe(admin, "/readyz") != Some((503, "stopping\n".into())) {
        assert!(Instant::now() < deadline, "A never reported that it is stopping");
        std::thread::sleep(Duration::from_millis(10));
    }
    let not_ready_after = stopped.elapsed();
    assert_eq!(probe(a_port, "/v2/"), None, "A accepted a connection while stopping");
    assert!(gates[0].wait_exit(Duration::from_millis(500)).is_none(), "A exited mid-write");

    // The upstream applies the write a second after the signal; A answers it, then exits.
    std::thread::sleep(Duration::from_secs(1).saturating_sub(stopped.elapsed()));
    upstream.tags.lock().unwrap().insert("1.0.0".into(), digest.clone());
    let _ = release.send(Answer::status(201));
    let reply = pusher.join().unwrap();
    let answered_after = stopped.elapsed();
    assert_eq!(reply.status, 201, "{}", reply.body);
    let status = gates[0].wait_exit(Duration::from_secs(10)).expect("A did not exit");
    let exited_after = stopped.elapsed();
    assert_eq!(status.code(), Some(0), "{}", gates[0].log());
    let log = gates[0].log();
    assert!(log.contains("every request in flight was answered"), "{log}");

    // Nothing of A's change is left in the store: B changes the repository without waiting.
    let started = Instant::now();
    let moved = Client::new(&gates[1].url()).put_manifest("team/app", "latest", b"after");
    assert_eq!(moved.status, 201, "{}", moved.body);
    assert!(started.elapsed() < Duration::from_millis(500), "B waited {:?}", started.elapsed());
    assert_eq!(upstream.tag("1.0.0"), Some(digest));
    assert_eq!(upstream.count("PUT", "1.0.0"), 1);
    println!(
        "SIGTERM mid-write: not ready after {not_ready_after:?}, write answered after \
         {answered_after:?} (held 1 s), exited 0 after {exited_after:?}; B's next change took {:?}",
        started.elapsed()
    );
}

/// A change that does not finish within `shutdown_grace` (its lookup held by the upstream)
/// is cut when the grace period ends; A releases its lease before it exits 0, so that B need
/// not wait for the lease to run out.
#[test]
fn a_replica_stopped_past_its_grace_period_releases_its_leases() {
    let redis = Redis::start();
    let upstream = Upstream::start();
    let (mut gates, _) = stoppable_pair(&upstream, &redis, ", shutdown_grace: 500ms");
    let held = upstream.hold("HEAD", "2.0.0");
    let pusher = {
        let url = gates[0].url();
        std::thread::spawn(move || {
            Client::new(&url).try_put_manifest("team/app", "2.0.0", br#"{"image":"a"}"#)
        })
    };
    upstream.wait_for("HEAD", "2.0.0", 1);
    signal(&gates[0], "-TERM");
    let stopped = Instant::now();
    let status = gates[0].wait_exit(Duration::from_secs(10)).expect("A did not exit");
    let exited_after = stopped.elapsed();
    assert_eq!(status.code(), Some(0), "{}", gates[0].log());
    assert!(exited_after >= Duration::from_millis(500), "A exited after {exited_after:?}");
    let log = gates[0].log();
    assert!(log.contains("grace period over"), "{log}");
    assert!(log.contains("released the leases of changes that did not finish"), "{log}");
    assert!(pusher.join().unwrap().is_err(), "the cut push got an answer");
    drop(held);

    // The lease (2 s, renewed until A exited) was released: B takes it at once.
    let started = Instant::now();
    let reply = Client::new(&gates[1].url()).put_manifest("team/app", "2.0.0", br#"{"image":"b"}"#);
    assert_eq!(reply.status, 201, "{}", reply.body);
    let waited = started.elapsed();
    assert!(waited < Duration::from_millis(800), "B waited {waited:?} for A's lease");
    assert_eq!(upstream.count("PUT", "2.0.0"), 1, "only B's write");
    println!(
        "past the grace period (500 ms): A exited 0 after {exited_after:?}; B waited {waited:?}"
    );
}

/// While the policies compile (an empty compile cache), the admin endpoints say the gate is
/// alive but not ready; with Redis down it is not ready until the store answers.
#[test]
fn readyz_waits_for_the_policies_and_the_coordination_store() {
    let mut redis = Redis::start();
    redis.kill();
    let upstream = Upstream::start();
    let admin = registry::free_port();
    let cache = tempfile::tempdir().unwrap();
    let text = config(&redis, &format!("admin_listen: 127.0.0.1:{admin}\n"));
    let starting = {
        let (url, cache) = (upstream.url.clone(), cache.path().to_path_buf());
        std::thread::spawn(move || Gate::start_with_cache(&url, &text, &cache))
    };
    let mut seen = Vec::new();
    while !starting.is_finished() {
        if let Some(answer) = probe(admin, "/readyz")
            && seen.last() != Some(&answer)
        {
            seen.push(answer);
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let gate = starting.join().unwrap();
    assert_eq!(probe(admin, "/healthz"), Some((200, "ok\n".into())));
    assert!(
        seen.first() == Some(&(503, "loading the policies\n".into())),
        "answers while loading: {seen:?}"
    );
    let waiting = format!("waiting for the coordination store `{}`\n", redis.url());
    assert_eq!(probe(admin, "/readyz"), Some((503, waiting)));
    redis.restart();
    let deadline = Instant::now() + Duration::from_secs(10);
    while probe(admin, "/readyz") != Some((200, "ready\n".into())) {
        assert!(Instant::now() < deadline, "never ready: {:?}", probe(admin, "/readyz"));
        std::thread::sleep(Duration::from_millis(50));
    }
    drop(gate);
}
