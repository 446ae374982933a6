//! The decision on one write: the repository's policies on a blocking thread, the gate's
//! own denials, and the decision's log entry and metrics.

use super::exchange::Exchange;
use crate::log::{self, Entry, Reason};
use crate::state::{DecisionView, Tags, gate_denial};
use std::sync::Arc;
use std::time::Instant;
use tagpolicy::Manifest;
use tagpolicy::{Decision, Finding, Severity};
use tagpolicy::{Operation, Request};

impl Exchange<'_> {
    /// Decide `operation` with the repository's policies; log and count the decision.
    /// `pushed` is the digest being pushed with its manifest's facts.
    pub(super) async fn decide(
        &self,
        operation: Operation,
        pushed: Option<(String, Result<Manifest, String>)>,
        generation: u64,
    ) -> (Request, Decision) {
        let actor = self.established.actor.clone();
        let request = Request {
            repository: self.repository().to_string(),
            actor,
            operation,
            time: tagpolicy::Instant::now(),
        };
        let rule = self.rules.rule_for(self.repository());
        let identical = match &request.operation {
            Operation::Push(push) => {
                push.tags.iter().all(|change| change.current.as_deref() == Some(&push.digest))
            }
            _ => false,
        };
        let decided = Instant::now();
        let decision = match rule {
            // Re-pushing what is already there changes nothing; no policy needs to agree.
            _ if identical => {
                self.shared.metrics.request("identical");
                Decision::allow()
            }
            None => Decision::allow(),
            Some(rule) => {
                let policies = rule.policies.clone();
                let tags =
                    match self.shared.index.as_ref().and_then(|i| i.reader(self.repository())) {
                        Some(reader) => Tags::Index(reader),
                        None => Tags::Upstream { cache: self.shared.cache.clone(), generation },
                    };
                let view = Arc::new(DecisionView::new(
                    self.shared.upstream.clone(),
                    self.repository(),
                    self.reader(),
                    tags,
                    pushed,
                    self.shared.limits.max_config_bytes,
                ));
                let (evaluated, read) = (request.clone(), view.clone());
                let outcome =
                    tokio::task::spawn_blocking(move || policies.evaluate(&evaluated, read)).await;
                for (policy, _) in rule.policies.policies() {
                    let own = outcome.as_ref().ok().map(|d| policy_outcome(d, policy.name()));
                    self.shared.metrics.decision(policy.name(), own.unwrap_or("error"));
                }
                match outcome {
                    Ok(decision) => view.settle(decision),
                    Err(error) => gate_denial(format!(
                        "the evaluation failed ({error}); the request is denied"
                    )),
                }
            }
        };
        self.shared.metrics.decision_latency(decided.elapsed());
        if let Some(log) = self.log {
            let source = self.established.source;
            log.write(&log_entry(&request, &decision, rule, source, self.started));
        }
        tracing::info!(
            repository = %request.repository,
            tags = ?request.tags(),
            decision = %decision.outcome,
            reasons = %decision.summary(),
            "decided"
        );
        // What a policy printed is its author's debugging, bounded per call by the engine.
        for printed in &decision.output {
            tracing::info!(
                repository = %request.repository,
                policy = %printed.policy,
                dropped_bytes = printed.dropped_bytes,
                output = %printed.text,
                "policy output"
            );
        }
        (request, decision)
    }
}

/// What `policy` contributed: `error` when it failed and that refused the request, as the
/// metric counts it.
fn policy_outcome(decision: &Decision, policy: &str) -> &'static str {
    let own: Vec<Finding> =
        decision.findings.iter().filter(|f| f.policy == policy).cloned().collect();
    Decision::from_findings(own).outcome.as_str()
}

fn log_entry<'a>(
    request: &'a Request,
    decision: &'a Decision,
    rule: Option<&'a crate::config::Rule>,
    actor_source: crate::identity::ActorSource,
    started: Instant,
) -> Entry<'a> {
    let digest = match &request.operation {
        Operation::Push(push) => Some(push.digest.as_str()),
        Operation::DeleteTags(_) => None,
        Operation::DeleteManifest(deletion) => Some(deletion.digest.as_str()),
    };
    Entry {
        time: log::now_rfc3339(),
        repository: &request.repository,
        operation: request.operation.name(),
        tags: request.tags(),
        digest,
        actor: request.actor.id.as_deref(),
        actor_source,
        decision: decision.outcome.as_str(),
        reasons: decision
            .findings
            .iter()
            .map(|f| Reason {
                policy: &f.policy,
                severity: match f.severity {
                    Severity::Deny => "deny",
                    Severity::Warn => "warn",
                },
                tag: f.tag.as_deref(),
                reason: &f.reason,
                failure: f.failure.as_ref().map(|failure| failure.kind()),
            })
            .collect(),
        policies: rule
            .map(|rule| rule.policies.policies().map(|(p, _)| p.name()).collect())
            .unwrap_or_default(),
        latency_ms: started.elapsed().as_secs_f64() * 1000.0,
    }
}
