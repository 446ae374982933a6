//! `tagpolicy build`: compile a policy crate to a component and check it.

use super::Exit;
use super::common::{self, Output};
use anyhow::bail;
use serde::Serialize;
use std::path::{Path, PathBuf};

mod javascript;
mod python;
mod rust;
pub mod rust_sdk;
mod toolchain;

/// The languages a policy can be written in, recognised by the project file in its folder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Language {
    /// A crate (`Cargo.toml`) using `tagpolicy-guest`, built for `wasm32-wasip2` by cargo.
    Rust,
    /// A project (`pyproject.toml`) using `tagpolicy_guest`, built by componentize-py.
    Python,
    /// A package (`package.json`) using `tagpolicy-guest`, built by componentize-js.
    #[value(name = "javascript", alias = "js")]
    JavaScript,
}

impl Language {
    /// The project file that marks a folder as a policy in this language.
    pub fn project_file(self) -> &'static str {
        match self {
            Language::Rust => "Cargo.toml",
            Language::Python => "pyproject.toml",
            Language::JavaScript => "package.json",
        }
    }

    /// Recognise the language of the policy in `dir` by its project file; exactly one must
    /// be there.
    pub fn detect(dir: &Path) -> anyhow::Result<Language> {
        let found: Vec<Language> = [Language::Rust, Language::Python, Language::JavaScript]
            .into_iter()
            .filter(|language| dir.join(language.project_file()).is_file())
            .collect();
        match found.as_slice() {
            [language] => Ok(*language),
            [] => bail!(
                "no `Cargo.toml`, `pyproject.toml` or `package.json` in `{}`; give the policy's folder",
                dir.display()
            ),
            several => bail!(
                "`{}` has {}: keep one policy per folder",
                dir.display(),
                several
                    .iter()
                    .map(|l| format!("`{}`", l.project_file()))
                    .collect::<Vec<_>>()
                    .join(" and ")
            ),
        }
    }
}

/// Build a policy into a component and check it.
///
/// The language is recognised by the project file in the folder: `Cargo.toml` runs
/// `cargo build --release --target wasm32-wasip2`; `pyproject.toml` runs componentize-py
/// (`$TAGPOLICY_COMPONENTIZE_PY`, else `componentize-py` on the PATH); `package.json` runs
/// componentize-js (`$TAGPOLICY_COMPONENTIZE_JS`, else `node_modules/.bin` of the folder or
/// a parent, else the PATH); with neither, the pinned toolchain is installed into the cache
/// directory first, once per pin. Python and JavaScript policies get the SDK and the contract this
/// binary carries. Then the component is loaded as the host would (world, imports, metadata)
/// and its path printed.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The policy's folder (default: the current one).
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
    let language = Language::detect(&args.dir)?;
    let path = match language {
        Language::Rust => rust::build(&args.dir)?,
        Language::Python => python::build(&args.dir)?,
        Language::JavaScript => javascript::build(&args.dir)?,
    };
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
