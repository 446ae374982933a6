//! `tagpolicy sign`: sign a policy artifact in a registry, the way cosign's key pairs do.

use super::Exit;
use super::common::Output;
use super::registry::{self, RegistryArgs};
use anyhow::Context;
use serde::Serialize;
use std::path::PathBuf;
use tagpolicy_oci::artifact;
use tagpolicy_oci::signature::{SignatureManifest, SigningKey};

/// Sign a policy artifact in a registry, as cosign signs with a key pair.
///
/// The signature (ECDSA P-256) is stored the way cosign stores key-pair signatures on registries without a referrers API: a simple-signing payload binding the
/// manifest digest and the repository, under the tag `sha256-<hex>.sig`. Signatures already
/// there are kept (several keys, for a threshold). A tag is resolved to its digest first:
/// the signature is of that digest, never of the tag.
///
/// The key is a PEM file (`PRIVATE KEY` or `EC PRIVATE KEY`, unencrypted), e.g. from
/// `openssl ecparam -name prime256v1 -genkey -noout | openssl pkcs8 -topk8 -nocrypt`.
/// No transparency log is written or read.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  \
    tagpolicy sign --key release.key registry.example.com/policies/floor:1.0.0\n  \
    tagpolicy sign --key security.key registry.example.com/policies/floor@sha256:5f0c…")]
pub struct Args {
    /// The private key (PEM).
    #[arg(long, value_name = "FILE")]
    key: PathBuf,
    /// `host[:port]/repository:tag` or `…@sha256:<digest>`.
    reference: String,
    /// An `optional` entry of the signed payload (cosign's `-a`). May be given several times.
    #[arg(long, value_name = "KEY=VALUE", value_parser = registry::parse_annotation)]
    annotation: Vec<(String, String)>,
    #[command(flatten)]
    registry: RegistryArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    output: Output,
}

#[derive(Serialize)]
struct SignedOut {
    reference: String,
    digest: String,
    signature_tag: String,
    signature_manifest: String,
}

pub fn run(args: Args) -> anyhow::Result<Exit> {
    registry::init_logging();
    let pem = std::fs::read_to_string(&args.key)
        .with_context(|| format!("cannot read key `{}`", args.key.display()))?;
    let key =
        SigningKey::from_pem(&pem).with_context(|| format!("key `{}`", args.key.display()))?;
    let reference = registry::reference(&args.reference)?;
    let client = args.registry.client_for(&reference)?;
    let annotations: std::collections::BTreeMap<String, String> =
        args.annotation.iter().cloned().collect();
    let (digest, manifest_digest) = registry::block_on(async {
        let digest = client.resolve(&reference).await?;
        // Only policy artifacts are signed: the same check a gate makes before loading.
        let (manifest, config) = client.artifact(&reference, &digest).await?;
        artifact::inspect(&manifest, &config).with_context(|| {
            format!("`{}` is not a policy component artifact", reference.with_digest(digest))
        })?;
        let signed = key.sign(&reference.name(), &digest, Some(&annotations));
        let manifest_digest = client.push_signature(&reference, &digest, &signed).await?;
        Ok::<_, anyhow::Error>((digest, manifest_digest))
    })??;
    let out = SignedOut {
        reference: reference.with_digest(digest).to_string(),
        digest: digest.to_string(),
        signature_tag: SignatureManifest::tag_for(&digest),
        signature_manifest: manifest_digest.to_string(),
    };
    match args.output {
        Output::Json => println!("{}", serde_json::to_string_pretty(&out)?),
        Output::Text => {
            println!("signed {} (signatures under `{}`)", out.reference, out.signature_tag)
        }
    }
    Ok(Exit::Success)
}
