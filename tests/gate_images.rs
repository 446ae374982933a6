//! Rules that see the image, through the gate, on the real registry: signatures and SBOMs
//! attached as OCI artifacts (with a `subject`) and found through the referrers tag schema
//! and cosign's tags (CNCF distribution 2.8 has no referrers API); annotations from the
//! pushed manifest and labels from the config blob of images pushed by skopeo; a change
//! freeze on the gate's clock; and artifacts that are too big or malformed.

mod common;
#[path = "support/registry.rs"]
mod registry;
#[path = "support/stand_in.rs"]
mod stand_in;

use registry::{Client, Gate, ImageExtras, Layout, Registry, sha256_hex, skopeo_copy, text};
use serde_json::json;
use stand_in::Answer;

const SIGNATURE: &str = "application/vnd.dev.cosign.artifact.sig.v1+json";
const SBOM: &str = "application/spdx+json";
const INDEX: &str = "application/vnd.oci.image.index.v1+json";
const EMPTY: &str = "application/vnd.oci.empty.v1+json";

/// Release tags need a signature and an SBOM, and the version annotation equal to the tag.
const SIGNED_RELEASES: &str = r#"rules:
  - repositories: ["team/**"]
    policies:
      - policy: image-requirements
        settings:
          rules:
            - tags: ["\\d+\\.\\d+\\.\\d+"]
              referrers: ["application/vnd.dev.cosign.artifact.sig.v1+json", "application/spdx+json"]
              version_matches_tag: true
"#;

/// An image uploaded by hand (blobs, then the manifest by digest, which changes no tag), with
/// the version annotation `version`; its manifest and digest.
fn image(client: &Client, repository: &str, version: &str) -> (Vec<u8>, String) {
    let config = json!({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": []},
                        "config": {"Labels": {"version": version}}})
    .to_string();
    let config_digest = client.upload_blob(repository, config.as_bytes());
    let layer_digest = client.upload_blob(repository, version.as_bytes());
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": registry::MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": layer_digest, "size": version.len()}],
        "annotations": {"org.opencontainers.image.version": version},
    })
    .to_string()
    .into_bytes();
    let digest = format!("sha256:{}", sha256_hex(&manifest));
    let pushed = client.put_manifest(repository, &digest, &manifest);
    assert_eq!(pushed.status, 201, "{}", pushed.body);
    (manifest, digest)
}

/// An OCI artifact of `artifact_type` whose subject is `subject`, pushed by digest; its
/// descriptor, as a referrers index lists it.
fn attach(
    client: &Client,
    repository: &str,
    subject: (&[u8], &str),
    artifact_type: &str,
) -> serde_json::Value {
    let empty = client.upload_blob(repository, b"{}");
    let payload = format!("{artifact_type} of {}", subject.1);
    let layer = client.upload_blob(repository, payload.as_bytes());
    let artifact = json!({
        "schemaVersion": 2,
        "mediaType": registry::MANIFEST,
        "artifactType": artifact_type,
        "config": {"mediaType": EMPTY, "digest": empty, "size": 2},
        "layers": [{"mediaType": "application/octet-stream", "digest": layer, "size": payload.len()}],
        "subject": {"mediaType": registry::MANIFEST, "digest": subject.1, "size": subject.0.len()},
    })
    .to_string()
    .into_bytes();
    let digest = format!("sha256:{}", sha256_hex(&artifact));
    let pushed = client.put_manifest(repository, &digest, &artifact);
    assert_eq!(pushed.status, 201, "{}", pushed.body);
    json!({"mediaType": registry::MANIFEST, "digest": digest, "size": artifact.len(), "artifactType": artifact_type})
}

/// The referrers tag schema: the index `sha256-<hex>` lists what refers to `subject`.
fn publish_referrers(
    client: &Client,
    repository: &str,
    subject: &str,
    referrers: &[serde_json::Value],
) {
    let index = json!({"schemaVersion": 2, "mediaType": INDEX, "manifests": referrers}).to_string();
    let tag = subject.replace(':', "-");
    let pushed = client.put_manifest_as(repository, &tag, index.as_bytes(), INDEX);
    assert_eq!(pushed.status, 201, "{}", pushed.body);
}

#[test]
fn sign_then_tag_is_allowed_and_tag_then_sign_is_refused() {
    let registry = Registry::start();
    let gate = Gate::start(&registry.url(), SIGNED_RELEASES);
    let client = Client::new(&gate.url());
    let direct = Client::new(&registry.url());

    // Sign, attach an SBOM, then tag: allowed.
    let (manifest, digest) = image(&client, "team/app", "1.0.0");
    let signature = attach(&client, "team/app", (&manifest, &digest), SIGNATURE);
    let sbom = attach(&client, "team/app", (&manifest, &digest), SBOM);
    publish_referrers(&client, "team/app", &digest, &[signature, sbom]);
    let tagged = client.put_manifest("team/app", "1.0.0", &manifest);
    assert_eq!(tagged.status, 201, "{}", tagged.body);

    // Tag before signing: refused, naming what is missing; nothing changes upstream.
    let (manifest, digest) = image(&client, "team/app", "2.0.0");
    let early = client.put_manifest("team/app", "2.0.0", &manifest);
    assert_eq!(early.status, 403, "{}", early.body);
    let message = early.json()["errors"][0]["message"].as_str().unwrap().to_string();
    assert!(
        message.contains(&format!("no artifact of type `{SIGNATURE}` refers to it")),
        "{message}"
    );
    assert!(message.contains(&format!("no artifact of type `{SBOM}` refers to it")), "{message}");
    assert_eq!(direct.digest_of("team/app", "2.0.0"), None);
    // Signed only: still refused for the SBOM.
    let signature = attach(&client, "team/app", (&manifest, &digest), SIGNATURE);
    publish_referrers(&client, "team/app", &digest, std::slice::from_ref(&signature));
    let half = client.put_manifest("team/app", "2.0.0", &manifest);
    assert_eq!(half.status, 403, "{}", half.body);
    assert!(!half.body.contains(SIGNATURE) && half.body.contains(SBOM), "{}", half.body);
    // With both, the same push goes through.
    let sbom = attach(&client, "team/app", (&manifest, &digest), SBOM);
    publish_referrers(&client, "team/app", &digest, &[signature, sbom]);
    assert_eq!(client.put_manifest("team/app", "2.0.0", &manifest).status, 201);

    // The version annotation must be the tag.
    let wrong = client.put_manifest("team/app", "2.0.1", &manifest);
    assert_eq!(wrong.status, 403, "{}", wrong.body);
    assert!(wrong.body.contains("is `2.0.0`, not the tag"), "{}", wrong.body);
}

#[test]
fn cosign_tags_count_as_referrers() {
    let registry = Registry::start();
    let gate = Gate::start(&registry.url(), SIGNED_RELEASES);
    let client = Client::new(&gate.url());
    let (manifest, digest) = image(&client, "team/cosigned", "3.0.0");
    // cosign's layout on a registry without a referrers API: manifests under
    // `sha256-<hex>.sig` and `.sbom` (no `subject`, no artifact type).
    for (suffix, layer_type) in
        [(".sig", "application/vnd.dev.cosign.simplesigning.v1+json"), (".sbom", "text/spdx+json")]
    {
        let config = client.upload_blob("team/cosigned", b"{}");
        let layer = client.upload_blob("team/cosigned", suffix.as_bytes());
        let cosign = json!({
            "schemaVersion": 2,
            "mediaType": registry::MANIFEST,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config, "size": 2},
            "layers": [{"mediaType": layer_type, "digest": layer, "size": suffix.len(),
                        "annotations": {"dev.cosignproject.cosign/signature": "MEUCIQ..."}}],
        })
        .to_string();
        let tag = format!("{}{suffix}", digest.replace(':', "-"));
        assert_eq!(client.put_manifest("team/cosigned", &tag, cosign.as_bytes()).status, 201);
    }
    // The `.sbom` tag stands for cosign's SBOM type, not `application/spdx+json`.
    let refused = client.put_manifest("team/cosigned", "3.0.0", &manifest);
    assert_eq!(refused.status, 403, "{}", refused.body);
    assert!(!refused.body.contains(SIGNATURE) && refused.body.contains(SBOM), "{}", refused.body);

    let cosign_sboms =
        SIGNED_RELEASES.replace(SBOM, "application/vnd.dev.cosign.artifact.sbom.v1+json");
    let gate = Gate::start(&registry.url(), &cosign_sboms);
    let tagged = Client::new(&gate.url()).put_manifest("team/cosigned", "3.0.0", &manifest);
    assert_eq!(tagged.status, 201, "{}", tagged.body);
}

#[test]
fn annotations_and_labels_of_images_pushed_by_skopeo() {
    let registry = Registry::start();
    let gate = Gate::start(
        &registry.url(),
        r#"rules:
  - repositories: ["team/**"]
    policies:
      - policy: image-requirements
        settings:
          rules:
            - tags: ["\\d+\\.\\d+\\.\\d+"]
              annotations: {org.opencontainers.image.source: "https://github\\.com/team/.*"}
              labels: {maintainer: ".+@team\\.example"}
              version_matches_tag: true
"#,
    );
    let images = tempfile::tempdir().unwrap();
    let extras = |source: &str, maintainer: &str| ImageExtras {
        annotations: vec![
            ("org.opencontainers.image.version", "4.0.0".to_string()),
            ("org.opencontainers.image.source", source.to_string()),
        ],
        labels: vec![("maintainer", maintainer.to_string())],
        config_padding: 0,
    };
    let good = Layout::image_with(
        images.path(),
        1,
        1024,
        &extras("https://github.com/team/app", "ops@team.example"),
    );
    let out = skopeo_copy(&good, &gate.address, "team/app:4.0.0", false);
    assert!(out.status.success(), "{}", text(&out));
    // The same image under another version: its annotation says 4.0.0.
    let out = skopeo_copy(&good, &gate.address, "team/app:4.0.1", false);
    assert!(!out.status.success(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("is `4.0.0`, not the tag"),
        "{}",
        text(&out)
    );
    // Built elsewhere, labelled by someone else: both reported.
    let other = Layout::image_with(
        images.path(),
        2,
        1024,
        &extras("https://github.com/fork/app", "me@fork.example"),
    );
    let out = skopeo_copy(&other, &gate.address, "team/app:4.0.0", false);
    assert!(!out.status.success(), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("`https://github.com/fork/app`") && stderr.contains("`me@fork.example`"),
        "{stderr}"
    );
    assert_eq!(Client::new(&registry.url()).digest_of("team/app", "4.0.0"), Some(good.digest));
}

#[test]
fn a_freeze_window_on_the_gates_clock() {
    let registry = Registry::start();
    let now = std::time::SystemTime::now();
    let hour = std::time::Duration::from_secs(3600);
    let time = |t: std::time::SystemTime| humantime::format_rfc3339_seconds(t).to_string();
    let rules = |from: std::time::SystemTime, until: std::time::SystemTime| {
        format!(
            r#"rules:
  - repositories: ["team/**"]
    policies:
      - policy: change-freeze
        settings:
          windows: [{{name: release freeze, from: "{}", until: "{}"}}]
          tags: ["\\d+\\.\\d+\\.\\d+"]
"#,
            time(from),
            time(until)
        )
    };
    let client = Client::new(&registry.url());
    let (manifest, _) = client.image_manifest("team/app", "frozen");
    let frozen = Gate::start(&registry.url(), &rules(now - hour, now + hour));
    let refused = Client::new(&frozen.url()).put_manifest("team/app", "5.0.0", &manifest);
    assert_eq!(refused.status, 403, "{}", refused.body);
    assert!(refused.body.contains("change freeze `release freeze`"), "{}", refused.body);
    // Other tags are not frozen.
    assert_eq!(Client::new(&frozen.url()).put_manifest("team/app", "dev", &manifest).status, 201);
    let over = Gate::start(&registry.url(), &rules(now - 2 * hour, now - hour));
    assert_eq!(Client::new(&over.url()).put_manifest("team/app", "5.0.0", &manifest).status, 201);
}

#[test]
fn an_oversized_config_denies_with_the_reason() {
    let registry = Registry::start();
    let gate = Gate::start(
        &registry.url(),
        r#"limits: {max_config_bytes: 4096}
rules:
  - repositories: ["team/**"]
    policies:
      - policy: image-requirements
        settings: {rules: [{tags: [".*"], labels: {seed: ".+"}}]}
"#,
    );
    let images = tempfile::tempdir().unwrap();
    let padded = ImageExtras { config_padding: 16 << 10, ..ImageExtras::default() };
    let big = Layout::image_with(images.path(), 3, 512, &padded);
    let out = skopeo_copy(&big, &gate.address, "team/app:big", false);
    assert!(!out.status.success(), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("more than the 4096 the gate reads"), "{stderr}");
    // A config within the limit is read.
    let small = Layout::image(images.path(), 4, 512);
    let out = skopeo_copy(&small, &gate.address, "team/app:small", false);
    assert!(out.status.success(), "{}", text(&out));
}

/// A stand-in upstream that knows no tag and answers the referrers API with `referrers`.
fn referrers_upstream(referrers: &'static str) -> String {
    let (url, _) = stand_in::start(move |request| {
        if request.path.contains("/referrers/") {
            return Answer::Reply {
                status: 200,
                headers: vec![("content-type", INDEX.into())],
                body: referrers.as_bytes().to_vec(),
            };
        }
        match request.method.as_str() {
            "PUT" => Answer::status(201),
            _ => Answer::status(404),
        }
    });
    url
}

#[test]
fn malformed_referrers_deny_with_the_reason_and_a_loop_is_harmless() {
    let manifest = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:00","size":2},"layers":[]}"#;
    let digest = format!("sha256:{}", sha256_hex(manifest));

    let malformed =
        Gate::start(&referrers_upstream(r#"{"manifests": "not a list"}"#), SIGNED_RELEASES);
    let refused = Client::new(&malformed.url()).put_manifest("team/x", "1.0.0", manifest);
    assert_eq!(refused.status, 403, "{}", refused.body);
    let message = refused.json()["errors"][0]["message"].as_str().unwrap().to_string();
    assert!(message.contains("the referrers of `sha256:"), "{message}");
    assert!(message.contains("are not an OCI manifest or index"), "{message}");
    assert!(message.contains("the request is denied"), "{message}");

    // An index that lists the image itself as its own referrer: one lookup, no recursion,
    // and no signature.
    let looped: &'static str = Box::leak(
        json!({"schemaVersion": 2, "mediaType": INDEX, "manifests": [
            {"mediaType": registry::MANIFEST, "digest": digest, "size": manifest.len()}]})
        .to_string()
        .into_boxed_str(),
    );
    let looping = Gate::start(&referrers_upstream(looped), SIGNED_RELEASES);
    let refused = Client::new(&looping.url()).put_manifest("team/x", "1.0.0", manifest);
    assert_eq!(refused.status, 403, "{}", refused.body);
    assert!(
        refused.body.contains(&format!("no artifact of type `{SIGNATURE}`")),
        "{}",
        refused.body
    );
}
