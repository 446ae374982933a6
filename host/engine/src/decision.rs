//! Decisions as the host reports them: attributed to policies, combined across a policy set.

use crate::bindings;
use serde::{Deserialize, Serialize};

/// Longest reason kept from a policy, in bytes; longer ones are cut with a marker.
pub const MAX_REASON_BYTES: usize = 1024;
/// Most findings kept from one policy for one request.
pub const MAX_FINDINGS: usize = 64;

/// The overall answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Allow,
    Warn,
    Deny,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Allow => "allow",
            Outcome::Warn => "warn",
            Outcome::Deny => "deny",
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
    Deny,
    Warn,
}

/// One reason, attributed to the policy that gave it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub policy: String,
    pub severity: Severity,
    /// The tag it is about, if any.
    pub tag: Option<String>,
    pub reason: String,
}

/// The decision on one request: deny if any finding denies, else warn if any warns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Decision {
    pub outcome: Outcome,
    pub findings: Vec<Finding>,
}

impl Decision {
    pub fn allow() -> Self {
        Decision { outcome: Outcome::Allow, findings: Vec::new() }
    }

    /// Build from findings; the outcome follows from their severities.
    pub fn from_findings(findings: Vec<Finding>) -> Self {
        let outcome = if findings.iter().any(|f| f.severity == Severity::Deny) {
            Outcome::Deny
        } else if findings.is_empty() {
            Outcome::Allow
        } else {
            Outcome::Warn
        };
        Decision { outcome, findings }
    }

    pub fn is_allowed(&self) -> bool {
        self.outcome != Outcome::Deny
    }

    pub fn denials(&self) -> impl Iterator<Item = &Finding> {
        self.findings.iter().filter(|f| f.severity == Severity::Deny)
    }

    pub fn warnings(&self) -> impl Iterator<Item = &Finding> {
        self.findings.iter().filter(|f| f.severity == Severity::Warn)
    }

    /// The reasons of the deciding severity joined into one line, as a registry client
    /// shows it: "tag `1.2.3` is immutable: ...; a new image needs ...".
    pub fn summary(&self) -> String {
        let deciding = match self.outcome {
            Outcome::Deny => Severity::Deny,
            _ => Severity::Warn,
        };
        self.findings
            .iter()
            .filter(|f| f.severity == deciding)
            .map(|f| f.reason.as_str())
            .collect::<Vec<_>>()
            .join("; ")
    }
}

/// Turn a policy's answer into attributed findings, capping what a policy can make the host
/// hold or print.
pub(crate) fn from_policy(policy: &str, decision: bindings::Decision) -> Decision {
    let (severity, findings) = match decision {
        bindings::Decision::Allow => return Decision::allow(),
        bindings::Decision::Warn(findings) => (Severity::Warn, findings),
        bindings::Decision::Deny(findings) => (Severity::Deny, findings),
    };
    let total = findings.len();
    let mut kept: Vec<Finding> = findings
        .into_iter()
        .take(MAX_FINDINGS)
        .map(|f| Finding {
            policy: policy.to_string(),
            severity,
            tag: f.tag.map(|tag| truncate(tag, MAX_REASON_BYTES)),
            reason: truncate(f.reason, MAX_REASON_BYTES),
        })
        .collect();
    if total > MAX_FINDINGS {
        kept.push(Finding {
            policy: policy.to_string(),
            severity,
            tag: None,
            reason: format!("… and {} more findings", total - MAX_FINDINGS),
        });
    }
    if kept.is_empty() {
        // A deny (or warn) with no finding still counts; say who gave it.
        kept.push(Finding {
            policy: policy.to_string(),
            severity,
            tag: None,
            reason: format!("policy `{policy}` gave no reason"),
        });
    }
    Decision::from_findings(kept)
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

    fn finding(tag: Option<&str>, reason: &str) -> bindings::tagpolicy::policy::types::Finding {
        bindings::tagpolicy::policy::types::Finding {
            tag: tag.map(String::from),
            reason: reason.to_string(),
        }
    }

    #[test]
    fn deny_wins_over_warn() {
        let mut findings =
            from_policy("a", bindings::Decision::Warn(vec![finding(None, "w")])).findings;
        findings.extend(
            from_policy("b", bindings::Decision::Deny(vec![finding(Some("1.0"), "d")])).findings,
        );
        let decision = Decision::from_findings(findings);
        assert_eq!(decision.outcome, Outcome::Deny);
        assert_eq!(decision.summary(), "d");
        assert_eq!(decision.warnings().count(), 1);
    }

    #[test]
    fn an_empty_denial_still_denies_and_names_the_policy() {
        let decision = from_policy("quiet", bindings::Decision::Deny(vec![]));
        assert_eq!(decision.outcome, Outcome::Deny);
        assert_eq!(decision.summary(), "policy `quiet` gave no reason");
    }

    #[test]
    fn long_reasons_and_many_findings_are_capped() {
        let many = (0..100).map(|i| finding(None, &format!("r{i}{}", "é".repeat(2000)))).collect();
        let decision = from_policy("loud", bindings::Decision::Deny(many));
        assert_eq!(decision.findings.len(), MAX_FINDINGS + 1);
        assert!(decision.findings.iter().all(|f| f.reason.len() <= MAX_REASON_BYTES));
        assert!(decision.findings[0].reason.ends_with("… (truncated)"));
        assert_eq!(decision.findings[MAX_FINDINGS].reason, "… and 36 more findings");
    }

    #[test]
    fn allow_has_no_findings() {
        let decision = from_policy("p", bindings::Decision::Allow);
        assert!(decision.is_allowed());
        assert_eq!(decision.summary(), "");
    }
}
