//! Several configured policies deciding together: every policy must allow (deny wins),
//! warnings are collected, and a policy in audit mode only warns. Also the entries that name
//! policies in files ([`PolicySpec`], [`LimitsSpec`]) and the [`Loader`] that turns them into
//! configured policies, compiling each component once.

use crate::decision::{Decision, Finding, Severity};
use crate::embedded;
use crate::engine::Engine;
use crate::error::Error;
use crate::limits::Limits;
use crate::policy::{ConfiguredPolicy, Isolation, Policy};
use crate::push::{RepositoryView, Request};
use crate::source::{self, PolicySource};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

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

/// What a policy's failure (trap, deadline, memory limit) means for the request.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FailMode {
    /// Deny the request, saying which policy failed and how.
    #[default]
    Closed,
    /// Allow the request with a warning that says which policy failed and how.
    Open,
}

/// How a member of a policy set counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Enforcement {
    /// How its denials count.
    pub mode: Mode,
    /// What its failures mean.
    pub fail: FailMode,
}

impl From<Mode> for Enforcement {
    fn from(mode: Mode) -> Self {
        Enforcement { mode, fail: FailMode::Closed }
    }
}

/// Configured policies in order, each with its enforcement. Share it across threads in
/// an `Arc`.
#[derive(Default)]
pub struct PolicySet {
    members: Vec<(ConfiguredPolicy, Enforcement)>,
}

impl PolicySet {
    /// An empty set, which allows everything.
    pub fn new() -> Self {
        Self::default()
    }

    /// Add a policy (with a [`Mode`] or a full [`Enforcement`]); builder style.
    pub fn with(mut self, policy: ConfiguredPolicy, enforcement: impl Into<Enforcement>) -> Self {
        self.push(policy, enforcement);
        self
    }

    /// Add a policy (with a [`Mode`] or a full [`Enforcement`]).
    pub fn push(&mut self, policy: ConfiguredPolicy, enforcement: impl Into<Enforcement>) {
        self.members.push((policy, enforcement.into()));
    }

    /// The members in order, with their enforcement.
    pub fn policies(&self) -> impl Iterator<Item = (&ConfiguredPolicy, Enforcement)> {
        self.members.iter().map(|(policy, enforcement)| (policy, *enforcement))
    }

    /// Whether the set has no policy.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// Decide `request` with every policy. A policy that fails (trap, deadline, memory)
    /// denies (fail closed, making the outcome [`Outcome::Error`](crate::Outcome::Error))
    /// or warns (fail open), with a finding that keeps the [`Failure`](crate::Failure) and
    /// a reason that names the policy and the failure.
    pub fn evaluate(&self, request: &Request, repository: Arc<dyn RepositoryView>) -> Decision {
        let mut findings = Vec::new();
        let mut output = Vec::new();
        for (policy, enforcement) in &self.members {
            let (result, printed) = policy.evaluate_printing(request, repository.clone());
            output.extend(printed);
            let own = match result {
                Ok(decision) => decision.findings,
                Err(failure) => {
                    let (severity, outcome) = match enforcement.fail {
                        FailMode::Closed => (Severity::Deny, "the request is denied"),
                        FailMode::Open => (Severity::Warn, "allowed because it fails open"),
                    };
                    vec![Finding {
                        policy: policy.name().to_string(),
                        severity,
                        tag: None,
                        reason: format!("policy `{}` {failure}; {outcome}", policy.name()),
                        failure: Some(failure),
                    }]
                }
            };
            findings.extend(own.into_iter().map(|mut finding| {
                if enforcement.mode == Mode::Audit && finding.severity == Severity::Deny {
                    finding.severity = Severity::Warn;
                    finding.reason = format!("audit: would deny: {}", finding.reason);
                }
                finding
            }));
        }
        Decision { output, ..Decision::from_findings(findings) }
    }
}

/// One entry of a policy list, as written in scenario files and the gate configuration.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicySpec {
    /// An embedded policy's name, a path to a `.wasm` component (relative to the file
    /// that names it), or a registry reference (`oci://host/repo@sha256:…`) that the
    /// loader's [source](Loader::with_source) fetches.
    pub policy: String,
    /// The policy's settings; `{}` when absent.
    #[serde(default)]
    pub settings: Option<serde_json::Value>,
    #[serde(default)]
    /// `enforce` (default) or `audit`: [`Mode`].
    pub mode: Mode,
    /// What a failure of the policy means: `closed` (deny, the default) or `open` (warn).
    #[serde(default)]
    pub fail: FailMode,
    /// Overrides of the engine's default limits.
    #[serde(default)]
    pub limits: Option<LimitsSpec>,
    /// `reuse` (default) or `isolated` (a fresh instance for every request).
    #[serde(default)]
    pub isolation: Option<Isolation>,
    /// Expected sha256 (hex) of the component; loading fails on a mismatch.
    #[serde(default)]
    pub sha256: Option<String>,
}

impl PolicySpec {
    /// A spec for `policy` with its settings and every other field at its default.
    pub fn new(policy: impl Into<String>, settings: Option<serde_json::Value>) -> Self {
        Self {
            policy: policy.into(),
            settings,
            mode: Mode::Enforce,
            fail: FailMode::Closed,
            limits: None,
            isolation: None,
            sha256: None,
        }
    }

    /// The entry's mode and fail mode.
    pub fn enforcement(&self) -> Enforcement {
        Enforcement { mode: self.mode, fail: self.fail }
    }
}

/// Limits as written in a policy entry; what is absent keeps the engine's default.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsSpec {
    /// Deadline of one evaluation, in milliseconds.
    pub evaluate_ms: Option<u64>,
    /// Deadline of loading and configuring, in milliseconds.
    pub configure_ms: Option<u64>,
    /// Linear memory cap, in MiB.
    pub memory_mib: Option<usize>,
    /// Deadline of the host's work on behalf of one evaluation (index queries, image facts
    /// read from a registry), in milliseconds: [`Limits::lookups_deadline`].
    pub lookups_ms: Option<u64>,
}

impl LimitsSpec {
    /// `limits` with the values this entry gives replaced.
    pub fn apply(&self, mut limits: Limits) -> Limits {
        if let Some(ms) = self.evaluate_ms {
            limits.evaluate_deadline = Duration::from_millis(ms);
        }
        if let Some(ms) = self.configure_ms {
            limits.configure_deadline = Duration::from_millis(ms);
        }
        if let Some(mib) = self.memory_mib {
            limits.memory_bytes = mib.saturating_mul(1 << 20);
        }
        if let Some(ms) = self.lookups_ms {
            limits.lookups_deadline = Duration::from_millis(ms);
        }
        limits
    }

    fn check(&self) -> Result<(), String> {
        let in_range = |value: Option<u64>, max: u64| value.is_none_or(|v| (1..=max).contains(&v));
        if !in_range(self.evaluate_ms, 60_000) {
            return Err("limits.evaluate_ms: must be between 1 and 60000".into());
        }
        if !in_range(self.configure_ms, 600_000) {
            return Err("limits.configure_ms: must be between 1 and 600000".into());
        }
        if !in_range(self.memory_mib.map(|m| m as u64), 4096) {
            return Err("limits.memory_mib: must be between 1 and 4096".into());
        }
        if !in_range(self.lookups_ms, 600_000) {
            return Err("limits.lookups_ms: must be between 1 and 600000".into());
        }
        Ok(())
    }
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
        if let Some(limits) = &self.limits {
            limits.check()?;
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
    source: Option<Arc<dyn PolicySource>>,
}

impl Loader {
    /// A loader that compiles with `engine` and fetches nothing.
    pub fn new(engine: Engine) -> Self {
        Self { engine, loaded: Mutex::new(HashMap::new()), source: None }
    }

    /// Fetch references with a scheme (`oci://…`) from `source`; without one they are
    /// refused.
    pub fn with_source(mut self, source: Arc<dyn PolicySource>) -> Self {
        self.source = Some(source);
        self
    }

    /// The engine policies are loaded with.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Load `reference`: an embedded policy's name, a path resolved against `base_dir`, or
    /// a reference with a scheme, fetched by the [source](Loader::with_source).
    pub fn load(&self, reference: &str, base_dir: &Path) -> Result<Policy, Error> {
        self.load_pinned(reference, base_dir, None)
    }

    /// Like [`Loader::load`], but when `pin` (hex sha256) is given the bytes are checked
    /// against it before anything is compiled.
    pub fn load_pinned(
        &self,
        reference: &str,
        base_dir: &Path,
        pin: Option<&str>,
    ) -> Result<Policy, Error> {
        let (bytes, origin) = match embedded::bytes(reference) {
            Some(bytes) => (Cow::Borrowed(bytes), format!("embedded policy `{reference}`")),
            None if source::is_remote(reference) => {
                let Some(source) = &self.source else {
                    return Err(Error::NoSource { reference: reference.to_string() });
                };
                let fetched = source
                    .fetch(reference)
                    .map_err(|source| Error::Fetch { reference: reference.to_string(), source })?;
                (Cow::Owned(fetched.bytes), fetched.origin)
            }
            None => {
                let path = base_dir.join(reference);
                if !reference.ends_with(".wasm") && !path.exists() {
                    return Err(Error::UnknownPolicy { name: reference.to_string() });
                }
                let bytes = std::fs::read(&path)
                    .map_err(|source| Error::Read { path: path.clone(), source })?;
                (Cow::Owned(bytes), format!("`{}`", path.display()))
            }
        };
        let sha256 = crate::digest::Digest::of(&bytes).hex();
        if let Some(expected) = pin
            && !expected.eq_ignore_ascii_case(&sha256)
        {
            return Err(Error::PinMismatch {
                origin,
                expected: expected.to_string(),
                actual: sha256,
            });
        }
        // Keyed by content: a file that changed is compiled again, the same bytes once.
        let mut loaded = self.loaded.lock();
        // A component no configured policy uses any more (a reload replaced it, a followed
        // tag moved on) is released here, with its compiled code and patterns.
        loaded.retain(|_, policy| policy.in_use());
        if let Some(policy) = loaded.get(&sha256) {
            return Ok(policy.clone());
        }
        drop(loaded);
        let policy = self.engine.load_bytes_with_origin(&bytes, origin)?;
        self.loaded.lock().insert(sha256, policy.clone());
        Ok(policy)
    }

    /// Load and configure one spec.
    pub fn configure(&self, spec: &PolicySpec, base_dir: &Path) -> Result<ConfiguredPolicy, Error> {
        let policy = self.load_pinned(&spec.policy, base_dir, spec.sha256.as_deref())?;
        let policy = match &spec.limits {
            Some(limits) => policy.with_limits(limits.apply(policy.limits()))?,
            None => policy,
        };
        let policy = match spec.isolation {
            Some(isolation) => policy.with_isolation(isolation),
            None => policy,
        };
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
            set.push(self.configure(spec, base_dir).map_err(|e| (index, e))?, spec.enforcement());
        }
        Ok(set)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn components_no_configured_policy_uses_are_released() {
        let loader = Loader::new(Engine::new().unwrap());
        let loaded = || loader.loaded.lock().len();
        let here = Path::new(".");
        let series = loader.configure(&spec("policy: semver-series").unwrap(), here).unwrap();
        let tags = loader.configure(&spec("policy: min-tags").unwrap(), here).unwrap();
        assert_eq!(loaded(), 2);
        // A reload that keeps semver-series and drops min-tags.
        drop(tags);
        let again = loader.configure(&spec("policy: semver-series").unwrap(), here).unwrap();
        assert_eq!(loaded(), 1, "min-tags is no longer held by anything");
        // The kept one was not compiled again: both configurations share its component.
        assert_eq!(series.policy().sha256(), again.policy().sha256());
        assert!(series.policy().in_use());
    }

    fn spec(yaml: &str) -> Result<PolicySpec, String> {
        let spec: PolicySpec = serde_yaml_ng::from_str(yaml).map_err(|e| e.to_string())?;
        spec.check()?;
        Ok(spec)
    }

    #[test]
    fn lookups_ms_sets_the_hosts_deadline_and_is_checked_like_the_others() {
        let limited =
            spec("policy: semver-series\nlimits: {lookups_ms: 250, evaluate_ms: 20}\n").unwrap();
        let limits = limited.limits.unwrap().apply(Limits::default());
        assert_eq!(limits.lookups_deadline, Duration::from_millis(250));
        assert_eq!(limits.evaluate_deadline, Duration::from_millis(20));
        // What is not given keeps the default.
        let other = spec("policy: semver-series\nlimits: {memory_mib: 32}\n").unwrap();
        let limits = other.limits.unwrap().apply(Limits::default());
        assert_eq!(limits.lookups_deadline, Limits::default().lookups_deadline);

        for ms in ["0", "600001"] {
            let error = spec(&format!("policy: semver-series\nlimits: {{lookups_ms: {ms}}}\n"))
                .unwrap_err();
            assert_eq!(error, "limits.lookups_ms: must be between 1 and 600000", "{ms}");
        }
        assert!(spec("policy: semver-series\nlimits: {lookups_ms: 600000}\n").is_ok());
        let error = spec("policy: semver-series\nlimits: {lookups_ms: -1}\n").unwrap_err();
        assert!(error.contains("lookups_ms"), "{error}");
    }
}
