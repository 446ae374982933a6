//! Decisions as the host reports them: attributed to policies, combined across a policy set,
//! with caps on what one policy may report ([`MAX_FINDINGS`], [`MAX_REASON_BYTES`]).

use crate::error::Failure;
use serde::{Deserialize, Serialize};

/// Longest reason kept from a policy, in bytes; longer ones are cut with a marker.
pub const MAX_REASON_BYTES: usize = 1024;
/// Most findings kept from one policy for one request.
pub const MAX_FINDINGS: usize = 64;

/// The overall answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// No policy denied or warned: the request goes ahead.
    Allow,
    /// No policy denied, at least one warned: the request goes ahead with the warnings.
    Warn,
    /// At least one policy denied: the request is refused.
    Deny,
    /// At least one policy failed (trapped, ran past a limit, panicked, threw) and fails
    /// closed: the request is refused, but no rule decided it. Kept apart from [`Deny`]
    /// so that a crash cannot pass for a rule's denial.
    ///
    /// [`Deny`]: Outcome::Deny
    Error,
}

impl Outcome {
    /// `allow`, `warn`, `deny` or `error`, as written in scenario files and JSON output.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Allow => "allow",
            Outcome::Warn => "warn",
            Outcome::Deny => "deny",
            Outcome::Error => "error",
        }
    }

    /// Whether the request is refused: [`Deny`](Outcome::Deny) or
    /// [`Error`](Outcome::Error).
    pub fn refuses(self) -> bool {
        match self {
            Outcome::Allow | Outcome::Warn => false,
            Outcome::Deny | Outcome::Error => true,
        }
    }
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether a finding refuses the request or only reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The finding refuses the request.
    Deny,
    /// The finding is reported; the request goes ahead.
    Warn,
}

/// One reason, attributed to the policy that gave it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// The name of the policy that reported it.
    pub policy: String,
    /// Whether it refuses the request.
    pub severity: Severity,
    /// The tag it is about, if any.
    pub tag: Option<String>,
    /// The policy's sentence, cut to [`MAX_REASON_BYTES`]; for a failure, the host's
    /// sentence naming the policy and the failure.
    pub reason: String,
    /// Set when the policy did not decide but failed: the finding is the host's, made
    /// from the failure by the [`PolicySet`](crate::PolicySet) (denying when the policy
    /// fails closed). In JSON `{"kind": "trap", "message": "trapped: …"}`, absent when
    /// unset.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure: Option<Failure>,
}

impl Finding {
    /// A policy's own finding (no failure).
    pub fn new(
        policy: impl Into<String>,
        severity: Severity,
        tag: Option<String>,
        reason: impl Into<String>,
    ) -> Self {
        Finding { policy: policy.into(), severity, tag, reason: reason.into(), failure: None }
    }
}

/// The decision on one request: error if a failure denies, else deny if any finding
/// denies, else warn if any finding warns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Decision {
    /// Follows from the findings' severities.
    pub outcome: Outcome,
    /// Every policy's findings, in policy-set order.
    pub findings: Vec<Finding>,
    /// What the policies printed while deciding, one entry per policy that printed, each
    /// capped at [`Limits::output_bytes`](crate::Limits::output_bytes). For the author and the
    /// logs only: it never changes the outcome.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub output: Vec<crate::Printed>,
}

impl Decision {
    /// An allow without findings.
    pub fn allow() -> Self {
        Decision { outcome: Outcome::Allow, findings: Vec::new(), output: Vec::new() }
    }

    /// Build from findings; the outcome follows from their severities, and a denying
    /// finding made from a failure makes it [`Outcome::Error`].
    pub fn from_findings(findings: Vec<Finding>) -> Self {
        let denials = || findings.iter().filter(|f| f.severity == Severity::Deny);
        let outcome = if denials().any(|f| f.failure.is_some()) {
            Outcome::Error
        } else if denials().next().is_some() {
            Outcome::Deny
        } else if findings.is_empty() {
            Outcome::Allow
        } else {
            Outcome::Warn
        };
        Decision { outcome, findings, output: Vec::new() }
    }

    /// Whether the request goes ahead (allow or warn).
    pub fn is_allowed(&self) -> bool {
        !self.outcome.refuses()
    }

    /// The findings made from a policy's failure, whatever their severity (a policy that
    /// fails open, or in audit mode, only warns).
    pub fn failures(&self) -> impl Iterator<Item = &Finding> {
        self.findings.iter().filter(|f| f.failure.is_some())
    }

    /// The findings that deny.
    pub fn denials(&self) -> impl Iterator<Item = &Finding> {
        self.findings.iter().filter(|f| f.severity == Severity::Deny)
    }

    /// The findings that only warn.
    pub fn warnings(&self) -> impl Iterator<Item = &Finding> {
        self.findings.iter().filter(|f| f.severity == Severity::Warn)
    }

    /// The reasons of the deciding severity joined into one line, as a registry client
    /// shows it: "tag `1.2.3` is immutable: ...; a new image needs ...".
    pub fn summary(&self) -> String {
        let deciding = if self.outcome.refuses() { Severity::Deny } else { Severity::Warn };
        self.findings
            .iter()
            .filter(|f| f.severity == deciding)
            .map(|f| f.reason.as_str())
            .collect::<Vec<_>>()
            .join("; ")
    }
}

/// What a policy reports through `verdict` during one call, capped as it arrives so that a
/// policy cannot make the host hold or print more than [`MAX_FINDINGS`] findings of
/// [`MAX_REASON_BYTES`] each.
#[derive(Debug, Default)]
pub(crate) struct Reports {
    kept: Vec<(Severity, Option<String>, String)>,
    /// Findings beyond the cap: how many, and the worst severity among them.
    dropped: usize,
    dropped_severity: Option<Severity>,
    /// The first reason the policy gave through `verdict.fail`: it could not decide.
    failed: Option<String>,
}

impl Reports {
    pub(crate) fn push(&mut self, severity: Severity, tag: Option<String>, reason: String) {
        if self.kept.len() < MAX_FINDINGS {
            let tag = tag.map(|tag| truncate(tag, MAX_REASON_BYTES));
            self.kept.push((severity, tag, truncate(reason, MAX_REASON_BYTES)));
        } else {
            self.dropped += 1;
            // A dropped denial makes the summary line a denial.
            if self.dropped_severity != Some(Severity::Deny) {
                self.dropped_severity = Some(severity);
            }
        }
    }

    /// The policy said it cannot decide (`verdict.fail`); the first reason counts.
    pub(crate) fn fail(&mut self, reason: String) {
        self.failed.get_or_insert_with(|| truncate(reason, MAX_REASON_BYTES));
    }

    /// The reason the policy gave for failing, if it did: then the call is a failure, not a
    /// decision, whatever else it reported.
    pub(crate) fn failed(&mut self) -> Option<String> {
        self.failed.take()
    }

    /// The decision the reports make, attributed to `policy`: nothing reported allows.
    pub(crate) fn into_decision(self, policy: &str) -> Decision {
        let mut findings: Vec<Finding> = self
            .kept
            .into_iter()
            .map(|(severity, tag, reason)| Finding::new(policy, severity, tag, reason))
            .collect();
        if let Some(severity) = self.dropped_severity {
            let reason = format!("… and {} more findings", self.dropped);
            findings.push(Finding::new(policy, severity, None, reason));
        }
        Decision::from_findings(findings)
    }
}

/// Cut `text` to at most `limit` bytes on a character boundary, marking the cut.
pub fn truncate(mut text: String, limit: usize) -> String {
    const MARKER: &str = "… (truncated)";
    if text.len() <= limit {
        return text;
    }
    let mut end = limit.saturating_sub(MARKER.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text.truncate(end);
    text.push_str(MARKER);
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reported(policy: &str, findings: &[(Severity, Option<&str>, &str)]) -> Decision {
        let mut reports = Reports::default();
        for (severity, tag, reason) in findings {
            reports.push(*severity, tag.map(String::from), reason.to_string());
        }
        reports.into_decision(policy)
    }

    #[test]
    fn deny_wins_over_warn() {
        let mut findings = reported("a", &[(Severity::Warn, None, "w")]).findings;
        findings.extend(reported("b", &[(Severity::Deny, Some("1.0"), "d")]).findings);
        let decision = Decision::from_findings(findings);
        assert_eq!(decision.outcome, Outcome::Deny);
        assert_eq!(decision.summary(), "d");
        assert_eq!(decision.warnings().count(), 1);
    }

    #[test]
    fn long_reasons_and_many_findings_are_capped() {
        let reason: Vec<String> = (0..100).map(|i| format!("r{i}{}", "é".repeat(2000))).collect();
        let many: Vec<(Severity, Option<&str>, &str)> =
            reason.iter().map(|r| (Severity::Deny, None, r.as_str())).collect();
        let decision = reported("loud", &many);
        assert_eq!(decision.findings.len(), MAX_FINDINGS + 1);
        assert!(decision.findings.iter().all(|f| f.reason.len() <= MAX_REASON_BYTES));
        assert!(decision.findings[0].reason.ends_with("… (truncated)"));
        assert_eq!(decision.findings[MAX_FINDINGS].reason, "… and 36 more findings");
        assert_eq!(decision.findings[MAX_FINDINGS].severity, Severity::Deny);
    }

    #[test]
    fn a_failure_that_denies_is_an_error_and_one_that_warns_is_a_warning() {
        let failed = |severity| Finding {
            failure: Some(Failure::Trap("wasm `unreachable` instruction executed".into())),
            ..Finding::new("crashy", severity, None, "policy `crashy` trapped")
        };
        let denied = reported("rule", &[(Severity::Deny, None, "no")]).findings;
        let decision =
            Decision::from_findings([denied.clone(), vec![failed(Severity::Deny)]].concat());
        assert_eq!(decision.outcome, Outcome::Error);
        assert!(!decision.is_allowed());
        assert_eq!(decision.summary(), "no; policy `crashy` trapped");
        assert_eq!(decision.failures().count(), 1);
        let json = serde_json::to_value(&decision.findings[1]).unwrap();
        assert_eq!(json["failure"]["kind"], "trap");
        assert_eq!(json["failure"]["message"], "trapped: wasm `unreachable` instruction executed");
        assert!(serde_json::to_value(&decision.findings[0]).unwrap().get("failure").is_none());
        // Failing open (or in audit mode) the request goes ahead; the failure stays recorded.
        let open = Decision::from_findings(vec![failed(Severity::Warn)]);
        assert_eq!(open.outcome, Outcome::Warn);
        assert_eq!(open.failures().count(), 1);
        assert_eq!(Decision::from_findings(denied).outcome, Outcome::Deny);
    }

    #[test]
    fn nothing_reported_allows() {
        let decision = reported("p", &[]);
        assert!(decision.is_allowed());
        assert_eq!(decision.summary(), "");
    }
}
