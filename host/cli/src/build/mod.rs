//! `tagpolicy build`: compile a policy crate to a component and check it.

use super::Exit;
use super::common::{self, Output};
use anyhow::{Context, bail};
use cargo_metadata::Message;
use serde::Serialize;
use std::io::BufReader;
use std::path::PathBuf;
use std::process::{Command, Stdio};

const TARGET: &str = "wasm32-wasip2";

/// Build a policy crate into a component and check it.
///
/// Runs `cargo build --release --target wasm32-wasip2`, then loads the component as the host
/// would (world, imports, metadata) and prints its path.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The policy crate's folder (default: the current one).
    #[arg(default_value = ".")]
    dir: PathBuf,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    output: Output,
}

#[derive(Serialize)]
struct Built {
    path: PathBuf,
    name: String,
    version: String,
    sha256: String,
    size: usize,
}

pub fn run(args: Args, global: &super::Global) -> anyhow::Result<Exit> {
    let manifest = args.dir.join("Cargo.toml");
    if !manifest.is_file() {
        bail!("no `Cargo.toml` in `{}`; give the policy crate's folder", args.dir.display());
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
    let path = PathBuf::from(path);
    let policy = common::loader(global)?.engine().load_file(&path)?;
    let built = Built {
        path,
        name: policy.name().to_string(),
        version: policy.metadata().version.clone(),
        sha256: policy.sha256().to_string(),
        size: policy.size(),
    };
    match args.output {
        Output::Json => println!("{}", serde_json::to_string_pretty(&built)?),
        Output::Text => {
            println!(
                "built {} {} ({} bytes, sha256 {})",
                built.name, built.version, built.size, built.sha256
            );
            println!("{}", built.path.display());
        }
    }
    Ok(Exit::Success)
}
