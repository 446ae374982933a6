//! The facts of a repository's images that policies read through the `image` import: the
//! manifest (annotations, artifact type, subject, config, layers, the platforms of an index),
//! the labels of the image config, and the referrers (signatures, SBOMs, attestations).
//! A host supplies them through [`RepositoryView`](crate::RepositoryView); [`Images`] keeps
//! them in memory, and [`Manifest::from_json`] reads them from the bytes a registry stores.

pub use crate::bindings::tagpolicy::policy::types::{
    Descriptor, KeyValue, Manifest, Platform, Referrer,
};
use serde::Deserialize;
use std::collections::BTreeMap;

/// The media type of an OCI image manifest, assumed when nothing says otherwise.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

/// Everything known about one image.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImageFacts {
    /// The manifest or index, if known.
    pub manifest: Option<Manifest>,
    /// `config.Labels`, ordered by key.
    pub labels: Vec<KeyValue>,
    /// Artifacts whose subject is this image, ordered by digest.
    pub referrers: Vec<Referrer>,
}

/// Image facts by digest, in memory (what a scenario file declares).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Images {
    by_digest: BTreeMap<String, ImageFacts>,
}

impl Images {
    /// No images.
    pub fn new() -> Self {
        Self::default()
    }

    /// Set the facts of `digest`, replacing any.
    pub fn insert(&mut self, digest: &str, facts: ImageFacts) {
        self.by_digest.insert(digest.to_string(), facts);
    }

    /// The facts of `digest`.
    pub fn get(&self, digest: &str) -> Option<&ImageFacts> {
        self.by_digest.get(digest)
    }

    /// The facts of `digest`, to change them.
    pub fn get_mut(&mut self, digest: &str) -> Option<&mut ImageFacts> {
        self.by_digest.get_mut(digest)
    }

    /// The manifest of `digest`, if known.
    pub fn manifest(&self, digest: &str) -> Option<Manifest> {
        self.get(digest).and_then(|facts| facts.manifest.clone())
    }

    /// The config labels of `digest`, ordered by key; none if unknown.
    pub fn labels(&self, digest: &str) -> Vec<KeyValue> {
        self.get(digest).map(|facts| facts.labels.clone()).unwrap_or_default()
    }

    /// The referrers of `digest`, of `artifact_type` if given, ordered by digest.
    pub fn referrers(&self, digest: &str, artifact_type: Option<&str>) -> Vec<Referrer> {
        filter_referrers(
            self.get(digest).map(|f| f.referrers.as_slice()).unwrap_or_default(),
            artifact_type,
        )
    }
}

/// The referrers of `artifact_type` only (all of them for `None`), ordered by digest.
pub fn filter_referrers(referrers: &[Referrer], artifact_type: Option<&str>) -> Vec<Referrer> {
    let mut kept: Vec<Referrer> = referrers
        .iter()
        .filter(|r| artifact_type.is_none_or(|wanted| r.artifact_type == wanted))
        .cloned()
        .collect();
    kept.sort_by(|a, b| a.digest.cmp(&b.digest));
    kept
}

/// `pairs` as key-values ordered by key.
pub fn key_values<K: Into<String>, V: Into<String>>(
    pairs: impl IntoIterator<Item = (K, V)>,
) -> Vec<KeyValue> {
    let sorted: BTreeMap<String, String> =
        pairs.into_iter().map(|(k, v)| (k.into(), v.into())).collect();
    sorted.into_iter().map(|(key, value)| KeyValue { key, value }).collect()
}

impl Manifest {
    /// A manifest with nothing but its media type.
    pub fn bare(media_type: &str) -> Manifest {
        Manifest {
            media_type: media_type.to_string(),
            artifact_type: None,
            config: None,
            layers: Vec::new(),
            manifests: Vec::new(),
            subject: None,
            annotations: Vec::new(),
        }
    }

    /// The value of annotation `key`.
    pub fn annotation(&self, key: &str) -> Option<&str> {
        self.annotations.iter().find(|kv| kv.key == key).map(|kv| kv.value.as_str())
    }

    /// Read the facts of a manifest or index from its JSON (OCI or Docker v2 schema 2).
    /// `content_type` is the media type the registry or client gave, used when the JSON
    /// carries none.
    pub fn from_json(bytes: &[u8], content_type: Option<&str>) -> Result<Manifest, String> {
        let raw: RawManifest = serde_json::from_slice(bytes)
            .map_err(|e| format!("not an OCI manifest or index: {e}"))?;
        let media_type = raw
            .media_type
            .or_else(|| content_type.map(str::to_string))
            .filter(|m| !m.is_empty())
            .unwrap_or_else(|| OCI_MANIFEST.to_string());
        Ok(Manifest {
            media_type,
            artifact_type: raw.artifact_type,
            config: raw.config.map(RawDescriptor::into_descriptor),
            layers: raw.layers.into_iter().map(RawDescriptor::into_descriptor).collect(),
            manifests: raw.manifests.into_iter().map(RawDescriptor::into_descriptor).collect(),
            subject: raw.subject.map(RawDescriptor::into_descriptor),
            annotations: key_values(raw.annotations),
        })
    }
}

impl Descriptor {
    /// The value of annotation `key`.
    pub fn annotation(&self, key: &str) -> Option<&str> {
        self.annotations.iter().find(|kv| kv.key == key).map(|kv| kv.value.as_str())
    }
}

/// The parts of a manifest a policy can see; everything else is ignored.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawManifest {
    media_type: Option<String>,
    artifact_type: Option<String>,
    config: Option<RawDescriptor>,
    #[serde(default)]
    layers: Vec<RawDescriptor>,
    #[serde(default)]
    manifests: Vec<RawDescriptor>,
    subject: Option<RawDescriptor>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawDescriptor {
    #[serde(default)]
    media_type: String,
    #[serde(default)]
    digest: String,
    #[serde(default)]
    size: u64,
    artifact_type: Option<String>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
    platform: Option<RawPlatform>,
}

#[derive(Deserialize)]
struct RawPlatform {
    #[serde(default)]
    os: String,
    #[serde(default)]
    architecture: String,
    variant: Option<String>,
}

impl RawDescriptor {
    fn into_descriptor(self) -> Descriptor {
        Descriptor {
            media_type: self.media_type,
            digest: self.digest,
            size: self.size,
            artifact_type: self.artifact_type,
            annotations: key_values(self.annotations),
            platform: self.platform.map(|p| Platform {
                os: p.os,
                architecture: p.architecture,
                variant: p.variant,
            }),
        }
    }
}

/// `config.Labels` of an image config blob (OCI or Docker), ordered by key.
pub fn config_labels(bytes: &[u8]) -> Result<Vec<KeyValue>, String> {
    #[derive(Deserialize)]
    struct Config {
        #[serde(default)]
        config: Option<Inner>,
    }
    #[derive(Deserialize)]
    struct Inner {
        #[serde(rename = "Labels", default)]
        labels: Option<BTreeMap<String, String>>,
    }
    let config: Config =
        serde_json::from_slice(bytes).map_err(|e| format!("not an image config: {e}"))?;
    Ok(key_values(config.config.and_then(|c| c.labels).unwrap_or_default()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manifest_is_read_from_its_json() {
        let json = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",
            "config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:c","size":7},
            "layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:l","size":5}],
            "subject":{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:s","size":9},
            "annotations":{"z":"1","org.opencontainers.image.version":"1.2.3"}}"#;
        let manifest = Manifest::from_json(json, None).unwrap();
        assert_eq!(manifest.annotation("org.opencontainers.image.version"), Some("1.2.3"));
        assert_eq!(manifest.annotations[0].key, "org.opencontainers.image.version", "ordered");
        assert_eq!(manifest.layers[0].size, 5);
        assert_eq!(manifest.subject.unwrap().digest, "sha256:s");
        assert_eq!(manifest.config.unwrap().media_type, "application/vnd.oci.image.config.v1+json");
    }

    #[test]
    fn an_index_has_platforms_and_the_content_type_fills_in() {
        let json =
            br#"{"schemaVersion":2,"manifests":[{"mediaType":"m","digest":"sha256:a","size":1,
            "platform":{"os":"linux","architecture":"arm64","variant":"v8"}}]}"#;
        let index =
            Manifest::from_json(json, Some("application/vnd.oci.image.index.v1+json")).unwrap();
        assert_eq!(index.media_type, "application/vnd.oci.image.index.v1+json");
        let platform = index.manifests[0].platform.clone().unwrap();
        assert_eq!((platform.os.as_str(), platform.variant.as_deref()), ("linux", Some("v8")));
        assert!(Manifest::from_json(b"[1]", None).unwrap_err().contains("not an OCI manifest"));
    }

    #[test]
    fn labels_come_from_the_config() {
        let labels = config_labels(br#"{"config":{"Labels":{"b":"2","a":"1"}}}"#).unwrap();
        assert_eq!(labels, key_values([("a", "1"), ("b", "2")]));
        assert!(config_labels(br#"{"architecture":"amd64"}"#).unwrap().is_empty());
        assert!(config_labels(b"nope").is_err());
    }
}
