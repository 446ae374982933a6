//! Talking to registries: resolve a tag, fetch manifests and blobs by digest (every byte
//! checked against its digest and expected size, every read bounded before it is held: see
//! `bounded.rs`), push the Wasm artifact and signatures (through the `oci-client` crate). HTTPS is verified against the system's roots and the configured
//! CAs; plain HTTP is used only for registries listed as insecure, never as a fallback.

use std::time::Duration;

use oci_client::client::{Certificate, CertificateEncoding, ClientConfig, ClientProtocol};
use oci_client::errors::{OciDistributionError, OciErrorCode};
use oci_client::secrets::RegistryAuth;

use crate::artifact::{self, Artifact, MANIFEST_MEDIA_TYPE};
use crate::bounded::BoundedReader;
use crate::credentials::{CredentialError, Credentials};
use crate::reference::Reference;
use crate::signature::{self, SignatureManifest, Signed};
use tagpolicy::Digest;

/// The largest manifest or config read (registries limit manifests to 4 MiB).
pub const MAX_DOCUMENT_BYTES: u64 = 4 << 20;
/// The largest component pulled.
pub const MAX_COMPONENT_BYTES: u64 = 256 << 20;

/// How registries are reached.
#[derive(Debug, Clone)]
pub struct Access {
    /// `host[:port]` of registries spoken to over plain HTTP.
    pub insecure: Vec<String>,
    /// PEM certificates trusted besides the system's roots.
    pub ca_certificates: Vec<Vec<u8>>,
    pub credentials: Credentials,
    /// Connect timeout of every request; a read (token dance, redirects and the whole
    /// answer) must finish within it too, in all.
    pub timeout: Duration,
}

impl Default for Access {
    fn default() -> Self {
        Self {
            insecure: Vec::new(),
            ca_certificates: Vec::new(),
            credentials: Credentials::none(),
            timeout: Duration::from_secs(30),
        }
    }
}

/// A registry operation that failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RegistryError {
    #[error("cannot set up the registry client: {0}")]
    Setup(String),
    #[error(transparent)]
    Credentials(#[from] CredentialError),
    #[error("`{reference}` was not found on the registry")]
    NotFound { reference: String },
    #[error(
        "the registry refused the credentials for `{reference}` ({detail}): check the auth file or `credentials`"
    )]
    Unauthorized { reference: String, detail: String },
    #[error("cannot reach the registry for `{reference}`: {detail}")]
    Unreachable { reference: String, detail: String },
    #[error("registry error for `{reference}`: {detail}")]
    Registry { reference: String, detail: String },
    #[error(
        "`{reference}`: the registry sent {what} that does not match digest `{expected}` (got `{found}`, {size} bytes): tampered or wrong content"
    )]
    Mismatch { reference: String, what: &'static str, expected: Digest, found: Digest, size: u64 },
    #[error(
        "`{reference}`: the registry sent content that does not match digest (tampered or wrong content): {detail}"
    )]
    Tampered { reference: String, detail: String },
    #[error("`{reference}` is not a policy component artifact: {detail}")]
    NotAnArtifact { reference: String, detail: String },
    #[error("`{reference}`: {what} is {size} bytes, more than the {max} allowed")]
    TooLarge { reference: String, what: &'static str, size: u64, max: u64 },
    #[error("`{reference}`: the registry answered digest `{digest}`, not a sha256 digest")]
    BadDigest { reference: String, digest: String },
    #[error("`{reference}`: signature manifest: {source}")]
    Signature { reference: String, source: signature::SignatureError },
}

impl RegistryError {
    /// Whether the registry could not be reached at all (as opposed to answering no).
    pub fn is_unreachable(&self) -> bool {
        matches!(self, RegistryError::Unreachable { .. })
    }
}

/// A client for the registries a set of references live on.
pub struct RegistryClient {
    /// Pushes (an author's own registry).
    client: oci_client::Client,
    /// Every read, bounded: what a gate follows may come from a hostile registry.
    reader: BoundedReader,
    credentials: Credentials,
}

/// The signatures stored for a digest: the signature manifest's own digest and each layer's
/// payload with its signature.
#[derive(Debug, Clone)]
pub struct StoredSignatures {
    pub manifest_digest: Digest,
    pub manifest: Vec<u8>,
    pub signatures: Vec<Signed>,
}

impl RegistryClient {
    pub fn new(access: &Access) -> Result<Self, RegistryError> {
        // reqwest is built without a crypto provider so that this process uses ring, like
        // the gate's own TLS; install it unless the embedder installed one.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let config = ClientConfig {
            protocol: if access.insecure.is_empty() {
                ClientProtocol::Https
            } else {
                ClientProtocol::HttpsExcept(access.insecure.clone())
            },
            extra_root_certificates: access
                .ca_certificates
                .iter()
                .map(|pem| Certificate { encoding: CertificateEncoding::Pem, data: pem.clone() })
                .collect(),
            read_timeout: Some(access.timeout),
            connect_timeout: Some(access.timeout),
            platform_resolver: None,
            user_agent: concat!("tagpolicy/", env!("CARGO_PKG_VERSION")),
            ..ClientConfig::default()
        };
        // `Client::new` would fall back to defaults on a bad CA: build it so that the error shows.
        let client = oci_client::Client::try_from(config)
            .map_err(|e| RegistryError::Setup(e.to_string()))?;
        let reader = BoundedReader::new(access)?;
        Ok(Self { client, reader, credentials: access.credentials.clone() })
    }

    fn auth(&self, reference: &Reference) -> Result<RegistryAuth, RegistryError> {
        Ok(match self.credentials.lookup(reference.registry(), reference.repository())? {
            Some(credential) => RegistryAuth::Basic(credential.username, credential.password),
            None => RegistryAuth::Anonymous,
        })
    }

    fn target(reference: &Reference, tag_or_digest: &str) -> oci_client::Reference {
        let (registry, repository) = (reference.registry().into(), reference.repository().into());
        if tag_or_digest.starts_with("sha256:") {
            oci_client::Reference::with_digest(registry, repository, tag_or_digest.into())
        } else {
            oci_client::Reference::with_tag(registry, repository, tag_or_digest.into())
        }
    }

    fn error(reference: &str, error: OciDistributionError) -> RegistryError {
        let reference = reference.to_owned();
        match error {
            OciDistributionError::RegistryError { envelope, .. }
                if envelope.errors.iter().any(|e| {
                    matches!(
                        e.code,
                        OciErrorCode::ManifestUnknown
                            | OciErrorCode::BlobUnknown
                            | OciErrorCode::NameUnknown
                            | OciErrorCode::NotFound
                    )
                }) =>
            {
                RegistryError::NotFound { reference }
            }
            OciDistributionError::ImageManifestNotFoundError(_) => {
                RegistryError::NotFound { reference }
            }
            OciDistributionError::ServerError { code: 404, .. } => {
                RegistryError::NotFound { reference }
            }
            OciDistributionError::ServerError { code: code @ (401 | 403), url, .. } => {
                RegistryError::Unauthorized { reference, detail: format!("{code} from {url}") }
            }
            // A load balancer with no healthy registry behind it, or a registry shedding
            // load, is down for our purposes: the last verified version keeps running.
            OciDistributionError::ServerError { code: code @ (429 | 500..=599), url, message } => {
                RegistryError::Unreachable {
                    reference,
                    detail: format!("{code} from {url}: {message}"),
                }
            }
            OciDistributionError::UnauthorizedError { url } => {
                RegistryError::Unauthorized { reference, detail: format!("401 from {url}") }
            }
            OciDistributionError::AuthenticationFailure(detail) => {
                RegistryError::Unauthorized { reference, detail }
            }
            OciDistributionError::RegistryError { envelope, .. }
                if envelope.errors.iter().any(|e| {
                    matches!(e.code, OciErrorCode::Unauthorized | OciErrorCode::Denied)
                }) =>
            {
                RegistryError::Unauthorized { reference, detail: envelope.to_string() }
            }
            OciDistributionError::RequestError(e) if e.is_connect() || e.is_timeout() => {
                let mut detail = chain(&e);
                if detail.contains("InvalidContentType") {
                    // What rustls says when the other side answers TLS with plain HTTP.
                    detail.push_str(
                        " (the registry seems to speak plain HTTP: list it as insecure if that is intended)",
                    );
                }
                RegistryError::Unreachable { reference, detail }
            }
            OciDistributionError::DigestError(e) => {
                RegistryError::Tampered { reference, detail: e.to_string() }
            }
            OciDistributionError::RequestError(e) => {
                RegistryError::Registry { reference, detail: chain(&e) }
            }
            other => RegistryError::Registry { reference, detail: other.to_string() },
        }
    }

    /// The digest the tag (or digest) of `reference` names now.
    pub async fn resolve(&self, reference: &Reference) -> Result<Digest, RegistryError> {
        let name = reference.to_string();
        if let Some(digest) = reference.digest() {
            return Ok(*digest);
        }
        let tag = reference.tag().expect("a reference has a tag or a digest");
        // GET rather than HEAD: the digest is then computed from the bytes, not trusted
        // from a header.
        let bytes = self
            .reader
            .get(reference, "manifests", tag, &[MANIFEST_MEDIA_TYPE], MAX_DOCUMENT_BYTES)
            .await?
            .ok_or(RegistryError::NotFound { reference: name })?;
        Ok(Digest::of(&bytes))
    }

    /// The manifest with `digest` in the repository of `reference`, checked against it.
    pub async fn manifest(
        &self,
        reference: &Reference,
        digest: &Digest,
        accept: &[&str],
    ) -> Result<Vec<u8>, RegistryError> {
        let name = format!("{}@{digest}", reference.name());
        let bytes = self
            .reader
            .get(reference, "manifests", &digest.to_string(), accept, MAX_DOCUMENT_BYTES)
            .await?
            .ok_or_else(|| RegistryError::NotFound { reference: name.clone() })?;
        check(&name, "a manifest", digest, MAX_DOCUMENT_BYTES, &bytes)?;
        Ok(bytes)
    }

    /// The manifest a tag names now, with its digest, or `None` when the tag does not exist.
    pub async fn manifest_by_tag(
        &self,
        reference: &Reference,
        tag: &str,
        accept: &[&str],
    ) -> Result<Option<(Digest, Vec<u8>)>, RegistryError> {
        let bytes =
            self.reader.get(reference, "manifests", tag, accept, MAX_DOCUMENT_BYTES).await?;
        Ok(bytes.map(|bytes| (Digest::of(&bytes), bytes)))
    }

    /// The blob with `digest` and `size`, checked against both; `max` bounds what is read.
    pub async fn blob(
        &self,
        reference: &Reference,
        digest: &Digest,
        size: u64,
        max: u64,
    ) -> Result<Vec<u8>, RegistryError> {
        let name = format!("{}@{digest}", reference.name());
        if size > max {
            return Err(RegistryError::TooLarge { reference: name, what: "the blob", size, max });
        }
        let bytes = self
            .reader
            .get(reference, "blobs", &digest.to_string(), &["*/*"], size)
            .await?
            .ok_or_else(|| RegistryError::NotFound { reference: name.clone() })?;
        let found = Digest::of(&bytes);
        if found != *digest || bytes.len() as u64 != size {
            return Err(RegistryError::Mismatch {
                reference: name,
                what: "a blob",
                expected: *digest,
                found,
                size: bytes.len() as u64,
            });
        }
        Ok(bytes)
    }

    async fn push_blob(&self, reference: &Reference, bytes: &[u8]) -> Result<(), RegistryError> {
        let digest = Digest::of(bytes);
        let name = format!("{}@{digest}", reference.name());
        let target = Self::target(reference, &digest.to_string());
        let auth = self.auth(reference)?;
        // Authenticate for push (pull and push scopes) before the first upload.
        self.client
            .auth(&target, &auth, oci_client::RegistryOperation::Push)
            .await
            .map_err(|e| Self::error(&name, e))?;
        if self.client.blob_exists(&target, &digest.to_string()).await.unwrap_or(false) {
            return Ok(());
        }
        self.client
            .push_blob(&target, bytes.to_vec(), &digest.to_string())
            .await
            .map_err(|e| Self::error(&name, e))?;
        Ok(())
    }

    /// Pushes a manifest under `tag` and returns its digest.
    pub async fn push_manifest(
        &self,
        reference: &Reference,
        tag: &str,
        bytes: &[u8],
        media_type: &str,
    ) -> Result<Digest, RegistryError> {
        let name = format!("{}:{tag}", reference.name());
        let target = Self::target(reference, tag);
        let content_type = media_type
            .parse()
            .map_err(|_| RegistryError::Setup(format!("media type `{media_type}`")))?;
        self.client
            .push_manifest_raw(&target, bytes.to_vec(), content_type)
            .await
            .map_err(|e| Self::error(&name, e))?;
        Ok(Digest::of(bytes))
    }

    /// Pushes a built artifact (config, component, manifest) under the tag of `reference`.
    pub async fn push_artifact(
        &self,
        reference: &Reference,
        built: &Artifact,
        component: &[u8],
    ) -> Result<Digest, RegistryError> {
        let tag = reference.tag().ok_or_else(|| RegistryError::Registry {
            reference: reference.to_string(),
            detail: "pushing needs a tag".into(),
        })?;
        self.push_blob(reference, &built.config.bytes).await?;
        self.push_blob(reference, component).await?;
        self.push_manifest(reference, tag, &built.manifest.bytes, built.manifest.media_type).await
    }

    /// The signatures stored for `digest` under `sha256-<hex>.sig`, or `None` when there are
    /// none. Every payload is checked against its layer's digest.
    pub async fn signatures(
        &self,
        reference: &Reference,
        digest: &Digest,
    ) -> Result<Option<StoredSignatures>, RegistryError> {
        let tag = SignatureManifest::tag_for(digest);
        let Some((manifest_digest, manifest)) =
            self.manifest_by_tag(reference, &tag, &[MANIFEST_MEDIA_TYPE]).await?
        else {
            return Ok(None);
        };
        let name = format!("{}:{tag}", reference.name());
        let parsed = SignatureManifest::parse(&manifest)
            .map_err(|source| RegistryError::Signature { reference: name.clone(), source })?;
        let mut signatures = Vec::new();
        for layer in parsed.layers() {
            let payload =
                self.blob(reference, &layer.digest, layer.size, MAX_DOCUMENT_BYTES).await?;
            signatures.push(
                layer.check_payload(&payload).map_err(|source| RegistryError::Signature {
                    reference: name.clone(),
                    source,
                })?,
            );
        }
        Ok(Some(StoredSignatures { manifest_digest, manifest, signatures }))
    }

    /// Adds `signed` to the signatures of `digest` (keeping those already there) and pushes
    /// them. Returns the signature manifest's digest.
    pub async fn push_signature(
        &self,
        reference: &Reference,
        digest: &Digest,
        signed: &Signed,
    ) -> Result<Digest, RegistryError> {
        let tag = SignatureManifest::tag_for(digest);
        let mut manifest =
            match self.manifest_by_tag(reference, &tag, &[MANIFEST_MEDIA_TYPE]).await? {
                Some((_, bytes)) => {
                    SignatureManifest::parse(&bytes).map_err(|source| RegistryError::Signature {
                        reference: format!("{}:{tag}", reference.name()),
                        source,
                    })?
                }
                None => SignatureManifest::default(),
            };
        manifest.push(signed);
        let blobs = manifest.to_blobs();
        self.push_blob(reference, &blobs.config.bytes).await?;
        self.push_blob(reference, &signed.payload).await?;
        self.push_manifest(reference, &tag, &blobs.manifest.bytes, blobs.manifest.media_type).await
    }

    /// The manifest and config of the artifact `digest`, checked to be a Wasm component
    /// artifact.
    pub async fn artifact(
        &self,
        reference: &Reference,
        digest: &Digest,
    ) -> Result<(Vec<u8>, Vec<u8>), RegistryError> {
        let manifest = self.manifest(reference, digest, &[MANIFEST_MEDIA_TYPE]).await?;
        let (config_digest, config_size) =
            artifact::config_descriptor(&manifest).map_err(|e| RegistryError::NotAnArtifact {
                reference: reference.with_digest(*digest).to_string(),
                detail: e.to_string(),
            })?;
        let config = self.blob(reference, &config_digest, config_size, MAX_DOCUMENT_BYTES).await?;
        Ok((manifest, config))
    }
}

fn check(
    reference: &str,
    what: &'static str,
    digest: &Digest,
    max: u64,
    bytes: &[u8],
) -> Result<(), RegistryError> {
    let size = bytes.len() as u64;
    if size > max {
        return Err(RegistryError::TooLarge { reference: reference.into(), what, size, max });
    }
    let found = Digest::of(bytes);
    if found != *digest {
        return Err(RegistryError::Mismatch {
            reference: reference.into(),
            what,
            expected: *digest,
            found,
            size,
        });
    }
    Ok(())
}

/// An error with its causes, which is where reqwest puts what went wrong (`connection
/// refused`, `invalid peer certificate: UnknownIssuer`).
pub(crate) fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let line = cause.to_string();
        if !text.contains(&line) {
            text.push_str(": ");
            text.push_str(&line);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server_error(code: u16) -> RegistryError {
        let url = "https://registry.example/v2/team/policy/manifests/v1".to_owned();
        RegistryClient::error(
            "registry.example/team/policy:v1",
            OciDistributionError::ServerError { code, url, message: "status".into() },
        )
    }

    #[test]
    fn overloaded_or_failing_registries_count_as_unreachable() {
        for code in [429, 500, 502, 503, 504] {
            assert!(server_error(code).is_unreachable(), "{code}: {}", server_error(code));
        }
        assert!(matches!(server_error(404), RegistryError::NotFound { .. }));
        assert!(matches!(server_error(403), RegistryError::Unauthorized { .. }));
        // A request the registry calls malformed is an answer, not an outage.
        assert!(matches!(server_error(400), RegistryError::Registry { .. }));
    }
}
