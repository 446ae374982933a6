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
    attach_manifest(client, repository, subject, artifact_type).1
}

/// [`attach`], with the artifact's manifest.
fn attach_manifest(
    client: &Client,
    repository: &str,
    subject: (&[u8], &str),
    artifact_type: &str,
) -> (Vec<u8>, serde_json::Value) {
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
    let descriptor = json!({"mediaType": registry::MANIFEST, "digest": digest, "size": artifact.len(), "artifactType": artifact_type});
    (artifact, descriptor)
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
    assert_eq!(early.status, 409, "{}", early.body);
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
    assert_eq!(half.status, 409, "{}", half.body);
    assert!(!half.body.contains(SIGNATURE) && half.body.contains(SBOM), "{}", half.body);
    // With both, the same push goes through.
    let sbom = attach(&client, "team/app", (&manifest, &digest), SBOM);
    publish_referrers(&client, "team/app", &digest, &[signature, sbom]);
    assert_eq!(client.put_manifest("team/app", "2.0.0", &manifest).status, 201);

    // The version annotation must be the tag.
    let wrong = client.put_manifest("team/app", "2.0.1", &manifest);
    assert_eq!(wrong.status, 409, "{}", wrong.body);
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
    assert_eq!(refused.status, 409, "{}", refused.body);
    assert!(!refused.body.contains(SIGNATURE) && refused.body.contains(SBOM), "{}", refused.body);

    let cosign_sboms =
        SIGNED_RELEASES.replace(SBOM, "application/vnd.dev.cosign.artifact.sbom.v1+json");
    let gate = Gate::start(&registry.url(), &cosign_sboms);
    let tagged = Client::new(&gate.url()).put_manifest("team/cosigned", "3.0.0", &manifest);
    assert_eq!(tagged.status, 201, "{}", tagged.body);
}

/// `immutable-tags` at its defaults, and release tags that need a signature and an
/// attestation (cosign's `.sig` and `.att` tags count as such referrers).
const SIGNED_IMMUTABLE: &str = r#"rules:
  - repositories: ["team/**"]
    policies:
      - policy: immutable-tags
      - policy: image-requirements
        settings:
          rules:
            - tags: ["\\d+\\.\\d+\\.\\d+"]
              referrers: ["application/vnd.dev.cosign.artifact.sig.v1+json", "application/vnd.dsse.envelope.v1+json"]
"#;

/// cosign's layout of a signature or attestation tag: one layer per signature (a payload and
/// its signature annotation), optionally with a `subject`. Pushed by tag; the reply.
fn cosign_manifest(
    client: &Client,
    tag: &str,
    layers: &[(&str, &str)],
    subject: Option<(&[u8], &str)>,
) -> registry::Reply {
    let config = client.upload_blob("team/app", b"{}");
    let layers: Vec<serde_json::Value> = layers
        .iter()
        .map(|(layer_type, signature)| {
            let payload = format!("{layer_type} payload");
            let digest = client.upload_blob("team/app", payload.as_bytes());
            json!({"mediaType": layer_type, "digest": digest, "size": payload.len(),
                   "annotations": {"dev.cosignproject.cosign/signature": signature}})
        })
        .collect();
    let mut manifest = json!({
        "schemaVersion": 2,
        "mediaType": registry::MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config, "size": 2},
        "layers": layers,
    });
    if let Some((bytes, digest)) = subject {
        manifest["subject"] =
            json!({"mediaType": registry::MANIFEST, "digest": digest, "size": bytes.len()});
    }
    client.put_manifest("team/app", tag, manifest.to_string().as_bytes())
}

/// A policy denial: 409 with the OCI `DENIED` error, `reason` in its message.
fn assert_denied(reply: &registry::Reply, reason: &str) {
    let body: serde_json::Value = serde_json::from_str(&reply.body).unwrap_or_default();
    let message = body["errors"][0]["message"].as_str().unwrap_or_default();
    assert!(
        reply.status == 409 && body["errors"][0]["code"] == "DENIED" && message.contains(reason),
        "expected a denial with `{reason}`: HTTP {} {}",
        reply.status,
        reply.body
    );
}

#[test]
fn signature_tags_only_grow_through_the_gate() {
    const SIG: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
    const ATT: &str = "application/vnd.dsse.envelope.v1+json";
    let registry = Registry::start();
    let gate = Gate::start(&registry.url(), SIGNED_IMMUTABLE);
    let client = Client::new(&gate.url());
    let direct = Client::new(&registry.url());
    let (manifest, digest) = image(&client, "team/app", "1.0.0");
    let hex = digest.replace(':', "-");
    let (sig, att) = (format!("{hex}.sig"), format!("{hex}.att"));

    // Signed three times and attested three times: each a move that keeps what was there.
    for n in 1..=3 {
        let signatures: Vec<(&str, &str)> =
            ["first", "second", "third"][..n].iter().map(|s| (SIG, *s)).collect();
        assert_eq!(cosign_manifest(&client, &sig, &signatures, None).status, 201, "signature {n}");
        let attestations: Vec<(&str, &str)> =
            ["a", "b", "c"][..n].iter().map(|s| (ATT, *s)).collect();
        assert_eq!(cosign_manifest(&client, &att, &attestations, None).status, 201, "att. {n}");
    }
    let signed = direct.digest_of("team/app", &sig);
    // The release, now that it is signed and attested.
    assert_eq!(client.put_manifest("team/app", "1.0.0", &manifest).status, 201);

    // A signature manifest that drops one: refused, naming what would be lost.
    let stripped = cosign_manifest(&client, &sig, &[(SIG, "first"), (SIG, "third")], None);
    assert_denied(&stripped, "would drop 1 of the 3 entries it lists");
    // The same signature under another annotation is another signature.
    let forged =
        cosign_manifest(&client, &sig, &[(SIG, "first"), (SIG, "second"), (SIG, "x")], None);
    assert_denied(&forged, "annotated dev.cosignproject.cosign/signature");
    // A signature tag whose subject is another image.
    let (other_manifest, other) = image(&client, "team/app", "2.0.0");
    let all = [(SIG, "first"), (SIG, "second"), (SIG, "third"), (SIG, "fourth")];
    let elsewhere = cosign_manifest(&client, &sig, &all, Some((&other_manifest, &other)));
    assert_denied(&elsewhere, "names another subject");
    // Deleting the signatures of a released image.
    assert_denied(&client.delete_manifest("team/app", &sig), "carries immutable tag `1.0.0`");
    assert_eq!(direct.digest_of("team/app", &sig), signed, "nothing changed upstream");

    // The referrers tag schema: an index that grows is allowed, one that shrinks is refused.
    let signature = attach(&client, "team/app", (&manifest, &digest), SIGNATURE);
    let sbom = attach(&client, "team/app", (&manifest, &digest), SBOM);
    publish_referrers(&client, "team/app", &digest, std::slice::from_ref(&signature));
    publish_referrers(&client, "team/app", &digest, &[signature, sbom.clone()]);
    let index = json!({"schemaVersion": 2, "mediaType": INDEX, "manifests": [sbom]}).to_string();
    let shrunk = client.put_manifest_as("team/app", &hex, index.as_bytes(), INDEX);
    assert_denied(&shrunk, "would drop 1 of the 2 entries it lists");
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
    assert_eq!(refused.status, 409, "{}", refused.body);
    assert!(refused.body.contains("change freeze `release freeze`"), "{}", refused.body);
    // Other tags are not frozen.
    assert_eq!(Client::new(&frozen.url()).put_manifest("team/app", "dev", &manifest).status, 201);
    let over = Gate::start(&registry.url(), &rules(now - 2 * hour, now - hour));
    assert_eq!(Client::new(&over.url()).put_manifest("team/app", "5.0.0", &manifest).status, 201);
}

/// A gate that reads at most 4 KiB of an image config, for a rule on its labels.
const LABELS_WITHIN_4_KIB: &str = r#"limits: {max_config_bytes: 4096}
rules:
  - repositories: ["team/**"]
    policies:
      - policy: image-requirements
        settings: {rules: [{tags: [".*"], labels: {seed: ".+"}}]}
"#;

#[test]
fn an_oversized_config_denies_with_the_reason() {
    let registry = Registry::start();
    let gate = Gate::start(&registry.url(), LABELS_WITHIN_4_KIB);
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
fn malformed_referrers_from_the_api_deny_with_the_reason() {
    let manifest = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:00","size":2},"layers":[]}"#;

    let malformed =
        Gate::start(&referrers_upstream(r#"{"manifests": "not a list"}"#), SIGNED_RELEASES);
    let refused = Client::new(&malformed.url()).put_manifest("team/x", "1.0.0", manifest);
    assert_eq!(refused.status, 409, "{}", refused.body);
    let message = refused.json()["errors"][0]["message"].as_str().unwrap().to_string();
    assert!(message.contains("the referrers of `sha256:"), "{message}");
    assert!(message.contains("are not an OCI manifest or index"), "{message}");
    assert!(message.contains("the request is denied"), "{message}");

    // An image manifest where the index should be: read as an index, it would list nothing.
    let manifest_instead = Gate::start(
        &referrers_upstream(
            r#"{"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json", "layers": []}"#,
        ),
        SIGNED_RELEASES,
    );
    let refused = Client::new(&manifest_instead.url()).put_manifest("team/x", "1.0.0", manifest);
    assert_eq!(refused.status, 409, "{}", refused.body);
    let message = message_of(&refused);
    assert!(
        message.contains(&format!(
            "the referrers of `sha256:{}` are not an OCI image index: the media type is `{}`",
            sha256_hex(manifest),
            registry::MANIFEST
        )),
        "{message}"
    );
}

/// The message of the first error of a registry error answer.
fn message_of(reply: &registry::Reply) -> String {
    reply.json()["errors"][0]["message"].as_str().unwrap_or_default().to_string()
}

#[test]
fn a_config_larger_than_its_manifest_declares_is_read_only_up_to_the_limit() {
    let registry = Registry::start();
    let gate = Gate::start(&registry.url(), LABELS_WITHIN_4_KIB);
    let client = Client::new(&gate.url());
    let direct = Client::new(&registry.url());
    // An image whose config carries the label, padded with `padding` bytes, and whose
    // manifest declares the config to be `declared` bytes.
    let padded_image = |padding: usize, declared: Option<usize>| {
        let config = json!({"architecture": "amd64", "os": "linux",
                            "rootfs": {"type": "layers", "diff_ids": []},
                            "config": {"Labels": {"seed": "1"}}, "comment": "x".repeat(padding)})
        .to_string();
        let config_digest = direct.upload_blob("team/app", config.as_bytes());
        let layer_digest = direct.upload_blob("team/app", b"layer");
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": registry::MANIFEST,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                       "digest": config_digest, "size": declared.unwrap_or(config.len())},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                        "digest": layer_digest, "size": 5}],
        })
        .to_string()
        .into_bytes();
        let digest = format!("sha256:{}", sha256_hex(&manifest));
        (manifest, digest, config_digest)
    };
    // A config within the limit is read (and the policy's instance now exists, so that the
    // memory measured below is the big config's alone).
    let (small, _, _) = padded_image(0, None);
    let tagged = client.put_manifest("team/app", "small", &small);
    assert_eq!(tagged.status, 201, "{}", tagged.body);
    let before = gate.peak_rss_kib();

    // 48 MiB declared as 100 bytes; distribution 2.8 stores the manifest without checking
    // the size. It carries the label: a gate that read it whole would allow.
    let (big, digest, config) = padded_image(48 << 20, Some(100));
    assert_eq!(direct.put_manifest("team/app", &digest, &big).status, 201);
    let refused = client.put_manifest("team/app", "big", &big);
    assert_eq!(refused.status, 409, "{}", refused.body);
    let message = message_of(&refused);
    assert!(
        message.contains(&format!("cannot read the config `{config}` of `{digest}`")),
        "{message}"
    );
    assert!(message.contains("larger than 4096 bytes"), "{message}");
    assert!(message.contains("the request is denied"), "{message}");
    let grown = gate.peak_rss_kib().saturating_sub(before);
    assert!(grown < 16 << 10, "the gate's peak memory grew by {grown} KiB on a 4096-byte limit");
    assert_eq!(direct.digest_of("team/app", "big"), None);
    // The gate is still up and reads configs within the limit.
    assert_eq!(client.put_manifest("team/app", "small-again", &small).status, 201);
}

#[test]
fn a_malformed_referrers_index_in_the_tag_schema_denies_with_the_reason() {
    let registry = Registry::start();
    let gate = Gate::start(&registry.url(), SIGNED_RELEASES);
    let client = Client::new(&gate.url());
    let direct = Client::new(&registry.url());
    let (manifest, digest) = image(&client, "team/app", "1.0.0");
    let signature = attach(&client, "team/app", (&manifest, &digest), SIGNATURE);
    let sbom = attach(&client, "team/app", (&manifest, &digest), SBOM);
    let tag = digest.replace(':', "-");
    let refused = |why: &str| {
        let reply = client.put_manifest("team/app", "1.0.0", &manifest);
        assert_eq!(reply.status, 409, "{}", reply.body);
        let message = message_of(&reply);
        assert!(message.contains(&format!("cannot read the referrers of `{digest}`")), "{message}");
        assert!(message.contains(&format!("under the tag `{tag}`")), "{message}");
        assert!(message.contains(why), "wanted `{why}` in: {message}");
        assert!(message.ends_with("the request is denied"), "{message}");
        assert_eq!(direct.digest_of("team/app", "1.0.0"), None);
    };

    // An image manifest where the index should be (it has no `manifests`: read as an index,
    // it would list nothing).
    let (other, _) = image(&client, "team/app", "9.9.9");
    assert_eq!(direct.put_manifest("team/app", &tag, &other).status, 201);
    refused(&format!("are not an OCI image index: the media type is `{}`", registry::MANIFEST));

    // An index whose entries lack their media type and size; each names a real artifact of
    // the required type, which a gate that took entries as they come would count.
    let incomplete: Vec<serde_json::Value> = [&signature, &sbom]
        .iter()
        .map(|d| json!({"digest": d["digest"], "artifactType": d["artifactType"]}))
        .collect();
    publish_referrers(&direct, "team/app", &digest, &incomplete);
    refused("entry 0 has no `mediaType`");
    let sizeless: Vec<serde_json::Value> = [&signature, &sbom]
        .iter()
        .map(|d| {
            json!({"mediaType": d["mediaType"], "digest": d["digest"], "artifactType": d["artifactType"]})
        })
        .collect();
    publish_referrers(&direct, "team/app", &digest, &sizeless);
    refused("entry 0 has no `size`");

    // The same entries complete: allowed.
    publish_referrers(&direct, "team/app", &digest, &[signature, sbom]);
    let tagged = client.put_manifest("team/app", "1.0.0", &manifest);
    assert_eq!(tagged.status, 201, "{}", tagged.body);
}

#[test]
fn failed_image_lookups_deny_naming_the_lookup_and_write_nothing() {
    let config = br#"{"architecture":"amd64","os":"linux","config":{"Labels":{"seed":"1"}}}"#;
    let config_digest = format!("sha256:{}", sha256_hex(config));
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": registry::MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config.len()},
        "layers": [],
    })
    .to_string();
    let digest = format!("sha256:{}", sha256_hex(manifest.as_bytes()));
    let tag = digest.replace(':', "-");
    let signature = format!("sha256:{}", "5".repeat(64));
    let index = json!({"schemaVersion": 2, "mediaType": INDEX, "manifests": [
        {"mediaType": registry::MANIFEST, "digest": signature, "size": 300, "artifactType": SIGNATURE}]})
    .to_string();

    // A registry without a referrers API that has the config and a tag-schema index with a
    // signature, and answers `failing` (a path and a status) with that status.
    let failing = std::sync::Arc::new(std::sync::Mutex::new(None::<(String, u16)>));
    let script_failing = failing.clone();
    let paths =
        (format!("/v2/team/x/blobs/{config_digest}"), format!("/v2/team/x/manifests/{tag}"));
    let (url, seen) = stand_in::start(move |request| {
        if let Some((path, status)) = script_failing.lock().unwrap().clone()
            && request.path == path
        {
            let challenge = r#"Bearer realm="http://127.0.0.1:1/token",service="registry""#;
            return Answer::Reply {
                status,
                headers: vec![("www-authenticate", challenge.into())],
                body: br#"{"errors":[{"code":"UNKNOWN","message":"scripted failure"}]}"#.to_vec(),
            };
        }
        match request.method.as_str() {
            "PUT" => Answer::status(201),
            "GET" if request.path == paths.0 => Answer::Reply {
                status: 200,
                headers: vec![("content-type", "application/octet-stream".into())],
                body: config.to_vec(),
            },
            "GET" if request.path == paths.1 => Answer::Reply {
                status: 200,
                headers: vec![("content-type", INDEX.into())],
                body: index.clone().into_bytes(),
            },
            _ if request.path == "/v2/" => Answer::status(200),
            _ => Answer::status(404),
        }
    });
    let gate = Gate::start(
        &url,
        r#"rules:
  - repositories: ["team/**"]
    policies:
      - policy: image-requirements
        settings:
          rules: [{tags: ["\\d+\\.\\d+\\.\\d+"], referrers: ["application/vnd.dev.cosign.artifact.sig.v1+json"], labels: {seed: ".+"}}]
"#,
    );
    let client = Client::new(&gate.url());
    let manifest_puts = || {
        let seen = seen.lock().unwrap();
        seen.iter().filter(|s| s.method == "PUT" && s.path.contains("/manifests/")).count()
    };

    // With every lookup answered the push goes through: a write is what the cases below
    // would show if they let one pass.
    let allowed = client.put_manifest("team/x", "1.0.0", manifest.as_bytes());
    assert_eq!(allowed.status, 201, "{}", allowed.body);
    assert_eq!(manifest_puts(), 1);

    let referrers = format!("cannot read the referrers of `{digest}` from the upstream registry");
    let labels = format!(
        "cannot read the config `{config_digest}` of `{digest}` from the upstream registry"
    );
    let cases = [
        (format!("/v2/team/x/referrers/{digest}"), 500, &referrers, "500 Internal Server Error"),
        (format!("/v2/team/x/manifests/{tag}"), 500, &referrers, "500 Internal Server Error"),
        (format!("/v2/team/x/manifests/{tag}.sig"), 401, &referrers, "401 Unauthorized"),
        (format!("/v2/team/x/blobs/{config_digest}"), 500, &labels, "500 Internal Server Error"),
        (format!("/v2/team/x/blobs/{config_digest}"), 401, &labels, "401 Unauthorized"),
    ];
    for (path, status, lookup, answer) in cases {
        *failing.lock().unwrap() = Some((path.clone(), status));
        let asked = seen.lock().unwrap().len();
        let refused = client.put_manifest("team/x", "1.0.1", manifest.as_bytes());
        assert_eq!(refused.status, 409, "{path} {status}: {}", refused.body);
        let message = message_of(&refused);
        assert!(message.contains(lookup.as_str()), "{path} {status}: {message}");
        assert!(message.contains(answer), "{path} {status}: {message}");
        assert!(message.ends_with("the request is denied"), "{message}");
        let failed = seen.lock().unwrap()[asked..].iter().any(|s| s.path == path);
        assert!(failed, "the gate never asked for `{path}`");
        assert_eq!(manifest_puts(), 1, "{path} {status}: a manifest was written upstream");
    }
}

#[test]
fn a_referrer_loop_is_looked_up_once_per_source() {
    let registry = Registry::start();
    // Two policies each asking for the referrers of the pushed image: they share lookups.
    let gate = Gate::start(
        &registry.url(),
        r#"rules:
  - repositories: ["team/**"]
    policies:
      - policy: image-requirements
        settings:
          rules: [{tags: ["\\d+\\.\\d+\\.\\d+"], referrers: ["application/vnd.dev.cosign.artifact.sig.v1+json"], version_matches_tag: true}]
      - policy: image-requirements
        settings:
          rules: [{tags: ["\\d+\\.\\d+\\.\\d+"], referrers: ["application/spdx+json"]}]
"#,
    );
    let client = Client::new(&gate.url());
    let direct = Client::new(&registry.url());
    let (manifest, a) = image(&client, "team/loop", "1.0.0");
    let (artifact, signature) = attach_manifest(&client, "team/loop", (&manifest, &a), SIGNATURE);
    let sbom = attach(&client, "team/loop", (&manifest, &a), SBOM);
    let b = signature["digest"].as_str().unwrap().to_string();
    // A → B (and the SBOM), and B → A: the indexes refer to each other.
    publish_referrers(&direct, "team/loop", &a, &[signature.clone(), sbom]);
    let back = json!({"mediaType": registry::MANIFEST, "digest": a, "size": manifest.len()});
    publish_referrers(&direct, "team/loop", &b, &[back]);

    // Each source of the pushed digest's referrers asked once; nothing asked of B.
    let lookups = |(pushed, body): (&str, &[u8]), other: &str, tag: &str, expected: u16| {
        let before = registry.requests().len();
        let reply = client.put_manifest("team/loop", tag, body);
        assert_eq!(reply.status, expected, "{}", reply.body);
        let requests = registry.requests()[before..].to_vec();
        let count = |target: String| requests.iter().filter(|r| **r == target).count();
        let schema = pushed.replace(':', "-");
        assert_eq!(count(format!("GET /v2/team/loop/referrers/{pushed}")), 1, "{requests:#?}");
        for suffix in ["", ".sig", ".att", ".sbom"] {
            let target = format!("GET /v2/team/loop/manifests/{schema}{suffix}");
            assert_eq!(count(target), 1, "{suffix}: {requests:#?}");
        }
        let other_hex = &other["sha256:".len()..];
        let followed: Vec<_> = requests.iter().filter(|r| r.contains(other_hex)).collect();
        assert!(followed.is_empty(), "the gate followed the loop: {followed:#?}");
        reply
    };
    lookups((&a, &manifest), &b, "1.0.0", 201);
    // B's only referrer is A, an image without an artifact type: B is no release.
    let refused = lookups((&b, &artifact), &a, "1.0.1", 409);
    assert!(
        refused.body.contains(&format!("no artifact of type `{SIGNATURE}`")),
        "{}",
        refused.body
    );
    assert!(refused.body.contains(&format!("no artifact of type `{SBOM}`")), "{}", refused.body);
}
