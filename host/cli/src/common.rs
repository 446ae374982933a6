//! What several subcommands share: output formats, settings files, the policy override.

use anyhow::{Context, bail};
use std::path::{Path, PathBuf};
use tagpolicy::{Engine, Isolation, Loader, PolicySet, PolicySpec, Scenario, ScenarioError};

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Output {
    /// A table for people.
    #[default]
    Text,
    /// One JSON document on stdout, for machines.
    Json,
}

/// `--policy` / `--settings`: evaluate with this policy instead of the scenario's own.
#[derive(Debug, Clone, clap::Args)]
pub struct PolicyOverride {
    /// Use this policy instead of the scenario's `policies`: an embedded name
    /// (immutable-tags, min-tags, semver-series) or a path to a `.wasm` component.
    #[arg(long, value_name = "NAME|FILE")]
    pub policy: Option<String>,
    /// Settings for `--policy`, a YAML or JSON file with a mapping (default `{}`).
    #[arg(long, value_name = "FILE", requires = "policy")]
    pub settings: Option<PathBuf>,
    /// Refuse to run `--policy` unless its component has this sha256 (64 hex digits).
    #[arg(long, value_name = "HEX", requires = "policy")]
    pub sha256: Option<String>,
}

impl PolicyOverride {
    /// The spec to use instead of the scenario's, if any.
    pub fn spec(&self) -> anyhow::Result<Option<PolicySpec>> {
        let Some(policy) = &self.policy else { return Ok(None) };
        let settings = match &self.settings {
            Some(path) => Some(read_settings(path)?),
            None => None,
        };
        let spec =
            PolicySpec { sha256: self.sha256.clone(), ..PolicySpec::new(policy.clone(), settings) };
        spec.check().map_err(|e| anyhow::anyhow!("--{e}"))?;
        Ok(Some(spec))
    }
}

/// A settings file: YAML or JSON, holding a mapping.
pub fn read_settings(path: &Path) -> anyhow::Result<serde_json::Value> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read settings file `{}`", path.display()))?;
    let value: serde_json::Value = serde_yaml_ng::from_str(&text)
        .with_context(|| format!("settings file `{}` is not valid YAML or JSON", path.display()))?;
    if !value.is_object() {
        bail!("settings file `{}` must hold a mapping of setting names to values", path.display());
    }
    Ok(value)
}

/// `--isolation`: how every policy shares instances between pushes.
#[derive(Debug, Clone, Copy, clap::Args)]
pub struct IsolationOverride {
    /// Run every policy with instances reused across pushes (`reuse`) or a fresh instance
    /// per push (`isolated`, started from a snapshot taken after `configure`), whatever the
    /// scenario says. Decisions must not differ.
    #[arg(long, value_name = "reuse|isolated")]
    pub isolation: Option<Isolation>,
}

/// Build the policy set a scenario runs with: the override if given, else its own.
pub fn policy_set(
    loader: &Loader,
    scenario: &Scenario,
    policy: Option<&PolicySpec>,
    isolation: IsolationOverride,
) -> Result<PolicySet, ScenarioError> {
    let path = scenario.path.clone();
    let (specs, base_dir) = match policy {
        // A path on the command line is relative to the working directory.
        Some(spec) => (std::slice::from_ref(spec), Path::new("")),
        None => (scenario.policies.as_slice(), scenario.base_dir()),
    };
    let overridden: Vec<PolicySpec>;
    let specs = match isolation.isolation {
        Some(mode) => {
            overridden =
                specs.iter().map(|s| PolicySpec { isolation: Some(mode), ..s.clone() }).collect();
            overridden.as_slice()
        }
        None => specs,
    };
    if specs.is_empty() {
        return Err(ScenarioError::Invalid {
            path,
            message: "policies: none; list them in the scenario or pass `--policy`".into(),
        });
    }
    loader.policy_set(specs, base_dir).map_err(|(index, source)| ScenarioError::Policy {
        path,
        index,
        policy: specs[index].policy.clone(),
        source: Box::new(source),
    })
}

/// A loader on an engine that keeps compiled components in the cache directory, unless
/// `--no-cache` is given or no directory can be found.
pub fn loader(global: &super::Global) -> anyhow::Result<Loader> {
    let mut builder = Engine::builder();
    if !global.no_cache
        && let Some(dir) = cache_dir()
    {
        builder = builder.cache_dir(dir);
    }
    Ok(Loader::new(builder.build()?))
}

fn cache_dir() -> Option<PathBuf> {
    let from_env = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty()).map(PathBuf::from);
    from_env("TAGPOLICY_CACHE_DIR")
        .or_else(|| from_env("XDG_CACHE_HOME").map(|d| d.join("tagpolicy")))
        .or_else(|| from_env("HOME").map(|d| d.join(".cache").join("tagpolicy")))
}
