//! cosign-compatible simple signing, checked against signatures made independently with
//! `openssl` from the documented format (cosign is not installable here): the payload JSON is
//! written by hand, signed with `openssl dgst -sha256 -sign` and an EC P-256 key, and ours are
//! verified with `openssl dgst -sha256 -verify`.

use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};
use tagpolicy::Digest;
use tagpolicy_oci::signature::{
    Keyring, LAYER_MEDIA_TYPE, PublicKey, SIGNATURE_ANNOTATION, SignatureError, SignatureManifest,
    Signed, SigningKey, payload,
};

const REPO: &str = "127.0.0.1:5000/policies/floor";

fn openssl(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("openssl").args(args).current_dir(dir).output().expect("openssl runs");
    assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// An openssl-generated key: SEC1 private key `NAME.pem`, PKCS#8 `NAME.p8`, SPKI `NAME.pub`.
struct Key {
    dir: PathBuf,
    name: String,
}

impl Key {
    fn generate(dir: &Path, name: &str) -> Self {
        let pem = format!("{name}.pem");
        let p8 = format!("{name}.p8");
        let public = format!("{name}.pub");
        openssl(dir, &["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", &pem]);
        openssl(dir, &["pkey", "-in", &pem, "-pubout", "-out", &public]);
        openssl(dir, &["pkcs8", "-topk8", "-nocrypt", "-in", &pem, "-out", &p8]);
        Self { dir: dir.to_owned(), name: name.to_owned() }
    }

    fn read(&self, ext: &str) -> String {
        std::fs::read_to_string(self.dir.join(format!("{}.{ext}", self.name))).unwrap()
    }

    fn public(&self) -> PublicKey {
        PublicKey::from_pem(&self.name, &self.read("pub")).unwrap()
    }

    /// Signs `payload` with `openssl dgst -sha256 -sign`, returning the base64 signature.
    fn openssl_sign(&self, payload: &[u8]) -> String {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let tag = format!("{}-{n}", self.name);
        let payload_file = format!("payload-{tag}.json");
        let sig_file = format!("sig-{tag}.der");
        std::fs::write(self.dir.join(&payload_file), payload).unwrap();
        let key = format!("{}.pem", self.name);
        openssl(&self.dir, &["dgst", "-sha256", "-sign", &key, "-out", &sig_file, &payload_file]);
        STANDARD.encode(std::fs::read(self.dir.join(&sig_file)).unwrap())
    }
}

/// The payload as cosign's documentation shows it, written by hand.
fn hand_payload(repo: &str, digest: &str, kind: &str) -> Vec<u8> {
    format!(
        r#"{{"critical":{{"identity":{{"docker-reference":"{repo}"}},"image":{{"docker-manifest-digest":"{digest}"}},"type":"{kind}"}},"optional":null}}"#
    )
    .into_bytes()
}

fn digest() -> Digest {
    Digest::of(b"a policy manifest")
}

fn keyring(keys: &[&Key], threshold: usize) -> Keyring {
    Keyring::new(keys.iter().map(|k| k.public()).collect(), threshold).unwrap()
}

fn not_signed(result: Result<impl std::fmt::Debug, SignatureError>, reason: &str) {
    let err = result.unwrap_err();
    assert!(matches!(err, SignatureError::NotSigned { .. }), "{err}");
    assert!(err.to_string().contains(reason), "expected `{reason}` in: {err}");
}

#[test]
fn our_payload_is_the_documented_bytes() {
    let d = digest();
    assert_eq!(
        payload(REPO, &d, None),
        hand_payload(REPO, &d.to_string(), "cosign container image signature")
    );
    assert_eq!(SignatureManifest::tag_for(&d), format!("sha256-{}.sig", d.hex()));
    let optional = [("version".to_string(), "1.2.0".to_string())].into();
    let with = String::from_utf8(payload(REPO, &d, Some(&optional))).unwrap();
    assert!(with.ends_with(r#""optional":{"version":"1.2.0"}}"#), "{with}");
}

#[test]
fn openssl_signatures_verify_and_bind_digest_and_repository() {
    let dir = tempfile::tempdir().unwrap();
    let key = Key::generate(dir.path(), "k");
    let foreign = Key::generate(dir.path(), "foreign");
    let d = digest();
    let payload = hand_payload(REPO, &d.to_string(), "cosign container image signature");
    // Several signatures: ECDSA is randomised, so high and low `s` both occur.
    for _ in 0..8 {
        let signed = Signed { payload: payload.clone(), signature: key.openssl_sign(&payload) };
        let verified = keyring(&[&key], 1).verify(&[signed], REPO, &d).unwrap();
        assert_eq!(verified.signers, ["k"]);
        assert_eq!(verified.optional, [Value::Null]);
    }
    let signed = Signed { payload: payload.clone(), signature: key.openssl_sign(&payload) };
    let one = std::slice::from_ref(&signed);

    // Another digest, another repository.
    not_signed(
        keyring(&[&key], 1).verify(one, REPO, &Digest::of(b"another manifest")),
        "payload binds digest",
    );
    not_signed(
        keyring(&[&key], 1).verify(one, "127.0.0.1:5000/policies/other", &d),
        "payload binds repository",
    );
    // A modified payload (still binding the same digest and repository).
    let mut modified = signed.clone();
    modified.payload = String::from_utf8(payload.clone())
        .unwrap()
        .replace(r#""optional":null"#, r#""optional":{"a":"b"}"#)
        .into_bytes();
    not_signed(keyring(&[&key], 1).verify(&[modified], REPO, &d), "none of the given keys");
    // A foreign key.
    not_signed(keyring(&[&foreign], 1).verify(one, REPO, &d), "none of the given keys");
    // Below threshold: two keys required, one signed.
    not_signed(keyring(&[&key, &foreign], 2).verify(one, REPO, &d), "1 of the required 2");
    // An unknown payload type, properly signed.
    let other_type = hand_payload(REPO, &d.to_string(), "atomic container signature");
    let signed_other = Signed { signature: key.openssl_sign(&other_type), payload: other_type };
    not_signed(
        keyring(&[&key], 1).verify(&[signed_other], REPO, &d),
        "payload type is `atomic container signature`",
    );
    // Unknown fields in `critical`, properly signed.
    let extra = String::from_utf8(payload.clone())
        .unwrap()
        .replace(r#""type":"#, r#""extra":1,"type":"#)
        .into_bytes();
    let signed_extra = Signed { signature: key.openssl_sign(&extra), payload: extra };
    not_signed(
        keyring(&[&key], 1).verify(&[signed_extra], REPO, &d),
        "not a simple-signing document",
    );
    // No signatures at all.
    not_signed(keyring(&[&key], 1).verify(&[], REPO, &d), "no signatures");
}

#[test]
fn high_and_low_s_signatures_are_accepted() {
    // openssl and Go's crypto/ecdsa (cosign) do not normalise `s`: both halves must verify.
    let dir = tempfile::tempdir().unwrap();
    let key = Key::generate(dir.path(), "k");
    let d = digest();
    let payload = payload(REPO, &d, None);
    let der = STANDARD.decode(key.openssl_sign(&payload)).unwrap();
    let sig = p256::ecdsa::Signature::from_der(&der).unwrap();
    let (r, s) = sig.split_scalars();
    let flipped = p256::ecdsa::Signature::from_scalars(*r, -*s).unwrap();
    let high = if sig.normalize_s().is_some() { sig } else { flipped };
    assert!(high.normalize_s().is_some(), "a high-s signature");
    for sig in [sig, flipped] {
        let signed = Signed {
            payload: payload.clone(),
            signature: STANDARD.encode(sig.to_der().as_bytes()),
        };
        keyring(&[&key], 1).verify(&[signed], REPO, &d).unwrap();
    }
}

#[test]
fn fixed_size_signatures_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let key = Key::generate(dir.path(), "k");
    let d = digest();
    let payload = payload(REPO, &d, None);
    let der = STANDARD.decode(key.openssl_sign(&payload)).unwrap();
    // Re-encode the DER signature as fixed-size r||s (what cosign never produces).
    let sig = p256::ecdsa::Signature::from_der(&der).unwrap();
    let fixed = Signed { payload: payload.clone(), signature: STANDARD.encode(sig.to_bytes()) };
    not_signed(keyring(&[&key], 1).verify(&[fixed], REPO, &d), "DER");
    let garbage = Signed { payload, signature: "not base64!".into() };
    not_signed(keyring(&[&key], 1).verify(&[garbage], REPO, &d), "not base64");
}

#[test]
fn our_signatures_verify_with_openssl() {
    let dir = tempfile::tempdir().unwrap();
    let key = Key::generate(dir.path(), "k");
    Key::generate(dir.path(), "other");
    let d = digest();
    for (ext, pem) in [("pem", key.read("pem")), ("p8", key.read("p8"))] {
        let ours = SigningKey::from_pem(&pem).unwrap();
        // Our public key is openssl's.
        assert_eq!(ours.public_key_pem().trim(), key.read("pub").trim(), "{ext}");
        let signed = ours.sign(REPO, &d, None);
        std::fs::write(dir.path().join("our-payload.json"), &signed.payload).unwrap();
        std::fs::write(dir.path().join("our-sig.der"), STANDARD.decode(&signed.signature).unwrap())
            .unwrap();
        let out = openssl(
            dir.path(),
            &[
                "dgst",
                "-sha256",
                "-verify",
                "k.pub",
                "-signature",
                "our-sig.der",
                "our-payload.json",
            ],
        );
        assert!(out.contains("Verified OK"), "{ext}: {out}");
        // And a foreign public key refuses it.
        let refused = Command::new("openssl")
            .args(["dgst", "-sha256", "-verify", "other.pub", "-signature", "our-sig.der"])
            .arg("our-payload.json")
            .current_dir(dir.path())
            .output()
            .unwrap();
        assert!(!refused.status.success());
        // Our verifier accepts our own signature.
        keyring(&[&key], 1).verify(&[signed], REPO, &d).unwrap();
    }
}

#[test]
fn private_keys_in_other_pem_shapes() {
    let dir = tempfile::tempdir().unwrap();
    // `ecparam -genkey` without -noout writes an `EC PARAMETERS` block first.
    openssl(dir.path(), &["ecparam", "-name", "prime256v1", "-genkey", "-out", "p.pem"]);
    let pem = std::fs::read_to_string(dir.path().join("p.pem")).unwrap();
    assert!(pem.contains("EC PARAMETERS"));
    let key = SigningKey::from_pem(&pem).unwrap();
    openssl(dir.path(), &["pkey", "-in", "p.pem", "-pubout", "-out", "p.pub"]);
    let public = std::fs::read_to_string(dir.path().join("p.pub")).unwrap();
    assert_eq!(key.public_key_pem().trim(), public.trim());

    // Encrypted keys and other curves are refused with clear errors.
    openssl(
        dir.path(),
        &["pkcs8", "-topk8", "-in", "p.pem", "-out", "enc.pem", "-passout", "pass:x"],
    );
    let enc = std::fs::read_to_string(dir.path().join("enc.pem")).unwrap();
    let err = SigningKey::from_pem(&enc).unwrap_err();
    assert!(matches!(err, SignatureError::EncryptedKey(_)), "{err}");
    openssl(
        dir.path(),
        &["ecparam", "-name", "secp384r1", "-genkey", "-noout", "-out", "p384.pem"],
    );
    let p384 = std::fs::read_to_string(dir.path().join("p384.pem")).unwrap();
    assert!(matches!(SigningKey::from_pem(&p384), Err(SignatureError::PrivateKey)));
    openssl(dir.path(), &["pkey", "-in", "p384.pem", "-pubout", "-out", "p384.pub"]);
    let p384_pub = std::fs::read_to_string(dir.path().join("p384.pub")).unwrap();
    let err = PublicKey::from_pem("ops/p384.pub", &p384_pub).unwrap_err();
    assert!(err.to_string().contains("`ops/p384.pub`"), "{err}");
    assert!(matches!(SigningKey::from_pem("nothing"), Err(SignatureError::PrivateKey)));
}

#[test]
fn threshold_counts_distinct_keys_across_layers_of_one_manifest() {
    let dir = tempfile::tempdir().unwrap();
    let a = Key::generate(dir.path(), "a");
    let b = Key::generate(dir.path(), "b");
    let c = Key::generate(dir.path(), "c");
    let d = digest();
    let payload = hand_payload(REPO, &d.to_string(), "cosign container image signature");
    let signed_a = Signed { payload: payload.clone(), signature: a.openssl_sign(&payload) };
    let signed_a2 = Signed { payload: payload.clone(), signature: a.openssl_sign(&payload) };
    let ours_b = SigningKey::from_pem(&b.read("pem")).unwrap().sign(REPO, &d, None);

    // cosign appends one layer per signature to the `.sig` manifest.
    let mut manifest = SignatureManifest::default();
    manifest.push(&signed_a);
    manifest.push(&signed_a2);
    manifest.push(&ours_b);
    manifest.push(&ours_b); // the same layer twice is kept once
    assert_eq!(manifest.layers().len(), 3);
    let blobs = manifest.to_blobs();
    assert_eq!(blobs, manifest.to_blobs());
    let fetched = SignatureManifest::parse(&blobs.manifest.bytes).unwrap();
    assert_eq!(fetched, manifest);
    let payload_of = |digest: &Digest| {
        [&signed_a, &ours_b]
            .into_iter()
            .find(|s| Digest::of(&s.payload) == *digest)
            .unwrap()
            .payload
            .clone()
    };
    let signatures: Vec<Signed> =
        fetched.layers().iter().map(|l| l.check_payload(&payload_of(&l.digest)).unwrap()).collect();

    let verified = keyring(&[&a, &b, &c], 2).verify(&signatures, REPO, &d).unwrap();
    assert_eq!(verified.signers, ["a", "b"]);
    not_signed(keyring(&[&a, &b, &c], 3).verify(&signatures, REPO, &d), "2 of the required 3");
    // Two signatures by the same key count once.
    not_signed(
        keyring(&[&a, &c], 2).verify(&signatures[..2], REPO, &d),
        "key `a` is already counted",
    );
    // The same key given twice is one key: a threshold of 2 cannot be met.
    let err = Keyring::new(vec![a.public(), a.public()], 2).unwrap_err();
    assert!(matches!(err, SignatureError::Threshold { threshold: 2, keys: 1 }), "{err}");
    assert!(matches!(
        Keyring::new(vec![a.public()], 0),
        Err(SignatureError::Threshold { threshold: 0, .. })
    ));
}

#[test]
fn signature_manifests_are_checked() {
    let d = digest();
    let pem = "-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg1+wQbqwQbgr5LdhN\n7hjeGey1fohprFIgn14q93vIqh6hRANCAAQUr1+g+D8ev0SEqeqwGErQvYMZNbLI\n9qKOxLv3TeYbTsiEYUM/uXUG/1LVZD+c78DbPK3Z991XwFdutNQKdTO3\n-----END PRIVATE KEY-----\n";
    let signed = SigningKey::from_pem(pem).unwrap().sign(REPO, &d, None);
    let mut manifest = SignatureManifest::default();
    manifest.push(&signed);
    let bytes = manifest.to_blobs().manifest.bytes;
    let value: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(value["layers"][0]["mediaType"], json!(LAYER_MEDIA_TYPE));
    assert_eq!(value["layers"][0]["annotations"][SIGNATURE_ANNOTATION], json!(signed.signature));
    assert_eq!(value["mediaType"], json!("application/vnd.oci.image.manifest.v1+json"));

    // A tampered payload blob.
    let layer = &SignatureManifest::parse(&bytes).unwrap().layers()[0].clone();
    let mut tampered = signed.payload.clone();
    tampered[5] ^= 1;
    assert!(matches!(layer.check_payload(&tampered), Err(SignatureError::PayloadMismatch { .. })));
    assert_eq!(layer.check_payload(&signed.payload).unwrap(), signed);

    let mut wrong_type = value.clone();
    wrong_type["layers"][0]["mediaType"] = json!("application/json");
    let err = SignatureManifest::parse(&serde_json::to_vec(&wrong_type).unwrap()).unwrap_err();
    assert!(matches!(err, SignatureError::LayerMediaType { index: 1, .. }), "{err}");
    let mut unsigned = value;
    unsigned["layers"][0].as_object_mut().unwrap().remove("annotations");
    let err = SignatureManifest::parse(&serde_json::to_vec(&unsigned).unwrap()).unwrap_err();
    assert!(matches!(err, SignatureError::MissingSignature { index: 1 }), "{err}");
}
