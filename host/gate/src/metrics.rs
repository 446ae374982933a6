//! `/metrics` in the Prometheus text format: decisions by policy and outcome, decision
//! latency, upstream latency, requests by route, reloads.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::time::Duration;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DecisionLabels {
    policy: String,
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OperationLabels {
    operation: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CertificateLabels {
    certificate: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct UpstreamErrorLabels {
    operation: &'static str,
    kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ProtocolLabels {
    protocol: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PhaseLabels {
    phase: &'static str,
}

type Latencies<L> = Family<L, Histogram, fn() -> Histogram>;

/// From 50 µs to about 1.6 s: decisions take microseconds, upstream calls milliseconds.
fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.000_05, 2.0, 16))
}

pub struct Metrics {
    registry: Registry,
    /// Requests sent upstream, of every kind: what `tagpolicy audit` reports it cost.
    upstream_requests: std::sync::atomic::AtomicU64,
    decisions: Family<DecisionLabels, Counter>,
    decision_seconds: Histogram,
    upstream_seconds: Latencies<OperationLabels>,
    upstream_errors: Family<UpstreamErrorLabels, Counter>,
    requests: Family<RouteLabels, Counter>,
    reloads: Family<ResultLabels, Counter>,
    refused: Family<ReasonLabels, Counter>,
    timeouts: Family<PhaseLabels, Counter>,
    connections_open: Gauge,
    connections: Family<ProtocolLabels, Counter>,
    connections_rejected: Counter,
    certificate_reloads: Family<ResultLabels, Counter>,
    certificate_expiry: Family<CertificateLabels, Gauge>,
    tls_handshake_failures: Counter,
    lease_wait_seconds: Histogram,
    leases_lost: Counter,
    lock_delay_waits: Counter,
    lock_delay_seconds: Counter<f64>,
    reconciliations: Counter,
    tag_cache: Family<ResultLabels, Counter>,
    coordination_errors: Counter,
    notifications: Family<ResultLabels, Counter>,
    policy_refreshes: Family<ResultLabels, Counter>,
    policy_stale: Gauge,
    index_fills: Family<ResultLabels, Counter>,
    index_fill_seconds: Histogram,
    index_fill_tags: Counter,
    index_corrections: Family<SourceLabels, Counter>,
    index_checks: Family<ResultLabels, Counter>,
    index_repositories: Gauge,
    index_tags: Gauge,
    index_evictions: Counter,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SourceLabels {
    source: &'static str,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("tagpolicy_gate");
        let decisions = Family::default();
        registry.register(
            "decisions",
            "Decisions on tag-changing requests, by policy and outcome",
            decisions.clone(),
        );
        let decision_seconds = latency_histogram();
        registry.register(
            "decision_seconds",
            "Time to decide a tag-changing request with its policies",
            decision_seconds.clone(),
        );
        let upstream_seconds: Latencies<OperationLabels> =
            Family::new_with_constructor(latency_histogram);
        registry.register(
            "upstream_seconds",
            "Upstream registry latency, by operation (forward, lookup, write, probe, token)",
            upstream_seconds.clone(),
        );
        let upstream_errors = Family::default();
        registry.register(
            "upstream_errors",
            "Upstream requests that failed, by operation and kind (unreachable, tls, timeout, \
             status_5xx: the upstream answered 5xx, invalid: an answer not read)",
            upstream_errors.clone(),
        );
        let requests = Family::default();
        registry.register("requests", "Requests by route", requests.clone());
        let reloads = Family::default();
        registry.register("reloads", "Configuration reloads, by result", reloads.clone());
        let policy_refreshes = Family::default();
        registry.register(
            "policy_refreshes",
            "Resolutions of policy tags again, by result (unchanged, swapped, unreachable, \
             refused, not_loaded)",
            policy_refreshes.clone(),
        );
        let policy_stale = Gauge::default();
        registry.register(
            "policy_stale",
            "Policy tags whose last resolution failed, running the last verified version",
            policy_stale.clone(),
        );
        let refused = Family::default();
        registry.register(
            "refused",
            "Requests refused before any decision, by reason (spelling, parameters, \
             unknown_write, header_too_large)",
            refused.clone(),
        );
        let timeouts = Family::default();
        registry.register(
            "timeouts",
            "Limits reached, by phase (header, body, upstream_write, lock)",
            timeouts.clone(),
        );
        let connections_open = Gauge::default();
        registry.register("connections_open", "Client connections open", connections_open.clone());
        let connections = Family::default();
        registry.register(
            "connections",
            "Client connections served, by protocol (http/1.1, h2 over tls, http/1.1 over tls)",
            connections.clone(),
        );
        let connections_rejected = Counter::default();
        registry.register(
            "connections_rejected",
            "Client connections turned away at the connection limit",
            connections_rejected.clone(),
        );
        let certificate_reloads = Family::default();
        registry.register(
            "certificate_reloads",
            "Reloads of the listener's TLS certificate after its files changed, by result",
            certificate_reloads.clone(),
        );
        // A family, so that a gate without TLS shows no series rather than a 0 that reads
        // as a certificate expired in 1970.
        let certificate_expiry = Family::default();
        registry.register(
            "tls_certificate_expiry_timestamp_seconds",
            "When a TLS certificate of the gate expires (its notAfter, as Unix time), by \
             certificate (listener: the one served to clients; upstream_client: the one \
             shown to the upstream registry)",
            certificate_expiry.clone(),
        );
        let tls_handshake_failures = Counter::default();
        registry.register(
            "tls_handshake_failures",
            "Client connections whose TLS handshake failed",
            tls_handshake_failures.clone(),
        );
        let lease_wait_seconds = latency_histogram();
        registry.register(
            "lease_wait_seconds",
            "Time a tag change waited to hold its repository (lease or in-process lock)",
            lease_wait_seconds.clone(),
        );
        let leases_lost = Counter::default();
        registry.register(
            "leases_lost",
            "Changes abandoned before their upstream write because the lease ran out",
            leases_lost.clone(),
        );
        let lock_delay_waits = Counter::default();
        registry.register(
            "lock_delay_waits",
            "Leases taken over a write left in flight (or an emptied store), waited out",
            lock_delay_waits.clone(),
        );
        let lock_delay_seconds = Counter::<f64>::default();
        registry.register(
            "lock_delay_seconds",
            "Time spent waiting out lock delays",
            lock_delay_seconds.clone(),
        );
        let reconciliations = Counter::default();
        registry.register(
            "reconciliations",
            "Repositories read again from the upstream after a change was left in flight",
            reconciliations.clone(),
        );
        let tag_cache = Family::default();
        registry.register(
            "tag_cache",
            "Current tag digests answered from what the gates know (hit) or looked up (miss)",
            tag_cache.clone(),
        );
        let coordination_errors = Counter::default();
        registry.register(
            "coordination_errors",
            "Tag changes refused because the coordination store could not be reached",
            coordination_errors.clone(),
        );
        let notifications = Family::default();
        registry.register(
            "notifications",
            "Registry notifications received, by result (applied, ignored, refused, invalid)",
            notifications.clone(),
        );
        let index_fills = Family::default();
        registry.register(
            "index_fills",
            "Repositories read into the index from the upstream, by result (ok, error)",
            index_fills.clone(),
        );
        let index_fill_seconds = Histogram::new(exponential_buckets(0.01, 2.0, 16));
        registry.register(
            "index_fill_seconds",
            "Time to read a repository into the index",
            index_fill_seconds.clone(),
        );
        let index_fill_tags = Counter::default();
        registry.register(
            "index_fill_tags",
            "Tags read into the index by fills (its rate is a fill's progress)",
            index_fill_tags.clone(),
        );
        let index_corrections = Family::default();
        registry.register(
            "index_corrections",
            "Index entries found wrong and fixed, by source (dirty: a write of unknown \
             outcome or a notification; lookup: a pushed tag looked up; check: the background check)",
            index_corrections.clone(),
        );
        let index_checks = Family::default();
        registry.register(
            "index_checks",
            "Background checks of a repository's index against the upstream, by result (ok, \
             differences, error)",
            index_checks.clone(),
        );
        let index_repositories = Gauge::default();
        registry.register(
            "index_repositories",
            "Repositories in the index",
            index_repositories.clone(),
        );
        let index_tags = Gauge::default();
        registry.register(
            "index_tags",
            "Tags in this gate's in-memory index (`index.max_tags` bounds it)",
            index_tags.clone(),
        );
        let index_evictions = Counter::default();
        registry.register(
            "index_evictions",
            "Repositories dropped from the in-memory index to keep it within `index.max_tags`",
            index_evictions.clone(),
        );
        // Failures that alerts look for from the first one: their series start at zero, as
        // `increase` sees nothing of a series whose first sample is already 1.
        let zero = |family: &Family<ResultLabels, Counter>, result| {
            let _created = family.get_or_create(&ResultLabels { result });
        };
        zero(&reloads, "error");
        zero(&certificate_reloads, "error");
        for result in ["unreachable", "refused", "not_loaded"] {
            zero(&policy_refreshes, result);
        }
        zero(&index_checks, "differences");
        Metrics {
            upstream_requests: std::sync::atomic::AtomicU64::new(0),
            registry,
            index_fills,
            index_fill_seconds,
            index_fill_tags,
            index_corrections,
            index_checks,
            index_repositories,
            index_tags,
            index_evictions,
            lease_wait_seconds,
            leases_lost,
            lock_delay_waits,
            lock_delay_seconds,
            reconciliations,
            tag_cache,
            coordination_errors,
            notifications,
            policy_refreshes,
            policy_stale,
            decisions,
            decision_seconds,
            upstream_seconds,
            upstream_errors,
            requests,
            reloads,
            refused,
            timeouts,
            connections_open,
            connections,
            connections_rejected,
            certificate_reloads,
            certificate_expiry,
            tls_handshake_failures,
        }
    }

    /// Export the `error` decisions of each policy the rules name at 0 before its first, so
    /// that an alert on their increase sees the first failure (a series that appears at 1
    /// has no increase).
    pub fn expect_policies<'a>(&self, names: impl IntoIterator<Item = &'a str>) {
        for policy in names {
            let labels = DecisionLabels { policy: policy.to_string(), outcome: "error".into() };
            let _created = self.decisions.get_or_create(&labels);
        }
    }

    pub fn decision(&self, policy: &str, outcome: &str) {
        self.decisions
            .get_or_create(&DecisionLabels {
                policy: policy.to_string(),
                outcome: outcome.to_string(),
            })
            .inc();
    }

    pub fn decision_latency(&self, elapsed: Duration) {
        self.decision_seconds.observe(elapsed.as_secs_f64());
    }

    pub fn upstream(&self, operation: &'static str, elapsed: Duration) {
        self.upstream_requests.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.upstream_seconds
            .get_or_create(&OperationLabels { operation })
            .observe(elapsed.as_secs_f64());
    }

    /// An upstream request of `operation` failed in the way `kind` says.
    pub fn upstream_error(&self, operation: &'static str, kind: &'static str) {
        self.upstream_errors.get_or_create(&UpstreamErrorLabels { operation, kind }).inc();
    }

    /// Requests sent upstream so far.
    pub fn upstream_requests(&self) -> u64 {
        self.upstream_requests.load(std::sync::atomic::Ordering::Relaxed)
    }

    pub fn request(&self, route: &'static str) {
        self.requests.get_or_create(&RouteLabels { route }).inc();
    }

    /// One tag's refresh ended with `result`.
    pub fn policy_refresh(&self, result: &'static str) {
        self.policy_refreshes.get_or_create(&ResultLabels { result }).inc();
    }

    /// How many policy tags run a version their registry could not confirm.
    pub fn policy_stale(&self, count: usize) {
        self.policy_stale.set(count as i64);
    }

    pub fn reload(&self, ok: bool) {
        self.reloads.get_or_create(&ResultLabels { result: if ok { "ok" } else { "error" } }).inc();
    }

    pub fn refused(&self, reason: &'static str) {
        self.refused.get_or_create(&ReasonLabels { reason }).inc();
    }

    pub fn timeout(&self, phase: &'static str) {
        self.timeouts.get_or_create(&PhaseLabels { phase }).inc();
    }

    /// Count a connection open until the returned guard is dropped.
    pub fn connection(&self) -> impl Drop + Send + 'static {
        struct Open(Gauge);
        impl Drop for Open {
            fn drop(&mut self) {
                self.0.dec();
            }
        }
        self.connections_open.inc();
        Open(self.connections_open.clone())
    }

    pub fn certificate_reload(&self, ok: bool) {
        let result = if ok { "ok" } else { "error" };
        self.certificate_reloads.get_or_create(&ResultLabels { result }).inc();
    }

    /// The notAfter of `certificate` (`listener` or `upstream_client`), in seconds since the
    /// Unix epoch.
    pub fn certificate_expiry(&self, certificate: &'static str, not_after: i64) {
        self.certificate_expiry.get_or_create(&CertificateLabels { certificate }).set(not_after);
    }

    pub fn tls_handshake_failed(&self) {
        self.tls_handshake_failures.inc();
    }

    /// A connection began to be served with `protocol`.
    pub fn connection_protocol(&self, protocol: &'static str) {
        self.connections.get_or_create(&ProtocolLabels { protocol }).inc();
    }

    pub fn connection_rejected(&self) {
        self.connections_rejected.inc();
    }

    pub fn lease_wait(&self, waited: Duration) {
        self.lease_wait_seconds.observe(waited.as_secs_f64());
    }

    pub fn lease_lost(&self) {
        self.leases_lost.inc();
    }

    pub fn lock_delay_wait(&self, waited: Duration) {
        self.lock_delay_waits.inc();
        self.lock_delay_seconds.inc_by(waited.as_secs_f64());
    }

    pub fn reconciliation(&self) {
        self.reconciliations.inc();
    }

    pub fn tag_cache(&self, hit: bool) {
        let result = if hit { "hit" } else { "miss" };
        self.tag_cache.get_or_create(&ResultLabels { result }).inc();
    }

    pub fn coordination_error(&self) {
        self.coordination_errors.inc();
    }

    pub fn index_fill(&self, ok: bool, took: Duration) {
        let result = if ok { "ok" } else { "error" };
        self.index_fills.get_or_create(&ResultLabels { result }).inc();
        self.index_fill_seconds.observe(took.as_secs_f64());
    }

    pub fn index_fill_tags(&self, count: u64) {
        self.index_fill_tags.inc_by(count);
    }

    pub fn index_correction(&self, source: &'static str) {
        self.index_corrections.get_or_create(&SourceLabels { source }).inc();
    }

    pub fn index_check(&self, result: &'static str) {
        self.index_checks.get_or_create(&ResultLabels { result }).inc();
    }

    pub fn index_size(&self, repositories: usize, tags: Option<usize>) {
        self.index_repositories.set(repositories as i64);
        if let Some(tags) = tags {
            self.index_tags.set(tags as i64);
        }
    }

    pub fn index_evicted(&self, count: usize) {
        self.index_evictions.inc_by(count as u64);
    }

    pub fn notification(&self, result: &'static str) {
        self.notifications.get_or_create(&ResultLabels { result }).inc();
    }

    /// The text exposition format.
    pub fn render(&self) -> String {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry)
            .expect("writing to a String cannot fail");
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_histograms() {
        let metrics = Metrics::new();
        metrics.decision("immutable-tags", "deny");
        metrics.decision("immutable-tags", "deny");
        metrics.upstream("lookup", Duration::from_millis(2));
        metrics.request("manifest_put");
        let text = metrics.render();
        assert!(
            text.contains(
                r#"tagpolicy_gate_decisions_total{policy="immutable-tags",outcome="deny"} 2"#
            ),
            "{text}"
        );
        assert!(
            text.contains(r#"tagpolicy_gate_upstream_seconds_count{operation="lookup"} 1"#),
            "{text}"
        );
        assert!(
            text.contains(r#"tagpolicy_gate_requests_total{route="manifest_put"} 1"#),
            "{text}"
        );
    }

    #[test]
    fn renders_upstream_errors_by_operation_and_kind() {
        let metrics = Metrics::new();
        metrics.upstream_error("lookup", "timeout");
        metrics.upstream_error("lookup", "timeout");
        metrics.upstream_error("forward", "status_5xx");
        let text = metrics.render();
        assert!(
            text.contains(
                r#"tagpolicy_gate_upstream_errors_total{operation="lookup",kind="timeout"} 2"#
            ),
            "{text}"
        );
        assert!(
            text.contains(
                r#"tagpolicy_gate_upstream_errors_total{operation="forward",kind="status_5xx"} 1"#
            ),
            "{text}"
        );
    }

    #[test]
    fn renders_the_certificate_expiry_as_a_timestamp() {
        let metrics = Metrics::new();
        let name = "tagpolicy_gate_tls_certificate_expiry_timestamp_seconds";
        // Without TLS there is no certificate, and no sample to mistake for one.
        assert!(!metrics.render().contains(&format!("{name}{{")), "{}", metrics.render());
        metrics.certificate_expiry("listener", 1_893_456_000);
        metrics.certificate_expiry("listener", 1_924_992_000);
        let text = metrics.render();
        assert!(
            text.contains(&format!("{name}{{certificate=\"listener\"}} 1924992000\n")),
            "{text}"
        );
        assert!(text.contains(&format!("# TYPE {name} gauge")), "{text}");
    }

    #[test]
    fn failures_that_alerts_count_start_at_zero() {
        let text = Metrics::new().render();
        for series in [
            r#"tagpolicy_gate_reloads_total{result="error"} 0"#,
            r#"tagpolicy_gate_certificate_reloads_total{result="error"} 0"#,
            r#"tagpolicy_gate_policy_refreshes_total{result="refused"} 0"#,
            r#"tagpolicy_gate_policy_refreshes_total{result="not_loaded"} 0"#,
            r#"tagpolicy_gate_index_checks_total{result="differences"} 0"#,
        ] {
            assert!(text.contains(series), "{series} missing from\n{text}");
        }
    }
}
