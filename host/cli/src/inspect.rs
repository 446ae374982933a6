//! `tagpolicy inspect`: what a policy component is, says and needs.

use super::Exit;
use super::common::{self, Output};
use serde::Serialize;
use std::path::Path;

/// Show a policy's metadata, exports, imports, size and sha256.
///
/// The component is loaded exactly as for evaluation, so a component that imports
/// anything the host does not grant (files, sockets, HTTP), implements another world, or
/// is not a component at all is refused here with the reason (exit status 2).
#[derive(Debug, clap::Args)]
pub struct Args {
    /// A `.wasm` component, or the name of an embedded policy.
    policy: String,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    output: Output,
}

#[derive(Serialize)]
struct Inspection<'a> {
    source: &'a str,
    metadata: &'a tagpolicy::Metadata,
    sha256: &'a str,
    size: usize,
    exports: &'a [String],
    imports: &'a [String],
}

pub fn run(args: Args, global: &super::Global) -> anyhow::Result<Exit> {
    let loader = common::loader(global)?;
    let policy = loader.load(&args.policy, Path::new(""))?;
    let metadata = policy.metadata();
    let inspection = Inspection {
        source: &args.policy,
        metadata,
        sha256: policy.sha256(),
        size: policy.size(),
        exports: policy.exports(),
        imports: policy.imports(),
    };
    match args.output {
        Output::Json => println!("{}", serde_json::to_string_pretty(&inspection)?),
        Output::Text => {
            println!("{} {}", metadata.name, metadata.version);
            println!("  {}", metadata.description);
            println!("source:   {}", args.policy);
            println!("sha256:   {}", inspection.sha256);
            println!("size:     {} bytes", inspection.size);
            println!("settings: {}", metadata.settings_example);
            println!("exports:");
            for export in inspection.exports {
                // Toolchains add exports of their own (componentize-py's `exports` with its
                // `init`); say that the host leaves them alone.
                let note = if export.starts_with("tagpolicy:policy/policy@") {
                    ""
                } else {
                    "  (the toolchain's own; never called)"
                };
                println!("  {export}{note}");
            }
            let wasi = inspection.imports.iter().filter(|i| i.starts_with("wasi:")).count();
            if wasi == 0 {
                println!("imports (all granted; no WASI at all):");
            } else {
                println!(
                    "imports (all granted; the {wasi} WASI ones grant nothing: no files, network, environment; a frozen clock):"
                );
            }
            for import in inspection.imports {
                println!("  {import}");
            }
        }
    }
    Ok(Exit::Success)
}
