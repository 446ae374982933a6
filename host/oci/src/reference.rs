//! Policy references: `oci://host[:port]/repo[/more]:tag`, `…@sha256:<hex>` or both
//! (`…:tag@sha256:<hex>`), and the plain form `host[:port]/repo:tag` of CLI arguments.
//!
//! Names, tags and digests follow the grammar of the OCI distribution specification (and of
//! the `distribution/reference` package registries and clients share): repository path
//! components `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`, tags `[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}`,
//! at most 255 characters for `host/repository`. Only `sha256` digests are accepted.

use std::fmt;
use std::net::Ipv6Addr;
use std::str::FromStr;

use tagpolicy::{Digest, DigestError};

/// The scheme that marks a policy reference.
pub const SCHEME: &str = "oci://";

/// The longest `host/repository`, as registries and `distribution/reference` limit it.
pub const NAME_MAX: usize = 255;

/// Which part of a reference is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReferenceError {
    #[error("`{0}` is not a policy reference: it must start with `oci://`")]
    MissingScheme(String),
    #[error("`{0}` names no repository: write `host[:port]/repository:tag` or `…@sha256:<digest>`")]
    MissingRepository(String),
    #[error(
        "`{host}` in `{input}` is not a registry host: name the registry first, e.g. `registry.example.com/{input}`"
    )]
    NotAHost { input: String, host: String },
    #[error(
        "registry host `{host}` in `{input}` is not a valid host name or bracketed IPv6 address"
    )]
    InvalidHost { input: String, host: String },
    #[error("port `{port}` in `{input}` is not a number from 1 to 65535")]
    InvalidPort { input: String, port: String },
    #[error(
        "repository `{repository}` in `{input}` is invalid: each `/`-separated part must be lowercase letters and digits, separated by `.`, `_`, `__` or dashes"
    )]
    InvalidRepository { input: String, repository: String },
    #[error("`{name}` in `{input}` is longer than {NAME_MAX} characters")]
    NameTooLong { input: String, name: String },
    #[error(
        "tag `{tag}` in `{input}` is invalid: a tag is 1 to 128 letters, digits, `_`, `.` or `-`, not starting with `.` or `-`"
    )]
    InvalidTag { input: String, tag: String },
    #[error("digest in `{input}` is invalid: {source}")]
    InvalidDigest {
        input: String,
        #[source]
        source: DigestError,
    },
    #[error("`{0}` names neither a tag nor a digest: add `:tag` or `@sha256:<digest>`")]
    MissingTagOrDigest(String),
}

/// A parsed policy reference: registry, repository, and a tag, a digest or both.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Reference {
    registry: String,
    repository: String,
    tag: Option<String>,
    digest: Option<Digest>,
}

impl Reference {
    /// Parses `oci://host[:port]/repo[:tag][@sha256:<hex>]`.
    pub fn parse(input: &str) -> Result<Self, ReferenceError> {
        let rest = input
            .strip_prefix(SCHEME)
            .ok_or_else(|| ReferenceError::MissingScheme(input.to_owned()))?;
        parse_rest(input, rest, false)
    }

    /// Parses the plain form of CLI arguments, `host[:port]/repo[:tag][@sha256:<hex>]`
    /// (an `oci://` prefix is accepted too). The first part must look like a registry host
    /// (contain `.` or `:`, be `localhost` or a bracketed IPv6 address), so that `library/x:1`
    /// is refused rather than sent to a registry called `library`.
    pub fn parse_plain(input: &str) -> Result<Self, ReferenceError> {
        match input.strip_prefix(SCHEME) {
            Some(rest) => parse_rest(input, rest, false),
            None => parse_rest(input, input, true),
        }
    }

    /// Builds a reference from parts, validating each.
    pub fn new(
        registry: &str,
        repository: &str,
        tag: Option<&str>,
        digest: Option<Digest>,
    ) -> Result<Self, ReferenceError> {
        let mut shown = format!("{registry}/{repository}");
        if let Some(tag) = tag {
            shown.push(':');
            shown.push_str(tag);
        }
        if let Some(digest) = &digest {
            shown.push('@');
            shown.push_str(&digest.to_string());
        }
        check_host(&shown, registry, false)?;
        check_repository(&shown, repository)?;
        check_length(&shown, registry, repository)?;
        if let Some(tag) = tag {
            check_tag(&shown, tag)?;
        }
        if tag.is_none() && digest.is_none() {
            return Err(ReferenceError::MissingTagOrDigest(shown));
        }
        Ok(Self {
            registry: registry.to_owned(),
            repository: repository.to_owned(),
            tag: tag.map(str::to_owned),
            digest,
        })
    }

    /// The registry: `host` or `host:port`.
    pub fn registry(&self) -> &str {
        &self.registry
    }

    /// The repository inside the registry, e.g. `team/policies/immutable-tags`.
    pub fn repository(&self) -> &str {
        &self.repository
    }

    /// The tag, if the reference names one.
    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    /// The digest, if the reference pins one.
    pub fn digest(&self) -> Option<&Digest> {
        self.digest.as_ref()
    }

    /// `registry/repository`: what a simple-signing payload names as its `docker-reference`.
    pub fn name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }

    /// The same repository pinned to `digest` (the tag is kept).
    pub fn with_digest(&self, digest: Digest) -> Self {
        Self { digest: Some(digest), ..self.clone() }
    }

    /// The plain form, without `oci://`.
    pub fn plain(&self) -> String {
        let mut out = self.name();
        if let Some(tag) = &self.tag {
            out.push(':');
            out.push_str(tag);
        }
        if let Some(digest) = &self.digest {
            out.push('@');
            out.push_str(&digest.to_string());
        }
        out
    }
}

impl fmt::Display for Reference {
    /// The `oci://` form; [`Reference::parse`] reads it back.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{SCHEME}{}", self.plain())
    }
}

impl FromStr for Reference {
    type Err = ReferenceError;

    /// Same as [`Reference::parse`].
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

fn parse_rest(input: &str, rest: &str, plain: bool) -> Result<Reference, ReferenceError> {
    let (name_tag, digest) = match rest.split_once('@') {
        Some((name_tag, digest)) => {
            let digest = digest.parse::<Digest>().map_err(|source| {
                ReferenceError::InvalidDigest { input: input.to_owned(), source }
            })?;
            (name_tag, Some(digest))
        }
        None => (rest, None),
    };
    let (host, path) = name_tag
        .split_once('/')
        .ok_or_else(|| ReferenceError::MissingRepository(input.to_owned()))?;
    if path.is_empty() {
        return Err(ReferenceError::MissingRepository(input.to_owned()));
    }
    // A repository never contains `:`, so a `:` after the last `/` starts the tag.
    let (repository, tag) = match path.rsplit_once(':') {
        Some((repository, tag)) => (repository, Some(tag)),
        None => (path, None),
    };
    check_host(input, host, plain)?;
    check_repository(input, repository)?;
    check_length(input, host, repository)?;
    if let Some(tag) = tag {
        check_tag(input, tag)?;
    }
    if tag.is_none() && digest.is_none() {
        return Err(ReferenceError::MissingTagOrDigest(input.to_owned()));
    }
    Ok(Reference {
        registry: host.to_owned(),
        repository: repository.to_owned(),
        tag: tag.map(str::to_owned),
        digest,
    })
}

fn check_host(input: &str, host: &str, plain: bool) -> Result<(), ReferenceError> {
    let invalid = || ReferenceError::InvalidHost { input: input.to_owned(), host: host.to_owned() };
    let (name, port) = if let Some(bracketed) = host.strip_prefix('[') {
        let (address, after) = bracketed.split_once(']').ok_or_else(invalid)?;
        address.parse::<Ipv6Addr>().map_err(|_| invalid())?;
        match after {
            "" => (None, None),
            _ => (None, Some(after.strip_prefix(':').ok_or_else(invalid)?)),
        }
    } else {
        match host.split_once(':') {
            Some((name, port)) => (Some(name), Some(port)),
            None => (Some(host), None),
        }
    };
    if let Some(name) = name {
        if name.is_empty() || !name.split('.').all(domain_component) {
            return Err(invalid());
        }
        if plain && port.is_none() && !name.contains('.') && name != "localhost" {
            return Err(ReferenceError::NotAHost {
                input: input.to_owned(),
                host: host.to_owned(),
            });
        }
    }
    if let Some(port) = port {
        let ok = !port.is_empty()
            && port.len() <= 5
            && port.bytes().all(|c| c.is_ascii_digit())
            && matches!(port.parse::<u32>(), Ok(1..=65535));
        if !ok {
            return Err(ReferenceError::InvalidPort {
                input: input.to_owned(),
                port: port.to_owned(),
            });
        }
    }
    Ok(())
}

/// `[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]`
fn domain_component(c: &str) -> bool {
    let b = c.as_bytes();
    !b.is_empty()
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter().all(|&x| x.is_ascii_alphanumeric() || x == b'-')
}

fn check_repository(input: &str, repository: &str) -> Result<(), ReferenceError> {
    if repository.split('/').all(path_component) {
        Ok(())
    } else {
        Err(ReferenceError::InvalidRepository {
            input: input.to_owned(),
            repository: repository.to_owned(),
        })
    }
}

/// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`
fn path_component(c: &str) -> bool {
    let alnum = |x: u8| x.is_ascii_lowercase() || x.is_ascii_digit();
    let b = c.as_bytes();
    if b.is_empty() || !alnum(b[0]) || !alnum(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if alnum(b[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && !alnum(b[i]) {
            i += 1;
        }
        let separator = &b[start..i];
        let ok = separator == b"."
            || separator == b"_"
            || separator == b"__"
            || separator.iter().all(|&x| x == b'-');
        if !ok {
            return false;
        }
    }
    true
}

fn check_length(input: &str, host: &str, repository: &str) -> Result<(), ReferenceError> {
    if host.len() + 1 + repository.len() > NAME_MAX {
        return Err(ReferenceError::NameTooLong {
            input: input.to_owned(),
            name: format!("{host}/{repository}"),
        });
    }
    Ok(())
}

/// `[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}`
fn check_tag(input: &str, tag: &str) -> Result<(), ReferenceError> {
    let b = tag.as_bytes();
    let word = |x: u8| x.is_ascii_alphanumeric() || x == b'_';
    let ok = !b.is_empty()
        && b.len() <= 128
        && word(b[0])
        && b.iter().all(|&x| word(x) || x == b'.' || x == b'-');
    if ok {
        Ok(())
    } else {
        Err(ReferenceError::InvalidTag { input: input.to_owned(), tag: tag.to_owned() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";

    #[test]
    fn parses_digest_tag_and_both_and_round_trips() {
        let by_digest = format!("oci://registry.example.com:5000/team/policies/floor@sha256:{HEX}");
        let r = Reference::parse(&by_digest).unwrap();
        assert_eq!(r.registry(), "registry.example.com:5000");
        assert_eq!(r.repository(), "team/policies/floor");
        assert_eq!(r.tag(), None);
        assert_eq!(r.digest().unwrap().hex(), HEX);
        assert_eq!(r.to_string(), by_digest);

        let r = Reference::parse("oci://127.0.0.1:5000/floor:v1.2.3").unwrap();
        assert_eq!(r.registry(), "127.0.0.1:5000");
        assert_eq!(r.repository(), "floor");
        assert_eq!(r.tag(), Some("v1.2.3"));
        assert_eq!(r.digest(), None);
        assert_eq!(r.name(), "127.0.0.1:5000/floor");

        let both = format!("oci://[::1]:5000/a/b-c__d.e:_1.0-rc@sha256:{HEX}");
        let r = Reference::parse(&both).unwrap();
        assert_eq!(r.registry(), "[::1]:5000");
        assert_eq!(r.repository(), "a/b-c__d.e");
        assert_eq!(r.tag(), Some("_1.0-rc"));
        assert!(r.digest().is_some());
        assert_eq!(r.to_string(), both);
        assert_eq!(Reference::parse(&r.to_string()).unwrap(), r);
    }

    #[test]
    fn plain_form_needs_a_registry_host() {
        let r = Reference::parse_plain("localhost:5000/floor:1").unwrap();
        assert_eq!(r.plain(), "localhost:5000/floor:1");
        assert!(Reference::parse_plain("localhost/floor:1").is_ok());
        assert!(Reference::parse_plain("ghcr.io/org/floor:1").is_ok());
        assert!(Reference::parse_plain("oci://ghcr.io/org/floor:1").is_ok());
        let err = Reference::parse_plain("library/floor:1").unwrap_err();
        assert!(matches!(err, ReferenceError::NotAHost { .. }), "{err}");
        assert!(err.to_string().contains("`library`"), "{err}");
        // The `oci://` form always takes the first part as the host.
        assert!(Reference::parse("oci://registry/floor:1").is_ok());
    }

    fn part(e: &ReferenceError) -> &'static str {
        match e {
            ReferenceError::MissingScheme(_) => "MissingScheme",
            ReferenceError::MissingRepository(_) => "MissingRepository",
            ReferenceError::NotAHost { .. } => "NotAHost",
            ReferenceError::InvalidHost { .. } => "InvalidHost",
            ReferenceError::InvalidPort { .. } => "InvalidPort",
            ReferenceError::InvalidRepository { .. } => "InvalidRepository",
            ReferenceError::NameTooLong { .. } => "NameTooLong",
            ReferenceError::InvalidTag { .. } => "InvalidTag",
            ReferenceError::InvalidDigest { .. } => "InvalidDigest",
            ReferenceError::MissingTagOrDigest(_) => "MissingTagOrDigest",
        }
    }

    #[test]
    fn errors_name_the_wrong_part() {
        let cases = [
            ("registry.example.com/floor:1", "MissingScheme"),
            ("oci://registry.example.com", "MissingRepository"),
            ("oci://registry.example.com/", "MissingRepository"),
            ("oci://-bad.example.com/floor:1", "InvalidHost"),
            ("oci://bad..example.com/floor:1", "InvalidHost"),
            ("oci://[::g]:5000/floor:1", "InvalidHost"),
            ("oci://host:0/floor:1", "InvalidPort"),
            ("oci://host:65536/floor:1", "InvalidPort"),
            ("oci://host:/floor:1", "InvalidPort"),
            ("oci://host/Floor:1", "InvalidRepository"),
            ("oci://host/a..b:1", "InvalidRepository"),
            ("oci://host/a___b:1", "InvalidRepository"),
            ("oci://host/a//b:1", "InvalidRepository"),
            ("oci://host/a-:1", "InvalidRepository"),
            ("oci://host/floor:.1", "InvalidTag"),
            ("oci://host/floor:", "InvalidTag"),
            ("oci://host/floor:a+b", "InvalidTag"),
            ("oci://host/floor@sha256:abc", "InvalidDigest"),
            ("oci://host/floor@md5:abc", "InvalidDigest"),
            ("oci://host/floor", "MissingTagOrDigest"),
        ];
        for (input, expected) in cases {
            let err = Reference::parse(input).unwrap_err();
            assert_eq!(part(&err), expected, "{input}: {err}");
        }
        let long_tag = format!("oci://host/floor:{}", "a".repeat(129));
        assert!(matches!(Reference::parse(&long_tag), Err(ReferenceError::InvalidTag { .. })));
        assert!(Reference::parse(&format!("oci://host/floor:{}", "a".repeat(128))).is_ok());
        let long_name = format!("oci://host/{}:1", "a".repeat(251));
        assert!(matches!(Reference::parse(&long_name), Err(ReferenceError::NameTooLong { .. })));
        assert!(Reference::parse(&format!("oci://host/{}:1", "a".repeat(250))).is_ok());
    }

    #[test]
    fn new_validates_parts() {
        assert!(Reference::new("host:5000", "a/b", Some("1"), None).is_ok());
        assert!(matches!(
            Reference::new("host", "A", Some("1"), None),
            Err(ReferenceError::InvalidRepository { .. })
        ));
        assert!(matches!(
            Reference::new("host", "a", None, None),
            Err(ReferenceError::MissingTagOrDigest(_))
        ));
    }
}
