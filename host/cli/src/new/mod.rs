//! `tagpolicy new`: start a policy crate that builds as is.

use super::Exit;
use anyhow::{Context, bail};
use std::path::{Path, PathBuf};

/// Create a policy crate that builds and passes its scenarios as is.
///
/// Writes Cargo.toml, src/lib.rs with a working rule (tag naming), and scenarios/basic.yaml
/// that tests it. Then: `tagpolicy build NAME` and `tagpolicy test NAME/scenarios`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The policy's name, also the folder created: lowercase letters, digits and dashes.
    name: String,
    /// Path to the `tagpolicy-guest` SDK crate (default: the SDK this binary was built with).
    #[arg(long, value_name = "DIR")]
    sdk: Option<PathBuf>,
}

const LIB_TEMPLATE: &str = include_str!("templates/lib.rs.txt");
const SCENARIO_TEMPLATE: &str = include_str!("templates/scenario.yaml.txt");

pub fn run(args: Args) -> anyhow::Result<Exit> {
    let name = &args.name;
    let valid = !name.is_empty()
        && name.len() <= 64
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if !valid {
        bail!(
            "`{name}` is not a valid policy name: use lowercase letters, digits and dashes, starting with a letter"
        );
    }
    let dir = PathBuf::from(name);
    if dir.exists() {
        bail!("`{}` already exists; choose another name or remove it", dir.display());
    }
    let sdk = match args.sdk {
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
    let files = [
        ("Cargo.toml", cargo_toml),
        ("src/lib.rs", LIB_TEMPLATE.replace("{{name}}", name)),
        (
            "scenarios/basic.yaml",
            SCENARIO_TEMPLATE.replace("{{name}}", name).replace("{{crate}}", &crate_ident),
        ),
        (".gitignore", "/target\n".to_string()),
    ];
    for (file, content) in files {
        let path = dir.join(file);
        std::fs::create_dir_all(path.parent().expect("files are inside the crate"))?;
        std::fs::write(&path, content)
            .with_context(|| format!("cannot write `{}`", path.display()))?;
    }
    println!("created policy `{name}` in `{}`", dir.display());
    println!("next:\n  tagpolicy build {name}\n  tagpolicy test {name}/scenarios");
    Ok(Exit::Success)
}
