//! The Wasm OCI artifact layout: deterministic building, and checking fetched artifacts.

use serde_json::{Value, json};
use tagpolicy::Digest;
use tagpolicy_oci::artifact::{
    ArtifactError, ArtifactSpec, CONFIG_MEDIA_TYPE, MANIFEST_MEDIA_TYPE, VERSION_ANNOTATION, build,
    inspect,
};

const COMPONENT: &[u8] = b"\0asm\x0d\0\x01\0 pretend component";

fn spec() -> ArtifactSpec {
    ArtifactSpec {
        created: "2026-01-31T12:00:00Z".into(),
        author: None,
        imports: vec!["wasi:io/streams@0.2.0".into(), "tagpolicy:policy/host@0.1.0".into()],
        exports: vec!["tagpolicy:policy/rule@0.1.0".into()],
        annotations: [(VERSION_ANNOTATION.to_string(), "1.2.0".to_string())].into(),
    }
}

#[test]
fn build_is_deterministic_and_has_the_cncf_layout() {
    let a = build(COMPONENT, &spec()).unwrap();
    let b = build(COMPONENT, &spec()).unwrap();
    assert_eq!(a, b);
    // Names in another order (and duplicated) give the same bytes.
    let mut shuffled = spec();
    shuffled.imports.reverse();
    shuffled.imports.push("wasi:io/streams@0.2.0".into());
    assert_eq!(build(COMPONENT, &shuffled).unwrap(), a);

    let layer = Digest::of(COMPONENT);
    let expected_config = format!(
        concat!(
            r#"{{"created":"2026-01-31T12:00:00Z","architecture":"wasm","os":"wasip2","#,
            r#""layerDigests":["{}"],"component":{{"exports":["tagpolicy:policy/rule@0.1.0"],"#,
            r#""imports":["tagpolicy:policy/host@0.1.0","wasi:io/streams@0.2.0"]}}}}"#
        ),
        layer
    );
    assert_eq!(String::from_utf8(a.config.bytes.clone()).unwrap(), expected_config);
    assert_eq!(a.config.digest, Digest::of(expected_config.as_bytes()));
    assert_eq!(a.config.media_type, CONFIG_MEDIA_TYPE);

    let expected_manifest = format!(
        concat!(
            r#"{{"schemaVersion":2,"mediaType":"{}","#,
            r#""config":{{"mediaType":"{}","digest":"{}","size":{}}},"#,
            r#""layers":[{{"mediaType":"application/wasm","digest":"{}","size":{}}}],"#,
            r#""annotations":{{"org.opencontainers.image.version":"1.2.0"}}}}"#
        ),
        MANIFEST_MEDIA_TYPE,
        CONFIG_MEDIA_TYPE,
        a.config.digest,
        a.config.bytes.len(),
        layer,
        COMPONENT.len()
    );
    assert_eq!(String::from_utf8(a.manifest.bytes.clone()).unwrap(), expected_manifest);
    assert_eq!(a.manifest.digest, Digest::of(expected_manifest.as_bytes()));
    assert_eq!(a.layer_digest, layer);

    // Other bytes or another version give another manifest digest.
    assert_ne!(build(b"other", &spec()).unwrap().manifest.digest, a.manifest.digest);
    let mut newer = spec();
    newer.annotations.insert(VERSION_ANNOTATION.into(), "1.3.0".into());
    assert_ne!(build(COMPONENT, &newer).unwrap().manifest.digest, a.manifest.digest);
    // No annotations: the field is left out.
    let mut bare = spec();
    bare.annotations.clear();
    let bare = build(COMPONENT, &bare).unwrap();
    assert!(!String::from_utf8(bare.manifest.bytes).unwrap().contains("annotations"));
}

#[test]
fn build_refuses_a_bad_created_time() {
    let mut bad = spec();
    bad.created = "yesterday".into();
    let err = build(COMPONENT, &bad).unwrap_err();
    assert!(matches!(err, ArtifactError::Created(_)), "{err}");
    assert!(err.to_string().contains("`yesterday`"));
}

#[test]
fn inspect_accepts_a_built_artifact_and_verifies_the_component() {
    let a = build(COMPONENT, &spec()).unwrap();
    let info = inspect(&a.manifest.bytes, &a.config.bytes).unwrap();
    assert_eq!(info.manifest_digest, a.manifest.digest);
    assert_eq!(info.layer_digest, Digest::of(COMPONENT));
    assert_eq!(info.layer_size, COMPONENT.len() as u64);
    assert_eq!(info.version(), Some("1.2.0"));
    assert_eq!(info.exports, ["tagpolicy:policy/rule@0.1.0"]);
    assert_eq!(info.imports.len(), 2);
    assert_eq!(info.created, "2026-01-31T12:00:00Z");
    info.verify_component(COMPONENT).unwrap();
}

#[test]
fn inspect_refuses_a_tampered_component() {
    let a = build(COMPONENT, &spec()).unwrap();
    let info = inspect(&a.manifest.bytes, &a.config.bytes).unwrap();
    let mut tampered = COMPONENT.to_vec();
    tampered[10] ^= 1;
    let err = info.verify_component(&tampered).unwrap_err();
    assert!(matches!(err, ArtifactError::ComponentMismatch { .. }), "{err}");
    assert!(err.to_string().contains("tampered"), "{err}");
    // A truncated blob too.
    assert!(info.verify_component(&COMPONENT[..5]).is_err());
}

/// The built manifest, changed by `edit`, re-serialised.
fn edited(edit: impl FnOnce(&mut Value)) -> (Vec<u8>, Vec<u8>) {
    let a = build(COMPONENT, &spec()).unwrap();
    let mut manifest: Value = serde_json::from_slice(&a.manifest.bytes).unwrap();
    edit(&mut manifest);
    (serde_json::to_vec(&manifest).unwrap(), a.config.bytes)
}

#[test]
fn inspect_refuses_wrong_media_types() {
    let (m, c) =
        edited(|m| m["config"]["mediaType"] = json!("application/vnd.wasm.config.v1+json"));
    let err = inspect(&m, &c).unwrap_err();
    assert!(matches!(err, ArtifactError::ConfigMediaType(_)), "{err}");
    assert!(err.to_string().contains("`application/vnd.wasm.config.v1+json`"), "{err}");

    let (m, c) = edited(|m| {
        m["layers"][0]["mediaType"] = json!("application/vnd.wasm.content.layer.v1+wasm")
    });
    let err = inspect(&m, &c).unwrap_err();
    assert!(matches!(err, ArtifactError::LayerMediaType(_)), "{err}");

    let (m, c) =
        edited(|m| m["mediaType"] = json!("application/vnd.docker.distribution.manifest.v2+json"));
    assert!(matches!(inspect(&m, &c), Err(ArtifactError::ManifestMediaType(_))));

    let (m, c) = edited(|m| m["schemaVersion"] = json!(1));
    assert!(matches!(inspect(&m, &c), Err(ArtifactError::SchemaVersion(1))));

    assert!(matches!(inspect(b"not json", &c), Err(ArtifactError::ManifestJson(_))));
}

#[test]
fn inspect_refuses_several_layers_or_none() {
    let (m, c) = edited(|m| {
        let layer = m["layers"][0].clone();
        m["layers"].as_array_mut().unwrap().push(layer);
    });
    let err = inspect(&m, &c).unwrap_err();
    assert!(matches!(err, ArtifactError::LayerCount(2)), "{err}");
    assert!(err.to_string().contains("exactly one"));
    let (m, c) = edited(|m| m["layers"] = json!([]));
    assert!(matches!(inspect(&m, &c), Err(ArtifactError::LayerCount(0))));
}

#[test]
fn inspect_refuses_a_config_that_does_not_match() {
    let a = build(COMPONENT, &spec()).unwrap();
    // A config blob other than the one the manifest names.
    let mut other = spec();
    other.exports.push("x".into());
    let other = build(COMPONENT, &other).unwrap();
    let err = inspect(&a.manifest.bytes, &other.config.bytes).unwrap_err();
    assert!(matches!(err, ArtifactError::ConfigMismatch { .. }), "{err}");

    // A config that matches its descriptor but is not a wasip2 config for this layer.
    let check_config = |config: Value| {
        let bytes = serde_json::to_vec(&config).unwrap();
        let (m, _) = edited(|m| {
            m["config"]["digest"] = json!(Digest::of(&bytes).to_string());
            m["config"]["size"] = json!(bytes.len());
        });
        inspect(&m, &bytes)
    };
    let good: Value = serde_json::from_slice(&a.config.bytes).unwrap();
    assert!(check_config(good.clone()).is_ok());
    let mut os = good.clone();
    os["os"] = json!("wasip1");
    assert!(matches!(check_config(os), Err(ArtifactError::ConfigField { field: "os", .. })));
    let mut arch = good.clone();
    arch["architecture"] = json!("amd64");
    assert!(matches!(
        check_config(arch),
        Err(ArtifactError::ConfigField { field: "architecture", .. })
    ));
    let mut layers = good.clone();
    layers["layerDigests"] = json!([Digest::of(b"other").to_string()]);
    assert!(matches!(check_config(layers), Err(ArtifactError::LayerDigests(_))));
    let mut no_component = good;
    no_component.as_object_mut().unwrap().remove("component");
    assert!(matches!(check_config(no_component), Err(ArtifactError::ConfigJson(_))));
}
