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
///
/// With `oci://host/repository:tag` (or `@sha256:…`), the artifact in the registry is shown
/// too: its digest, version, annotations and signatures (checked with `--verify-key`, if
/// given; a signature that does not verify is listed, not hidden).
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  \
    tagpolicy inspect immutable-tags\n  \
    tagpolicy inspect build/floor.wasm --output json\n  \
    tagpolicy inspect oci://registry.example.com/policies/floor:1.0.0 --verify-key cosign.pub")]
pub struct Args {
    /// A `.wasm` component, the name of an embedded policy, or `oci://host/repository:tag`.
    policy: String,
    #[command(flatten)]
    registry: super::registry::RegistryArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    output: Output,
}

#[derive(Serialize)]
struct Inspection<'a> {
    source: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    artifact: Option<&'a Artifact>,
    metadata: &'a tagpolicy::Metadata,
    sha256: &'a str,
    size: usize,
    exports: &'a [String],
    imports: &'a [String],
}

/// What the registry holds for an `oci://` reference.
#[derive(Serialize)]
struct Artifact {
    reference: String,
    digest: String,
    media_type: &'static str,
    created: String,
    annotations: std::collections::BTreeMap<String, String>,
    signatures: Vec<Signature>,
}

#[derive(Serialize)]
struct Signature {
    /// The key (`--verify-key` file name) it verifies with, if any.
    verified_by: Option<String>,
    /// Why it does not count, when it does not.
    problem: Option<String>,
}

fn fetch_artifact(args: &Args) -> anyhow::Result<(Artifact, Vec<u8>)> {
    let reference = super::registry::reference(&args.policy)?;
    let client = args.registry.client_for(&reference)?;
    let keyring = args.registry.config()?.keyring().map_err(anyhow::Error::msg)?;
    super::registry::block_on(async {
        let digest = client.resolve(&reference).await?;
        let (manifest, config) = client.artifact(&reference, &digest).await?;
        let info = tagpolicy_oci::artifact::inspect(&manifest, &config)?;
        let component = client
            .blob(
                &reference,
                &info.layer_digest,
                info.layer_size,
                tagpolicy_oci::client::MAX_COMPONENT_BYTES,
            )
            .await?;
        let stored = client.signatures(&reference, &digest).await?;
        let signatures = stored
            .map(|stored| {
                stored
                    .signatures
                    .iter()
                    .map(|signed| match &keyring {
                        None => Signature {
                            verified_by: None,
                            problem: Some("not checked: no `--verify-key`".into()),
                        },
                        Some(keyring) => {
                            // Each signature alone against a threshold of one.
                            let single =
                                tagpolicy_oci::signature::Keyring::new(keyring.keys().to_vec(), 1)
                                    .expect("a keyring has keys");
                            match single.verify(
                                std::slice::from_ref(signed),
                                &reference.name(),
                                &digest,
                            ) {
                                Ok(verified) => Signature {
                                    verified_by: verified.signers.first().cloned(),
                                    problem: None,
                                },
                                Err(error) => Signature {
                                    verified_by: None,
                                    problem: Some(error.to_string()),
                                },
                            }
                        }
                    })
                    .collect()
            })
            .unwrap_or_default();
        let artifact = Artifact {
            reference: reference.with_digest(digest).to_string(),
            digest: digest.to_string(),
            media_type: tagpolicy_oci::artifact::CONFIG_MEDIA_TYPE,
            created: info.created.clone(),
            annotations: info.annotations.clone(),
            signatures,
        };
        Ok::<_, anyhow::Error>((artifact, component))
    })?
}

pub fn run(args: Args, global: &super::Global) -> anyhow::Result<Exit> {
    let loader = common::loader(global)?;
    let (artifact, policy) = if tagpolicy::is_remote(&args.policy) {
        let (artifact, component) = fetch_artifact(&args)?;
        let policy =
            loader.engine().load_bytes(&component, &format!("`{}`", artifact.reference))?;
        (Some(artifact), policy)
    } else {
        (None, loader.load(&args.policy, Path::new(""))?)
    };
    let metadata = policy.metadata();
    let inspection = Inspection {
        source: &args.policy,
        artifact: artifact.as_ref(),
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
            if let Some(artifact) = &artifact {
                println!("artifact: {}", artifact.reference);
                println!("created:  {}", artifact.created);
                for (key, value) in &artifact.annotations {
                    println!("  {key}: {value}");
                }
                if artifact.signatures.is_empty() {
                    println!("signatures: none");
                }
                for (index, signature) in artifact.signatures.iter().enumerate() {
                    match (&signature.verified_by, &signature.problem) {
                        (Some(key), _) => {
                            println!("signature {}: verified with `{key}`", index + 1)
                        }
                        (None, Some(problem)) => println!("signature {}: {problem}", index + 1),
                        (None, None) => println!("signature {}", index + 1),
                    }
                }
            }
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
