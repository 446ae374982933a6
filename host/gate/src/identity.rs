//! Who is asking: the actor a policy sees, established by the gate itself. Credentials are
//! verified (bcrypt htpasswd entries, signed bearer tokens, a header set by a trusted front
//! proxy) or the request is anonymous; credentials that are present but do not verify are
//! refused, never ignored and never believed.

use base64::Engine as _;
use http::HeaderValue;
use http::header::AUTHORIZATION;
use ipnet::IpNet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation, jwk::JwkSet};
use parking_lot::Mutex;
use serde::Deserialize;
use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tagpolicy::Actor;
use tagpolicy::Digest;

/// The `identity` section of the gate configuration.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdentitySpec {
    /// An htpasswd file with bcrypt entries (`htpasswd -B`), for basic auth.
    #[serde(default)]
    pub htpasswd: Option<PathBuf>,
    #[serde(default)]
    pub jwt: Option<JwtSpec>,
    #[serde(default)]
    pub trusted_header: Option<TrustedHeaderSpec>,
    #[serde(default)]
    pub anonymous: Anonymous,
}

/// Bearer tokens from the registry's token server.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JwtSpec {
    /// A PEM public key (RSA or EC); or `jwks`.
    #[serde(default)]
    pub public_key: Option<PathBuf>,
    /// A JSON Web Key Set file; tokens pick their key by `kid`.
    #[serde(default)]
    pub jwks: Option<PathBuf>,
    #[serde(default)]
    pub issuer: Option<String>,
    #[serde(default)]
    pub audience: Option<String>,
    /// The claim with the actor's groups (a list of strings, or one string).
    #[serde(default)]
    pub groups_claim: Option<String>,
}

/// A header an authenticating front proxy sets, believed only from the listed peers.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrustedHeaderSpec {
    pub name: String,
    pub from: Vec<String>,
}

/// What an anonymous tag-changing request gets.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Anonymous {
    /// Decided by the policies with no actor.
    #[default]
    Allow,
    /// Refused with 401 before any policy runs.
    Deny,
}

impl IdentitySpec {
    pub(crate) fn relative_to(mut self, base: &Path) -> Self {
        if let Some(path) = &mut self.htpasswd {
            *path = base.join(&path);
        }
        if let Some(jwt) = &mut self.jwt {
            for path in [&mut jwt.public_key, &mut jwt.jwks].into_iter().flatten() {
                *path = base.join(&path);
            }
        }
        self
    }
}

/// How the actor of a request was established, for the decision log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ActorSource {
    Anonymous,
    Htpasswd,
    Jwt,
    TrustedHeader,
}

/// Why credentials were refused; the gate answers 401 with a challenge.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unauthorized {
    #[error("invalid user name or password")]
    BadPassword,
    #[error("malformed basic credentials")]
    MalformedBasic,
    #[error("bearer token rejected: {0}")]
    BadToken(String),
    #[error("authentication required: anonymous tag changes are not allowed")]
    AnonymousDenied,
    #[error(
        "too many wrong passwords for `{user}`: its passwords are not checked for {retry_after_s} s"
    )]
    Throttled { user: String, retry_after_s: u64 },
}

impl Unauthorized {
    /// The scheme the client should answer with.
    pub fn scheme(&self, identity: &Identity) -> Scheme {
        match self {
            Unauthorized::BadToken(_) => Scheme::Bearer,
            Unauthorized::AnonymousDenied if identity.htpasswd.is_none() => Scheme::Bearer,
            _ => Scheme::Basic,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    Basic,
    Bearer,
}

/// The verified actor of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Established {
    pub actor: Actor,
    pub source: ActorSource,
}

impl Established {
    fn anonymous() -> Self {
        Established { actor: Actor::anonymous(), source: ActorSource::Anonymous }
    }
}

/// Loaded identity sources.
#[derive(Debug, Default)]
pub struct Identity {
    htpasswd: Option<Htpasswd>,
    jwt: Option<Jwt>,
    trusted_header: Option<TrustedHeader>,
    anonymous: Anonymous,
}

impl Identity {
    pub fn anonymous() -> Self {
        Identity::default()
    }

    /// Load the files a spec names. The error starts with the field at fault.
    pub(crate) fn load(spec: &IdentitySpec) -> Result<Self, String> {
        let htpasswd = match &spec.htpasswd {
            Some(path) => Some(Htpasswd::load(path).map_err(|e| format!("htpasswd: {e}"))?),
            None => None,
        };
        let jwt = match &spec.jwt {
            Some(jwt) => Some(Jwt::load(jwt).map_err(|e| format!("jwt.{e}"))?),
            None => None,
        };
        let trusted_header = match &spec.trusted_header {
            Some(header) => {
                Some(TrustedHeader::load(header).map_err(|e| format!("trusted_header.{e}"))?)
            }
            None => None,
        };
        Ok(Identity { htpasswd, jwt, trusted_header, anonymous: spec.anonymous })
    }

    /// True when no request can carry an identity.
    pub fn is_anonymous(&self) -> bool {
        self.htpasswd.is_none() && self.jwt.is_none() && self.trusted_header.is_none()
    }

    pub fn requires_basic_auth(&self) -> bool {
        self.htpasswd.is_some()
    }

    /// The trusted header's name, when one is configured.
    pub fn trusted_header_name(&self) -> Option<&http::HeaderName> {
        self.trusted_header.as_ref().map(|h| &h.name)
    }

    /// Whether `peer` may set the trusted header.
    pub fn trusts(&self, peer: IpAddr) -> bool {
        self.trusted_header.as_ref().is_some_and(|h| h.from.iter().any(|net| net.contains(&peer)))
    }

    /// The actor of a tag-changing request from `peer`. Verifying a bcrypt password takes
    /// tens of milliseconds of CPU: call it from a blocking context.
    pub fn establish(
        &self,
        headers: &http::HeaderMap,
        peer: IpAddr,
    ) -> Result<Established, Unauthorized> {
        if let Some(trusted) = &self.trusted_header
            && let Some(value) = headers.get(&trusted.name)
            && self.trusts(peer)
        {
            let user = value.to_str().map_err(|_| Unauthorized::MalformedBasic)?.trim();
            if !user.is_empty() {
                return Ok(Established {
                    actor: Actor { id: Some(user.to_string()), groups: Vec::new() },
                    source: ActorSource::TrustedHeader,
                });
            }
        }
        let established = match headers.get(AUTHORIZATION).map(credentials) {
            Some(Credentials::Basic(_)) => match self.verified_basic(headers)? {
                Some(user) => Established {
                    actor: Actor { id: Some(user), groups: Vec::new() },
                    source: ActorSource::Htpasswd,
                },
                None => Established::anonymous(),
            },
            Some(Credentials::Bearer(token)) => match &self.jwt {
                Some(jwt) => {
                    let actor = jwt.verify(token)?;
                    Established { actor, source: ActorSource::Jwt }
                }
                None => Established::anonymous(),
            },
            Some(Credentials::Other) | None => Established::anonymous(),
        };
        if established.source == ActorSource::Anonymous {
            return self.anonymous_allowed();
        }
        Ok(established)
    }

    fn anonymous_allowed(&self) -> Result<Established, Unauthorized> {
        match self.anonymous {
            Anonymous::Allow => Ok(Established::anonymous()),
            Anonymous::Deny => Err(Unauthorized::AnonymousDenied),
        }
    }

    /// Check basic credentials on a request that changes nothing (the client's `GET /v2/`
    /// login check): `Ok(false)` when there are none.
    pub fn check_basic(&self, headers: &http::HeaderMap) -> Result<bool, Unauthorized> {
        Ok(self.verified_basic(headers)?.is_some())
    }

    /// The user of verified basic credentials. `None` without an htpasswd file (credentials
    /// for the upstream only say nothing the gate can verify), without basic credentials, and
    /// for the empty ones a client without credentials answers a basic challenge with.
    fn verified_basic(&self, headers: &http::HeaderMap) -> Result<Option<String>, Unauthorized> {
        let Some(htpasswd) = &self.htpasswd else { return Ok(None) };
        let Some(Credentials::Basic(encoded)) = headers.get(AUTHORIZATION).map(credentials) else {
            return Ok(None);
        };
        let (user, password) = decode_basic(encoded)?;
        if user.is_empty() && password.is_empty() {
            return Ok(None);
        }
        htpasswd.verify(&user, &password)?;
        Ok(Some(user))
    }
}

enum Credentials<'a> {
    Basic(&'a str),
    Bearer(&'a str),
    Other,
}

fn credentials(value: &HeaderValue) -> Credentials<'_> {
    let Ok(value) = value.to_str() else { return Credentials::Other };
    let (scheme, rest) = value.split_once(' ').unwrap_or((value, ""));
    if scheme.eq_ignore_ascii_case("basic") {
        Credentials::Basic(rest.trim())
    } else if scheme.eq_ignore_ascii_case("bearer") {
        Credentials::Bearer(rest.trim())
    } else {
        Credentials::Other
    }
}

fn decode_basic(encoded: &str) -> Result<(String, String), Unauthorized> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .map_err(|_| Unauthorized::MalformedBasic)?;
    let text = String::from_utf8(bytes).map_err(|_| Unauthorized::MalformedBasic)?;
    let (user, password) = text.split_once(':').ok_or(Unauthorized::MalformedBasic)?;
    Ok((user.to_string(), password.to_string()))
}

/// bcrypt entries by user, the credentials already verified (by their sha256, so that a busy
/// client does not cost a bcrypt run per request), and the recent wrong passwords per user.
#[derive(Debug)]
struct Htpasswd {
    users: HashMap<String, String>,
    verified: Mutex<HashSet<[u8; 32]>>,
    failures: Mutex<HashMap<String, Failures>>,
}

/// Most remembered verifications before the memory is cleared.
const MAX_VERIFIED: usize = 4096;

/// Wrong passwords a user may send within [`FAILURE_WINDOW`] before the gate stops running
/// bcrypt for that user until the window has passed: each check costs tens of milliseconds of
/// CPU, so unthrottled guessing is both a brute force and a way to load the gate.
pub const MAX_FAILURES: u32 = 5;
pub const FAILURE_WINDOW: Duration = Duration::from_secs(60);

/// Wrong passwords of one user since `since`. Kept only for users in the file (unknown users
/// cost no bcrypt run), so the map is bounded by the file.
#[derive(Debug, Clone, Copy)]
struct Failures {
    count: u32,
    since: Instant,
}

impl Htpasswd {
    fn load(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read `{}`: {e}", path.display()))?;
        let mut users = HashMap::new();
        for (number, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (user, hash) = line.split_once(':').ok_or_else(|| {
                format!("`{}` line {}: expected `user:hash`", path.display(), number + 1)
            })?;
            if !["$2y$", "$2a$", "$2b$"].iter().any(|prefix| hash.starts_with(prefix)) {
                return Err(format!(
                    "`{}` line {}: the entry of `{user}` is not bcrypt; write it with `htpasswd -B`",
                    path.display(),
                    number + 1
                ));
            }
            users.insert(user.to_string(), hash.to_string());
        }
        if users.is_empty() {
            return Err(format!("`{}` has no entries", path.display()));
        }
        Ok(Htpasswd {
            users,
            verified: Mutex::new(HashSet::new()),
            failures: Mutex::new(HashMap::new()),
        })
    }

    fn verify(&self, user: &str, password: &str) -> Result<(), Unauthorized> {
        let key = *Digest::of(&[user.as_bytes(), &[0], password.as_bytes()].concat()).as_bytes();
        let mut verified = self.verified.lock();
        if verified.contains(&key) {
            return Ok(());
        }
        drop(verified);
        let hash = self.users.get(user).ok_or(Unauthorized::BadPassword)?;
        self.throttle(user, Instant::now())?;
        if !bcrypt::verify(password, hash).unwrap_or(false) {
            self.failed(user, Instant::now());
            return Err(Unauthorized::BadPassword);
        }
        verified = self.verified.lock();
        if verified.len() >= MAX_VERIFIED {
            verified.clear();
        }
        verified.insert(key);
        Ok(())
    }
}

impl Htpasswd {
    /// Refuse to check `user`'s password while it has too many recent failures.
    fn throttle(&self, user: &str, now: Instant) -> Result<(), Unauthorized> {
        let failures = self.failures.lock();
        match failures.get(user) {
            Some(f) if f.count >= MAX_FAILURES && now < f.since + FAILURE_WINDOW => {
                let left = (f.since + FAILURE_WINDOW).saturating_duration_since(now);
                Err(Unauthorized::Throttled {
                    user: user.to_string(),
                    retry_after_s: left.as_secs().max(1),
                })
            }
            _ => Ok(()),
        }
    }

    fn failed(&self, user: &str, now: Instant) {
        let mut failures = self.failures.lock();
        let entry = failures.entry(user.to_string()).or_insert(Failures { count: 0, since: now });
        if now >= entry.since + FAILURE_WINDOW {
            *entry = Failures { count: 0, since: now };
        }
        entry.count += 1;
    }
}

/// Refuse a token whose header lists critical extensions (`crit`): RFC 7515 requires a
/// recipient that does not understand one of them to reject the token, and the gate
/// understands none.
fn refuse_critical_extensions(token: &str) -> Result<(), Unauthorized> {
    let bad = |why: &str| Unauthorized::BadToken(why.to_string());
    let header = token.split('.').next().unwrap_or_default();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(header)
        .map_err(|_| bad("the header is not base64url"))?;
    let header: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(&bytes).map_err(|_| bad("the header is not a JSON object"))?;
    if header.contains_key("crit") {
        return Err(bad(
            "the header lists critical extensions (`crit`), which the gate does not implement",
        ));
    }
    Ok(())
}

/// Keys and the claims a token must carry.
struct Jwt {
    keys: Keys,
    issuer: Option<String>,
    audience: Option<String>,
    groups_claim: Option<String>,
}

impl std::fmt::Debug for Jwt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Jwt")
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .finish()
    }
}

enum Keys {
    One(DecodingKey),
    Set(JwkSet),
}

impl Jwt {
    fn load(spec: &JwtSpec) -> Result<Self, String> {
        let keys = match (&spec.public_key, &spec.jwks) {
            (Some(path), None) => {
                let pem = std::fs::read(path)
                    .map_err(|e| format!("public_key: cannot read `{}`: {e}", path.display()))?;
                let key = DecodingKey::from_rsa_pem(&pem)
                    .or_else(|_| DecodingKey::from_ec_pem(&pem))
                    .map_err(|e| {
                        format!(
                            "public_key: `{}` is not an RSA or EC public key in PEM: {e}",
                            path.display()
                        )
                    })?;
                Keys::One(key)
            }
            (None, Some(path)) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| format!("jwks: cannot read `{}`: {e}", path.display()))?;
                let set: JwkSet = serde_json::from_str(&text).map_err(|e| {
                    format!("jwks: `{}` is not a JSON Web Key Set: {e}", path.display())
                })?;
                for jwk in &set.keys {
                    DecodingKey::from_jwk(jwk)
                        .map_err(|e| format!("jwks: `{}`: {e}", path.display()))?;
                }
                Keys::Set(set)
            }
            _ => return Err("public_key: give exactly one of `public_key` and `jwks`".into()),
        };
        Ok(Jwt {
            keys,
            issuer: spec.issuer.clone(),
            audience: spec.audience.clone(),
            groups_claim: spec.groups_claim.clone(),
        })
    }

    fn key_for(&self, token: &str) -> Result<DecodingKey, Unauthorized> {
        let bad = |why: String| Unauthorized::BadToken(why);
        match &self.keys {
            Keys::One(key) => Ok(key.clone()),
            Keys::Set(set) => {
                let header = jsonwebtoken::decode_header(token).map_err(|e| bad(e.to_string()))?;
                let jwk = match header.kid.as_deref() {
                    Some(kid) => {
                        set.find(kid).ok_or_else(|| bad(format!("unknown key id `{kid}`")))?
                    }
                    None if set.keys.len() == 1 => &set.keys[0],
                    None => return Err(bad("no key id, and the key set has several keys".into())),
                };
                DecodingKey::from_jwk(jwk).map_err(|e| bad(e.to_string()))
            }
        }
    }

    fn verify(&self, token: &str) -> Result<Actor, Unauthorized> {
        let bad = |why: String| Unauthorized::BadToken(why);
        refuse_critical_extensions(token)?;
        let key = self.key_for(token)?;
        // Only the algorithms of the key's own family: an `alg: none` token or an HMAC token
        // keyed with the public key is refused.
        let mut validation = Validation::new_for_family(key.family());
        validation.algorithms.retain(|alg| {
            matches!(
                alg,
                Algorithm::RS256
                    | Algorithm::RS384
                    | Algorithm::RS512
                    | Algorithm::PS256
                    | Algorithm::PS384
                    | Algorithm::PS512
                    | Algorithm::ES256
                    | Algorithm::ES384
                    | Algorithm::EdDSA
            )
        });
        validation.leeway = 30;
        // A token is not valid before its `nbf` (jsonwebtoken skips the check by default).
        validation.validate_nbf = true;
        validation.set_required_spec_claims(&["exp", "sub"]);
        match &self.issuer {
            Some(issuer) => {
                validation.set_issuer(&[issuer]);
                validation.required_spec_claims.insert("iss".into());
            }
            None => validation.iss = None,
        }
        match &self.audience {
            Some(audience) => {
                validation.set_audience(&[audience]);
                validation.required_spec_claims.insert("aud".into());
            }
            None => validation.validate_aud = false,
        }
        let data = jsonwebtoken::decode::<serde_json::Map<String, serde_json::Value>>(
            token,
            &key,
            &validation,
        )
        .map_err(|e| bad(e.to_string()))?;
        let claims = data.claims;
        let subject = claims
            .get("sub")
            .and_then(|s| s.as_str())
            .filter(|s| !s.is_empty())
            .ok_or_else(|| bad("no `sub` claim".into()))?;
        let groups = match self.groups_claim.as_deref().and_then(|name| claims.get(name)) {
            None => Vec::new(),
            Some(serde_json::Value::String(group)) => vec![group.clone()],
            Some(serde_json::Value::Array(groups)) => groups
                .iter()
                .map(|g| g.as_str().map(String::from))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| bad("the groups claim must hold strings".into()))?,
            Some(_) => return Err(bad("the groups claim must be a string or a list".into())),
        };
        Ok(Actor { id: Some(subject.to_string()), groups })
    }
}

#[derive(Debug)]
struct TrustedHeader {
    name: http::HeaderName,
    from: Vec<IpNet>,
}

impl TrustedHeader {
    fn load(spec: &TrustedHeaderSpec) -> Result<Self, String> {
        let name = http::HeaderName::from_bytes(spec.name.as_bytes())
            .map_err(|_| format!("name: `{}` is not a header name", spec.name))?;
        if name == AUTHORIZATION {
            return Err("name: `Authorization` cannot be the trusted header".into());
        }
        if spec.from.is_empty() {
            return Err("from: list the peers (CIDR) allowed to set the header".into());
        }
        let from = spec
            .from
            .iter()
            .enumerate()
            .map(|(i, net)| {
                net.parse::<IpNet>()
                    .or_else(|_| net.parse::<IpAddr>().map(IpNet::from))
                    .map_err(|_| format!("from[{i}]: `{net}` is not an address or CIDR"))
            })
            .collect::<Result<_, _>>()?;
        Ok(TrustedHeader { name, from })
    }
}

#[cfg(test)]
mod tests;
