//! The facts of images, read from the upstream when a policy asks: manifests, the labels of
//! an image's config blob, and referrers (signatures, SBOMs, attestations) from the OCI
//! referrers API or, where the registry has none (CNCF distribution 2.8), from the referrers
//! tag schema (`sha256-<hex>`) and cosign's tags (`sha256-<hex>.sig`, `.att`, `.sbom`).
//! Errors are sentences for the denial a failed lookup causes.

use super::upstream::{Reader, Upstream};
use http::HeaderValue;
use tagpolicy::Digest;
use tagpolicy::{KeyValue, Manifest, Referrer, config_labels};

/// The media type of an OCI image index: what the referrers API answers and what the
/// referrers tag schema stores.
const INDEX: &str = "application/vnd.oci.image.index.v1+json";

/// cosign's tags for what it attaches to `sha256-<hex>`, and the artifact type each stands
/// for (the type cosign gives them where the registry has a referrers API).
const COSIGN_TAGS: [(&str, &str); 3] = [
    (".sig", "application/vnd.dev.cosign.artifact.sig.v1+json"),
    (".att", "application/vnd.dsse.envelope.v1+json"),
    (".sbom", "application/vnd.dev.cosign.artifact.sbom.v1+json"),
];

/// The manifest `digest` of `repository`, `None` if the upstream does not know it.
pub async fn manifest(
    upstream: &Upstream,
    repository: &str,
    digest: &str,
    reader: &Reader,
) -> Result<Option<Manifest>, String> {
    let found = upstream.manifest(repository, digest, reader).await.map_err(|e| {
        format!("cannot read the manifest `{digest}` from the upstream registry ({e})")
    })?;
    let Some((content_type, bytes)) = found else { return Ok(None) };
    parse(&bytes, &content_type, &format!("the manifest `{digest}`")).map(Some)
}

fn parse(bytes: &[u8], content_type: &HeaderValue, what: &str) -> Result<Manifest, String> {
    Manifest::from_json(bytes, content_type.to_str().ok()).map_err(|e| format!("{what} is {e}"))
}

/// The labels of the image config `manifest` names, read as a blob of at most `max_bytes`.
pub async fn labels(
    upstream: &Upstream,
    repository: &str,
    digest: &str,
    manifest: &Manifest,
    max_bytes: usize,
    reader: &Reader,
) -> Result<Vec<KeyValue>, String> {
    let Some(config) = &manifest.config else { return Ok(Vec::new()) };
    if config.size > max_bytes as u64 {
        return Err(format!(
            "the config of `{digest}` is {} bytes, more than the {max_bytes} the gate reads",
            config.size
        ));
    }
    let bytes =
        upstream.blob(repository, &config.digest, max_bytes, reader).await.map_err(|e| {
            format!(
                "cannot read the config `{}` of `{digest}` from the upstream registry ({e})",
                config.digest
            )
        })?;
    config_labels(&bytes)
        .map_err(|e| format!("the config `{}` of `{digest}` is {e}", config.digest))
}

/// The referrers of `digest`, ordered by digest.
pub async fn referrers(
    upstream: &Upstream,
    repository: &str,
    digest: &str,
    reader: &Reader,
) -> Result<Vec<Referrer>, String> {
    let what = format!("the referrers of `{digest}`");
    let failed =
        |e: &dyn std::fmt::Display| format!("cannot read {what} from the upstream registry ({e})");
    let index = upstream.referrers(repository, digest, reader).await.map_err(|e| failed(&e))?;
    let mut found = match index {
        Some(bytes) => from_index(&bytes, None, &what)?,
        None => fallback(upstream, repository, digest, reader).await.map_err(|e| failed(&e))?,
    };
    found.sort_by(|a, b| a.digest.cmp(&b.digest));
    found.dedup_by(|a, b| a.digest == b.digest);
    Ok(found)
}

/// The referrers an index lists (the referrers API's answer, or the tag schema's index,
/// whose `content_type` the upstream gave). Anything else is refused: read leniently, a
/// manifest under the tag would list no referrers, and entries lacking a media type, digest
/// or size would still count as referrers.
fn from_index(
    bytes: &[u8],
    content_type: Option<&HeaderValue>,
    what: &str,
) -> Result<Vec<Referrer>, String> {
    let content_type = content_type.and_then(|c| c.to_str().ok()).unwrap_or(INDEX);
    let index =
        Manifest::from_json(bytes, Some(content_type)).map_err(|e| format!("{what} are {e}"))?;
    let malformed = |why: String| format!("{what} are not an OCI image index: {why}");
    if index.media_type != INDEX {
        return Err(malformed(format!("the media type is `{}`", index.media_type)));
    }
    for (position, entry) in index.manifests.iter().enumerate() {
        if entry.media_type.is_empty() {
            return Err(malformed(format!("entry {position} has no `mediaType`")));
        }
        if entry.digest.is_empty() {
            return Err(malformed(format!("entry {position} has no `digest`")));
        }
        tagpolicy::oci::check_digest(&entry.digest)
            .map_err(|e| malformed(format!("entry {position}: {e}")))?;
        // A manifest is never empty: 0 is a size left out.
        if entry.size == 0 {
            return Err(malformed(format!("entry {position} has no `size`")));
        }
    }
    Ok(index
        .manifests
        .into_iter()
        .map(|d| Referrer {
            digest: d.digest,
            media_type: d.media_type,
            artifact_type: d.artifact_type.unwrap_or_default(),
            annotations: d.annotations,
        })
        .collect())
}

/// For a registry without a referrers API: the referrers tag schema's index, and cosign's
/// tags.
async fn fallback(
    upstream: &Upstream,
    repository: &str,
    digest: &str,
    reader: &Reader,
) -> Result<Vec<Referrer>, String> {
    let Some(hex) = digest.strip_prefix("sha256:") else { return Ok(Vec::new()) };
    let tag = format!("sha256-{hex}");
    let mut found = Vec::new();
    if let Some((content_type, bytes)) =
        upstream.manifest(repository, &tag, reader).await.map_err(|e| e.to_string())?
    {
        let what = format!("the referrers under the tag `{tag}`");
        found.extend(from_index(&bytes, Some(&content_type), &what)?);
    }
    for (suffix, artifact_type) in COSIGN_TAGS {
        let cosign = format!("{tag}{suffix}");
        let answer =
            upstream.manifest(repository, &cosign, reader).await.map_err(|e| e.to_string())?;
        if let Some((content_type, bytes)) = answer {
            let manifest =
                parse(&bytes, &content_type, &format!("the cosign manifest `{cosign}`"))?;
            found.push(Referrer {
                digest: Digest::of(&bytes).to_string(),
                media_type: manifest.media_type,
                artifact_type: manifest.artifact_type.unwrap_or_else(|| artifact_type.to_string()),
                annotations: manifest.annotations,
            });
        }
    }
    Ok(found)
}
