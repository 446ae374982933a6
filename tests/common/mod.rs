//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use tagpolicy::{Actor, Operation, Push, Request, TagChange};

pub fn workspace() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("host/ is in the workspace")
}

/// Build the misbehaving test policy once per test process and return its component.
pub fn hostile_policy() -> &'static Path {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| build_policy_crate("hostile-policy"))
}

/// `cargo build` a workspace policy crate for wasm32-wasip2 into a test-only target dir.
fn build_policy_crate(package: &str) -> PathBuf {
    let target_dir = workspace().join("target").join("test-policies");
    let status = Command::new(env!("CARGO"))
        .current_dir(workspace())
        .args(["build", "--release", "--target", "wasm32-wasip2", "-p", package, "--target-dir"])
        .arg(&target_dir)
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .status()
        .expect("run cargo");
    assert!(status.success(), "building `{package}` for wasm32-wasip2 failed");
    target_dir.join("wasm32-wasip2/release").join(format!("{}.wasm", package.replace('-', "_")))
}

pub fn digest(label: &str) -> String {
    tagpolicy::scenario::label_digest(label)
}

/// A push of `image` under `tags`, each given with its current image (if it exists).
pub fn push(image: &str, tags: &[(&str, Option<&str>)]) -> Request {
    Request {
        repository: "team/app".into(),
        actor: Actor::anonymous(),
        operation: Operation::Push(Push {
            digest: digest(image),
            media_type: "application/vnd.oci.image.manifest.v1+json".into(),
            tags: tags
                .iter()
                .map(|(tag, current)| TagChange {
                    tag: tag.to_string(),
                    current: current.map(digest),
                })
                .collect(),
        }),
    }
}
