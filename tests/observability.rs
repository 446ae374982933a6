//! The observability kit in deploy/: the alert rules load and pass their unit tests
//! (promtool), every dashboard query parses, every metric they name is one the gate exports,
//! and a real Prometheus scraping a running gate fires an alert once its condition is true.
//! Needs `prometheus` and `promtool` (Debian package `prometheus`, installed by tests/setup).

mod common;
#[path = "support/registry.rs"]
mod registry;
#[path = "support/stand_in.rs"]
mod stand_in;

use registry::{Gate, Registry, free_port, raw_request};
use std::collections::BTreeSet;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn deploy(path: &str) -> PathBuf {
    common::workspace().join("deploy").join(path)
}

fn promtool(args: &[&str], dir: &Path) -> String {
    let output = Command::new("promtool")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("`promtool` (Debian package prometheus) must be installed");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "promtool {args:?} failed:\n{text}");
    text
}

#[test]
fn the_alert_rules_load_and_pass_their_unit_tests() {
    let dir = deploy("prometheus");
    let checked = promtool(&["check", "rules", "alerts.yaml"], &dir);
    assert!(checked.contains("SUCCESS"), "{checked}");
    let tested = promtool(&["test", "rules", "alerts.test.yaml"], &dir);
    assert!(tested.contains("SUCCESS"), "{tested}");
}

/// Every `expr` in a Grafana dashboard, wherever it is nested.
fn expressions(value: &serde_json::Value, found: &mut Vec<String>) {
    match value {
        serde_json::Value::Object(map) => {
            for (key, value) in map {
                match (key.as_str(), value) {
                    ("expr", serde_json::Value::String(expr)) => found.push(expr.clone()),
                    _ => expressions(value, found),
                }
            }
        }
        serde_json::Value::Array(items) => items.iter().for_each(|v| expressions(v, found)),
        _ => {}
    }
}

/// Grafana's variables replaced by what they stand for when a panel is drawn.
fn concrete(expr: &str) -> String {
    let expr = expr
        .replace("$__rate_interval", "2m")
        .replace("$__interval", "1m")
        .replace("$__range", "6h")
        .replace("${instance}", ".*")
        .replace("$instance", ".*");
    assert!(!expr.contains('$'), "a Grafana variable left unreplaced in {expr}");
    expr
}

fn dashboard_expressions() -> Vec<String> {
    let text = std::fs::read_to_string(deploy("grafana/tagpolicy.json")).unwrap();
    let dashboard: serde_json::Value = serde_json::from_str(&text).unwrap();
    let mut found = Vec::new();
    expressions(&dashboard["panels"], &mut found);
    found
}

#[test]
fn every_dashboard_query_parses() {
    let found = dashboard_expressions();
    assert!(found.len() >= 20, "only {} queries found", found.len());
    // As recording rules, which `promtool check rules` parses as PromQL.
    let mut rules = String::from("groups:\n  - name: dashboard\n    rules:\n");
    for (i, expr) in found.iter().enumerate() {
        let quoted = serde_json::to_string(&concrete(expr)).unwrap();
        rules.push_str(&format!("      - record: dashboard:query_{i}\n        expr: {quoted}\n"));
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("dashboard.rules.yaml"), &rules).unwrap();
    let checked = promtool(&["check", "rules", "dashboard.rules.yaml"], dir.path());
    assert!(checked.contains(&format!("SUCCESS: {} rules found", found.len())), "{checked}");
}

/// The `tagpolicy_gate_…` names a text uses.
fn metric_names(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut rest = text;
    while let Some(at) = rest.find("tagpolicy_gate_") {
        let name: String =
            rest[at..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
        rest = &rest[at + name.len()..];
        names.insert(name);
    }
    names
}

/// Each metric's series names: `_total` for a counter, `_bucket`, `_sum` and `_count` for a
/// histogram.
fn series(name: &str, kind: &str) -> Vec<String> {
    let suffixes: &[&str] = match kind {
        "counter" => &["_total"],
        "histogram" => &["_bucket", "_sum", "_count"],
        _ => &[""],
    };
    suffixes.iter().map(|suffix| format!("{name}{suffix}")).collect()
}

/// The series a `/metrics` page describes (`# TYPE` lines; a family with no sample yet
/// has none).
fn exported(page: &str) -> BTreeSet<String> {
    page.lines()
        .filter_map(|line| line.strip_prefix("# TYPE "))
        .flat_map(|rest| {
            let (name, kind) = rest.split_once(' ').unwrap();
            series(name, kind)
        })
        .collect()
}

/// The series every metric registered in host/gate/src/metrics.rs makes, its kind read
/// from the type of the field it is registered from.
fn registered() -> BTreeSet<String> {
    let source =
        std::fs::read_to_string(common::workspace().join("host/gate/src/metrics.rs")).unwrap();
    let fields = &source[source.find("pub struct Metrics {").unwrap()..];
    let fields = &fields[..fields.find("\n}").unwrap()];
    let field = regex::Regex::new(r"(?m)^\s+(\w+): (.+),$").unwrap();
    let kinds: std::collections::HashMap<&str, &str> = field
        .captures_iter(fields)
        .map(|c| {
            let ty = c.get(2).unwrap().as_str();
            let kind = if ty.contains("Histogram") || ty.starts_with("Latencies") {
                "histogram"
            } else if ty.contains("Counter") {
                "counter"
            } else {
                "gauge"
            };
            (c.get(1).unwrap().as_str(), kind)
        })
        .collect();
    let register =
        regex::Regex::new(r#"registry\.register\(\s*"(\w+)",[\s\S]*?(\w+)\.clone\(\)"#).unwrap();
    let names: BTreeSet<String> = register
        .captures_iter(&source)
        .flat_map(|c| {
            let kind = kinds[c.get(2).unwrap().as_str()];
            series(&format!("tagpolicy_gate_{}", &c[1]), kind)
        })
        .collect();
    assert!(names.len() >= 30, "{names:?}");
    names
}

/// Every `expr` of the alert rules.
fn alert_expressions() -> Vec<String> {
    let text = std::fs::read_to_string(deploy("prometheus/alerts.yaml")).unwrap();
    let rules: serde_yaml_ng::Value = serde_yaml_ng::from_str(&text).unwrap();
    let mut found = Vec::new();
    for group in rules["groups"].as_sequence().unwrap() {
        for rule in group["rules"].as_sequence().unwrap() {
            found.push(rule["expr"].as_str().unwrap().to_string());
        }
    }
    found
}

#[test]
fn the_alerts_and_the_dashboard_name_only_metrics_the_gate_registers() {
    let registered = registered();
    let named: BTreeSet<String> = alert_expressions()
        .iter()
        .chain(dashboard_expressions().iter())
        .flat_map(|e| metric_names(e))
        .collect();
    assert!(named.len() > 30, "{named:?}");
    let unknown: Vec<_> = named.difference(&registered).collect();
    assert!(unknown.is_empty(), "named but not registered: {unknown:?}\n{registered:?}");
}

/// `prometheus` on a free loopback port, its storage in a temporary folder; stopped on drop.
struct Prometheus {
    dir: tempfile::TempDir,
    address: String,
    child: Child,
}

impl Prometheus {
    fn start(target: &str, rule_file: &Path) -> Prometheus {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global: {{scrape_interval: 1s, evaluation_interval: 1s}}\n\
                 rule_files: [{}]\n\
                 scrape_configs:\n  - job_name: tagpolicy-gate\n    \
                 static_configs: [{{targets: ['{target}']}}]\n",
                serde_json::to_string(&rule_file.display().to_string()).unwrap()
            ),
        )
        .unwrap();
        let address = format!("127.0.0.1:{}", free_port());
        let log = std::fs::File::create(dir.path().join("prometheus.log")).unwrap();
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.tsdb.path={}", dir.path().join("data").display()))
            .arg(format!("--web.listen-address={address}"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("`prometheus` (Debian package prometheus) must be installed");
        Prometheus { dir, address, child }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("prometheus.log")).unwrap_or_default()
    }

    /// The `data` of an API answer, `None` until Prometheus answers.
    fn api(&self, path: &str) -> Option<serde_json::Value> {
        let answer = ureq::get(&format!("http://{}{path}", self.address)).call().ok()?;
        let body: serde_json::Value = serde_json::from_str(&answer.into_string().ok()?).ok()?;
        (body["status"] == "success").then(|| body["data"].clone())
    }

    /// The result of an instant query.
    fn query(&self, promql: &str) -> Vec<serde_json::Value> {
        let encoded: String = form_urlencoded::byte_serialize(promql.as_bytes()).collect();
        self.api(&format!("/api/v1/query?query={encoded}"))
            .and_then(|data| data["result"].as_array().cloned())
            .unwrap_or_default()
    }

    /// The state of the alert `name` (`pending`, `firing`), `None` if it is not active.
    fn alert(&self, name: &str) -> Option<(String, serde_json::Value)> {
        let data = self.api("/api/v1/alerts")?;
        data["alerts"]
            .as_array()?
            .iter()
            .find(|a| a["labels"]["alertname"] == name)
            .map(|a| (a["state"].as_str().unwrap_or_default().to_string(), a["labels"].clone()))
    }

    fn wait_for(&self, what: &str, within: Duration, mut done: impl FnMut(&Self) -> bool) {
        let deadline = Instant::now() + within;
        while !done(self) {
            assert!(Instant::now() < deadline, "{what}: not within {within:?}\n{}", self.log());
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const RULES: &str = r#"rules:
  - repositories: ["team/**"]
    policies:
      - policy: immutable-tags
"#;

/// The gate's `/metrics` as served on `admin` holds `line`, within ten seconds.
fn wait_for_metric(admin: &str, line: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let page = raw_request(admin, "GET", "/metrics", &[], b"").body;
        if page.lines().any(|l| l == line) {
            return;
        }
        assert!(Instant::now() < deadline, "no `{line}` in\n{page}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Write a self-signed certificate for 127.0.0.1, valid until `year`-12-31, to `cert` and its
/// key to `key` (the key first, as a renewal should); its notAfter as Unix time.
fn write_certificate(cert: &Path, key: &Path, year: i32) -> i64 {
    let pair = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string()]).unwrap();
    params.not_after = rcgen::date_time_ymd(year, 12, 31);
    let certificate = params.self_signed(&pair).unwrap();
    std::fs::write(key, pair.serialize_pem()).unwrap();
    std::fs::write(cert, certificate.pem()).unwrap();
    params.not_after.unix_timestamp()
}

#[test]
fn the_served_certificate_expiry_is_exported_and_follows_a_rotation() {
    let registry = Registry::start();
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("gate.pem"), dir.path().join("gate.key"));
    let not_after = write_certificate(&cert, &key, 2031);
    let admin = format!("127.0.0.1:{}", free_port());
    let _gate = Gate::start(
        &registry.url(),
        &format!(
            "admin_listen: {admin}\ntls: {{cert: {}, key: {}}}\n{RULES}",
            cert.display(),
            key.display()
        ),
    );
    let series =
        r#"tagpolicy_gate_tls_certificate_expiry_timestamp_seconds{certificate="listener"}"#;
    wait_for_metric(&admin, &format!("{series} {not_after}"));
    // Renewed in place, as certbot would: the gate re-reads the files and says so.
    let renewed = write_certificate(&cert, &key, 2033);
    assert!(renewed > not_after);
    wait_for_metric(&admin, &format!("{series} {renewed}"));
}

#[test]
fn the_upstream_client_certificate_expiry_is_exported() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("client.pem"), dir.path().join("client.key"));
    let not_after = write_certificate(&cert, &key, 2032);
    let admin = format!("127.0.0.1:{}", free_port());
    // No registry needs to answer: the gate reads its client certificate at start.
    let _gate = Gate::start(
        &format!("https://127.0.0.1:{}", free_port()),
        &format!(
            "admin_listen: {admin}\nupstream_client_cert: {{cert: {}, key: {}}}\n{RULES}",
            cert.display(),
            key.display()
        ),
    );
    wait_for_metric(
        &admin,
        &format!(
            r#"tagpolicy_gate_tls_certificate_expiry_timestamp_seconds{{certificate="upstream_client"}} {not_after}"#
        ),
    );
}

#[test]
fn upstream_failures_are_counted_by_operation_and_kind() {
    let (failing, _) = stand_in::start(|_| stand_in::Answer::status(503));
    let admin = format!("127.0.0.1:{}", free_port());
    let gate = Gate::start(&failing, &format!("admin_listen: {admin}\n{RULES}"));
    let reply = raw_request(&gate.address, "GET", "/v2/team/app/tags/list", &[], b"");
    assert_eq!(reply.status, 503, "{reply:?}");
    wait_for_metric(
        &admin,
        r#"tagpolicy_gate_upstream_errors_total{operation="forward",kind="status_5xx"} 1"#,
    );

    // Nothing listens where this one's upstream should be.
    let admin = format!("127.0.0.1:{}", free_port());
    let nowhere = format!("http://127.0.0.1:{}", free_port());
    let gate = Gate::start(&nowhere, &format!("admin_listen: {admin}\n{RULES}"));
    let reply = raw_request(&gate.address, "GET", "/v2/team/app/tags/list", &[], b"");
    assert!(reply.status >= 500, "{reply:?}");
    wait_for_metric(
        &admin,
        r#"tagpolicy_gate_upstream_errors_total{operation="forward",kind="unreachable"} 1"#,
    );
    let ready = raw_request(&admin, "GET", "/readyz", &[], b"");
    assert_eq!(ready.status, 503, "{ready:?}");
    wait_for_metric(
        &admin,
        r#"tagpolicy_gate_upstream_errors_total{operation="probe",kind="unreachable"} 1"#,
    );
}

/// The policy-errors alert watches `increase` of each policy's `error` decisions, which sees
/// nothing of a series born at 1: each policy the rules apply is exported at 0 from the start,
/// and so is one a reload brings in.
#[test]
fn each_applied_policy_exports_its_error_decisions_at_zero() {
    let registry = Registry::start();
    let admin = format!("127.0.0.1:{}", free_port());
    let gate = Gate::start(&registry.url(), &format!("admin_listen: {admin}\n{RULES}"));
    let errors = |policy: &str| {
        format!(r#"tagpolicy_gate_decisions_total{{policy="{policy}",outcome="error"}} 0"#)
    };
    wait_for_metric(&admin, &errors("immutable-tags"));
    let more = format!("admin_listen: {admin}\n{RULES}      - policy: semver-series\n");
    std::fs::write(gate.config_path(), Gate::config_text(&registry.url(), &more)).unwrap();
    wait_for_metric(&admin, &errors("semver-series"));
}

const ALERT: &str = "TagpolicyConnectionLimitReached";

#[test]
fn prometheus_scraping_a_gate_fires_the_connection_limit_alert() {
    let registry = Registry::start();
    let admin = format!("127.0.0.1:{}", free_port());
    let gate = Gate::start(
        &registry.url(),
        &format!(
            "admin_listen: {admin}\nlimits: {{max_connections_per_client: 2, header_timeout: 30s}}\n{RULES}"
        ),
    );
    // What the gate describes is found in metrics.rs as `registered` reads it.
    let page = raw_request(&admin, "GET", "/metrics", &[], b"");
    assert_eq!(page.status, 200, "{page:?}");
    let exported = exported(&page.body);
    assert!(exported.len() > 20, "{}", page.body);
    let registered = registered();
    let unread: Vec<_> = exported.difference(&registered).collect();
    assert!(unread.is_empty(), "exported but not found in metrics.rs: {unread:?}");
    // Without TLS there is no certificate, and no expiry sample to mistake for one.
    assert!(!page.body.contains("_expiry_timestamp_seconds{"), "{}", page.body);

    let prometheus = Prometheus::start(&admin, &deploy("prometheus/alerts.yaml"));
    let started = Instant::now();
    // Scraped a few times, and the rule evaluated since, with the alert quiet.
    prometheus.wait_for("the gate scraped", Duration::from_secs(30), |p| {
        !p.query("count_over_time(tagpolicy_gate_connections_rejected_total[1m]) >= 3").is_empty()
    });
    prometheus.wait_for("the alert rule evaluated", Duration::from_secs(10), |p| {
        p.api("/api/v1/rules").is_some_and(|data| {
            data["groups"]
                .as_array()
                .into_iter()
                .flatten()
                .flat_map(|g| g["rules"].as_array().cloned().unwrap_or_default())
                .any(|r| {
                    r["name"] == ALERT
                        && r["health"] == "ok"
                        && r["evaluationTime"].as_f64() > Some(0.0)
                })
        })
    });
    assert_eq!(prometheus.query(r#"up{job="tagpolicy-gate"}"#)[0]["value"][1], "1");
    assert_eq!(prometheus.alert(ALERT), None, "active before any connection was turned away");
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(prometheus.alert(ALERT), None, "active before any connection was turned away");

    // Two connections from this address fill the per-client limit; the next is turned away.
    let held: Vec<TcpStream> = (0..2).map(|_| TcpStream::connect(&gate.address).unwrap()).collect();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let reply = raw_request(&gate.address, "GET", "/v2/", &[], b"");
        if reply.status == 429 {
            break;
        }
        assert!(Instant::now() < deadline, "never turned away: {reply:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
    let turned_away = Instant::now();
    prometheus.wait_for("the alert firing", Duration::from_secs(60), |p| {
        p.alert(ALERT).is_some_and(|(state, _)| state == "firing")
    });
    let (_, labels) = prometheus.alert(ALERT).unwrap();
    assert_eq!(labels["instance"], admin.as_str(), "{labels}");
    assert_eq!(labels["severity"], "warning", "{labels}");
    eprintln!(
        "{ALERT} firing {:.1?} after the first rejection ({:.1?} after Prometheus started)",
        turned_away.elapsed(),
        started.elapsed()
    );
    drop(held);
}
