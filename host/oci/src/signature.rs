//! cosign-compatible key-pair ("simple signing") signatures, as cosign stores them on
//! registries without a referrers API: under the tag `sha256-<hex>.sig` of the signed
//! manifest's repository, a manifest with one `application/vnd.dev.cosign.simplesigning.v1+json`
//! layer per signature. Each layer is a JSON payload binding the manifest digest
//! (`critical.image.docker-manifest-digest`) and the repository
//! (`critical.identity.docker-reference`); the layer annotation
//! `dev.cosignproject.cosign/signature` holds the base64 of an ASN.1 DER ECDSA P-256 / SHA-256
//! signature over the payload bytes (what cosign and `openssl dgst -sha256 -sign` produce).
//!
//! No transparency log, certificates or keyless identities: verification uses only the
//! operator's public keys and never the network. A signature binds a digest, not a tag.
//!
//! ```
//! use tagpolicy::Digest;
//! use tagpolicy_oci::signature::{Keyring, PublicKey, SignatureManifest, SigningKey};
//! # let pem = "-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg1+wQbqwQbgr5LdhN\n7hjeGey1fohprFIgn14q93vIqh6hRANCAAQUr1+g+D8ev0SEqeqwGErQvYMZNbLI\n9qKOxLv3TeYbTsiEYUM/uXUG/1LVZD+c78DbPK3Z991XwFdutNQKdTO3\n-----END PRIVATE KEY-----\n"; // a throwaway test key
//! let key = SigningKey::from_pem(pem)?;
//! let digest = Digest::of(b"the policy manifest");
//! let signed = key.sign("registry.example.com/policies/floor", &digest, None);
//! let mut sig = SignatureManifest::default();
//! sig.push(&signed);
//! // push `sig.to_blobs()` under `SignatureManifest::tag_for(&digest)`; later, on a gate:
//! let keyring = Keyring::new(vec![PublicKey::from_pem("ci", &key.public_key_pem())?], 1)?;
//! let fetched = SignatureManifest::parse(&sig.to_blobs().manifest.bytes)?;
//! let signatures = fetched
//!     .layers()
//!     .iter()
//!     .map(|layer| layer.check_payload(&signed.payload))
//!     .collect::<Result<Vec<_>, _>>()?;
//! let verified = keyring.verify(&signatures, "registry.example.com/policies/floor", &digest)?;
//! assert_eq!(verified.signers, ["ci"]);
//! # Ok::<(), tagpolicy_oci::signature::SignatureError>(())
//! ```

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use p256::ecdsa::signature::{Signer as _, Verifier as _};
use p256::ecdsa::{Signature, VerifyingKey};
use p256::pkcs8::{DecodePrivateKey as _, DecodePublicKey as _, EncodePublicKey as _, LineEnding};
use serde::{Deserialize, Serialize};

use crate::artifact::{Blob, Descriptor, MANIFEST_MEDIA_TYPE, Manifest};
use tagpolicy::Digest;

/// The media type of a signature layer (the payload).
pub const LAYER_MEDIA_TYPE: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
/// The layer annotation holding the base64 signature.
pub const SIGNATURE_ANNOTATION: &str = "dev.cosignproject.cosign/signature";
/// The only payload type accepted.
pub const PAYLOAD_TYPE: &str = "cosign container image signature";
/// The config media type of a signature manifest, as cosign writes it.
pub const CONFIG_MEDIA_TYPE: &str = "application/vnd.oci.image.config.v1+json";

/// Why a key, a signature manifest or a set of signatures is refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SignatureError {
    #[error(
        "encrypted private keys (`{0}`) are not supported: give an unencrypted ECDSA P-256 key (`PRIVATE KEY` or `EC PRIVATE KEY` PEM)"
    )]
    EncryptedKey(String),
    #[error(
        "private key is not an ECDSA P-256 key in PEM (PKCS#8 `PRIVATE KEY` or SEC1 `EC PRIVATE KEY`)"
    )]
    PrivateKey,
    #[error("public key `{0}` is not an ECDSA P-256 public key in PEM (SPKI `PUBLIC KEY`)")]
    PublicKey(String),
    #[error("a threshold of {threshold} signatures cannot be met with {keys} distinct public keys")]
    Threshold { threshold: usize, keys: usize },
    #[error("signature manifest is not valid JSON of an OCI image manifest: {0}")]
    ManifestJson(#[source] serde_json::Error),
    #[error("signature manifest layer {index} has media type `{found}`, not `{LAYER_MEDIA_TYPE}`")]
    LayerMediaType { index: usize, found: String },
    #[error("signature manifest layer {index} has no `{SIGNATURE_ANNOTATION}` annotation")]
    MissingSignature { index: usize },
    #[error(
        "signature payload does not match its layer (tampered or wrong blob): expected `{expected}`, got `{found}`"
    )]
    PayloadMismatch { expected: Digest, found: Digest },
    #[error(
        "`{reference}@{digest}` is signed by {found} of the required {threshold} keys: {details}"
    )]
    NotSigned { reference: String, digest: Digest, found: usize, threshold: usize, details: String },
}

/// A payload and the base64 signature over it: one layer of a signature manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signed {
    /// The exact payload bytes.
    pub payload: Vec<u8>,
    /// The base64 (standard alphabet, padded) DER signature.
    pub signature: String,
}

/// The simple-signing payload binding `docker_reference` (`registry/repository`) and
/// `digest`, byte for byte as cosign writes it. `optional` annotations (cosign's `-a k=v`)
/// go into `optional`, which is `null` when there are none.
pub fn payload(
    docker_reference: &str,
    digest: &Digest,
    optional: Option<&BTreeMap<String, String>>,
) -> Vec<u8> {
    let payload = PayloadOut {
        critical: CriticalOut {
            identity: IdentityOut { docker_reference },
            image: ImageOut { docker_manifest_digest: digest.to_string() },
            kind: PAYLOAD_TYPE,
        },
        optional: optional.filter(|o| !o.is_empty()),
    };
    serde_json::to_vec(&payload).expect("payload serialises")
}

// Field order here is the serialised order: do not reorder.
#[derive(Serialize)]
struct PayloadOut<'a> {
    critical: CriticalOut<'a>,
    optional: Option<&'a BTreeMap<String, String>>,
}

#[derive(Serialize)]
struct CriticalOut<'a> {
    identity: IdentityOut<'a>,
    image: ImageOut,
    #[serde(rename = "type")]
    kind: &'a str,
}

#[derive(Serialize)]
struct IdentityOut<'a> {
    #[serde(rename = "docker-reference")]
    docker_reference: &'a str,
}

#[derive(Serialize)]
struct ImageOut {
    #[serde(rename = "docker-manifest-digest")]
    docker_manifest_digest: String,
}

// What is read back: unknown fields in `critical` are refused, as simple signing requires.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PayloadIn {
    critical: CriticalIn,
    #[serde(default)]
    optional: Option<serde_json::Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CriticalIn {
    identity: IdentityIn,
    image: ImageIn,
    #[serde(rename = "type")]
    kind: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct IdentityIn {
    #[serde(rename = "docker-reference")]
    docker_reference: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ImageIn {
    #[serde(rename = "docker-manifest-digest")]
    docker_manifest_digest: String,
}

/// An ECDSA P-256 private key.
pub struct SigningKey(p256::ecdsa::SigningKey);

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SigningKey(..)")
    }
}

impl SigningKey {
    /// Reads an unencrypted PEM private key: PKCS#8 `PRIVATE KEY` or SEC1 `EC PRIVATE KEY`
    /// (other blocks, such as the `EC PARAMETERS` `openssl ecparam -genkey` writes, are skipped).
    pub fn from_pem(pem: &str) -> Result<Self, SignatureError> {
        for label in ["ENCRYPTED PRIVATE KEY", "ENCRYPTED SIGSTORE PRIVATE KEY"] {
            if pem.contains(&format!("-----BEGIN {label}-----")) {
                return Err(SignatureError::EncryptedKey(label.into()));
            }
        }
        if let Some(block) = pem_block(pem, "PRIVATE KEY") {
            return p256::ecdsa::SigningKey::from_pkcs8_pem(block)
                .map(Self)
                .map_err(|_| SignatureError::PrivateKey);
        }
        if let Some(block) = pem_block(pem, "EC PRIVATE KEY") {
            return p256::SecretKey::from_sec1_pem(block)
                .map(|secret| Self(secret.into()))
                .map_err(|_| SignatureError::PrivateKey);
        }
        Err(SignatureError::PrivateKey)
    }

    /// The public key as SPKI `PUBLIC KEY` PEM (what `openssl pkey -pubout` and cosign's
    /// `cosign.pub` contain).
    pub fn public_key_pem(&self) -> String {
        self.0
            .verifying_key()
            .to_public_key_pem(LineEnding::LF)
            .expect("a P-256 public key encodes")
    }

    /// Signs `payload` bytes: base64 of the DER signature over their SHA-256.
    pub fn sign_payload(&self, payload: &[u8]) -> String {
        let signature: Signature = self.0.sign(payload);
        STANDARD.encode(signature.to_der().as_bytes())
    }

    /// Builds the payload for `docker_reference` (`registry/repository`) and `digest` and signs it.
    pub fn sign(
        &self,
        docker_reference: &str,
        digest: &Digest,
        optional: Option<&BTreeMap<String, String>>,
    ) -> Signed {
        let payload = payload(docker_reference, digest, optional);
        let signature = self.sign_payload(&payload);
        Signed { payload, signature }
    }
}

/// The block `-----BEGIN {label}-----` … `-----END {label}-----` of a PEM text, if any.
fn pem_block<'a>(pem: &'a str, label: &str) -> Option<&'a str> {
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let start = pem.find(&begin)?;
    let stop = pem[start..].find(&end)? + start + end.len();
    Some(&pem[start..stop])
}

/// An operator's public key, named for messages (e.g. by its file).
#[derive(Debug, Clone)]
pub struct PublicKey {
    name: String,
    key: VerifyingKey,
}

impl PublicKey {
    /// Reads an SPKI `PUBLIC KEY` PEM holding an ECDSA P-256 key.
    pub fn from_pem(name: &str, pem: &str) -> Result<Self, SignatureError> {
        let key = pem_block(pem, "PUBLIC KEY")
            .and_then(|block| VerifyingKey::from_public_key_pem(block).ok())
            .ok_or_else(|| SignatureError::PublicKey(name.to_owned()))?;
        Ok(Self { name: name.to_owned(), key })
    }

    /// The name given to [`PublicKey::from_pem`].
    pub fn name(&self) -> &str {
        &self.name
    }
}

/// The public keys signatures are checked against, and how many distinct ones must have signed.
#[derive(Debug, Clone)]
pub struct Keyring {
    keys: Vec<PublicKey>,
    threshold: usize,
}

/// The outcome of a successful [`Keyring::verify`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// The names of the distinct keys with a valid signature, in keyring order.
    pub signers: Vec<String>,
    /// The `optional` section of each counted signature's payload, in the same order.
    pub optional: Vec<serde_json::Value>,
}

impl Keyring {
    /// A keyring requiring `threshold` (at least 1) distinct keys. The same key given twice
    /// counts once, so the threshold is checked against the distinct keys.
    pub fn new(keys: Vec<PublicKey>, threshold: usize) -> Result<Self, SignatureError> {
        let mut distinct: Vec<PublicKey> = Vec::new();
        for key in keys {
            if !distinct.iter().any(|k| k.key == key.key) {
                distinct.push(key);
            }
        }
        if threshold == 0 || threshold > distinct.len() {
            return Err(SignatureError::Threshold { threshold, keys: distinct.len() });
        }
        Ok(Self { keys: distinct, threshold })
    }

    /// The distinct keys.
    pub fn keys(&self) -> &[PublicKey] {
        &self.keys
    }

    /// Checks that at least the threshold of distinct keys signed a payload of the known type
    /// binding exactly `digest` and `docker_reference` (`registry/repository`). Signatures that
    /// fail any check are not counted; the error lists why each one was not.
    pub fn verify(
        &self,
        signatures: &[Signed],
        docker_reference: &str,
        digest: &Digest,
    ) -> Result<Verified, SignatureError> {
        let mut counted = vec![None; self.keys.len()];
        let mut reasons = Vec::new();
        for (index, signed) in signatures.iter().enumerate() {
            match self.check_one(signed, docker_reference, digest, &counted) {
                Ok((key, optional)) => counted[key] = Some(optional),
                Err(reason) => reasons.push(format!("signature {}: {reason}", index + 1)),
            }
        }
        let found = counted.iter().filter(|c| c.is_some()).count();
        if found >= self.threshold {
            let (signers, optional) = counted
                .into_iter()
                .zip(&self.keys)
                .filter_map(|(c, key)| c.map(|o| (key.name.clone(), o)))
                .unzip();
            return Ok(Verified { signers, optional });
        }
        if signatures.is_empty() {
            reasons.push("there are no signatures".into());
        }
        Err(SignatureError::NotSigned {
            reference: docker_reference.to_owned(),
            digest: *digest,
            found,
            threshold: self.threshold,
            details: reasons.join("; "),
        })
    }

    fn check_one(
        &self,
        signed: &Signed,
        docker_reference: &str,
        digest: &Digest,
        counted: &[Option<serde_json::Value>],
    ) -> Result<(usize, serde_json::Value), String> {
        let payload: PayloadIn = serde_json::from_slice(&signed.payload)
            .map_err(|e| format!("payload is not a simple-signing document: {e}"))?;
        let critical = &payload.critical;
        if critical.kind != PAYLOAD_TYPE {
            return Err(format!("payload type is `{}`, not `{PAYLOAD_TYPE}`", critical.kind));
        }
        if critical.image.docker_manifest_digest != digest.to_string() {
            return Err(format!(
                "payload binds digest `{}`, not `{digest}`",
                critical.image.docker_manifest_digest
            ));
        }
        if critical.identity.docker_reference != docker_reference {
            return Err(format!(
                "payload binds repository `{}`, not `{docker_reference}`",
                critical.identity.docker_reference
            ));
        }
        let der = STANDARD
            .decode(signed.signature.trim())
            .map_err(|_| "signature is not base64".to_string())?;
        let signature = Signature::from_der(&der)
            .map_err(|_| "signature is not an ASN.1 DER ECDSA P-256 signature".to_string())?;
        let mut already = None;
        for (index, key) in self.keys.iter().enumerate() {
            if key.key.verify(&signed.payload, &signature).is_ok() {
                if counted[index].is_some() {
                    already = Some(&key.name);
                    continue;
                }
                return Ok((index, payload.optional.unwrap_or(serde_json::Value::Null)));
            }
        }
        Err(match already {
            Some(name) => format!("key `{name}` is already counted"),
            None => "signature is by none of the given keys, or over other bytes".into(),
        })
    }
}

/// One layer of a signature manifest: where its payload is and the signature over it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureLayer {
    /// The digest of the payload blob.
    pub digest: Digest,
    /// The size of the payload blob.
    pub size: u64,
    /// The base64 signature from the layer annotation.
    pub signature: String,
}

impl SignatureLayer {
    /// Checks fetched payload bytes are this layer's blob.
    pub fn check_payload(&self, payload: &[u8]) -> Result<Signed, SignatureError> {
        let found = Digest::of(payload);
        if found != self.digest || payload.len() as u64 != self.size {
            return Err(SignatureError::PayloadMismatch { expected: self.digest, found });
        }
        Ok(Signed { payload: payload.to_vec(), signature: self.signature.clone() })
    }
}

/// The blobs of a signature manifest to push: manifest, config and payloads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureBlobs {
    pub manifest: Blob,
    pub config: Blob,
}

/// The manifest under `sha256-<hex>.sig`: one simple-signing layer per signature.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SignatureManifest {
    layers: Vec<SignatureLayer>,
}

// Field order here is the serialised order: do not reorder.
#[derive(Serialize)]
struct SignatureConfig {
    architecture: &'static str,
    created: &'static str,
    history: Vec<History>,
    os: &'static str,
    rootfs: RootFs,
    config: BTreeMap<String, String>,
}

#[derive(Serialize)]
struct History {
    created: &'static str,
}

#[derive(Serialize)]
struct RootFs {
    #[serde(rename = "type")]
    kind: &'static str,
    diff_ids: Vec<Digest>,
}

const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

impl SignatureManifest {
    /// The tag cosign stores signatures of `digest` under: `sha256-<hex>.sig`.
    pub fn tag_for(digest: &Digest) -> String {
        format!("sha256-{}.sig", digest.hex())
    }

    /// Reads a fetched signature manifest. Every layer must be a simple-signing payload with
    /// a signature annotation.
    pub fn parse(manifest: &[u8]) -> Result<Self, SignatureError> {
        let parsed: Manifest =
            serde_json::from_slice(manifest).map_err(SignatureError::ManifestJson)?;
        let layers = parsed
            .layers
            .into_iter()
            .enumerate()
            .map(|(i, layer)| {
                let index = i + 1;
                if layer.media_type != LAYER_MEDIA_TYPE {
                    return Err(SignatureError::LayerMediaType { index, found: layer.media_type });
                }
                let signature = layer
                    .annotations
                    .get(SIGNATURE_ANNOTATION)
                    .cloned()
                    .ok_or(SignatureError::MissingSignature { index })?;
                Ok(SignatureLayer { digest: layer.digest, size: layer.size, signature })
            })
            .collect::<Result<_, _>>()?;
        Ok(Self { layers })
    }

    /// The layers, in manifest order.
    pub fn layers(&self) -> &[SignatureLayer] {
        &self.layers
    }

    /// Appends a signature as cosign does (an identical layer is not added twice). The
    /// payload bytes must be pushed as a blob too.
    pub fn push(&mut self, signed: &Signed) {
        let layer = SignatureLayer {
            digest: Digest::of(&signed.payload),
            size: signed.payload.len() as u64,
            signature: signed.signature.clone(),
        };
        if !self.layers.contains(&layer) {
            self.layers.push(layer);
        }
    }

    /// The manifest and config bytes to push (deterministic).
    pub fn to_blobs(&self) -> SignatureBlobs {
        let config = SignatureConfig {
            architecture: "",
            created: ZERO_TIME,
            history: self.layers.iter().map(|_| History { created: ZERO_TIME }).collect(),
            os: "",
            rootfs: RootFs {
                kind: "layers",
                diff_ids: self.layers.iter().map(|l| l.digest).collect(),
            },
            config: BTreeMap::new(),
        };
        let config_bytes = serde_json::to_vec(&config).expect("config serialises");
        let config = Blob {
            media_type: CONFIG_MEDIA_TYPE,
            digest: Digest::of(&config_bytes),
            bytes: config_bytes,
        };
        let manifest = Manifest {
            schema_version: 2,
            media_type: Some(MANIFEST_MEDIA_TYPE.into()),
            config: Descriptor {
                media_type: CONFIG_MEDIA_TYPE.into(),
                digest: config.digest,
                size: config.bytes.len() as u64,
                annotations: BTreeMap::new(),
            },
            layers: self
                .layers
                .iter()
                .map(|l| Descriptor {
                    media_type: LAYER_MEDIA_TYPE.into(),
                    digest: l.digest,
                    size: l.size,
                    annotations: [(SIGNATURE_ANNOTATION.to_string(), l.signature.clone())].into(),
                })
                .collect(),
            annotations: BTreeMap::new(),
        };
        let manifest_bytes = serde_json::to_vec(&manifest).expect("manifest serialises");
        SignatureBlobs {
            manifest: Blob {
                media_type: MANIFEST_MEDIA_TYPE,
                digest: Digest::of(&manifest_bytes),
                bytes: manifest_bytes,
            },
            config,
        }
    }
}
