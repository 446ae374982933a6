//! The `policy_registries` settings (the gate's configuration, `--registry-config` of the
//! CLI): how registries are reached, which keys policies must be signed with, where the
//! cache lives and how often tags are resolved again.
//!
//! ```yaml
//! insecure: ["127.0.0.1:5000"]        # plain HTTP for these only; never a fallback
//! ca: [internal-ca.pem]               # trusted besides the system's roots
//! auth_file: /run/secrets/auth.json   # else podman's and docker's usual files
//! credentials:
//!   registry.example.com: {username: ci, password_file: /run/secrets/registry-password}
//! verify: {keys: [release.pub, security.pub], threshold: 2}
//! cache: /var/cache/tagpolicy/policies
//! refresh: 5m                         # the gate resolves tags again this often
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::cache::Cache;
use crate::client::Access;
use crate::credentials::{Credential, Credentials};
use crate::fetch::Fetcher;
use crate::signature::{Keyring, PublicKey};

/// Where fetched policies are kept unless configured: `policies` in the tagpolicy cache
/// directory (`$TAGPOLICY_CACHE_DIR`, else `$XDG_CACHE_HOME/tagpolicy`, else
/// `~/.cache/tagpolicy`, else the temporary directory).
pub fn default_cache_dir() -> PathBuf {
    let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty()).map(PathBuf::from);
    var("TAGPOLICY_CACHE_DIR")
        .or_else(|| var("XDG_CACHE_HOME").map(|d| d.join("tagpolicy")))
        .or_else(|| var("HOME").map(|d| d.join(".cache").join("tagpolicy")))
        .unwrap_or_else(|| std::env::temp_dir().join("tagpolicy"))
        .join("policies")
}

/// How often a gate resolves tags again unless configured.
pub const DEFAULT_REFRESH: Duration = Duration::from_secs(300);

/// The longest `refresh` accepted: a tag checked less often than weekly is better pinned by
/// digest.
pub const MAX_REFRESH: Duration = Duration::from_secs(7 * 24 * 3600);

/// The settings as written; relative paths are resolved against the file that holds them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistriesConfig {
    /// `host[:port]` of registries reached over plain HTTP.
    #[serde(default)]
    pub insecure: Vec<String>,
    /// PEM files of CAs trusted besides the system's roots.
    #[serde(default)]
    pub ca: Vec<PathBuf>,
    /// The auth file to read instead of podman's and docker's usual ones.
    #[serde(default)]
    pub auth_file: Option<PathBuf>,
    /// Credentials per registry (or `registry/namespace`), before any auth file.
    #[serde(default)]
    pub credentials: BTreeMap<String, CredentialSpec>,
    /// Signature verification; without it only policies pinned by digest are accepted.
    #[serde(default)]
    pub verify: Option<VerifySpec>,
    /// Where fetched policies are kept (default: the tagpolicy cache directory).
    #[serde(default)]
    pub cache: Option<PathBuf>,
    /// How often the gate resolves tags again, e.g. `30s` or `5m` (default 5m).
    #[serde(default, deserialize_with = "duration")]
    pub refresh: Option<Duration>,
}

/// A user name and where its password is.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CredentialSpec {
    pub username: String,
    /// A file holding the password or token (trailing newline ignored).
    #[serde(default)]
    pub password_file: Option<PathBuf>,
    /// An environment variable holding it.
    #[serde(default)]
    pub password_env: Option<String>,
}

/// The public keys policies must be signed with.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VerifySpec {
    /// PEM public keys (ECDSA P-256, as `cosign generate-key-pair` writes `cosign.pub`).
    pub keys: Vec<PathBuf>,
    /// How many distinct keys must have signed (default 1).
    #[serde(default = "one")]
    pub threshold: usize,
}

fn one() -> usize {
    1
}

fn duration<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    let text = String::deserialize(d)?;
    let duration = humantime::parse_duration(&text).map_err(|e| {
        serde::de::Error::custom(format!("`{text}` is not a duration such as `30s` or `5m`: {e}"))
    })?;
    if duration < Duration::from_secs(1) {
        return Err(serde::de::Error::custom(format!("`{text}` is shorter than 1s")));
    }
    if duration > MAX_REFRESH {
        return Err(serde::de::Error::custom(format!("`{text}` is longer than 7 days")));
    }
    Ok(Some(duration))
}

impl RegistriesConfig {
    /// Resolves relative paths against `base` (the folder of the file that holds them).
    pub fn relative_to(mut self, base: &Path) -> Self {
        let join = |path: &mut PathBuf| *path = base.join(&*path);
        self.ca.iter_mut().for_each(join);
        self.auth_file.iter_mut().for_each(join);
        self.cache.iter_mut().for_each(join);
        for spec in self.credentials.values_mut() {
            spec.password_file.iter_mut().for_each(join);
        }
        if let Some(verify) = &mut self.verify {
            verify.keys.iter_mut().for_each(join);
        }
        self
    }

    /// The keyring, if verification is configured. Errors name the field and file.
    pub fn keyring(&self) -> Result<Option<Keyring>, String> {
        let Some(verify) = &self.verify else { return Ok(None) };
        let mut keys = Vec::new();
        for (index, path) in verify.keys.iter().enumerate() {
            let pem = std::fs::read_to_string(path).map_err(|e| {
                format!("verify.keys[{index}]: cannot read `{}`: {e}", path.display())
            })?;
            let name = path
                .file_name()
                .map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().into_owned());
            keys.push(
                PublicKey::from_pem(&name, &pem)
                    .map_err(|e| format!("verify.keys[{index}] (`{}`): {e}", path.display()))?,
            );
        }
        Keyring::new(keys, verify.threshold).map_err(|e| format!("verify: {e}")).map(Some)
    }

    /// How registries are reached. Errors name the field and file.
    pub fn access(&self) -> Result<Access, String> {
        for host in &self.insecure {
            if host.is_empty() || host.contains('/') || host.contains("://") {
                return Err(format!("insecure: `{host}` is not `host[:port]`"));
            }
        }
        let mut ca_certificates = Vec::new();
        for (index, path) in self.ca.iter().enumerate() {
            let pem = std::fs::read(path)
                .map_err(|e| format!("ca[{index}]: cannot read `{}`: {e}", path.display()))?;
            if !pem.windows(27).any(|w| w == b"-----BEGIN CERTIFICATE-----") {
                return Err(format!("ca[{index}]: `{}` holds no PEM certificate", path.display()));
            }
            ca_certificates.push(pem);
        }
        let mut credentials = Credentials::from_environment(self.auth_file.as_deref());
        for (scope, spec) in &self.credentials {
            let field = format!("credentials.`{scope}`");
            let password = match (&spec.password_file, &spec.password_env) {
                (Some(path), None) => std::fs::read_to_string(path)
                    .map_err(|e| {
                        format!("{field}.password_file: cannot read `{}`: {e}", path.display())
                    })?
                    .trim_end_matches(['\r', '\n'])
                    .to_owned(),
                (None, Some(name)) => std::env::var(name)
                    .map_err(|_| format!("{field}.password_env: `{name}` is not set"))?,
                _ => {
                    return Err(format!(
                        "{field}: give exactly one of `password_file` and `password_env`"
                    ));
                }
            };
            credentials =
                credentials.with(scope, Credential { username: spec.username.clone(), password });
        }
        Ok(Access {
            insecure: self.insecure.clone(),
            ca_certificates,
            credentials,
            ..Access::default()
        })
    }

    /// A fetcher with these settings, caching in `cache` unless the settings name one.
    pub fn fetcher(&self, default_cache: &Path) -> Result<Fetcher, String> {
        let cache = Cache::new(self.cache.clone().unwrap_or_else(|| default_cache.to_owned()));
        Ok(Fetcher::new(self.access()?, self.keyring()?, cache))
    }

    /// How often the gate resolves tags again.
    pub fn refresh(&self) -> Duration {
        self.refresh.unwrap_or(DEFAULT_REFRESH)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(yaml: &str) -> RegistriesConfig {
        serde_yaml_ng::from_str::<RegistriesConfig>(yaml).unwrap().relative_to(Path::new("/etc/tp"))
    }

    #[test]
    fn errors_name_the_field_and_file() {
        let missing_key = parse("verify: {keys: [nope.pub]}").keyring().unwrap_err();
        assert!(
            missing_key.contains("verify.keys[0]") && missing_key.contains("/etc/tp/nope.pub"),
            "{missing_key}"
        );
        let dir = tempfile::tempdir().unwrap();
        let not_a_key = dir.path().join("x.pub");
        std::fs::write(&not_a_key, "hello").unwrap();
        let config = RegistriesConfig {
            verify: Some(VerifySpec { keys: vec![not_a_key], threshold: 1 }),
            ..Default::default()
        };
        let error = config.keyring().unwrap_err();
        assert!(error.contains("verify.keys[0]") && error.contains("x.pub"), "{error}");
        let insecure = parse("insecure: [\"http://r.example.com\"]").access().unwrap_err();
        assert!(insecure.contains("insecure: `http://r.example.com`"), "{insecure}");
        let both = parse("credentials: {r.example.com: {username: u}}").access().unwrap_err();
        assert!(
            both.contains("credentials.`r.example.com`") && both.contains("exactly one"),
            "{both}"
        );
        let unset = parse("credentials: {r.example.com: {username: u, password_env: TAGPOLICY_TEST_UNSET_VARIABLE}}")
            .access()
            .unwrap_err();
        assert!(unset.contains("TAGPOLICY_TEST_UNSET_VARIABLE"), "{unset}");
        let ca = parse("ca: [missing.pem]").access().unwrap_err();
        assert!(ca.contains("ca[0]") && ca.contains("/etc/tp/missing.pem"), "{ca}");
        let unknown =
            serde_yaml_ng::from_str::<RegistriesConfig>("verfy: {}").unwrap_err().to_string();
        assert!(unknown.contains("verfy"), "{unknown}");
        let duration =
            serde_yaml_ng::from_str::<RegistriesConfig>("refresh: soon").unwrap_err().to_string();
        assert!(duration.contains("`soon` is not a duration"), "{duration}");
        for (text, why) in [("500ms", "shorter than 1s"), ("1000years", "longer than 7 days")] {
            let error = serde_yaml_ng::from_str::<RegistriesConfig>(&format!("refresh: {text}"))
                .unwrap_err()
                .to_string();
            assert!(error.contains(&format!("`{text}` is {why}")), "{error}");
        }
        let week: RegistriesConfig = serde_yaml_ng::from_str("refresh: 7days").unwrap();
        assert_eq!(week.refresh(), MAX_REFRESH);
    }

    #[test]
    fn a_password_file_and_the_threshold_are_read() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("pw"), "t0ken\n").unwrap();
        let config: RegistriesConfig =
            serde_yaml_ng::from_str("credentials: {\"r.example.com:5000\": {username: ci, password_file: pw}}\nverify: {keys: [], threshold: 2}")
                .unwrap();
        let config = config.relative_to(dir.path());
        let access = config.access().unwrap();
        let credential =
            access.credentials.lookup("r.example.com:5000", "team/x").unwrap().unwrap();
        assert_eq!((credential.username.as_str(), credential.password.as_str()), ("ci", "t0ken"));
        let threshold = config.keyring().unwrap_err();
        assert!(threshold.contains("threshold of 2"), "{threshold}");
    }
}
