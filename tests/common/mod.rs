//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use tagpolicy::{Actor, Operation, Push, Request, TagChange};

pub fn workspace() -> &'static Path {
    static ROOT: OnceLock<PathBuf> = OnceLock::new();
    ROOT.get_or_init(|| {
        let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
        crate_dir.join("../..").canonicalize().expect("host/<crate>/ is in the workspace")
    })
}

/// The test policies under tests/policies, built for wasm32-wasip2.
const TEST_POLICIES: &[&str] =
    &["hostile-policy", "snoop-policy", "escape-policy", "bad-metadata-policy"];

/// The component of test policy `package` (one of [`TEST_POLICIES`]). They are built once
/// per test process, with one cargo invocation, into a test-only target dir.
pub fn test_policy(package: &str) -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    assert!(TEST_POLICIES.contains(&package), "unknown test policy `{package}`");
    let dir = BUILT.get_or_init(|| {
        let target_dir = workspace().join("target").join("test-policies");
        let mut cargo = Command::new(env!("CARGO"));
        cargo
            .current_dir(workspace())
            .args(["build", "--release", "--target", "wasm32-wasip2", "--target-dir"])
            .arg(&target_dir)
            .env_remove("RUSTFLAGS")
            .env_remove("CARGO_ENCODED_RUSTFLAGS");
        for package in TEST_POLICIES {
            cargo.args(["-p", package]);
        }
        assert!(cargo.status().expect("run cargo").success(), "building the test policies failed");
        target_dir.join("wasm32-wasip2/release")
    });
    dir.join(format!("{}.wasm", package.replace('-', "_")))
}

/// The policy that misbehaves as its settings say.
pub fn hostile_policy() -> PathBuf {
    test_policy("hostile-policy")
}

pub fn digest(label: &str) -> String {
    tagpolicy_scenario::label_digest(label)
}

/// A push of `image` under `tags`, each given with its current image (if it exists).
pub fn push(image: &str, tags: &[(&str, Option<&str>)]) -> Request {
    Request {
        repository: "team/app".into(),
        actor: Actor::anonymous(),
        operation: Operation::Push(Push {
            digest: digest(image),
            tags: tags
                .iter()
                .map(|(tag, current)| TagChange {
                    tag: tag.to_string(),
                    current: current.map(digest),
                })
                .collect(),
        }),
        time: tagpolicy::Instant::EPOCH,
    }
}
