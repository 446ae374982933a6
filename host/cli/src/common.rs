//! What several subcommands share: output formats, settings files, the policy override.

use anyhow::{Context, bail};
use std::path::{Path, PathBuf};
use tagpolicy::{Engine, Isolation, Loader, PolicySet, PolicySpec};
use tagpolicy_scenario::{Scenario, ScenarioError};

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
    /// (immutable-tags, min-tags, semver-series, image-requirements, change-freeze) or a path
    /// to a `.wasm` component.
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

/// `--isolation` and `--replace`: how the scenario's own policies are run.
#[derive(Debug, Clone, clap::Args)]
pub struct SpecOverrides {
    /// Run every policy with instances reused across pushes (`reuse`) or a fresh instance
    /// per push (`isolated`, started from a snapshot taken after `configure`), whatever the
    /// scenario says. Decisions must not differ.
    #[arg(long, value_name = "reuse|isolated")]
    pub isolation: Option<Isolation>,
    /// Wherever a scenario names the policy NAME, load FILE instead, keeping its settings
    /// (its `sha256` pin is dropped): run an existing suite against a new build or a port,
    /// e.g. `--replace immutable-tags=policies/python/immutable-tags/build/immutable-tags.wasm`.
    /// May be given several times.
    #[arg(long, value_name = "NAME=FILE", value_parser = parse_replacement)]
    pub replace: Vec<Replacement>,
}

/// One `--replace NAME=FILE`.
#[derive(Debug, Clone)]
pub struct Replacement {
    name: String,
    /// Absolute, since scenario paths are resolved against each scenario's folder.
    file: PathBuf,
    /// Whether a scenario named it: a misspelt NAME must not pass by testing the original.
    used: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

fn parse_replacement(text: &str) -> Result<Replacement, String> {
    let Some((name, file)) = text.split_once('=') else {
        return Err(format!("`{text}` is not NAME=FILE"));
    };
    if name.is_empty() || file.is_empty() {
        return Err(format!("`{text}` is not NAME=FILE"));
    }
    let file = std::path::absolute(file).map_err(|e| format!("`{file}`: {e}"))?;
    if !file.is_file() {
        return Err(format!("`{}` is not a file", file.display()));
    }
    Ok(Replacement { name: name.to_string(), file, used: Default::default() })
}

impl SpecOverrides {
    fn apply(&self, spec: &PolicySpec) -> PolicySpec {
        let mut spec = spec.clone();
        if let Some(mode) = self.isolation {
            spec.isolation = Some(mode);
        }
        if let Some(replacement) = self.replace.iter().find(|r| r.name == spec.policy) {
            spec.policy = replacement.file.display().to_string();
            spec.sha256 = None;
            replacement.used.store(true, std::sync::atomic::Ordering::Relaxed);
        }
        spec
    }

    /// Fail when a `--replace` named a policy no scenario run so far uses.
    pub fn check_replacements_used(&self) -> anyhow::Result<()> {
        match self.replace.iter().find(|r| !r.used.load(std::sync::atomic::Ordering::Relaxed)) {
            Some(unused) => {
                bail!("--replace {}=…: no scenario names the policy `{}`", unused.name, unused.name)
            }
            None => Ok(()),
        }
    }
}

/// Progress on stderr while scenarios' policies load, which takes long for Python and
/// JavaScript (a compile when not cached; with `isolated`, a snapshot per configuration):
/// on a terminal one line per policy, rewritten in place and cleared when done; elsewhere
/// (a CI log) one line per scenario file.
pub struct Progress {
    command: &'static str,
    terminal: bool,
}

impl Progress {
    pub fn new(command: &'static str) -> Self {
        Progress { command, terminal: std::io::IsTerminal::is_terminal(&std::io::stderr()) }
    }

    /// Say what loading `specs` for `file` does; the terminal line is rewritten per policy.
    fn loading(&self, file: &Path, specs: &[PolicySpec], index: Option<usize>) {
        // Compiled once per version (then from the cache); snapshotted per configuration.
        let what = |spec: &PolicySpec| match spec.isolation {
            Some(Isolation::Isolated) => format!("{} (and snapshotting it)", spec.policy),
            _ => spec.policy.clone(),
        };
        let file = file.display();
        match index {
            Some(index) if self.terminal => eprint!(
                "\r\x1b[2K{}: {file}: [{}/{}] loading {}…",
                self.command,
                index + 1,
                specs.len(),
                what(&specs[index])
            ),
            None if !self.terminal => {
                let all: Vec<String> = specs.iter().map(what).collect();
                eprintln!("{}: {file}: loading {}", self.command, all.join(", "));
            }
            _ => {}
        }
    }

    fn done(&self) {
        if self.terminal {
            eprint!("\r\x1b[2K");
        }
    }
}

/// Build the policy set a scenario runs with: the override if given, else its own.
pub fn policy_set(
    loader: &Loader,
    scenario: &Scenario,
    policy: Option<&PolicySpec>,
    overrides: &SpecOverrides,
) -> Result<PolicySet, ScenarioError> {
    policy_set_with_progress(loader, scenario, policy, overrides, None)
}

/// [`policy_set`], saying on stderr what is loaded while it is.
pub fn policy_set_with_progress(
    loader: &Loader,
    scenario: &Scenario,
    policy: Option<&PolicySpec>,
    overrides: &SpecOverrides,
    progress: Option<&Progress>,
) -> Result<PolicySet, ScenarioError> {
    let path = scenario.path.clone();
    let (specs, base_dir) = match policy {
        // A path on the command line is relative to the working directory.
        Some(spec) => (std::slice::from_ref(spec), Path::new("")),
        None => (scenario.policies.as_slice(), scenario.base_dir()),
    };
    let specs: Vec<PolicySpec> = specs.iter().map(|spec| overrides.apply(spec)).collect();
    if specs.is_empty() {
        return Err(ScenarioError::Invalid {
            path,
            message: "policies: none; list them in the scenario or pass `--policy`".into(),
        });
    }
    if let Some(progress) = progress {
        progress.loading(&path, &specs, None);
    }
    let mut set = PolicySet::new();
    for (index, spec) in specs.iter().enumerate() {
        if let Some(progress) = progress {
            progress.loading(&path, &specs, Some(index));
        }
        let configured = loader.configure(spec, base_dir);
        if let Some(progress) = progress {
            progress.done();
        }
        let configured = configured.map_err(|source| ScenarioError::Policy {
            path: path.clone(),
            index,
            policy: spec.policy.clone(),
            source: Box::new(source),
        })?;
        set.push(configured, spec.enforcement());
    }
    Ok(set)
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

pub fn cache_dir() -> Option<PathBuf> {
    let from_env = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty()).map(PathBuf::from);
    from_env("TAGPOLICY_CACHE_DIR")
        .or_else(|| from_env("XDG_CACHE_HOME").map(|d| d.join("tagpolicy")))
        .or_else(|| from_env("HOME").map(|d| d.join(".cache").join("tagpolicy")))
}

/// `error` with its chain of causes, each once: many messages already quote their cause
/// (the engine's errors quote theirs and keep them as sources).
pub fn error_text(error: &anyhow::Error) -> String {
    let mut text = error.to_string();
    for cause in error.chain().skip(1) {
        let cause = cause.to_string();
        if !text.contains(&cause) {
            text.push_str(": ");
            text.push_str(&cause);
        }
    }
    text
}
