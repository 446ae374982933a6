//! Registry credentials where this ecosystem keeps them: entries given in configuration,
//! then the first auth file that has an entry for the registry, in the order podman and
//! skopeo read them (`containers-auth.json(5)`): `$REGISTRY_AUTH_FILE`,
//! `$XDG_RUNTIME_DIR/containers/auth.json`, `$XDG_CONFIG_HOME/containers/auth.json`
//! (`~/.config/…`), then docker's `$DOCKER_CONFIG/config.json` (`~/.docker/config.json`).
//! An entry may be scoped to a namespace (`registry.example.com/team`): the longest match wins.
//!
//! Credential helpers (`credHelpers`, `credsStore`) are programs this crate does not run: a
//! registry whose only entry is a helper is an error that says so, never a silent anonymous
//! pull.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::Deserialize;

/// A user name and password (or token) for one registry.
#[derive(Clone, PartialEq, Eq)]
pub struct Credential {
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Credential({}, ****)", self.username)
    }
}

/// Why credentials could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CredentialError {
    #[error("cannot read auth file `{}`: {source}", path.display())]
    Read { path: PathBuf, source: std::io::Error },
    #[error("auth file `{}` is not valid JSON of `auths`: {source}", path.display())]
    Json { path: PathBuf, source: serde_json::Error },
    #[error("auth file `{}`: entry `{key}`: {message}", path.display())]
    Entry { path: PathBuf, key: String, message: String },
    #[error(
        "auth file `{}` says the credentials for `{registry}` are kept by the credential helper `docker-credential-{helper}`, which tagpolicy does not run: put them in an auth file (`auth_file`) or under `credentials`",
        path.display()
    )]
    Helper { path: PathBuf, registry: String, helper: String },
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct AuthFile {
    #[serde(default)]
    auths: BTreeMap<String, AuthEntry>,
    #[serde(default)]
    cred_helpers: BTreeMap<String, String>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "lowercase")]
struct AuthEntry {
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    identitytoken: Option<String>,
}

/// Where credentials are looked up, in order.
#[derive(Debug, Clone, Default)]
pub struct Credentials {
    /// Given in configuration or on the command line: `registry[/namespace]` → credential.
    explicit: BTreeMap<String, Credential>,
    /// Auth files, the first with an entry for a registry wins.
    files: Vec<PathBuf>,
}

impl Credentials {
    /// No credentials at all: every registry is accessed anonymously.
    pub fn none() -> Self {
        Self::default()
    }

    /// The auth files podman, skopeo and docker read, from the environment: `auth_file`
    /// first when given (then the environment's are not read).
    pub fn from_environment(auth_file: Option<&Path>) -> Self {
        if let Some(file) = auth_file {
            return Self { explicit: BTreeMap::new(), files: vec![file.to_owned()] };
        }
        let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty()).map(PathBuf::from);
        let home = var("HOME");
        let mut files = Vec::new();
        files.extend(var("REGISTRY_AUTH_FILE"));
        files.extend(var("XDG_RUNTIME_DIR").map(|d| d.join("containers/auth.json")));
        files.extend(
            var("XDG_CONFIG_HOME")
                .or_else(|| home.as_ref().map(|h| h.join(".config")))
                .map(|d| d.join("containers/auth.json")),
        );
        files.extend(
            var("DOCKER_CONFIG")
                .or_else(|| home.as_ref().map(|h| h.join(".docker")))
                .map(|d| d.join("config.json")),
        );
        Self { explicit: BTreeMap::new(), files }
    }

    /// Adds a credential for `scope` (`registry[:port]` or `registry[:port]/namespace`), which
    /// wins over every auth file.
    pub fn with(mut self, scope: &str, credential: Credential) -> Self {
        self.explicit.insert(normalise(scope), credential);
        self
    }

    /// The auth files consulted, in order (missing ones are skipped).
    pub fn files(&self) -> &[PathBuf] {
        &self.files
    }

    /// The credential for `repository` on `registry`, or `None` for anonymous access.
    pub fn lookup(
        &self,
        registry: &str,
        repository: &str,
    ) -> Result<Option<Credential>, CredentialError> {
        let full = format!("{registry}/{repository}");
        if let Some(credential) = longest_match(&self.explicit, registry, &full) {
            return Ok(Some(credential.clone()));
        }
        for path in &self.files {
            let bytes = match std::fs::read(path) {
                Ok(bytes) => bytes,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(source) => return Err(CredentialError::Read { path: path.clone(), source }),
            };
            let file: AuthFile = serde_json::from_slice(&bytes)
                .map_err(|source| CredentialError::Json { path: path.clone(), source })?;
            let entries: BTreeMap<String, AuthEntry> =
                file.auths.into_iter().map(|(k, v)| (normalise(&k), v)).collect();
            if let Some(key) = longest_key(&entries, registry, &full) {
                return decode(path, &key, &entries[&key]).map(Some);
            }
            if let Some(helper) = file.cred_helpers.get(registry) {
                return Err(CredentialError::Helper {
                    path: path.clone(),
                    registry: registry.to_owned(),
                    helper: helper.clone(),
                });
            }
        }
        Ok(None)
    }
}

/// `https://index.docker.io/v1/` and `registry.example.com/` alike become the bare scope.
fn normalise(key: &str) -> String {
    let key = key.strip_prefix("https://").or_else(|| key.strip_prefix("http://")).unwrap_or(key);
    let key = key.trim_end_matches('/');
    match key.strip_suffix("/v1").or_else(|| key.strip_suffix("/v2")) {
        Some(host) if !host.contains('/') => host.to_owned(),
        _ => key.to_owned(),
    }
}

fn longest_key<V>(entries: &BTreeMap<String, V>, registry: &str, full: &str) -> Option<String> {
    entries
        .keys()
        .filter(|key| {
            key.as_str() == registry
                || (full.starts_with(key.as_str()) && full.as_bytes().get(key.len()) == Some(&b'/'))
        })
        .max_by_key(|key| key.len())
        .cloned()
}

fn longest_match<'a, V>(
    entries: &'a BTreeMap<String, V>,
    registry: &str,
    full: &str,
) -> Option<&'a V> {
    longest_key(entries, registry, full).map(|key| &entries[&key])
}

fn decode(path: &Path, key: &str, entry: &AuthEntry) -> Result<Credential, CredentialError> {
    let error = |message: &str| CredentialError::Entry {
        path: path.to_owned(),
        key: key.to_owned(),
        message: message.to_owned(),
    };
    if let (Some(username), Some(password)) = (&entry.username, &entry.password) {
        return Ok(Credential { username: username.clone(), password: password.clone() });
    }
    match &entry.auth {
        Some(auth) if !auth.is_empty() => {
            let bytes = STANDARD
                .decode(auth.trim())
                .map_err(|_| error("`auth` is not base64 of `user:password`"))?;
            let text = String::from_utf8(bytes)
                .map_err(|_| error("`auth` is not base64 of `user:password`"))?;
            let (username, password) = text
                .split_once(':')
                .ok_or_else(|| error("`auth` is not base64 of `user:password`"))?;
            Ok(Credential { username: username.to_owned(), password: password.to_owned() })
        }
        _ if entry.identitytoken.is_some() => Err(error(
            "holds only an identity token, which tagpolicy cannot exchange: log in with a user name and password or token",
        )),
        _ => Err(error("has neither `auth` nor `username` and `password`")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(dir: &Path, name: &str, text: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    fn credential(user: &str, password: &str) -> Credential {
        Credential { username: user.into(), password: password.into() }
    }

    #[test]
    fn auth_files_in_order_with_namespaces_and_docker_keys() {
        let dir = tempfile::tempdir().unwrap();
        let podman = file(
            dir.path(),
            "auth.json",
            r#"{"auths": {"reg.example.com": {"auth": "YWxpY2U6czNjcmV0"},
                          "reg.example.com/team": {"username": "bob", "password": "pw"}}}"#,
        );
        let docker = file(
            dir.path(),
            "config.json",
            r#"{"auths": {"https://index.docker.io/v1/": {"auth": "Y2Fyb2w6eA=="},
                          "reg.example.com": {"auth": "bWFsbG9yeTp4"}},
                "credHelpers": {"helped.example.com": "ecr-login"}}"#,
        );
        let credentials = Credentials {
            explicit: BTreeMap::new(),
            files: vec![dir.path().join("missing"), podman, docker],
        };
        assert_eq!(
            credentials.lookup("reg.example.com", "other/x").unwrap(),
            Some(credential("alice", "s3cret"))
        );
        assert_eq!(
            credentials.lookup("reg.example.com", "team/x").unwrap(),
            Some(credential("bob", "pw"))
        );
        // `team` does not match `teamwork`.
        assert_eq!(
            credentials.lookup("reg.example.com", "teamwork/x").unwrap(),
            Some(credential("alice", "s3cret"))
        );
        assert_eq!(
            credentials.lookup("index.docker.io", "library/x").unwrap(),
            Some(credential("carol", "x"))
        );
        assert_eq!(credentials.lookup("other.example.com", "x").unwrap(), None);
        let helper = credentials.lookup("helped.example.com", "x").unwrap_err().to_string();
        assert!(helper.contains("docker-credential-ecr-login"), "{helper}");
        let explicit = credentials.with("reg.example.com", credential("ci", "t"));
        assert_eq!(
            explicit.lookup("reg.example.com", "team/x").unwrap(),
            Some(credential("ci", "t"))
        );
    }

    #[test]
    fn broken_entries_name_the_file_and_key() {
        let dir = tempfile::tempdir().unwrap();
        let broken = file(dir.path(), "a.json", r#"{"auths": {"r.example.com": {"auth": "!!"}}}"#);
        let credentials = Credentials { explicit: BTreeMap::new(), files: vec![broken.clone()] };
        let error = credentials.lookup("r.example.com", "x").unwrap_err().to_string();
        assert!(error.contains("a.json") && error.contains("`r.example.com`"), "{error}");
        let token =
            file(dir.path(), "b.json", r#"{"auths": {"r.example.com": {"identitytoken": "t"}}}"#);
        let error = Credentials { explicit: BTreeMap::new(), files: vec![token] }
            .lookup("r.example.com", "x")
            .unwrap_err()
            .to_string();
        assert!(error.contains("identity token"), "{error}");
        let not_json = file(dir.path(), "c.json", "{");
        let error = Credentials { explicit: BTreeMap::new(), files: vec![not_json] }
            .lookup("r.example.com", "x")
            .unwrap_err()
            .to_string();
        assert!(error.contains("c.json"), "{error}");
    }
}
