//! Several configured policies deciding together: every policy must allow (deny wins),
//! warnings are collected, and a policy in audit mode only warns.

use crate::decision::{Decision, Finding, Severity};
use crate::embedded;
use crate::engine::Engine;
use crate::error::Error;
use crate::policy::{ConfiguredPolicy, Policy};
use crate::push::{RepositoryView, Request};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

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

/// One entry of a policy list, as written in scenario files and the gate configuration.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicySpec {
    /// An embedded policy's name, or a path to a `.wasm` component (relative to the file
    /// that names it).
    pub policy: String,
    /// The policy's settings; `{}` when absent.
    #[serde(default)]
    pub settings: Option<serde_json::Value>,
    #[serde(default)]
    pub mode: Mode,
    /// Expected sha256 (hex) of the component; loading fails on a mismatch.
    #[serde(default)]
    pub sha256: Option<String>,
}

impl PolicySpec {
    /// Check what can be checked without loading anything.
    pub fn check(&self) -> Result<(), String> {
        if self.policy.trim().is_empty() {
            return Err("policy: empty; name an embedded policy or a `.wasm` file".into());
        }
        if let Some(settings) = &self.settings
            && !settings.is_object()
        {
            return Err("settings: must be a mapping of setting names to values".into());
        }
        if let Some(pin) = &self.sha256
            && !(pin.len() == 64 && pin.bytes().all(|b| b.is_ascii_hexdigit()))
        {
            return Err(format!("sha256: `{pin}` is not 64 hex digits"));
        }
        Ok(())
    }
}

/// Loads policies named by [`PolicySpec`]s, compiling each component once however many
/// files name it.
pub struct Loader {
    engine: Engine,
    loaded: Mutex<HashMap<String, Policy>>,
}

impl Loader {
    pub fn new(engine: Engine) -> Self {
        Self { engine, loaded: Mutex::new(HashMap::new()) }
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Load `reference`: an embedded policy's name, or a path resolved against `base_dir`.
    pub fn load(&self, reference: &str, base_dir: &Path) -> Result<Policy, Error> {
        let key = if embedded::bytes(reference).is_some() {
            reference.to_string()
        } else {
            base_dir.join(reference).to_string_lossy().into_owned()
        };
        if let Some(policy) = self.loaded.lock().unwrap_or_else(|e| e.into_inner()).get(&key) {
            return Ok(policy.clone());
        }
        let policy = if embedded::bytes(reference).is_some() {
            self.engine.load_embedded(reference)?
        } else if reference.ends_with(".wasm") || Path::new(&key).exists() {
            self.engine.load_file(&key)?
        } else {
            return Err(Error::UnknownPolicy { name: reference.to_string() });
        };
        self.loaded.lock().unwrap_or_else(|e| e.into_inner()).insert(key, policy.clone());
        Ok(policy)
    }

    /// Load and configure one spec.
    pub fn configure(&self, spec: &PolicySpec, base_dir: &Path) -> Result<ConfiguredPolicy, Error> {
        let policy = self.load(&spec.policy, base_dir)?;
        if let Some(expected) = &spec.sha256
            && !expected.eq_ignore_ascii_case(policy.sha256())
        {
            return Err(Error::PinMismatch {
                origin: format!("`{}`", spec.policy),
                expected: expected.clone(),
                actual: policy.sha256().to_string(),
            });
        }
        let empty = serde_json::Value::Object(Default::default());
        policy.configure(spec.settings.as_ref().unwrap_or(&empty))
    }

    /// Load and configure every spec, in order. The error says which entry failed.
    pub fn policy_set(
        &self,
        specs: &[PolicySpec],
        base_dir: &Path,
    ) -> Result<PolicySet, (usize, Error)> {
        let mut set = PolicySet::new();
        for (index, spec) in specs.iter().enumerate() {
            set.push(self.configure(spec, base_dir).map_err(|e| (index, e))?, spec.mode);
        }
        Ok(set)
    }
}
