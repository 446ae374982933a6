//! The Rust SDK (`tagpolicy-guest`) this binary carries, written into a policy's `build/`
//! folder: a Rust policy then builds on a machine that has only `tagpolicy`, Rust and the
//! `wasm32-wasip2` target, against the SDK that matches the contract of the host that runs
//! it, as Python and JavaScript policies do. The SDK is not on crates.io yet; when it is, a
//! policy may name it there instead.

use anyhow::Context;
use std::path::Path;

/// Where a policy's `Cargo.toml` finds the carried SDK, relative to the policy's folder.
pub const SDK_PATH: &str = "build/tagpolicy-guest";

/// The SDK's files, relative to the policy's `build/` folder, as they are laid out in this
/// repository (`src/lib.rs` reads the contract from `../wit`; the docs page it includes is
/// only compiled by doctests).
const FILES: &[(&str, &str)] = &[
    ("tagpolicy-guest/src/lib.rs", include_str!("../../../../guest/src/lib.rs")),
    ("tagpolicy-guest/src/change.rs", include_str!("../../../../guest/src/change.rs")),
    ("tagpolicy-guest/src/findings.rs", include_str!("../../../../guest/src/findings.rs")),
    ("tagpolicy-guest/src/metadata.rs", include_str!("../../../../guest/src/metadata.rs")),
    ("tagpolicy-guest/src/pattern.rs", include_str!("../../../../guest/src/pattern.rs")),
    ("tagpolicy-guest/src/repository.rs", include_str!("../../../../guest/src/repository.rs")),
    ("tagpolicy-guest/src/settings.rs", include_str!("../../../../guest/src/settings.rs")),
    ("tagpolicy-guest/src/tags.rs", include_str!("../../../../guest/src/tags.rs")),
    ("tagpolicy-guest/src/time.rs", include_str!("../../../../guest/src/time.rs")),
    ("wit/policy.wit", include_str!("../../../../wit/policy.wit")),
];

/// The SDK's manifest as a crate of its own: the workspace's package fields and dependency
/// versions written out (a test keeps them equal to the workspace's).
const MANIFEST: &str = r#"[package]
name = "tagpolicy-guest"
description = "SDK for writing tagpolicy policies in Rust (carried by the tagpolicy binary)"
version = "0.1.0"
edition = "2024"
rust-version = "1.95"
license = "Apache-2.0"

[dependencies]
wit-bindgen = { version = "0.63", default-features = false, features = ["macros", "realloc"] }
serde = { version = "1", features = ["derive"] }
serde_json = "1"
serde_path_to_error = "0.1"
"#;

/// Whether the crate whose manifest is `manifest` depends on the carried SDK.
pub fn is_used_by(manifest: &str) -> bool {
    manifest.contains(&format!("path = \"{SDK_PATH}\""))
}

/// Write the SDK into `dir/build/`. Files already up to date are left alone, so that cargo
/// does not rebuild the SDK on every build.
pub fn write(dir: &Path) -> anyhow::Result<()> {
    let build = dir.join("build");
    let files = FILES.iter().copied().chain([("tagpolicy-guest/Cargo.toml", MANIFEST)]);
    for (file, content) in files {
        let path = build.join(file);
        if std::fs::read(&path).is_ok_and(|existing| existing == content.as_bytes()) {
            continue;
        }
        std::fs::create_dir_all(path.parent().expect("files are in folders"))
            .and_then(|()| std::fs::write(&path, content))
            .with_context(|| format!("cannot write the Rust SDK to `{}`", path.display()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every source file of the SDK is carried: a module added to guest/src but not to
    /// [`FILES`] would only fail when an author builds a policy.
    #[test]
    fn every_sdk_source_is_carried() {
        let sources = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../guest/src");
        let mut on_disk: Vec<String> = std::fs::read_dir(sources)
            .unwrap()
            .map(|entry| {
                format!("tagpolicy-guest/src/{}", entry.unwrap().file_name().to_string_lossy())
            })
            .collect();
        on_disk.sort();
        let mut carried: Vec<String> = FILES
            .iter()
            .filter(|(file, _)| file.starts_with("tagpolicy-guest/src/"))
            .map(|(file, _)| file.to_string())
            .collect();
        carried.sort();
        assert_eq!(carried, on_disk);
    }

    /// The carried manifest names the versions the workspace builds the SDK with.
    #[test]
    fn the_manifest_has_the_workspaces_versions() {
        let workspace = include_str!("../../../../Cargo.toml");
        let guest = include_str!("../../../../guest/Cargo.toml");
        let dependencies = guest.split("[dependencies]").nth(1).unwrap();
        for line in dependencies.lines().filter(|line| line.contains("workspace = true")) {
            let name = line.split_whitespace().next().unwrap();
            let spec = workspace
                .lines()
                .find(|l| l.starts_with(&format!("{name} =")))
                .unwrap_or_else(|| panic!("`{name}` is not a workspace dependency"));
            assert!(MANIFEST.contains(spec), "the carried manifest lacks `{spec}`");
        }
        for line in dependencies.lines().filter(|l| l.contains('=') && !l.contains("workspace")) {
            assert!(MANIFEST.contains(line), "the carried manifest lacks `{line}`");
        }
        for field in ["version", "edition", "rust-version", "license"] {
            let spec = workspace.lines().find(|l| l.starts_with(&format!("{field} ="))).unwrap();
            assert!(MANIFEST.contains(spec), "the carried manifest lacks `{spec}`");
        }
    }
}
