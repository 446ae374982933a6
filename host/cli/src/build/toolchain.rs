//! The pinned Python and JavaScript policy toolchains, installed by `tagpolicy build` into its
//! cache directory when the author has none of their own: componentize-py from PyPI with the
//! hashes of guest/python/toolchain.txt, componentize-js with `npm ci` from the lockfile of
//! guest/javascript. Both lockfiles are carried by this binary. Each install lives in a folder
//! named by its lockfile's hash, so a new pin installs anew beside the old one, and a stamp
//! written last marks it complete: an install that was cut short is redone, not used.

use anyhow::{Context, bail};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;
use tagpolicy::Digest;

const PYTHON_LOCK: &str = include_str!("../../../../guest/python/toolchain.txt");
const JAVASCRIPT_PACKAGE: &str = include_str!("../../../../guest/javascript/package.json");
const JAVASCRIPT_LOCK: &str = include_str!("../../../../guest/javascript/package-lock.json");

/// The name of the stamp an install writes when it is complete.
const STAMP: &str = ".tagpolicy-installed";

/// A toolchain this binary can install.
#[derive(Debug, Clone, Copy)]
pub enum Toolchain {
    /// componentize-py, in a Python virtual environment.
    Python,
    /// componentize-js and rolldown, in a `node_modules`.
    JavaScript,
}

impl Toolchain {
    fn name(self) -> &'static str {
        match self {
            Toolchain::Python => "componentize-py",
            Toolchain::JavaScript => "componentize-js",
        }
    }

    /// The install's folder under `cache`: the toolchain and its lockfile's hash.
    fn folder(self, cache: &Path) -> PathBuf {
        let (prefix, lock) = match self {
            Toolchain::Python => ("python", PYTHON_LOCK),
            Toolchain::JavaScript => ("javascript", JAVASCRIPT_LOCK),
        };
        let hash = Digest::of(lock.as_bytes()).hex();
        cache.join("toolchains").join(format!("{prefix}-{}", &hash[..16]))
    }

    /// The tool's executable inside an install.
    fn executable(self, folder: &Path) -> PathBuf {
        match self {
            Toolchain::Python => folder.join("bin/componentize-py"),
            Toolchain::JavaScript => folder.join("node_modules/.bin/componentize-js"),
        }
    }

    /// Where the author can set their own instead.
    fn variable(self) -> &'static str {
        match self {
            Toolchain::Python => "TAGPOLICY_COMPONENTIZE_PY",
            Toolchain::JavaScript => "TAGPOLICY_COMPONENTIZE_JS",
        }
    }
}

/// The pinned `toolchain`'s executable in the cache, installed first if it is not there.
pub fn installed(toolchain: Toolchain) -> anyhow::Result<PathBuf> {
    let Some(cache) = crate::common::cache_dir() else {
        bail!(
            "cannot install {}: no cache directory ($TAGPOLICY_CACHE_DIR, $XDG_CACHE_HOME and $HOME are unset); set one, or set ${} to your own",
            toolchain.name(),
            toolchain.variable()
        );
    };
    let folder = toolchain.folder(&cache);
    let executable = toolchain.executable(&folder);
    if folder.join(STAMP).is_file() && executable.is_file() {
        return Ok(executable);
    }
    std::fs::create_dir_all(folder.parent().expect("under the cache"))
        .with_context(|| format!("cannot create `{}`", folder.display()))?;
    // One install at a time per folder: a second build waits, then finds it done.
    let lock_path = folder.with_extension("lock");
    let lock = std::fs::File::create(&lock_path)
        .with_context(|| format!("cannot create `{}`", lock_path.display()))?;
    lock.lock().with_context(|| format!("cannot lock `{}`", lock_path.display()))?;
    if folder.join(STAMP).is_file() && executable.is_file() {
        return Ok(executable);
    }
    if folder.exists() {
        std::fs::remove_dir_all(&folder)
            .with_context(|| format!("cannot remove the unfinished `{}`", folder.display()))?;
    }
    eprintln!(
        "build: installing the pinned {} into `{}` (once per pin; set ${} to use your own)…",
        toolchain.name(),
        folder.display(),
        toolchain.variable()
    );
    let started = Instant::now();
    let result = match toolchain {
        Toolchain::Python => install_python(&folder),
        Toolchain::JavaScript => install_javascript(&folder),
    };
    if let Err(error) = result {
        // Leave nothing half-installed behind; the next build starts over.
        let _ = std::fs::remove_dir_all(&folder);
        return Err(error.context(format!(
            "cannot install {}; install it yourself and set ${} to its path",
            toolchain.name(),
            toolchain.variable()
        )));
    }
    if !executable.is_file() {
        bail!("the install of {} has no `{}`", toolchain.name(), executable.display());
    }
    std::fs::write(folder.join(STAMP), "")?;
    eprintln!("build: {} installed in {:.0?}", toolchain.name(), started.elapsed());
    Ok(executable)
}

/// `python3 -m venv`, then pip with `--require-hashes` from the carried lockfile.
fn install_python(folder: &Path) -> anyhow::Result<()> {
    let python = std::env::var_os("TAGPOLICY_PYTHON").unwrap_or_else(|| "python3".into());
    run(
        Command::new(&python).args(["-m", "venv"]).arg(folder),
        "create a Python virtual environment (needs python3 with its `venv` module)",
    )?;
    let requirements = folder.join("toolchain.txt");
    std::fs::write(&requirements, PYTHON_LOCK)?;
    let progress = if std::io::stderr().is_terminal() { "on" } else { "off" };
    run(
        Command::new(folder.join("bin/pip"))
            .args(["install", "--disable-pip-version-check", "--require-hashes"])
            .args(["--progress-bar", progress, "-r"])
            .arg(&requirements),
        "download componentize-py from PyPI (offline? pip's message is above)",
    )
}

/// `npm ci` of the carried package and lockfile, after checking Node's version.
fn install_javascript(folder: &Path) -> anyhow::Result<()> {
    let node = Command::new("node").arg("--version").output();
    let version = match node {
        Ok(out) if out.status.success() => String::from_utf8_lossy(&out.stdout).trim().to_string(),
        _ => bail!("cannot run `node`: install Node.js 20.19 or later (or 22.12 or later)"),
    };
    if !node_is_recent(&version) {
        bail!(
            "node `{version}` cannot run componentize-js's bundler (rolldown needs ^20.19.0 or >=22.12.0); install a newer Node.js"
        );
    }
    std::fs::create_dir_all(folder)?;
    std::fs::write(folder.join("package.json"), JAVASCRIPT_PACKAGE)?;
    std::fs::write(folder.join("package-lock.json"), JAVASCRIPT_LOCK)?;
    let progress = if std::io::stderr().is_terminal() { "true" } else { "false" };
    run(
        Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
            .arg(format!("--progress={progress}"))
            .current_dir(folder),
        "install componentize-js with npm (offline? npm's message is above)",
    )
}

/// Whether `node --version` (`v20.20.2`) is one rolldown supports.
fn node_is_recent(version: &str) -> bool {
    let mut numbers = version.trim_start_matches('v').split('.').map(|n| n.parse::<u32>());
    match (numbers.next(), numbers.next()) {
        (Some(Ok(major)), Some(Ok(minor))) => {
            (major == 20 && minor >= 19) || (major == 22 && minor >= 12) || major >= 23
        }
        _ => false,
    }
}

/// Run `command` with its output on stderr; `what` says what failed.
fn run(command: &mut Command, what: &str) -> anyhow::Result<()> {
    let program = command.get_program().to_string_lossy().into_owned();
    let status = command
        .stdout(std::io::stderr())
        .status()
        .with_context(|| format!("cannot run `{program}`: could not {what}"))?;
    if !status.success() {
        bail!("`{program}` failed ({status}): could not {what}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_versions_rolldown_supports() {
        for (version, recent) in [
            ("v20.20.2", true),
            ("v20.19.0", true),
            ("v20.18.9", false),
            ("v18.19.0", false),
            ("v22.11.0", false),
            ("v22.12.0", true),
            ("v24.1.0", true),
            ("vgarbage", false),
        ] {
            assert_eq!(node_is_recent(version), recent, "{version}");
        }
    }

    #[test]
    fn a_new_pin_is_a_new_folder() {
        let cache = Path::new("/cache");
        let python = Toolchain::Python.folder(cache).display().to_string();
        let javascript = Toolchain::JavaScript.folder(cache).display().to_string();
        assert!(python.starts_with("/cache/toolchains/python-"), "{python}");
        assert!(javascript.starts_with("/cache/toolchains/javascript-"), "{javascript}");
        assert_eq!(python.len(), "/cache/toolchains/python-".len() + 16, "{python}");
    }
}
