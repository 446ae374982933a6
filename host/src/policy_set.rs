//! Several configured policies deciding together: every policy must allow (deny wins),
//! warnings are collected, and a policy in audit mode only warns.

use crate::decision::{Decision, Finding, Severity};
use crate::policy::ConfiguredPolicy;
use crate::push::{RepositoryView, Request};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// How a policy's denials count.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Denials refuse the request.
    #[default]
    Enforce,
    /// Denials are reported as warnings; the request goes ahead. For trying a rule out.
    Audit,
}

/// Configured policies in order, each with its mode. Share it across threads in an `Arc`.
#[derive(Default)]
pub struct PolicySet {
    members: Vec<(ConfiguredPolicy, Mode)>,
}

impl PolicySet {
    pub fn new() -> Self {
        Self::default()
    }

    /// Add a policy; builder style.
    pub fn with(mut self, policy: ConfiguredPolicy, mode: Mode) -> Self {
        self.push(policy, mode);
        self
    }

    pub fn push(&mut self, policy: ConfiguredPolicy, mode: Mode) {
        self.members.push((policy, mode));
    }

    pub fn policies(&self) -> impl Iterator<Item = (&ConfiguredPolicy, Mode)> {
        self.members.iter().map(|(policy, mode)| (policy, *mode))
    }

    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// Decide `request` with every policy. A policy that fails (trap, deadline, memory)
    /// denies (fail closed), with a reason that names the policy and the failure.
    pub fn evaluate(&self, request: &Request, repository: Arc<dyn RepositoryView>) -> Decision {
        let mut findings = Vec::new();
        for (policy, mode) in &self.members {
            let own = match policy.evaluate(request, repository.clone()) {
                Ok(decision) => decision.findings,
                Err(failure) => vec![Finding {
                    policy: policy.name().to_string(),
                    severity: Severity::Deny,
                    tag: None,
                    reason: format!("policy `{}` {failure}; the request is denied", policy.name()),
                }],
            };
            findings.extend(own.into_iter().map(|mut finding| {
                if *mode == Mode::Audit && finding.severity == Severity::Deny {
                    finding.severity = Severity::Warn;
                    finding.reason = format!("audit: would deny: {}", finding.reason);
                }
                finding
            }));
        }
        Decision::from_findings(findings)
    }
}
