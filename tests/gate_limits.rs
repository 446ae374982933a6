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
    let deadline = Instant::now() + SLACK;
    let turned_away = loop {
        let reply = raw_request(&gate.address, "GET", "/v2/", &[], b"");
        if reply.status != 200 {
            break reply;
        }
        assert!(Instant::now() < deadline, "never turned away");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(turned_away.status, 429, "{turned_away:?}");
    assert!(turned_away.body.contains("TOOMANYREQUESTS"), "{turned_away:?}");
    assert!(turned_away.head.to_ascii_lowercase().contains("retry-after: 1"), "{turned_away:?}");
    drop(idle);
    // A slot frees as soon as a connection closes.
    let deadline = Instant::now() + SLACK;
    loop {
        let reply = raw_request(&gate.address, "GET", "/v2/", &[], b"");
        if reply.status == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "{reply:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
    let metrics = gate.metrics();
    assert!(
        metrics.lines().any(|l| l.starts_with("tagpolicy_gate_connections_rejected_total ")
            && l != "tagpolicy_gate_connections_rejected_total 0"),
        "{metrics}"
    );
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
