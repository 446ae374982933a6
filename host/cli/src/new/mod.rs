//! `tagpolicy new`: start a policy, in any supported language, that builds and passes its
//! scenarios as is.

use super::Exit;
use super::build::Language;
use anyhow::{Context, bail};
use std::path::PathBuf;

mod javascript;
mod python;
mod rust;

/// A file of the new policy: its path inside the policy's folder and its content.
type File = (&'static str, String);

/// Create a policy that builds and passes its scenarios as is.
///
/// Writes a working rule (tag naming) in the chosen language with its project file
/// (`Cargo.toml`, `pyproject.toml` or `package.json`) and scenarios/basic.yaml that tests it.
/// Then: `tagpolicy build NAME` and `tagpolicy test NAME/scenarios`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The policy's name, also the folder created: lowercase letters, digits and dashes.
    name: String,
    /// The language to write the policy in.
    #[arg(long, value_enum, default_value = "rust")]
    lang: Language,
    /// Rust only: path to a `tagpolicy-guest` SDK crate (default: the SDK this binary carries,
    /// written into the policy's `build/` folder by `new` and by every `tagpolicy build`).
    /// Python and JavaScript policies always get the SDK from `tagpolicy build`.
    #[arg(long, value_name = "DIR")]
    sdk: Option<PathBuf>,
}

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
    let carried_sdk = args.lang == Language::Rust && args.sdk.is_none();
    let files = match args.lang {
        Language::Rust => rust::files(name, args.sdk)?,
        Language::Python => python::files(name),
        Language::JavaScript => javascript::files(name),
    };
    for (file, content) in files {
        let path = dir.join(file);
        std::fs::create_dir_all(path.parent().expect("files are inside the crate"))?;
        std::fs::write(&path, content)
            .with_context(|| format!("cannot write `{}`", path.display()))?;
    }
    if carried_sdk {
        // Now, so that an editor resolves the SDK before the first build.
        super::build::rust_sdk::write(&dir)?;
    }
    println!("created policy `{name}` in `{}`", dir.display());
    println!("next:\n  tagpolicy build {name}\n  tagpolicy test {name}/scenarios");
    Ok(Exit::Success)
}
