//! The gate's configuration file: where to listen, the upstream registry, and which
//! policies rule which repositories. The `policies` entries are the scenario files' own
//! schema, so a scenario tests exactly what the gate runs.

use globset::Glob;
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tagpolicy::{Loader, PolicySet, PolicySpec};
use tagpolicy_oci::config::RegistriesConfig;

use super::identity::{Identity, IdentitySpec};
use super::index::IndexSettings;
use super::limits::GateLimits;
use super::route::PassWrites;
use super::rule_matcher::RuleMatcher;
use super::tls::CertificateFiles;

/// Why a gate configuration cannot be used. The message names the file and the field.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    #[error("cannot read gate configuration `{}`: {source}", path.display())]
    Read { path: PathBuf, source: std::io::Error },
    #[error("`{}`: {message}", path.display())]
    Invalid { path: PathBuf, message: String },
    #[error("`{}`: rules[{rule}].policies[{index}] (`{policy}`): {source}", path.display())]
    Policy {
        path: PathBuf,
        rule: usize,
        index: usize,
        policy: String,
        source: Box<tagpolicy::Error>,
    },
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    listen: SocketAddr,
    /// A second, plain-HTTP listener for `/metrics`, `/healthz` and `/readyz`, kept apart
    /// from registry clients: probes and scrapes are answered when client connections are
    /// at their limit, and `/metrics` is no longer served to registry clients.
    #[serde(default)]
    admin_listen: Option<SocketAddr>,
    /// The listener's certificate and key; without it the gate speaks plain HTTP.
    #[serde(default)]
    tls: Option<CertificateFiles>,
    upstream: String,
    /// A CA to trust for an `https` upstream, besides the system's roots.
    #[serde(default)]
    upstream_ca: Option<PathBuf>,
    /// A client certificate for an upstream that requires mutual TLS.
    #[serde(default)]
    upstream_client_cert: Option<CertificateFiles>,
    #[serde(default)]
    decision_log: Option<PathBuf>,
    /// How long the repository state read for policies is reused, in seconds.
    #[serde(default = "default_state_cache_seconds")]
    state_cache_seconds: u64,
    #[serde(default)]
    identity: Option<IdentitySpec>,
    /// Paths of writes outside the decided API that pass through undecided.
    #[serde(default)]
    pass_writes: Vec<String>,
    #[serde(default)]
    limits: GateLimits,
    /// Several gates in front of one registry: where they coordinate.
    #[serde(default)]
    coordination: Option<CoordinationFile>,
    /// The operator's word that every write reaches the registry through the gates: each
    /// tag's current digest is then kept (in memory, or with `coordination` in Redis) instead
    /// of looked up before every push.
    #[serde(default)]
    authoritative: bool,
    /// Registry notifications of writes made around the gates, which drop what is known.
    #[serde(default)]
    notifications: Option<NotificationsFile>,
    /// The gate's own account for what it reads of the upstream.
    #[serde(default)]
    upstream_read: Option<ReadAccountSpec>,
    /// The repository index (kept with `upstream_read` and `authoritative` or
    /// `notifications`).
    #[serde(default)]
    index: IndexSettings,
    /// Policies named `oci://…`: how registries are reached, the keys they must be signed
    /// with, the cache, how often tags are resolved again.
    #[serde(default)]
    policy_registries: Option<RegistriesConfig>,
    #[serde(default)]
    rules: Vec<RuleFile>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct CoordinationFile {
    /// `redis://[user:password@]host:port[/db]`.
    redis: String,
    /// How long a replica's hold on a repository lasts without renewal.
    #[serde(default = "default_lease", deserialize_with = "super::limits::duration")]
    lease: Duration,
    /// Prefix of every key and channel, so that several gate fleets can share one Redis.
    #[serde(default = "default_namespace")]
    namespace: String,
}

fn default_lease() -> Duration {
    Duration::from_secs(10)
}

fn default_namespace() -> String {
    "tagpolicy".into()
}

/// `upstream_read`: `anonymous`, or `{username, password_file}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadAccountSpec {
    /// Reads without credentials: the operator's word that anonymous reads see every
    /// repository the gate governs.
    Anonymous,
    Password {
        username: String,
        password_file: PathBuf,
    },
}

impl<'de> Deserialize<'de> for ReadAccountSpec {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Password {
            username: String,
            password_file: PathBuf,
        }
        let value = serde_yaml_ng::Value::deserialize(deserializer)?;
        if value.as_str() == Some("anonymous") {
            return Ok(ReadAccountSpec::Anonymous);
        }
        if !value.is_mapping() {
            return Err(serde::de::Error::custom(
                "give `anonymous`, or `{username: …, password_file: …}`",
            ));
        }
        let Password { username, password_file } =
            serde_yaml_ng::from_value(value).map_err(serde::de::Error::custom)?;
        Ok(ReadAccountSpec::Password { username, password_file })
    }
}

impl ReadAccountSpec {
    /// The account, with its password read from its file.
    pub fn load(&self) -> Result<crate::read_account::ReadAccount, String> {
        use crate::read_account::ReadAccount;
        match self {
            ReadAccountSpec::Anonymous => Ok(ReadAccount::anonymous()),
            ReadAccountSpec::Password { username, password_file } => {
                let password = std::fs::read_to_string(password_file).map_err(|e| {
                    format!(
                        "upstream_read.password_file: cannot read `{}`: {e}",
                        password_file.display()
                    )
                })?;
                let password = password.trim_end_matches(['\n', '\r']).to_string();
                if password.is_empty() {
                    return Err(format!(
                        "upstream_read.password_file: `{}` is empty",
                        password_file.display()
                    ));
                }
                Ok(ReadAccount::with_password(username.clone(), password))
            }
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct NotificationsFile {
    /// A file holding the bearer token the registry sends (`Authorization: Bearer <token>`).
    token_file: PathBuf,
}

/// Where replicas coordinate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CoordinationSpec {
    pub redis: String,
    pub lease: Duration,
    pub namespace: String,
}

fn default_state_cache_seconds() -> u64 {
    10
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleFile {
    repositories: Vec<String>,
    policies: Vec<PolicySpec>,
}

/// A parsed and checked configuration; policies are not loaded yet.
#[derive(Debug, Clone)]
pub struct GateConfig {
    pub path: PathBuf,
    pub listen: SocketAddr,
    /// Where `/metrics`, `/healthz` and `/readyz` are served apart from clients, if anywhere.
    pub admin_listen: Option<SocketAddr>,
    pub tls: Option<CertificateFiles>,
    /// `http://host:port` or `https://host[:port]`, without a path.
    pub upstream: http::Uri,
    pub upstream_ca: Option<PathBuf>,
    pub upstream_client_cert: Option<CertificateFiles>,
    pub decision_log: Option<PathBuf>,
    pub state_cache: Duration,
    pub identity: Option<IdentitySpec>,
    pub pass_writes: PassWrites,
    pub limits: GateLimits,
    pub coordination: Option<CoordinationSpec>,
    pub authoritative: bool,
    /// The file holding the token registry notifications must carry; `None`: no
    /// notification endpoint. Read when the gate starts.
    pub notifications_token_file: Option<PathBuf>,
    /// How `oci://` policies are fetched and verified (paths resolved).
    pub policy_registries: RegistriesConfig,
    /// The gate's own account for its reads of the upstream (password file resolved).
    pub upstream_read: Option<ReadAccountSpec>,
    pub index: IndexSettings,
    rules: Vec<RuleFile>,
}

impl GateConfig {
    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| ConfigError::Read { path: path.to_path_buf(), source })?;
        Self::from_yaml(&text, path)
    }

    /// Parse `text`; `path` names the file in errors and anchors relative paths.
    pub fn from_yaml(text: &str, path: &Path) -> Result<Self, ConfigError> {
        let invalid = |message: String| ConfigError::Invalid { path: path.to_path_buf(), message };
        let file: File = serde_yaml_ng::from_str(text).map_err(|e| invalid(e.to_string()))?;
        let upstream = parse_upstream(&file.upstream).map_err(invalid)?;
        if upstream.scheme_str() != Some("https") {
            for (field, given) in [
                ("upstream_ca", file.upstream_ca.is_some()),
                ("upstream_client_cert", file.upstream_client_cert.is_some()),
            ] {
                if given {
                    return Err(invalid(format!(
                        "{field}: only for an `https://` upstream; `{}` is plain HTTP",
                        file.upstream
                    )));
                }
            }
        }
        if let Some(admin) = file.admin_listen
            && admin == file.listen
            && admin.port() != 0
        {
            return Err(invalid(format!(
                "admin_listen: `{admin}` is also `listen`; give the admin endpoints their own port"
            )));
        }
        let pass_writes =
            PassWrites::new(&file.pass_writes).map_err(|e| invalid(format!("pass_writes{e}")))?;
        file.limits.check().map_err(invalid)?;
        file.index.check().map_err(invalid)?;
        let verifies = file.policy_registries.as_ref().is_some_and(|p| p.verify.is_some());
        for (r, rule) in file.rules.iter().enumerate() {
            for (p, spec) in rule.policies.iter().enumerate() {
                if !tagpolicy::is_remote(&spec.policy) {
                    continue;
                }
                let field = format!("rules[{r}].policies[{p}].policy");
                let reference = tagpolicy_oci::Reference::parse(&spec.policy)
                    .map_err(|e| invalid(format!("{field}: {e}")))?;
                if reference.digest().is_none() && !verifies {
                    return Err(invalid(format!(
                        "{field}: `{reference}` names a tag without a digest: a tag is followed only with \
                         signature verification (`policy_registries.verify.keys`); or pin it as `…@sha256:<digest>`"
                    )));
                }
            }
            if rule.repositories.is_empty() {
                return Err(invalid(format!(
                    "rules[{r}].repositories: empty; list globs such as `team/**`"
                )));
            }
            for (g, glob) in rule.repositories.iter().enumerate() {
                repository_glob(glob)
                    .map_err(|e| invalid(format!("rules[{r}].repositories[{g}]: {e}")))?;
            }
            for (p, spec) in rule.policies.iter().enumerate() {
                spec.check().map_err(|e| invalid(format!("rules[{r}].policies[{p}].{e}")))?;
            }
        }
        let base = path.parent().unwrap_or(Path::new(""));
        let decision_log = file.decision_log.map(|log| base.join(log));
        let tls = file.tls.map(|files| files.relative_to(base));
        let upstream_ca = file.upstream_ca.map(|ca| base.join(ca));
        let upstream_client_cert = file.upstream_client_cert.map(|files| files.relative_to(base));
        let identity = file.identity.map(|identity| identity.relative_to(base));
        let coordination = match file.coordination {
            Some(spec) => Some(coordination(spec).map_err(invalid)?),
            None => None,
        };
        let notifications_token_file =
            file.notifications.map(|notifications| base.join(notifications.token_file));
        let policy_registries = file.policy_registries.unwrap_or_default().relative_to(base);
        let upstream_read = file.upstream_read.map(|spec| match spec {
            ReadAccountSpec::Password { username, password_file } => {
                ReadAccountSpec::Password { username, password_file: base.join(password_file) }
            }
            anonymous => anonymous,
        });
        Ok(GateConfig {
            path: path.to_path_buf(),
            listen: file.listen,
            admin_listen: file.admin_listen,
            tls,
            upstream,
            upstream_ca,
            upstream_client_cert,
            decision_log,
            state_cache: Duration::from_secs(file.state_cache_seconds),
            identity,
            pass_writes,
            limits: file.limits,
            coordination,
            authoritative: file.authoritative,
            notifications_token_file,
            policy_registries,
            upstream_read,
            index: file.index,
            rules: file.rules,
        })
    }

    /// The bearer token registry notifications must carry, read from its file.
    pub fn notifications_token(&self) -> Result<Option<String>, String> {
        let Some(path) = &self.notifications_token_file else { return Ok(None) };
        let token = std::fs::read_to_string(path).map_err(|e| {
            format!("notifications.token_file: cannot read `{}`: {e}", path.display())
        })?;
        let token = token.trim().to_string();
        if token.len() < 16 {
            return Err(format!(
                "notifications.token_file: `{}` holds {} characters; use at least 16",
                path.display(),
                token.len()
            ));
        }
        Ok(Some(token))
    }

    fn base_dir(&self) -> &Path {
        self.path.parent().unwrap_or(Path::new(""))
    }

    /// Load and configure every rule's policies, and the identity sources.
    pub fn load(&self, loader: &Loader) -> Result<Rules, ConfigError> {
        let mut rules = Vec::with_capacity(self.rules.len());
        for (r, rule) in self.rules.iter().enumerate() {
            let policies =
                loader.policy_set(&rule.policies, self.base_dir()).map_err(|(index, source)| {
                    ConfigError::Policy {
                        path: self.path.clone(),
                        rule: r,
                        index,
                        policy: rule.policies[index].policy.clone(),
                        source: Box::new(source),
                    }
                })?;
            // Say which component each rule runs, so that an operator can tell from the log
            // which build a start or a reload brought in.
            for ((policy, _), spec) in policies.policies().zip(&rule.policies) {
                tracing::info!(
                    rule = r,
                    policy = policy.name(),
                    version = %policy.policy().metadata().version,
                    sha256 = policy.policy().sha256(),
                    source = %spec.policy,
                    "policy loaded"
                );
            }
            rules.push(Rule {
                repositories: rule.repositories.clone(),
                policies: Arc::new(policies),
            });
        }
        let globs = self.rules.iter().map(|rule| {
            // Checked when parsed.
            rule.repositories.iter().map(|glob| repository_glob(glob).expect("checked")).collect()
        });
        let matcher = RuleMatcher::new(globs.collect()).map_err(|e| ConfigError::Invalid {
            path: self.path.clone(),
            message: format!("rules[].repositories: {e}"),
        })?;
        let identity = match &self.identity {
            Some(spec) => Identity::load(spec).map_err(|message| ConfigError::Invalid {
                path: self.path.clone(),
                message: format!("identity.{message}"),
            })?,
            None => Identity::anonymous(),
        };
        Ok(Rules { rules, matcher, identity, pass_writes: self.pass_writes.clone() })
    }
}

fn parse_upstream(text: &str) -> Result<http::Uri, String> {
    let uri: http::Uri =
        text.parse().map_err(|e| format!("upstream: `{text}` is not a URL: {e}"))?;
    if !matches!(uri.scheme_str(), Some("http" | "https")) || uri.authority().is_none() {
        return Err(format!(
            "upstream: `{text}`: expected `https://host[:port]` or `http://host:port`"
        ));
    }
    if !matches!(uri.path(), "" | "/") || uri.query().is_some() {
        return Err(format!("upstream: `{text}`: give the registry's root, without a path"));
    }
    Ok(uri)
}

fn coordination(spec: CoordinationFile) -> Result<CoordinationSpec, String> {
    let url: http::Uri = spec
        .redis
        .parse()
        .map_err(|e| format!("coordination.redis: `{}` is not a URL: {e}", spec.redis))?;
    if url.scheme_str() == Some("rediss") {
        return Err(format!(
            "coordination.redis: `{}`: TLS to Redis is not supported yet; reach it on a \
             private network or through a local TLS tunnel",
            spec.redis
        ));
    }
    if url.scheme_str() != Some("redis") || url.authority().is_none() {
        return Err(format!(
            "coordination.redis: `{}`: expected `redis://[user:password@]host:port[/db]`",
            spec.redis
        ));
    }
    if spec.lease < Duration::from_millis(500) || spec.lease > Duration::from_secs(600) {
        return Err(format!(
            "coordination.lease: `{}` is out of range (500ms to 10m)",
            humantime::format_duration(spec.lease)
        ));
    }
    let namespace_ok = !spec.namespace.is_empty()
        && spec.namespace.len() <= 64
        && spec.namespace.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
    if !namespace_ok {
        return Err(format!(
            "coordination.namespace: `{}`: 1 to 64 letters, digits, `-`, `_` or `.`",
            spec.namespace
        ));
    }
    Ok(CoordinationSpec { redis: spec.redis, lease: spec.lease, namespace: spec.namespace })
}

/// `*` stays within one path component; `**` crosses them.
fn repository_glob(glob: &str) -> Result<Glob, String> {
    globset::GlobBuilder::new(glob)
        .literal_separator(true)
        .build()
        .map_err(|e| format!("`{glob}` is not a valid glob: {e}"))
}

/// The loaded rules: the first rule whose globs match a repository applies.
pub struct Rules {
    rules: Vec<Rule>,
    matcher: RuleMatcher,
    pub identity: Identity,
    pub pass_writes: PassWrites,
}

pub struct Rule {
    pub repositories: Vec<String>,
    pub policies: Arc<PolicySet>,
}

impl Rules {
    pub fn rule_for(&self, repository: &str) -> Option<&Rule> {
        self.matcher.rule_for(repository).map(|rule| &self.rules[rule])
    }

    pub fn iter(&self) -> impl Iterator<Item = &Rule> {
        self.rules.iter()
    }

    /// The name of every policy the rules apply (a name once per rule that applies it).
    pub fn policy_names(&self) -> impl Iterator<Item = &str> {
        self.rules.iter().flat_map(|rule| rule.policies.policies().map(|(policy, _)| policy.name()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(yaml: &str) -> Result<GateConfig, ConfigError> {
        GateConfig::from_yaml(yaml, Path::new("/etc/tagpolicy/gate.yaml"))
    }

    #[test]
    fn a_full_configuration_parses() {
        let config = parse(
            "listen: 127.0.0.1:5000\nupstream: http://127.0.0.1:5001\ndecision_log: decisions.jsonl\n\
             rules:\n  - repositories: [\"team/**\", \"library/*\"]\n    policies:\n      \
             - policy: immutable-tags\n        settings: {mutable: [latest]}\n        mode: audit\n",
        )
        .unwrap();
        assert_eq!(config.listen.port(), 5000);
        assert_eq!(config.upstream.authority().unwrap().as_str(), "127.0.0.1:5001");
        assert_eq!(config.decision_log.unwrap(), Path::new("/etc/tagpolicy/decisions.jsonl"));
        assert_eq!(config.rules.len(), 1);
    }

    #[test]
    fn registry_policies_need_a_digest_or_keys() {
        let rules = |policy: &str| {
            format!(
                "listen: 127.0.0.1:5000\nupstream: http://x:1\nrules:\n  - repositories: [a]\n    policies:\n      - policy: {policy}\n"
            )
        };
        let tag = parse(&rules("oci://registry.example.com/policies/floor:stable"))
            .unwrap_err()
            .to_string();
        assert!(
            tag.contains("rules[0].policies[0].policy") && tag.contains("signature verification"),
            "{tag}"
        );
        let bad = parse(&rules("oci://Registry/UPPER:1")).unwrap_err().to_string();
        assert!(bad.contains("rules[0].policies[0].policy"), "{bad}");
        let digest = format!("oci://registry.example.com/policies/floor@sha256:{}", "a".repeat(64));
        parse(&rules(&digest)).unwrap();
        let with_keys = parse(&format!(
            "policy_registries: {{verify: {{keys: [ci.pub]}}, refresh: 30s}}\n{}",
            rules("oci://registry.example.com/policies/floor:stable")
        ))
        .unwrap();
        let verify = with_keys.policy_registries.verify.as_ref().unwrap();
        assert_eq!(verify.keys, [Path::new("/etc/tagpolicy/ci.pub")], "relative to the file");
        assert_eq!(with_keys.policy_registries.refresh(), Duration::from_secs(30));
        let short = parse(&format!("policy_registries: {{refresh: 10ms}}\n{}", rules(&digest)))
            .unwrap_err()
            .to_string();
        assert!(short.contains("shorter than 1s"), "{short}");
    }

    #[test]
    fn errors_name_the_file_and_field() {
        let unknown = parse("listen: 127.0.0.1:5000\nupstream: http://x:1\nrulez: []\n");
        let message = unknown.unwrap_err().to_string();
        assert!(
            message.contains("/etc/tagpolicy/gate.yaml") && message.contains("rulez"),
            "{message}"
        );

        let scheme = parse("listen: 127.0.0.1:5000\nupstream: ftp://x\n").unwrap_err().to_string();
        assert!(scheme.contains("upstream: `ftp://x`"), "{scheme}");
        let ca = parse("listen: 127.0.0.1:5000\nupstream: http://x:1\nupstream_ca: ca.pem\n")
            .unwrap_err()
            .to_string();
        assert!(ca.contains("upstream_ca: only for an `https://` upstream"), "{ca}");
        let https =
            parse("listen: 127.0.0.1:5000\nupstream: https://x\ntls: {cert: a.pem, key: a.key}\n")
                .unwrap();
        assert_eq!(https.tls.unwrap().cert, Path::new("/etc/tagpolicy/a.pem"));

        let glob = parse(
            "listen: 127.0.0.1:5000\nupstream: http://x:1\nrules:\n  - repositories: [\"team/[\"]\n    policies: []\n",
        )
        .unwrap_err()
        .to_string();
        assert!(glob.contains("rules[0].repositories[0]: `team/[`"), "{glob}");

        let settings = parse(
            "listen: 127.0.0.1:5000\nupstream: http://x:1\nrules:\n  - repositories: [a]\n    policies:\n      - policy: immutable-tags\n        settings: [1]\n",
        )
        .unwrap_err()
        .to_string();
        assert!(settings.contains("rules[0].policies[0].settings"), "{settings}");

        let listen = parse("listen: localhost\nupstream: http://x:1\n").unwrap_err().to_string();
        assert!(listen.contains("listen"), "{listen}");
    }

    #[test]
    fn pass_writes_and_limits_parse_with_errors_naming_the_field() {
        let config = parse(
            "listen: 127.0.0.1:5000\nupstream: http://x:1\npass_writes: [\"/api/v2.0/**\"]\n\
             limits: {header_timeout: 500ms, max_connections: 8}\n",
        )
        .unwrap();
        assert_eq!(config.pass_writes.patterns(), ["/api/v2.0/**"]);
        assert_eq!(config.limits.header_timeout, Duration::from_millis(500));
        assert_eq!(config.limits.max_connections, 8);
        assert_eq!(config.limits.lock_timeout, GateLimits::default().lock_timeout);

        let error = |yaml: &str| {
            parse(&format!("listen: 127.0.0.1:5000\nupstream: http://x:1\n{yaml}\n"))
                .unwrap_err()
                .to_string()
        };
        let relative = error("pass_writes: [\"api/**\"]");
        assert!(relative.contains("pass_writes[0]: `api/**` must start with `/`"), "{relative}");
        let duration = error("limits: {body_timeout: soon}");
        assert!(duration.contains("`soon` is not a duration"), "{duration}");
        let zero = error("limits: {lock_timeout: 0s}");
        assert!(zero.contains("limits.lock_timeout: `0s` is out of range"), "{zero}");
        let unknown = error("limits: {evaluate_ms: 20}");
        assert!(unknown.contains("evaluate_ms"), "{unknown}");
        let small = error("limits: {max_header_bytes: 10}");
        assert!(small.contains("limits.max_header_bytes"), "{small}");
    }

    #[test]
    fn coordination_parses_with_errors_naming_the_field() {
        let config = parse(
            "listen: 127.0.0.1:5000\nupstream: http://x:1\nauthoritative: true\n\
             coordination: {redis: \"redis://:pw@10.0.0.5:6379/2\", lease: 5s}\n\
             notifications: {token_file: notify.token}\n",
        )
        .unwrap();
        let spec = config.coordination.unwrap();
        assert_eq!((spec.lease, spec.namespace.as_str()), (Duration::from_secs(5), "tagpolicy"));
        assert!(config.authoritative);
        assert_eq!(
            config.notifications_token_file.unwrap(),
            Path::new("/etc/tagpolicy/notify.token")
        );

        let error = |coordination: &str| {
            parse(&format!(
                "listen: 127.0.0.1:5000\nupstream: http://x:1\ncoordination: {coordination}\n"
            ))
            .unwrap_err()
            .to_string()
        };
        let scheme = error("{redis: \"http://10.0.0.5:6379\"}");
        assert!(
            scheme.contains("coordination.redis: `http://10.0.0.5:6379`: expected"),
            "{scheme}"
        );
        let tls = error("{redis: \"rediss://10.0.0.5:6379\"}");
        assert!(tls.contains("TLS to Redis is not supported yet"), "{tls}");
        let lease = error("{redis: \"redis://r:6379\", lease: 100ms}");
        assert!(lease.contains("coordination.lease: `100ms` is out of range"), "{lease}");
        let namespace = error("{redis: \"redis://r:6379\", namespace: \"a b\"}");
        assert!(namespace.contains("coordination.namespace: `a b`"), "{namespace}");
        let unknown = error("{redis: \"redis://r:6379\", leases: 5s}");
        assert!(unknown.contains("leases"), "{unknown}");
    }

    #[test]
    fn globs_keep_single_stars_within_a_component() {
        let star = repository_glob("library/*").unwrap().compile_matcher();
        assert!(star.is_match("library/alpine"));
        assert!(!star.is_match("library/a/b"));
        let deep = repository_glob("team/**").unwrap().compile_matcher();
        assert!(deep.is_match("team/a/b"));
        assert!(!deep.is_match("other/a"));
    }
}
