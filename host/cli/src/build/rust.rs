//! Rust policies: a `cdylib` crate built by cargo for `wasm32-wasip2`.

use anyhow::{Context, bail};
use cargo_metadata::Message;
use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

const TARGET: &str = "wasm32-wasip2";

/// Build the crate in `dir` and answer the component's path. A crate that depends on the
/// SDK this binary carries gets it written into its `build/` folder first.
pub fn build(dir: &Path) -> anyhow::Result<PathBuf> {
    let manifest = dir.join("Cargo.toml");
    let text = std::fs::read_to_string(&manifest)
        .with_context(|| format!("cannot read `{}`", manifest.display()))?;
    if super::rust_sdk::is_used_by(&text) {
        super::rust_sdk::write(dir)?;
    }
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut child = Command::new(cargo)
        .args([
            "build",
            "--release",
            "--target",
            TARGET,
            "--message-format=json-render-diagnostics",
            "--manifest-path",
        ])
        .arg(&manifest)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .context("cannot run `cargo`; is Rust installed?")?;
    let stdout = child.stdout.take().expect("stdout is piped");
    let mut component = None;
    for message in Message::parse_stream(BufReader::new(stdout)) {
        if let Message::CompilerArtifact(artifact) = message?
            && artifact.target.is_kind(cargo_metadata::TargetKind::CDyLib)
        {
            component = artifact.filenames.into_iter().find(|f| f.extension() == Some("wasm"));
        }
    }
    if !child.wait()?.success() {
        bail!("`cargo build` failed (if the target is missing: `rustup target add {TARGET}`)");
    }
    let Some(path) = component else {
        bail!(
            "the build produced no `.wasm`: is `crate-type = [\"cdylib\"]` set in `{}`?",
            manifest.display()
        );
    };
    Ok(PathBuf::from(path))
}
