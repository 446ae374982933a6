//! `tagpolicy push`: ship a policy component to a registry as a Wasm OCI artifact.

use super::Exit;
use super::common::{self, Output};
use super::registry::{self, RegistryArgs};
use anyhow::{Context, bail};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::Path;
use tagpolicy_oci::artifact::{self, ArtifactSpec, VERSION_ANNOTATION};

/// Push a policy component to a registry as a Wasm OCI artifact.
///
/// The CNCF TAG-Runtime layout: config `application/vnd.wasm.config.v0+json` naming the
/// component's imports and exports, one `application/wasm` layer holding the component as
/// it is.
///
/// The component is loaded first, exactly as a gate would, so only a policy the host accepts
/// is pushed. The artifact is reproducible: the same component, version and time give the
/// same digest (`created` is `$SOURCE_DATE_EPOCH`, else 1970-01-01T00:00:00Z). Prints the
/// reference pinned to the digest, for gate configurations and `tagpolicy sign`.
///
/// Credentials: `TAGPOLICY_REGISTRY_USERNAME` / `TAGPOLICY_REGISTRY_PASSWORD`, an auth file
/// (`$REGISTRY_AUTH_FILE`, podman's `auth.json`, docker's `config.json`), or
/// `--registry-config`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  \
    tagpolicy push policies/release-bot-only/target/release-bot-only.wasm registry.example.com/policies/release-bot-only:1.0.0\n  \
    tagpolicy push immutable-tags localhost:5000/policies/immutable-tags:0.3.0 --insecure-registry localhost:5000\n  \
    tagpolicy push floor.wasm registry.example.com/policies/floor:stable --policy-version 1.4.0 --output json")]
pub struct Args {
    /// A `.wasm` component, or the name of an embedded policy.
    policy: String,
    /// Where to: `host[:port]/repository:tag`.
    reference: String,
    /// The version recorded (`org.opencontainers.image.version`); gates following a tag
    /// accept only newer versions. Default: the policy's own metadata version.
    #[arg(long, value_name = "SEMVER")]
    policy_version: Option<String>,
    /// The artifact's creation time (RFC 3339, UTC). Default: `$SOURCE_DATE_EPOCH`, else
    /// 1970-01-01T00:00:00Z, so that pushes are reproducible.
    #[arg(long, value_name = "TIME")]
    created: Option<String>,
    /// An extra manifest annotation. May be given several times.
    #[arg(long, value_name = "KEY=VALUE", value_parser = registry::parse_annotation)]
    annotation: Vec<(String, String)>,
    #[command(flatten)]
    registry: RegistryArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    output: Output,
}

#[derive(Serialize)]
struct Pushed {
    reference: String,
    digest: String,
    component_sha256: String,
    version: String,
    size: usize,
}

fn created() -> anyhow::Result<String> {
    let Ok(epoch) = std::env::var("SOURCE_DATE_EPOCH") else {
        return Ok("1970-01-01T00:00:00Z".into());
    };
    let seconds: u64 = epoch
        .trim()
        .parse()
        .with_context(|| format!("SOURCE_DATE_EPOCH `{epoch}` is not a number of seconds"))?;
    // humantime formats years up to 9999 (and panics past them).
    const LAST: u64 = 253_402_300_799; // 9999-12-31T23:59:59Z
    if seconds > LAST {
        bail!("SOURCE_DATE_EPOCH `{epoch}` is after the year 9999");
    }
    let at = std::time::UNIX_EPOCH + std::time::Duration::from_secs(seconds);
    Ok(humantime::format_rfc3339_seconds(at).to_string())
}

pub fn run(args: Args, global: &super::Global) -> anyhow::Result<Exit> {
    registry::init_logging();
    let reference = registry::reference(&args.reference)?;
    registry::require_tag(&reference)?;
    if let Some((key, _)) = args.annotation.iter().find(|(key, _)| key == VERSION_ANNOTATION) {
        // Gates compare this one to refuse rollbacks: it has one source, `--policy-version`.
        bail!("`--annotation {key}=…` is not accepted: give the version with `--policy-version`");
    }
    let loader = common::loader(global)?;
    let policy = loader.load(&args.policy, Path::new(""))?;
    let component = match tagpolicy::embedded::bytes(&args.policy) {
        Some(bytes) => bytes.to_vec(),
        None => std::fs::read(&args.policy)
            .with_context(|| format!("cannot read policy file `{}`", args.policy))?,
    };
    let metadata = policy.metadata();
    let version = args.policy_version.clone().unwrap_or_else(|| metadata.version.clone());
    if artifact::parse_version(&version).is_none() {
        bail!(
            "version `{version}` is not a semantic version (such as `1.2.0`): gates that follow a tag compare versions; give `--policy-version`"
        );
    }
    let mut annotations: BTreeMap<String, String> = BTreeMap::from([
        (VERSION_ANNOTATION.to_owned(), version.clone()),
        ("org.opencontainers.image.title".to_owned(), metadata.name.clone()),
        ("org.opencontainers.image.description".to_owned(), metadata.description.clone()),
    ]);
    annotations.extend(args.annotation.iter().cloned());
    let spec = ArtifactSpec {
        created: args.created.clone().map_or_else(created, Ok)?,
        author: None,
        imports: policy.imports().to_vec(),
        exports: policy.exports().to_vec(),
        annotations,
    };
    let built = artifact::build(&component, &spec)?;
    let client = args.registry.client_for(&reference)?;
    let digest = registry::block_on(client.push_artifact(&reference, &built, &component))??;
    let pinned = reference.with_digest(digest);
    let pushed = Pushed {
        reference: pinned.to_string(),
        digest: digest.to_string(),
        component_sha256: policy.sha256().to_owned(),
        version,
        size: component.len(),
    };
    match args.output {
        Output::Json => println!("{}", serde_json::to_string_pretty(&pushed)?),
        Output::Text => {
            println!("pushed {} {} ({} bytes)", metadata.name, pushed.version, pushed.size);
            println!("{}", pushed.reference);
        }
    }
    Ok(Exit::Success)
}
