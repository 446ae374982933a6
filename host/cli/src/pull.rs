//! `tagpolicy pull`: fetch a policy component from a registry, checked, into a file.

use super::Exit;
use super::common::Output;
use super::registry::{self, RegistryArgs};
use anyhow::Context;
use serde::Serialize;
use std::path::PathBuf;

/// Fetch a policy from a registry into a `.wasm` file, checked as a gate checks it.
///
/// Checked: the Wasm artifact layout, every blob against its digest and, with `--verify-key`, the
/// signatures. A tag is resolved to a digest first (printed), then fetched by digest.
/// Fetched blobs stay in the policy cache.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  \
    tagpolicy pull registry.example.com/policies/floor:1.0.0 --verify-key cosign.pub\n  \
    tagpolicy pull registry.example.com/policies/floor@sha256:5f0c… -o floor.wasm")]
pub struct Args {
    /// `host[:port]/repository:tag` or `…@sha256:<digest>`.
    reference: String,
    /// Where to write the component (default: `<repository's last part>.wasm`).
    #[arg(long, short = 'o', value_name = "FILE")]
    output_file: Option<PathBuf>,
    #[command(flatten)]
    registry: RegistryArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    output: Output,
}

#[derive(Serialize)]
struct Pulled {
    reference: String,
    digest: String,
    component_sha256: String,
    version: Option<String>,
    signers: Vec<String>,
    file: String,
}

pub fn run(args: Args) -> anyhow::Result<Exit> {
    registry::init_logging();
    let mut reference = registry::reference(&args.reference)?;
    let fetcher = args.registry.fetcher()?;
    if reference.digest().is_none() && fetcher.keyring().is_none() {
        // Without keys a tag is not trusted by a gate; here it is only resolved, and said.
        let client = args.registry.client_for(&reference)?;
        let digest = registry::block_on(client.resolve(&reference))??;
        eprintln!("`{reference}` is `{digest}` (signatures not checked: no `--verify-key`)");
        reference = reference.with_digest(digest);
    }
    // The environment's credentials for this registry, as for push.
    let fetcher = tagpolicy_oci::fetch::Fetcher::new(
        args.registry.access_for(&reference)?,
        fetcher.keyring().cloned(),
        fetcher.cache().clone(),
    );
    let (verified, component) = fetcher.fetch(&reference)?;
    let file = args.output_file.clone().unwrap_or_else(|| {
        let last = reference.repository().rsplit('/').next().unwrap_or("policy");
        PathBuf::from(format!("{last}.wasm"))
    });
    std::fs::write(&file, &component)
        .with_context(|| format!("cannot write `{}`", file.display()))?;
    let pulled = Pulled {
        reference: verified.reference.to_string(),
        digest: verified.digest.to_string(),
        component_sha256: verified.info.layer_digest.hex(),
        version: verified.version.clone(),
        signers: verified.signers.clone(),
        file: file.display().to_string(),
    };
    match args.output {
        Output::Json => println!("{}", serde_json::to_string_pretty(&pulled)?),
        Output::Text => {
            println!("pulled {} to `{}`", pulled.reference, pulled.file);
            if !pulled.signers.is_empty() {
                println!("signed by {}", pulled.signers.join(", "));
            }
        }
    }
    Ok(Exit::Success)
}
