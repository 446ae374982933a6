//! What the subcommands that reach registries share: `--registry-config`, `--insecure-registry`,
//! `--registry-ca`, `--verify-key`, credentials from the environment, the policy cache, and
//! a runtime for the network calls.

use anyhow::{Context, bail};
use std::path::PathBuf;
use std::sync::Arc;
use tagpolicy::Loader;
use tagpolicy_oci::Reference;
use tagpolicy_oci::client::{Access, RegistryClient};
use tagpolicy_oci::config::{RegistriesConfig, VerifySpec};
use tagpolicy_oci::credentials::Credential;
use tagpolicy_oci::fetch::Fetcher;

/// How registries are reached and policies from them verified.
#[derive(Debug, Clone, Default, clap::Args)]
#[command(next_help_heading = "Registries")]
pub struct RegistryArgs {
    /// Registry settings (YAML), as under `policy_registries` of a gate configuration:
    /// insecure, ca, auth_file, credentials, verify, cache.
    #[arg(long, value_name = "FILE", env = "TAGPOLICY_REGISTRY_CONFIG")]
    pub registry_config: Option<PathBuf>,
    /// Speak plain HTTP to this registry (`host:port`); otherwise HTTPS, verified, with no
    /// fallback. May be given several times.
    #[arg(long, value_name = "HOST[:PORT]")]
    pub insecure_registry: Vec<String>,
    /// Trust this CA certificate (PEM) for registries, besides the system's roots.
    #[arg(long, value_name = "FILE")]
    pub registry_ca: Vec<PathBuf>,
    /// Require policies to be signed with this public key (PEM, e.g. `cosign.pub`). May be
    /// given several times.
    #[arg(long, value_name = "FILE")]
    pub verify_key: Vec<PathBuf>,
    /// How many distinct `--verify-key` keys must have signed (default 1).
    #[arg(long, value_name = "N", requires = "verify_key")]
    pub threshold: Option<usize>,
}

/// `TAGPOLICY_REGISTRY_USERNAME` and `TAGPOLICY_REGISTRY_PASSWORD`: credentials for the one
/// registry a command names (CI pipelines keep them in secrets), before any auth file.
fn credential_from_env() -> Option<Credential> {
    let username = std::env::var("TAGPOLICY_REGISTRY_USERNAME").ok().filter(|v| !v.is_empty())?;
    let password = std::env::var("TAGPOLICY_REGISTRY_PASSWORD").unwrap_or_default();
    Some(Credential { username, password })
}

impl RegistryArgs {
    /// The settings file (if any) with the flags added.
    pub fn config(&self) -> anyhow::Result<RegistriesConfig> {
        let mut config = match &self.registry_config {
            Some(path) => {
                let text = std::fs::read_to_string(path).with_context(|| {
                    format!("cannot read registry settings `{}`", path.display())
                })?;
                let config: RegistriesConfig =
                    serde_yaml_ng::from_str(&text).with_context(|| {
                        format!("registry settings `{}` are invalid", path.display())
                    })?;
                config.relative_to(path.parent().unwrap_or("".as_ref()))
            }
            None => RegistriesConfig::default(),
        };
        config.insecure.extend(self.insecure_registry.iter().cloned());
        config.ca.extend(self.registry_ca.iter().cloned());
        if !self.verify_key.is_empty() {
            let verify = config.verify.get_or_insert(VerifySpec { keys: Vec::new(), threshold: 1 });
            verify.keys.extend(self.verify_key.iter().cloned());
            if let Some(threshold) = self.threshold {
                verify.threshold = threshold;
            }
        }
        Ok(config)
    }

    fn errors(&self) -> String {
        match &self.registry_config {
            Some(path) => format!("registry settings `{}`", path.display()),
            None => "registry options".into(),
        }
    }

    /// How to reach `reference`'s registry: the settings, and the environment's credentials
    /// for it.
    pub fn access_for(&self, reference: &Reference) -> anyhow::Result<Access> {
        let mut access =
            self.config()?.access().map_err(|e| anyhow::anyhow!("{}: {e}", self.errors()))?;
        if let Some(credential) = credential_from_env() {
            access.credentials = access.credentials.with(reference.registry(), credential);
        }
        Ok(access)
    }

    pub fn client_for(&self, reference: &Reference) -> anyhow::Result<RegistryClient> {
        Ok(RegistryClient::new(&self.access_for(reference)?)?)
    }

    /// The fetcher policies named `oci://…` are loaded with.
    pub fn fetcher(&self) -> anyhow::Result<Fetcher> {
        self.config()?
            .fetcher(&tagpolicy_oci::config::default_cache_dir())
            .map_err(|e| anyhow::anyhow!("{}: {e}", self.errors()))
    }

    /// `loader`, fetching `oci://` policies with these settings.
    pub fn source_for(&self, loader: Loader) -> anyhow::Result<Loader> {
        Ok(loader.with_source(Arc::new(self.fetcher()?)))
    }
}

/// A registry reference from the command line: `host[:port]/repo:tag`, `…@sha256:…`, with
/// or without `oci://`.
pub fn reference(text: &str) -> anyhow::Result<Reference> {
    Ok(Reference::parse_plain(text)?)
}

/// Runs `future` to completion on a runtime for this command.
pub fn block_on<T>(future: impl std::future::Future<Output = T>) -> anyhow::Result<T> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    Ok(runtime.block_on(future))
}

/// Logs of the registry client (tag resolutions, cache fallbacks) on stderr.
pub fn init_logging() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("warn,tagpolicy_oci=info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .without_time()
        .with_target(false)
        .try_init();
}

/// Refuses a tag change that is not a sha256 digest where one is needed.
pub fn require_tag(reference: &Reference) -> anyhow::Result<&str> {
    match reference.tag() {
        Some(tag) if reference.digest().is_none() => Ok(tag),
        _ => bail!("`{reference}`: push to a tag (`host/repository:tag`), without a digest"),
    }
}

/// `--annotation KEY=VALUE`.
pub fn parse_annotation(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((key, value)) if !key.is_empty() => Ok((key.to_owned(), value.to_owned())),
        _ => Err(format!("`{text}` is not KEY=VALUE")),
    }
}
