//! A new Rust policy: a `cdylib` crate depending on `tagpolicy-guest`.

use super::File;
use anyhow::Context;
use std::path::{Path, PathBuf};

const LIB_TEMPLATE: &str = include_str!("../templates/rust-lib.rs.txt");
const SCENARIO_TEMPLATE: &str = include_str!("../templates/rust-scenario.yaml.txt");

/// The files of a new Rust policy named `name`, depending on the SDK at `sdk` (default: the
/// one this binary was built with).
pub fn files(name: &str, sdk: Option<PathBuf>) -> anyhow::Result<Vec<File>> {
    let sdk = match sdk {
        Some(sdk) => sdk,
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../guest"),
    };
    let sdk = sdk.canonicalize().with_context(|| {
        format!("cannot find the tagpolicy-guest SDK at `{}`; pass `--sdk DIR`", sdk.display())
    })?;

    let crate_ident = name.replace('-', "_");
    let cargo_toml = format!(
        r#"[package]
name = "{name}"
version = "0.1.0"
edition = "2024"
publish = false

[lib]
crate-type = ["cdylib"]

[dependencies]
tagpolicy-guest = {{ path = {sdk:?} }}
serde = {{ version = "1", features = ["derive"] }}

[profile.release]
opt-level = "s"
strip = true

# A policy is its own workspace, wherever it is created.
[workspace]
"#,
        sdk = sdk.display().to_string()
    );
    Ok(vec![
        ("Cargo.toml", cargo_toml),
        ("src/lib.rs", LIB_TEMPLATE.replace("{{name}}", name)),
        (
            "scenarios/basic.yaml",
            SCENARIO_TEMPLATE.replace("{{name}}", name).replace("{{crate}}", &crate_ident),
        ),
        (".gitignore", "/target\n".to_string()),
    ])
}
