//! A new Rust policy: a `cdylib` crate depending on `tagpolicy-guest`.

use super::File;
use crate::build::rust_sdk;
use anyhow::Context;
use std::path::PathBuf;

const LIB_TEMPLATE: &str = include_str!("../templates/rust-lib.rs.txt");
const SCENARIO_TEMPLATE: &str = include_str!("../templates/rust-scenario.yaml.txt");

/// The files of a new Rust policy named `name`, depending on the SDK at `sdk`, else on the
/// one this binary carries (written into `build/` by `tagpolicy build`, and by `new`).
pub fn files(name: &str, sdk: Option<PathBuf>) -> anyhow::Result<Vec<File>> {
    let sdk = match sdk {
        Some(sdk) => sdk
            .canonicalize()
            .with_context(|| format!("cannot find the tagpolicy-guest SDK at `{}`", sdk.display()))?
            .display()
            .to_string(),
        None => rust_sdk::SDK_PATH.to_string(),
    };
    let note = if sdk == rust_sdk::SDK_PATH {
        "   # the SDK `tagpolicy build` carries and writes there"
    } else {
        ""
    };

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
tagpolicy-guest = {{ path = {sdk:?} }}{note}
serde = {{ version = "1", features = ["derive"] }}

[profile.release]
opt-level = "s"
strip = true

# A policy is its own workspace, wherever it is created.
[workspace]
"#,
    );
    Ok(vec![
        ("Cargo.toml", cargo_toml),
        ("src/lib.rs", LIB_TEMPLATE.replace("{{name}}", name)),
        (
            "scenarios/basic.yaml",
            SCENARIO_TEMPLATE.replace("{{name}}", name).replace("{{crate}}", &crate_ident),
        ),
        // build/ holds the SDK `tagpolicy build` writes, and target/ what cargo builds.
        (".gitignore", "/target\n/build\n".to_string()),
    ])
}
