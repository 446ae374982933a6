//! Fetching policies from registries for the engine: the [`Fetcher`] is the engine's
//! [`PolicySource`] for `oci://` references.
//!
//! - A reference pinned by digest is fetched by that digest; once in the [cache](crate::cache)
//!   it never needs the network again, so an air-gapped gate starts from the cache.
//! - A reference by tag alone is accepted only when signatures are verified. The tag is
//!   resolved once per process (logged), and the artifact fetched by the digest it named. If
//!   the registry cannot be reached, the last verified resolution in the cache is used (and
//!   a warning logged). [`Fetcher::refresh`] resolves tags again, for a gate to hot-swap.
//! - With a [`Keyring`], every policy must carry signatures by enough of its keys, checked
//!   before the component is downloaded. A tag may move only to a newer version
//!   (`org.opencontainers.image.version`, semver): a signed older version does not replace
//!   a newer one, across restarts too (the cache records the last verified version).
//! - The manifest, config and component are checked against their digests and against the
//!   Wasm component artifact layout.

use parking_lot::Mutex;
use std::collections::BTreeMap;
use std::time::SystemTime;

use tagpolicy::{Fetched, PolicySource};

use crate::artifact::{self, ArtifactError, ArtifactInfo, parse_version};
use crate::cache::{Cache, CacheError};
use crate::client::{
    Access, MAX_COMPONENT_BYTES, MAX_DOCUMENT_BYTES, RegistryClient, RegistryError,
};
use crate::reference::{Reference, ReferenceError};
use crate::signature::{Keyring, SignatureError, SignatureManifest, Signed};
use tagpolicy::Digest;

/// Why a policy was not fetched.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FetchError {
    #[error(transparent)]
    Reference(#[from] ReferenceError),
    #[error(
        "`{0}` names a tag without a digest: a tag is accepted only when signatures are verified (configure verification keys), or pin the policy as `…@sha256:<digest>`"
    )]
    TagNeedsVerification(String),
    #[error(transparent)]
    Registry(Box<RegistryError>),
    #[error("`{reference}` is not a policy component artifact: {source}")]
    Artifact { reference: String, source: ArtifactError },
    #[error(
        "`{reference}` is not signed: the registry has no signatures for it (no tag `{tag}`); sign it with `tagpolicy sign`"
    )]
    Unsigned { reference: String, tag: String },
    #[error("`{reference}`: {source}")]
    Signature { reference: String, source: SignatureError },
    #[error(
        "`{reference}` names `{digest}`, which carries no semver `org.opencontainers.image.version` annotation: a tag is followed only to versioned artifacts, so that an older one cannot replace a newer (`tagpolicy push --policy-version`)"
    )]
    Unversioned { reference: String, digest: Digest },
    #[error(
        "`{reference}` now names version `{}` ({}), not newer than the verified `{}` ({}): refused as a rollback",
        versions.found, versions.found_digest, versions.current, versions.current_digest
    )]
    Rollback { reference: String, versions: Box<Versions> },
    #[error("`{reference}`: the registry cannot be reached and nothing is cached for it: {source}")]
    Offline { reference: String, source: Box<RegistryError> },
    #[error(transparent)]
    Cache(#[from] CacheError),
    #[error("cannot run the registry client: {0}")]
    Runtime(String),
}

impl From<RegistryError> for FetchError {
    fn from(error: RegistryError) -> Self {
        FetchError::Registry(Box::new(error))
    }
}

/// The versions of a refused rollback.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Versions {
    pub current: String,
    pub current_digest: Digest,
    pub found: String,
    pub found_digest: Digest,
}

/// A policy artifact as verified: which digest, its version and who signed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedPolicy {
    /// The reference as given, pinned to the digest verified.
    pub reference: Reference,
    pub digest: Digest,
    pub version: Option<String>,
    /// The names of the keys whose signatures were counted (empty without verification).
    pub signers: Vec<String>,
    pub info: ArtifactInfo,
}

impl VerifiedPolicy {
    fn origin(&self) -> String {
        let mut origin = format!("`{}`", self.reference);
        if !self.signers.is_empty() {
            origin.push_str(&format!(" (signed by {})", quoted(&self.signers)));
        }
        origin
    }
}

fn quoted(names: &[String]) -> String {
    names.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", ")
}

/// What one tag's refresh found.
#[derive(Debug, Clone)]
pub enum Refresh {
    /// The tag still names the verified digest.
    Unchanged,
    /// The tag names a new digest, verified; it is in use until [`Fetcher::restore`].
    Moved { from: Box<VerifiedPolicy>, to: Box<VerifiedPolicy> },
    /// The registry could not be reached: the verified digest stays.
    Unreachable(String),
    /// The tag names something refused (unsigned, a rollback, not an artifact…): the
    /// verified digest stays.
    Refused(String),
}

/// Fetches, verifies and caches policies; the engine's [`PolicySource`] for `oci://`.
pub struct Fetcher {
    access: Access,
    keyring: Option<Keyring>,
    cache: Cache,
    /// Tag references resolved in this process: `oci://…:tag` → what it was verified as.
    pins: Mutex<BTreeMap<String, VerifiedPolicy>>,
}

impl Fetcher {
    /// A fetcher reaching registries with `access`, verifying signatures with `keyring`
    /// when given, keeping what it fetched in `cache`.
    pub fn new(access: Access, keyring: Option<Keyring>, cache: Cache) -> Self {
        Self { access, keyring, cache, pins: Mutex::new(BTreeMap::new()) }
    }

    pub fn cache(&self) -> &Cache {
        &self.cache
    }

    pub fn keyring(&self) -> Option<&Keyring> {
        self.keyring.as_ref()
    }

    /// The tag references in use and what each is pinned to.
    pub fn pinned(&self) -> Vec<VerifiedPolicy> {
        self.pins.lock().values().cloned().collect()
    }

    /// Fetches and verifies the policy `reference` names; returns it with the component.
    pub fn fetch(&self, reference: &Reference) -> Result<(VerifiedPolicy, Vec<u8>), FetchError> {
        self.block_on(self.fetch_async(reference))?
    }

    /// Resolves every tag in use again. A tag that moved to a verified newer version is
    /// pinned to it at once (loads from now on get it); the caller [confirms](Self::confirm)
    /// it once the policies using it loaded, or [restores](Self::restore) the old one.
    pub fn refresh(&self) -> Result<Vec<(Reference, Refresh)>, FetchError> {
        let pinned = self.pinned();
        self.block_on(async {
            let mut reports = Vec::new();
            for current in pinned {
                let reference = unpinned(&current.reference);
                let outcome = self.refresh_one(&reference, current).await;
                reports.push((reference, outcome));
            }
            reports
        })
    }

    async fn refresh_one(&self, reference: &Reference, current: VerifiedPolicy) -> Refresh {
        let client = match RegistryClient::new(&self.access) {
            Ok(client) => client,
            Err(error) => return Refresh::Unreachable(error.to_string()),
        };
        let digest = match client.resolve(reference).await {
            Ok(digest) => digest,
            Err(error) if error.is_unreachable() => return Refresh::Unreachable(error.to_string()),
            Err(error) => return Refresh::Refused(error.to_string()),
        };
        if digest == current.digest {
            return Refresh::Unchanged;
        }
        let verified = match self.verify(Some(&client), reference, &digest).await {
            Ok((verified, _)) => verified,
            Err(FetchError::Registry(error)) if error.is_unreachable() => {
                return Refresh::Unreachable(error.to_string());
            }
            Err(error) => return Refresh::Refused(error.to_string()),
        };
        if let Err(error) =
            check_newer(reference, &current.digest, current.version.as_deref(), &verified)
        {
            return Refresh::Refused(error.to_string());
        }
        self.pin(reference, verified.clone());
        Refresh::Moved { from: Box::new(current), to: Box::new(verified) }
    }

    /// Records a moved tag as the last verified resolution (the policies using it loaded).
    pub fn confirm(&self, moved: &VerifiedPolicy) -> Result<(), CacheError> {
        self.record(&unpinned(&moved.reference), moved)
    }

    /// Pins a tag back to what it was before a refresh moved it.
    pub fn restore(&self, previous: &VerifiedPolicy) {
        self.pin(&unpinned(&previous.reference), previous.clone());
    }

    fn pin(&self, reference: &Reference, verified: VerifiedPolicy) {
        self.pins.lock().insert(reference.to_string(), verified);
    }

    fn record(&self, reference: &Reference, verified: &VerifiedPolicy) -> Result<(), CacheError> {
        self.cache.record_version(
            reference,
            &verified.digest,
            verified.version.as_deref(),
            SystemTime::now(),
        )
    }

    /// Runs `future` on a runtime of its own, on a thread of its own: callers may be on
    /// an async runtime's thread (a gate reloading) or on none (the CLI).
    fn block_on<T: Send>(
        &self,
        future: impl std::future::Future<Output = T> + Send,
    ) -> Result<T, FetchError> {
        std::thread::scope(|scope| {
            let thread = scope.spawn(|| {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(|e| FetchError::Runtime(e.to_string()))?;
                Ok(runtime.block_on(future))
            });
            thread.join().unwrap_or_else(|_| Err(FetchError::Runtime("the fetch panicked".into())))
        })
    }

    async fn fetch_async(
        &self,
        reference: &Reference,
    ) -> Result<(VerifiedPolicy, Vec<u8>), FetchError> {
        if let Some(digest) = reference.digest() {
            return self.verify_lazily(reference, digest).await;
        }
        if self.keyring.is_none() {
            return Err(FetchError::TagNeedsVerification(reference.to_string()));
        }
        let pinned = self.pins.lock().get(&reference.to_string()).cloned();
        if let Some(pinned) = pinned {
            return self.verify_lazily(reference, &pinned.digest).await;
        }
        let recorded = self.cache.resolution(reference)?;
        let client = RegistryClient::new(&self.access)?;
        let digest = match client.resolve(reference).await {
            Ok(digest) => digest,
            Err(error) if error.is_unreachable() => {
                let Some(recorded) = recorded else {
                    return Err(FetchError::Offline {
                        reference: reference.to_string(),
                        source: Box::new(error),
                    });
                };
                let (verified, component) = self.verify(None, reference, &recorded.digest).await?;
                tracing::warn!(
                    reference = %reference,
                    digest = %recorded.digest,
                    resolved_at = %humantime::format_rfc3339_seconds(recorded.resolved_at),
                    %error,
                    "registry unreachable: using the last verified resolution of the tag from the cache"
                );
                self.pin(reference, verified.clone());
                return Ok((verified, component));
            }
            Err(error) => return Err(error.into()),
        };
        let checked = match self.verify(Some(&client), reference, &digest).await {
            Ok((verified, component)) => {
                let order = match &recorded {
                    Some(recorded) if recorded.digest != digest => check_newer(
                        reference,
                        &recorded.digest,
                        recorded.version.as_deref(),
                        &verified,
                    ),
                    _ => semver_of(&verified).map(|_| ()).ok_or_else(|| FetchError::Unversioned {
                        reference: reference.to_string(),
                        digest,
                    }),
                };
                order.map(|()| (verified, component))
            }
            Err(error) => Err(error),
        };
        let (verified, component) = match (checked, recorded) {
            (Ok(found), _) => found,
            // The tag names something refused (a rollback, unsigned, not a policy) while a
            // verified version is recorded: keep that one, as a refresh would.
            (Err(refused), Some(recorded)) if recorded.digest != digest => {
                let why = refused.to_string();
                let kept =
                    self.verify_lazily(reference, &recorded.digest).await.map_err(|_| refused)?;
                tracing::error!(
                    reference = %reference,
                    refused = %digest,
                    %why,
                    kept = %recorded.digest,
                    "policy tag names something refused: keeping the last verified version"
                );
                self.pin(reference, kept.0.clone());
                return Ok(kept);
            }
            (Err(refused), _) => return Err(refused),
        };
        tracing::info!(
            reference = %reference,
            digest = %digest,
            version = verified.version.as_deref().unwrap_or(""),
            signers = %verified.signers.join(","),
            "resolved policy tag"
        );
        self.record(reference, &verified)?;
        self.pin(reference, verified.clone());
        Ok((verified, component))
    }

    /// Verifies `digest` from the cache alone when everything is there, else with the
    /// registry.
    async fn verify_lazily(
        &self,
        reference: &Reference,
        digest: &Digest,
    ) -> Result<(VerifiedPolicy, Vec<u8>), FetchError> {
        if let Ok(found) = self.verify(None, reference, digest).await {
            return Ok(found);
        }
        let client = match RegistryClient::new(&self.access) {
            Ok(client) => client,
            Err(error) => return Err(error.into()),
        };
        self.verify(Some(&client), reference, digest).await.map_err(|error| match error {
            FetchError::Registry(source) if source.is_unreachable() => FetchError::Offline {
                reference: reference.with_digest(*digest).to_string(),
                source,
            },
            other => other,
        })
    }

    /// Checks the artifact `digest`: layout, signatures, component. Without a `client`
    /// everything must come from the cache.
    async fn verify(
        &self,
        client: Option<&RegistryClient>,
        reference: &Reference,
        digest: &Digest,
    ) -> Result<(VerifiedPolicy, Vec<u8>), FetchError> {
        let pinned = reference.with_digest(*digest);
        let artifact_error =
            |source| FetchError::Artifact { reference: pinned.to_string(), source };
        let manifest = self.blob(client, reference, digest, None, MAX_DOCUMENT_BYTES).await?;
        let (config_digest, config_size) =
            artifact::config_descriptor(&manifest).map_err(artifact_error)?;
        let config = self
            .blob(client, reference, &config_digest, Some(config_size), MAX_DOCUMENT_BYTES)
            .await?;
        let info = artifact::inspect(&manifest, &config).map_err(artifact_error)?;
        let signers = match &self.keyring {
            Some(keyring) => self.verify_signatures(client, keyring, reference, digest).await?,
            None => Vec::new(),
        };
        let component = self
            .blob(client, reference, &info.layer_digest, Some(info.layer_size), MAX_COMPONENT_BYTES)
            .await?;
        info.verify_component(&component).map_err(artifact_error)?;
        let version = info.version().map(str::to_owned);
        Ok((
            VerifiedPolicy { reference: pinned, digest: *digest, version, signers, info },
            component,
        ))
    }

    /// A blob (or manifest, when `size` is unknown) from the cache, else from the registry
    /// (then cached).
    async fn blob(
        &self,
        client: Option<&RegistryClient>,
        reference: &Reference,
        digest: &Digest,
        size: Option<u64>,
        max: u64,
    ) -> Result<Vec<u8>, FetchError> {
        if let Some(bytes) = self.cache.get(digest)? {
            return Ok(bytes);
        }
        let Some(client) = client else {
            return Err(FetchError::Cache(CacheError::Io {
                path: self.cache.blob_path(digest),
                source: std::io::Error::new(std::io::ErrorKind::NotFound, "not cached"),
            }));
        };
        let bytes = match size {
            Some(size) => client.blob(reference, digest, size, max).await?,
            None => client.manifest(reference, digest, &[artifact::MANIFEST_MEDIA_TYPE]).await?,
        };
        self.cache.put_expecting(digest, &bytes)?;
        Ok(bytes)
    }

    /// The signers of `digest` by the keyring: from the cached signatures when they are
    /// enough, else from the registry's (then cached).
    async fn verify_signatures(
        &self,
        client: Option<&RegistryClient>,
        keyring: &Keyring,
        reference: &Reference,
        digest: &Digest,
    ) -> Result<Vec<String>, FetchError> {
        let name = reference.name();
        let tag = SignatureManifest::tag_for(digest);
        let signature_tag =
            Reference::new(reference.registry(), reference.repository(), Some(&tag), None)?;
        if let Some(cached) = self.cached_signatures(&signature_tag)?
            && let Ok(verified) = keyring.verify(&cached, &name, digest)
        {
            return Ok(verified.signers);
        }
        let pinned = reference.with_digest(*digest).to_string();
        let Some(client) = client else {
            return Err(FetchError::Unsigned { reference: pinned, tag });
        };
        let Some(stored) = client.signatures(reference, digest).await? else {
            return Err(FetchError::Unsigned { reference: pinned, tag });
        };
        let verified = keyring
            .verify(&stored.signatures, &name, digest)
            .map_err(|source| FetchError::Signature { reference: pinned, source })?;
        self.cache.put_expecting(&stored.manifest_digest, &stored.manifest)?;
        for signed in &stored.signatures {
            self.cache.put(&signed.payload)?;
        }
        self.cache.record_resolution(&signature_tag, &stored.manifest_digest, SystemTime::now())?;
        Ok(verified.signers)
    }

    fn cached_signatures(
        &self,
        signature_tag: &Reference,
    ) -> Result<Option<Vec<Signed>>, FetchError> {
        let Some(resolution) = self.cache.resolution(signature_tag)? else { return Ok(None) };
        let Some(manifest) = self.cache.get(&resolution.digest)? else { return Ok(None) };
        let Ok(parsed) = SignatureManifest::parse(&manifest) else { return Ok(None) };
        let mut signatures = Vec::new();
        for layer in parsed.layers() {
            let Some(payload) = self.cache.get(&layer.digest)? else { return Ok(None) };
            let Ok(signed) = layer.check_payload(&payload) else { return Ok(None) };
            signatures.push(signed);
        }
        Ok(Some(signatures))
    }
}

/// The reference without its digest (tag references are pinned by the fetcher).
fn unpinned(reference: &Reference) -> Reference {
    Reference::new(reference.registry(), reference.repository(), reference.tag(), None)
        .unwrap_or_else(|_| reference.clone())
}

fn semver_of(policy: &VerifiedPolicy) -> Option<semver::Version> {
    parse_version(policy.version.as_deref()?)
}

/// Whether a tag may move from `old` to `new`. A current pin without a version (recorded
/// before versions were required) yields to any versioned one. Build metadata (`+…`) does
/// not order versions (semver §10): a rebuild under the same version is not newer.
fn moves_forward(new: &semver::Version, old: Option<&semver::Version>) -> bool {
    old.is_none_or(|old| new.cmp_precedence(old).is_gt())
}

/// A tag may only move to a newer semver version than the verified one.
fn check_newer(
    reference: &Reference,
    current_digest: &Digest,
    current_version: Option<&str>,
    found: &VerifiedPolicy,
) -> Result<(), FetchError> {
    let new = semver_of(found).ok_or_else(|| FetchError::Unversioned {
        reference: reference.to_string(),
        digest: found.digest,
    })?;
    let old = current_version.and_then(parse_version);
    if moves_forward(&new, old.as_ref()) {
        return Ok(());
    }
    Err(FetchError::Rollback {
        reference: reference.to_string(),
        versions: Box::new(Versions {
            current: current_version.unwrap_or_default().to_owned(),
            current_digest: *current_digest,
            found: found.version.clone().unwrap_or_default(),
            found_digest: found.digest,
        }),
    })
}

impl PolicySource for Fetcher {
    fn fetch(&self, reference: &str) -> Result<Fetched, Box<dyn std::error::Error + Send + Sync>> {
        let parsed = Reference::parse(reference)?;
        let (verified, bytes) = Fetcher::fetch(self, &parsed)?;
        Ok(Fetched { bytes, origin: verified.origin() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tag_moves_only_to_a_higher_precedence() {
        let forward = |new: &str, old: Option<&str>| {
            moves_forward(&parse_version(new).unwrap(), old.and_then(parse_version).as_ref())
        };
        assert!(forward("1.1.0", Some("1.0.0")));
        assert!(forward("v2.0.0", Some("1.9.9")));
        assert!(forward("1.0.0", Some("1.0.0-rc.1")));
        assert!(forward("1.0.0", None));
        assert!(!forward("1.0.0", Some("1.0.0")));
        assert!(!forward("1.0.0-rc.2", Some("1.0.0")));
        assert!(!forward("0.9.0", Some("1.0.0")));
        // Build metadata does not order: `+b` is not newer than `+a`.
        assert!(!forward("1.0.0+b", Some("1.0.0+a")));
        assert!(!forward("1.0.0+build.2", Some("1.0.0")));
    }
}
