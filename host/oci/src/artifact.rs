//! The CNCF TAG-Runtime "Wasm OCI artifact" layout for policy components: an OCI image
//! manifest whose config (`application/vnd.wasm.config.v0+json`) names the component's imports
//! and exports, and whose one layer (`application/wasm`) holds the component bytes as they are,
//! so the layer digest is the sha256 of the `.wasm` file.
//!
//! [`build`] serialises both documents deterministically (fixed field order, sorted names and
//! annotations, no insignificant whitespace): the same inputs always give the same manifest
//! digest. [`inspect`] checks a fetched manifest and config are such an artifact and
//! [`ArtifactInfo::verify_component`] checks the fetched layer against it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use tagpolicy::Digest;

/// The media type of the manifest.
pub const MANIFEST_MEDIA_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";
/// The media type of the config blob.
pub const CONFIG_MEDIA_TYPE: &str = "application/vnd.wasm.config.v0+json";
/// The media type of the one layer, the component.
pub const LAYER_MEDIA_TYPE: &str = "application/wasm";
/// The annotation conventionally carrying the version of what is shipped.
pub const VERSION_ANNOTATION: &str = "org.opencontainers.image.version";

/// How a [`VERSION_ANNOTATION`] is read: semver, with an optional leading `v`. One reading for
/// what `push` accepts and what a gate compares to refuse rollbacks.
pub fn parse_version(text: &str) -> Option<semver::Version> {
    semver::Version::parse(text.strip_prefix('v').unwrap_or(text)).ok()
}

/// Why a manifest and config are not a Wasm component artifact, or cannot be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ArtifactError {
    #[error("`created` timestamp `{0}` is not an RFC 3339 UTC time such as `2026-01-31T12:00:00Z`")]
    Created(String),
    #[error("manifest is not valid JSON of an OCI image manifest: {0}")]
    ManifestJson(#[source] serde_json::Error),
    #[error("manifest has schemaVersion `{0}`, not `2`")]
    SchemaVersion(i64),
    #[error("manifest media type is `{0}`, not `{MANIFEST_MEDIA_TYPE}`")]
    ManifestMediaType(String),
    #[error("config media type is `{0}`, not `{CONFIG_MEDIA_TYPE}`: not a Wasm component artifact")]
    ConfigMediaType(String),
    #[error("manifest has {0} layers: a Wasm component artifact has exactly one")]
    LayerCount(usize),
    #[error("layer media type is `{0}`, not `{LAYER_MEDIA_TYPE}`: not a Wasm component artifact")]
    LayerMediaType(String),
    #[error(
        "config blob does not match the manifest: expected `{expected}` ({expected_size} bytes), got `{found}` ({found_size} bytes)"
    )]
    ConfigMismatch { expected: Digest, expected_size: u64, found: Digest, found_size: u64 },
    #[error("config is not valid JSON of a Wasm component config: {0}")]
    ConfigJson(#[source] serde_json::Error),
    #[error("config has `{field}` = `{found}`, expected `{expected}`")]
    ConfigField { field: &'static str, found: String, expected: String },
    #[error("config `layerDigests` does not list exactly the layer `{0}`")]
    LayerDigests(Digest),
    #[error(
        "component bytes do not match the manifest (tampered or wrong blob): expected `{expected}` ({expected_size} bytes), got `{found}` ({found_size} bytes)"
    )]
    ComponentMismatch { expected: Digest, expected_size: u64, found: Digest, found_size: u64 },
}

/// What goes into an artifact besides the component bytes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ArtifactSpec {
    /// RFC 3339 UTC time, e.g. `2026-01-31T12:00:00Z` (fixed by the caller for reproducibility).
    pub created: String,
    /// Optional `author` of the config.
    pub author: Option<String>,
    /// The component's import names (sorted and deduplicated in the config).
    pub imports: Vec<String>,
    /// The component's export names (sorted and deduplicated in the config).
    pub exports: Vec<String>,
    /// Manifest annotations, e.g. [`VERSION_ANNOTATION`]; omitted from the manifest when empty.
    pub annotations: BTreeMap<String, String>,
}

/// A blob as it is pushed: exact bytes, their digest and media type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blob {
    pub media_type: &'static str,
    pub digest: Digest,
    pub bytes: Vec<u8>,
}

impl Blob {
    fn new(media_type: &'static str, bytes: Vec<u8>) -> Self {
        Self { media_type, digest: Digest::of(&bytes), bytes }
    }
}

/// A built artifact: the manifest and config to push (the layer is the component itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Artifact {
    /// The manifest; its digest is what a policy reference pins.
    pub manifest: Blob,
    /// The config blob.
    pub config: Blob,
    /// The digest of the component (the one layer).
    pub layer_digest: Digest,
    /// The size of the component.
    pub layer_size: u64,
}

/// What [`inspect`] learnt from a checked manifest and config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArtifactInfo {
    /// The digest of the manifest bytes that were checked.
    pub manifest_digest: Digest,
    /// The digest the component layer must have; fetch it by this digest.
    pub layer_digest: Digest,
    /// The size the component layer must have.
    pub layer_size: u64,
    pub created: String,
    pub imports: Vec<String>,
    pub exports: Vec<String>,
    pub annotations: BTreeMap<String, String>,
}

impl ArtifactInfo {
    /// Checks fetched component bytes are the artifact's layer.
    pub fn verify_component(&self, component: &[u8]) -> Result<(), ArtifactError> {
        let found = Digest::of(component);
        let found_size = component.len() as u64;
        if found != self.layer_digest || found_size != self.layer_size {
            return Err(ArtifactError::ComponentMismatch {
                expected: self.layer_digest,
                expected_size: self.layer_size,
                found,
                found_size,
            });
        }
        Ok(())
    }

    /// The `org.opencontainers.image.version` annotation, if any.
    pub fn version(&self) -> Option<&str> {
        self.annotations.get(VERSION_ANNOTATION).map(String::as_str)
    }
}

// Field order here is the serialised order: do not reorder.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Config {
    created: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    author: Option<String>,
    architecture: String,
    os: String,
    layer_digests: Vec<Digest>,
    component: ComponentSection,
}

#[derive(Serialize, Deserialize)]
struct ComponentSection {
    exports: Vec<String>,
    imports: Vec<String>,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Manifest {
    pub(crate) schema_version: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) media_type: Option<String>,
    pub(crate) config: Descriptor,
    pub(crate) layers: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub(crate) annotations: BTreeMap<String, String>,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Descriptor {
    pub(crate) media_type: String,
    pub(crate) digest: Digest,
    pub(crate) size: u64,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub(crate) annotations: BTreeMap<String, String>,
}

fn sorted(names: &[String]) -> Vec<String> {
    let mut names = names.to_vec();
    names.sort();
    names.dedup();
    names
}

/// Builds the config and manifest for `component`.
///
/// ```
/// use tagpolicy_oci::artifact::{build, ArtifactSpec, VERSION_ANNOTATION};
/// let spec = ArtifactSpec {
///     created: "2026-01-31T12:00:00Z".into(),
///     exports: vec!["tagpolicy:policy/rule@0.1.0".into()],
///     annotations: [(VERSION_ANNOTATION.to_string(), "1.2.0".to_string())].into(),
///     ..Default::default()
/// };
/// let artifact = build(b"\0asm...", &spec)?;
/// assert_eq!(artifact, build(b"\0asm...", &spec)?); // deterministic
/// # Ok::<(), tagpolicy_oci::artifact::ArtifactError>(())
/// ```
pub fn build(component: &[u8], spec: &ArtifactSpec) -> Result<Artifact, ArtifactError> {
    if humantime::parse_rfc3339(&spec.created).is_err() {
        return Err(ArtifactError::Created(spec.created.clone()));
    }
    let layer_digest = Digest::of(component);
    let layer_size = component.len() as u64;
    let config = Config {
        created: spec.created.clone(),
        author: spec.author.clone(),
        architecture: "wasm".into(),
        os: "wasip2".into(),
        layer_digests: vec![layer_digest],
        component: ComponentSection {
            exports: sorted(&spec.exports),
            imports: sorted(&spec.imports),
        },
    };
    let config =
        Blob::new(CONFIG_MEDIA_TYPE, serde_json::to_vec(&config).expect("config serialises"));
    let manifest = Manifest {
        schema_version: 2,
        media_type: Some(MANIFEST_MEDIA_TYPE.into()),
        config: Descriptor {
            media_type: CONFIG_MEDIA_TYPE.into(),
            digest: config.digest,
            size: config.bytes.len() as u64,
            annotations: BTreeMap::new(),
        },
        layers: vec![Descriptor {
            media_type: LAYER_MEDIA_TYPE.into(),
            digest: layer_digest,
            size: layer_size,
            annotations: BTreeMap::new(),
        }],
        annotations: spec.annotations.clone(),
    };
    let manifest =
        Blob::new(MANIFEST_MEDIA_TYPE, serde_json::to_vec(&manifest).expect("manifest serialises"));
    Ok(Artifact { manifest, config, layer_digest, layer_size })
}

/// The digest and size of the config a manifest names, to fetch it before [`inspect`].
pub fn config_descriptor(manifest: &[u8]) -> Result<(Digest, u64), ArtifactError> {
    let parsed: Manifest = serde_json::from_slice(manifest).map_err(ArtifactError::ManifestJson)?;
    if parsed.config.media_type != CONFIG_MEDIA_TYPE {
        return Err(ArtifactError::ConfigMediaType(parsed.config.media_type));
    }
    Ok((parsed.config.digest, parsed.config.size))
}

/// Checks that a fetched manifest and config are a Wasm component artifact: an OCI image
/// manifest with the Wasm config media type, a config blob matching its descriptor, with
/// `architecture: wasm`, `os: wasip2` and `layerDigests` naming the layer, and exactly one
/// `application/wasm` layer. The layer itself is checked by
/// [`ArtifactInfo::verify_component`] once fetched.
pub fn inspect(manifest: &[u8], config: &[u8]) -> Result<ArtifactInfo, ArtifactError> {
    let parsed: Manifest = serde_json::from_slice(manifest).map_err(ArtifactError::ManifestJson)?;
    if parsed.schema_version != 2 {
        return Err(ArtifactError::SchemaVersion(parsed.schema_version));
    }
    // `mediaType` is optional in the OCI spec (the Content-Type then says it); if present it
    // must be the OCI image manifest.
    if let Some(media_type) = &parsed.media_type
        && media_type != MANIFEST_MEDIA_TYPE
    {
        return Err(ArtifactError::ManifestMediaType(media_type.clone()));
    }
    if parsed.config.media_type != CONFIG_MEDIA_TYPE {
        return Err(ArtifactError::ConfigMediaType(parsed.config.media_type));
    }
    let [layer] = parsed.layers.as_slice() else {
        return Err(ArtifactError::LayerCount(parsed.layers.len()));
    };
    if layer.media_type != LAYER_MEDIA_TYPE {
        return Err(ArtifactError::LayerMediaType(layer.media_type.clone()));
    }
    let found = Digest::of(config);
    if found != parsed.config.digest || config.len() as u64 != parsed.config.size {
        return Err(ArtifactError::ConfigMismatch {
            expected: parsed.config.digest,
            expected_size: parsed.config.size,
            found,
            found_size: config.len() as u64,
        });
    }
    let parsed_config: Config =
        serde_json::from_slice(config).map_err(ArtifactError::ConfigJson)?;
    for (field, found, expected) in
        [("architecture", &parsed_config.architecture, "wasm"), ("os", &parsed_config.os, "wasip2")]
    {
        if found != expected {
            return Err(ArtifactError::ConfigField {
                field,
                found: found.clone(),
                expected: expected.into(),
            });
        }
    }
    if parsed_config.layer_digests != [layer.digest] {
        return Err(ArtifactError::LayerDigests(layer.digest));
    }
    Ok(ArtifactInfo {
        manifest_digest: Digest::of(manifest),
        layer_digest: layer.digest,
        layer_size: layer.size,
        created: parsed_config.created,
        imports: parsed_config.component.imports,
        exports: parsed_config.component.exports,
        annotations: parsed.annotations,
    })
}
