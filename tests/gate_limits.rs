//! The gate against slow and abusive clients and a stuck upstream: each limit answers or
//! closes within its time, counts itself in the metrics, and leaves other repositories (and,
//! where the lock is not held, the same one) working. Limits are set to a second or two here;
//! the assertions allow generous slack for a loaded machine, since they check that a wait is
//! bounded, not how fast anything is.

mod common;
#[path = "support/registry.rs"]
mod registry;
#[path = "support/stand_in.rs"]
mod stand_in;

use registry::{Client, Gate, Registry, raw_request};
use stand_in::Answer;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// Far above each limit below, far below "forever".
const SLACK: Duration = Duration::from_secs(10);

const RULES: &str = r#"rules:
  - repositories: ["team/**"]
    policies:
      - policy: immutable-tags
        settings: {mutable: ["latest"]}
"#;

fn gate_with(upstream: &str, limits: &str) -> Gate {
    Gate::start(upstream, &format!("limits: {limits}\n{RULES}"))
}

/// Read until the server closes the connection or answers; what it sent.
fn read_until_closed(stream: &mut TcpStream) -> String {
    stream.set_read_timeout(Some(SLACK * 2)).unwrap();
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    String::from_utf8_lossy(&answer).into_owned()
}

fn metric(gate: &Gate, line: &str) -> bool {
    gate.metrics().lines().any(|l| l == line)
}

#[test]
fn headers_trickled_byte_by_byte_are_cut_off() {
    let registry = Registry::start();
    let gate = gate_with(&registry.url(), "{header_timeout: 1s}");
    let direct = Client::new(&registry.url());
    let (manifest, _) = direct.image_manifest("team/other", "x");

    let mut slow = TcpStream::connect(&gate.address).unwrap();
    let started = Instant::now();
    let trickle = {
        let mut slow = slow.try_clone().unwrap();
        std::thread::spawn(move || {
            // One byte every 100 ms: the request line alone would take 5 s.
            for byte in b"PUT /v2/team/slow/manifests/1.0.0 HTTP/1.1\r\nHost: x\r\n".iter() {
                if slow.write_all(&[*byte]).is_err() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        })
    };
    // Meanwhile the gate serves others.
    let pushed = Client::new(&gate.url()).put_manifest("team/other", "1.0.0", &manifest);
    assert_eq!(pushed.status, 201, "{}", pushed.body);

    let answer = read_until_closed(&mut slow);
    let waited = started.elapsed();
    trickle.join().unwrap();
    assert!(waited < Duration::from_secs(1) + SLACK, "closed after {waited:?}");
    assert!(!answer.contains(" 201 "), "{answer}");
    assert!(
        metric(&gate, r#"tagpolicy_gate_timeouts_total{phase="header"} 1"#),
        "{}",
        gate.metrics()
    );
    assert!(gate.log().contains("no complete request headers in time"), "{}", gate.log());
}

#[test]
fn a_manifest_body_that_never_finishes_holds_no_lock() {
    let registry = Registry::start();
    let gate = gate_with(&registry.url(), "{body_timeout: 2s}");
    let direct = Client::new(&registry.url());
    let (manifest, _) = direct.image_manifest("team/slow", "x");

    let mut stuck = TcpStream::connect(&gate.address).unwrap();
    let started = Instant::now();
    write!(
        stuck,
        "PUT /v2/team/slow/manifests/1.0.0 HTTP/1.1\r\nHost: x\r\nContent-Type: {}\r\nContent-Length: 1000\r\n\r\n{{\"schema",
        registry::MANIFEST
    )
    .unwrap();
    // The same repository is not locked while the gate waits for that body.
    let pushed = Client::new(&gate.url()).put_manifest("team/slow", "latest", &manifest);
    assert_eq!(pushed.status, 201, "{}", pushed.body);

    let answer = read_until_closed(&mut stuck);
    let waited = started.elapsed();
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("did not arrive within 2s; nothing was changed"), "{answer}");
    assert!(waited < Duration::from_secs(2) + SLACK, "answered after {waited:?}");
    assert!(
        metric(&gate, r#"tagpolicy_gate_timeouts_total{phase="body"} 1"#),
        "{}",
        gate.metrics()
    );
    assert_eq!(direct.tags("team/slow"), ["latest"]);
}

/// A stand-in upstream that never answers a write of tag `stuck` and accepts the others.
fn stuck_upstream() -> (String, std::sync::Arc<std::sync::Mutex<Vec<stand_in::Seen>>>) {
    stand_in::start(|request| match (request.method.as_str(), request.path.rsplit('/').next()) {
        ("PUT", Some("stuck")) => Answer::Hang,
        ("PUT", _) => Answer::status(201),
        _ => Answer::status(404),
    })
}

fn wait_for_stuck_write(seen: &std::sync::Mutex<Vec<stand_in::Seen>>) {
    let deadline = Instant::now() + SLACK;
    while !seen.lock().unwrap().iter().any(|s| s.method == "PUT" && s.path.ends_with("/stuck")) {
        assert!(Instant::now() < deadline, "the stuck write never reached the upstream");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn an_upstream_that_never_answers_a_write_releases_the_repository() {
    let (upstream, seen) = stuck_upstream();
    let gate = gate_with(&upstream, "{upstream_write_timeout: 3s}");
    let manifest = br#"{"schemaVersion":2}"#;
    let stuck = {
        let url = gate.url();
        std::thread::spawn(move || {
            let started = Instant::now();
            (Client::new(&url).put_manifest("team/x", "stuck", manifest), started.elapsed())
        })
    };
    wait_for_stuck_write(&seen);
    // Another repository goes on at once, while the stuck write holds team/x.
    let other = Client::new(&gate.url()).put_manifest("team/y", "1.0.0", manifest);
    assert_eq!(other.status, 201, "{}", other.body);
    assert!(!stuck.is_finished(), "the stuck write was answered before the other repository's");
    // The same repository waits for the lock, and gets it once the write times out.
    let next = Client::new(&gate.url()).put_manifest("team/x", "next", manifest);
    assert_eq!(next.status, 201, "{}", next.body);

    let (reply, waited) = stuck.join().unwrap();
    assert_eq!(reply.status, 504, "{}", reply.body);
    let message = reply.json()["errors"][0]["message"].as_str().unwrap().to_string();
    assert!(
        message.contains("did not answer a write within 3s; it may have applied it"),
        "{message}"
    );
    assert!(waited < Duration::from_secs(3) + SLACK, "answered after {waited:?}");
    assert!(
        metric(&gate, r#"tagpolicy_gate_timeouts_total{phase="upstream_write"} 1"#),
        "{}",
        gate.metrics()
    );
}

#[test]
fn a_change_waiting_too_long_for_its_repository_is_turned_back() {
    let (upstream, seen) = stuck_upstream();
    let gate = gate_with(&upstream, "{upstream_write_timeout: 20s, lock_timeout: 1s}");
    let manifest = br#"{"schemaVersion":2}"#;
    let url = gate.url();
    let _stuck =
        std::thread::spawn(move || Client::new(&url).put_manifest("team/x", "stuck", manifest));
    wait_for_stuck_write(&seen);
    let started = Instant::now();
    let waiting = Client::new(&gate.url()).put_manifest("team/x", "next", manifest);
    assert_eq!(waiting.status, 503, "{}", waiting.body);
    assert_eq!(waiting.header_all("retry-after"), ["1"]);
    let message = waiting.json()["errors"][0]["message"].as_str().unwrap().to_string();
    assert!(message.contains("another change of `team/x` has held it for over 1s"), "{message}");
    assert!(started.elapsed() < Duration::from_secs(1) + SLACK);
    assert!(
        metric(&gate, r#"tagpolicy_gate_timeouts_total{phase="lock"} 1"#),
        "{}",
        gate.metrics()
    );
    // Nothing of the turned-back push reached the upstream.
    assert!(!seen.lock().unwrap().iter().any(|s| s.path.ends_with("/next")));
}

#[test]
fn connections_over_the_limit_are_told_to_come_back() {
    let registry = Registry::start();
    let gate = gate_with(&registry.url(), "{max_connections: 2, header_timeout: 30s}");
    let idle: Vec<TcpStream> = (0..2).map(|_| TcpStream::connect(&gate.address).unwrap()).collect();
    // Both slots are taken once the gate has accepted the idle connections (and /metrics
    // too is out of reach then: it is served on the same connections).
    let turned_away = wait_until_turned_away(&gate);
    assert_eq!(turned_away.status, 429, "{turned_away:?}");
    assert!(turned_away.body.contains("TOOMANYREQUESTS"), "{turned_away:?}");
    assert!(turned_away.head.to_ascii_lowercase().contains("retry-after: 1"), "{turned_away:?}");
    drop(idle);
    // A slot frees as soon as a connection closes.
    wait_until_ok(&gate, "/v2/");
    let metrics = gate.metrics();
    assert!(
        metrics.lines().any(|l| l.starts_with("tagpolicy_gate_connections_rejected_total ")
            && l != "tagpolicy_gate_connections_rejected_total 0"),
        "{metrics}"
    );
}

#[test]
fn the_admin_listener_answers_while_clients_hold_every_slot() {
    let registry = Registry::start();
    let admin = format!("127.0.0.1:{}", registry::free_port());
    let gate = Gate::start(
        &registry.url(),
        &format!(
            "admin_listen: {admin}\nlimits: {{max_connections: 2, header_timeout: 30s}}\n{RULES}"
        ),
    );
    let idle: Vec<TcpStream> = (0..2).map(|_| TcpStream::connect(&gate.address).unwrap()).collect();
    let turned_away = wait_until_turned_away(&gate);
    assert_eq!(turned_away.status, 429, "{turned_away:?}");
    // Probes and the scrape still get through, on the operator's own listener.
    for probe in ["/healthz", "/readyz"] {
        let reply = raw_request(&admin, "GET", probe, &[], b"");
        assert_eq!(reply.status, 200, "{probe}: {reply:?}");
    }
    let metrics = raw_request(&admin, "GET", "/metrics", &[], b"");
    assert_eq!(metrics.status, 200, "{metrics:?}");
    assert!(
        metrics.body.lines().any(|l| l.starts_with("tagpolicy_gate_connections_rejected_total ")
            && l != "tagpolicy_gate_connections_rejected_total 0"),
        "{metrics:?}"
    );
    assert_eq!(raw_request(&admin, "GET", "/v2/", &[], b"").status, 404);
    drop(idle);
    // Registry clients no longer see the metrics; the probes stay on both listeners.
    wait_until_ok(&gate, "/healthz");
    let on_clients = raw_request(&gate.address, "GET", "/metrics", &[], b"");
    assert!(!on_clients.body.contains("tagpolicy_gate_"), "{on_clients:?}");
}

#[test]
fn oversized_headers_are_refused() {
    let registry = Registry::start();
    let gate = gate_with(&registry.url(), "{max_header_bytes: 8192}");
    let big = "x".repeat(16 << 10);
    let reply = raw_request(&gate.address, "GET", "/v2/", &[("X-Big", &big)], b"");
    assert_eq!(reply.status, 431, "{reply:?}");
    let fits = raw_request(&gate.address, "GET", "/v2/", &[("X-Big", &big[..4096])], b"");
    assert_eq!(fits.status, 200, "{fits:?}");
    assert!(
        metric(&gate, r#"tagpolicy_gate_refused_total{reason="header_too_large"} 1"#),
        "{}",
        gate.metrics()
    );
}

/// A stand-in upstream that reads every request body to the end before answering 202, and
/// answers a `GET` of a blob with `size` bytes.
fn reading_upstream(
    size: usize,
) -> (String, std::sync::Arc<std::sync::Mutex<Vec<stand_in::Seen>>>) {
    stand_in::start(move |request| match request.method.as_str() {
        "GET" if request.path.contains("/blobs/") => Answer::Reply {
            status: 200,
            headers: vec![("content-type", "application/octet-stream".into())],
            body: vec![7; size],
        },
        _ => Answer::status(202),
    })
}

/// Wait until `GET /v2/` through the gate is turned away (every slot taken); its answer.
/// Wait until `GET target` through the gate answers 200.
fn wait_until_ok(gate: &Gate, target: &str) {
    let deadline = Instant::now() + SLACK;
    loop {
        let reply = raw_request(&gate.address, "GET", target, &[], b"");
        if reply.status == 200 {
            return;
        }
        assert!(Instant::now() < deadline, "{reply:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn wait_until_turned_away(gate: &Gate) -> registry::RawReply {
    let deadline = Instant::now() + SLACK;
    loop {
        let reply = raw_request(&gate.address, "GET", "/v2/", &[], b"");
        if reply.status == 429 {
            return reply;
        }
        assert!(Instant::now() < deadline, "never turned away: {reply:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Wait until `GET /v2/` through the gate is no longer turned away (a slot is free).
fn wait_for_a_free_slot(gate: &Gate, within: Duration) -> Duration {
    let started = Instant::now();
    loop {
        let reply = raw_request(&gate.address, "GET", "/v2/", &[], b"");
        if reply.status != 429 {
            return started.elapsed();
        }
        assert!(started.elapsed() < within, "no slot came free: {reply:?}\n{}", gate.log());
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn stalled_upload_bodies_free_their_slots_within_the_idle_timeout() {
    let (upstream, seen) = reading_upstream(0);
    let gate = gate_with(&upstream, "{max_connections: 4, idle_timeout: 2s}");
    // Every slot taken by an upload that declares a megabyte, sends 10 bytes, then nothing.
    let stalled: Vec<TcpStream> = (0..4)
        .map(|i| {
            let mut stream = TcpStream::connect(&gate.address).unwrap();
            write!(
                stream,
                "PATCH /v2/team/app/blobs/uploads/u{i} HTTP/1.1\r\nHost: x\r\n\
                 Content-Type: application/octet-stream\r\nContent-Length: 1000000\r\n\r\n0123456789"
            )
            .unwrap();
            stream
        })
        .collect();
    let started = Instant::now();
    wait_until_turned_away(&gate);
    // Well past both header_timeout and body_timeout would not matter: the idle timeout
    // closes each within about 2 s of its last byte.
    let waited = wait_for_a_free_slot(&gate, Duration::from_secs(2) + SLACK);
    assert!(started.elapsed() < Duration::from_secs(2) + SLACK, "freed after {waited:?}");
    for mut stream in stalled {
        let answer = read_until_closed(&mut stream);
        assert!(!answer.contains(" 202 "), "a stalled upload was answered as complete: {answer}");
    }
    assert!(
        gate.metrics()
            .lines()
            .any(|l| l.starts_with(r#"tagpolicy_gate_timeouts_total{phase="client_body"} "#)),
        "{}",
        gate.metrics()
    );
    // Nothing of the stalled uploads was completed upstream: the stand-in answers only after
    // a whole body, and saw none.
    assert!(seen.lock().unwrap().iter().all(|s| s.body.len() < 1_000_000));
}

#[test]
fn a_download_nobody_reads_frees_its_slot_within_the_idle_timeout() {
    let (upstream, _) = reading_upstream(64 << 20);
    let gate = gate_with(&upstream, "{max_connections: 2, idle_timeout: 2s}");
    let digest = format!("sha256:{}", "ab".repeat(32));
    let unread: Vec<TcpStream> = (0..2)
        .map(|_| {
            let mut stream = TcpStream::connect(&gate.address).unwrap();
            // Read nothing: the 64 MiB answer fills the socket buffers and stops.
            stream.set_read_timeout(Some(Duration::from_millis(1))).unwrap();
            write!(stream, "GET /v2/team/app/blobs/{digest} HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
            stream
        })
        .collect();
    let started = Instant::now();
    wait_until_turned_away(&gate);
    wait_for_a_free_slot(&gate, Duration::from_secs(2) + SLACK);
    assert!(started.elapsed() < Duration::from_secs(2) + SLACK);
    assert!(
        gate.metrics()
            .lines()
            .any(|l| l.starts_with(r#"tagpolicy_gate_timeouts_total{phase="client_write"} "#)),
        "{}",
        gate.metrics()
    );
    drop(unread);
}

/// A connection to the gate from another loopback address than 127.0.0.1.
fn connect_from(source: &str, gate: &str) -> TcpStream {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind(format!("{source}:0").parse().unwrap()).unwrap();
        let stream = socket.connect(gate.parse().unwrap()).await.unwrap().into_std().unwrap();
        stream.set_nonblocking(false).unwrap();
        stream
    })
}

#[test]
fn one_client_cannot_take_every_connection() {
    let registry = Registry::start();
    let gate = gate_with(
        &registry.url(),
        "{max_connections: 10, max_connections_per_client: 2, header_timeout: 30s}",
    );
    let idle: Vec<TcpStream> = (0..2).map(|_| TcpStream::connect(&gate.address).unwrap()).collect();
    let turned_away = wait_until_turned_away(&gate);
    assert_eq!(turned_away.status, 429, "{turned_away:?}");
    assert!(turned_away.body.contains("at once from one address"), "{turned_away:?}");
    // Another client is served meanwhile.
    let mut other = connect_from("127.0.0.2", &gate.address);
    write!(other, "GET /v2/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
    let answer = read_until_closed(&mut other);
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}\n{}", gate.log());
    drop(idle);
    wait_for_a_free_slot(&gate, SLACK);
}

#[test]
fn a_manifest_write_by_a_digest_the_gate_cannot_match_is_refused() {
    // A registry that addresses manifests by sha512 would delete this image and every tag on
    // it; the gate, which knows tags by sha256 digest, refuses instead of deciding with none.
    let (upstream, seen) = stand_in::start(|_| Answer::status(202));
    let gate = gate_with(&upstream, "{}");
    let sha512 = format!("sha512:{}", "ab".repeat(64));
    for method in ["DELETE", "PUT"] {
        let reply = raw_request(
            &gate.address,
            method,
            &format!("/v2/team/app/manifests/{sha512}"),
            &[("Content-Type", registry::MANIFEST)],
            if method == "PUT" { br#"{"schemaVersion":2}"# } else { b"" },
        );
        assert_eq!(reply.status, 400, "{method}: {reply:?}");
        assert!(reply.body.contains("sha256 digest only"), "{reply:?}");
    }
    assert!(seen.lock().unwrap().is_empty(), "{:?}", seen.lock().unwrap());
    assert!(gate.decisions().is_empty());
    assert!(
        metric(&gate, r#"tagpolicy_gate_refused_total{reason="digest_algorithm"} 2"#),
        "{}",
        gate.metrics()
    );
}

#[test]
fn only_known_headers_reach_the_upstream() {
    let (upstream, seen) = stand_in::start(|request| match request.method.as_str() {
        "PUT" => Answer::status(201),
        "GET" if request.path == "/v2/team/app/tags/list" => Answer::status(200),
        _ => Answer::status(404),
    });
    let gate = gate_with(&upstream, "{}");
    let tricks = [
        ("X-Original-URL", "/v2/team/app/manifests/other"),
        ("X_HTTP_Method_Override", "DELETE"),
        ("X-Forwarded-Uri", "/v2/team/app/manifests/other"),
        ("X-Forwarded-Method", "DELETE"),
        ("X-Envoy-Original-Path", "/v2/team/app/manifests/other"),
        ("X-Forwarded-Proto", "https"),
        ("X-Forwarded-Host", "elsewhere.example"),
        ("X-Custom-Rewrite", "anything"),
        ("Authorization", "Basic dTpw"),
    ];
    let mut headers = tricks.to_vec();
    headers.push(("Content-Type", registry::MANIFEST));
    let put = raw_request(
        &gate.address,
        "PUT",
        "/v2/team/app/manifests/9.9.9",
        &headers,
        br#"{"schemaVersion":2}"#,
    );
    assert_eq!(put.status, 201, "{put:?}");
    let read = raw_request(&gate.address, "GET", "/v2/team/app/tags/list", &tricks, b"");
    assert_eq!(read.status, 200, "{read:?}");

    let seen = seen.lock().unwrap();
    let write = seen.iter().find(|s| s.method == "PUT").expect("the decided write");
    let read = seen.iter().find(|s| s.path == "/v2/team/app/tags/list").expect("the read");
    for (name, value) in tricks {
        let name = name.to_ascii_lowercase();
        // Only the credentials, and the scheme the gate itself sets.
        let allowed = name == "authorization" || name == "x-forwarded-proto";
        assert_eq!(write.headers.contains_key(name.as_str()), allowed, "decided write: {name}");
        // A read passes the client's own headers, but none that rewrite its route or say
        // where it came from: the client is no trusted proxy.
        if name.starts_with("x-forwarded-proto") {
            assert_eq!(read.headers["x-forwarded-proto"], "http", "the gate's own scheme");
            assert_eq!(write.headers["x-forwarded-proto"], "http");
        } else if name.starts_with("x_")
            || name.starts_with("x-forwarded")
            || name.starts_with("x-original")
            || name.starts_with("x-envoy")
        {
            assert!(!read.headers.contains_key(name.as_str()), "read: {name}: {value}");
        }
    }
    assert!(read.headers.contains_key("x-custom-rewrite"), "other headers of a read pass");
}

#[test]
fn notifications_about_names_no_registry_stores_keep_nothing() {
    let (upstream, _) = stand_in::start(|_| Answer::status(404));
    let dir = tempfile::tempdir().unwrap();
    let (token, notifications) = registry::notifications_token(dir.path());
    let gate = Gate::start(&upstream, &format!("{notifications}{RULES}"));
    let before = gate.peak_rss_kib();
    let digest = format!("sha256:{}", "a".repeat(64));
    let authorization = format!("Bearer {token}");
    for round in 0..50 {
        // A megabyte of repository name per event, each a different one.
        let name = format!("{round:02}{}", "a".repeat((1 << 20) - 200));
        let envelope = format!(
            r#"{{"events":[{{"action":"push","target":{{"repository":"{name}","digest":"{digest}","tag":"1.0"}}}}]}}"#
        );
        let reply = raw_request(
            &gate.address,
            "POST",
            "/tagpolicy/notifications",
            &[("Authorization", &authorization), ("Content-Type", "application/json")],
            envelope.as_bytes(),
        );
        assert_eq!(reply.status, 200, "{reply:?}");
    }
    assert!(
        metric(&gate, r#"tagpolicy_gate_notifications_total{result="invalid"} 50"#),
        "{}",
        gate.metrics()
    );
    // 50 MiB of names were sent; what the gate keeps of them stays far below that.
    let grown = gate.peak_rss_kib().saturating_sub(before);
    assert!(grown < 16 << 10, "the gate grew by {grown} KiB");
    // The gate keeps serving.
    assert_eq!(raw_request(&gate.address, "GET", "/healthz", &[], b"").status, 200);
}
