//! Python policies: a folder with `pyproject.toml` and the app module `policy.py`, built by
//! componentize-py into a component that imports nothing but the contract (`-s` stubs WASI).
//!
//! The SDK and the WIT contract are the ones this binary carries (embedded below), written
//! into the build folder on every build: a policy never builds against an SDK that does not
//! match the host that will run it.

use anyhow::{Context, bail};
use std::path::{Path, PathBuf};
use std::process::Command;

use super::toolchain::{self, Toolchain};

/// The componentize-py release the SDK is written and tested against.
const COMPONENTIZE_PY: &str = "componentize-py==0.25.1";

/// The SDK's modules, as `tagpolicy_guest/<file>`.
const SDK: &[(&str, &str)] = &[
    ("__init__.py", include_str!("../../../../guest/python/tagpolicy_guest/__init__.py")),
    ("_host.py", include_str!("../../../../guest/python/tagpolicy_guest/_host.py")),
    ("findings.py", include_str!("../../../../guest/python/tagpolicy_guest/findings.py")),
    ("image.py", include_str!("../../../../guest/python/tagpolicy_guest/image.py")),
    ("pattern.py", include_str!("../../../../guest/python/tagpolicy_guest/pattern.py")),
    ("policy.py", include_str!("../../../../guest/python/tagpolicy_guest/policy.py")),
    ("repository.py", include_str!("../../../../guest/python/tagpolicy_guest/repository.py")),
    ("request.py", include_str!("../../../../guest/python/tagpolicy_guest/request.py")),
    ("settings.py", include_str!("../../../../guest/python/tagpolicy_guest/settings.py")),
    ("tags.py", include_str!("../../../../guest/python/tagpolicy_guest/tags.py")),
    ("text.py", include_str!("../../../../guest/python/tagpolicy_guest/text.py")),
    ("time.py", include_str!("../../../../guest/python/tagpolicy_guest/time.py")),
];

/// The contract the host implements.
const WIT: &str = include_str!("../../../../wit/policy.wit");

/// Build the policy in `dir` into `dir/build/<name>.wasm` and answer that path.
pub fn build(dir: &Path) -> anyhow::Result<PathBuf> {
    let project = dir.join("pyproject.toml");
    let text = std::fs::read_to_string(&project)
        .with_context(|| format!("cannot read `{}`", project.display()))?;
    let name = project_name(&text).with_context(|| format!("in `{}`", project.display()))?;
    if !dir.join("policy.py").is_file() {
        bail!("no `policy.py` in `{}`: it is the policy's app module", dir.display());
    }

    // The SDK and the contract go next to the output, rewritten on every build.
    let out = dir.join("build");
    let sdk = out.join("sdk");
    let wit = out.join("wit");
    std::fs::create_dir_all(sdk.join("tagpolicy_guest"))?;
    std::fs::create_dir_all(&wit)?;
    for (file, content) in SDK {
        std::fs::write(sdk.join("tagpolicy_guest").join(file), content)?;
    }
    std::fs::write(wit.join("policy.wit"), WIT)?;

    // componentize-py imports the app where it is given, and Python then writes
    // `__pycache__/` there (its interpreter runs in WebAssembly: PYTHONDONTWRITEBYTECODE does
    // not reach it). Give it a copy, so that the author's folder stays as they left it.
    let app = tempfile::Builder::new().prefix("tagpolicy-build-").tempdir()?;
    copy_app(dir, app.path())
        .with_context(|| format!("cannot copy `{}` to build it", dir.display()))?;

    // The author's own toolchain if there is one, else the pinned one in the cache.
    let tool = match std::env::var_os("TAGPOLICY_COMPONENTIZE_PY") {
        Some(tool) => tool,
        None if on_path("componentize-py") => "componentize-py".into(),
        None => toolchain::installed(Toolchain::Python)?.into_os_string(),
    };
    let component = out.join(format!("{name}.wasm"));
    eprintln!("build: componentize-py {name}…");
    let run = Command::new(&tool)
        .arg("-d")
        .arg(&wit)
        .args(["-w", "tag-policy", "componentize", "-s", "-p"])
        .arg(app.path())
        .arg("-p")
        .arg(&sdk)
        .arg("policy")
        .arg("-o")
        .arg(&component)
        // A failed build is a Python error; its traceback is what helps, not a Rust one.
        .env("RUST_LIB_BACKTRACE", "0")
        .output();
    let run = match run {
        Ok(run) => run,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => bail!(
            "cannot find `{}`: install the Python policy toolchain with `pip install {COMPONENTIZE_PY}` \
             (or set $TAGPOLICY_COMPONENTIZE_PY to its path)",
            Path::new(&tool).display()
        ),
        Err(err) => {
            return Err(err)
                .with_context(|| format!("cannot run `{}`", Path::new(&tool).display()));
        }
    };
    if !run.status.success() {
        for output in [&run.stdout, &run.stderr] {
            eprint!("{}", toolchain_output(&String::from_utf8_lossy(output), dir, &sdk));
        }
        bail!(
            "componentize-py failed to build the policy in `{}` (its output is above)",
            dir.display()
        );
    }
    Ok(component)
}

/// Whether `tool` is an executable file in a folder of the PATH.
fn on_path(tool: &str) -> bool {
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .any(|dir| dir.join(tool).is_file())
}

/// Copy the policy's folder `dir` into `into`, leaving out what is not its source: the build
/// folder, `__pycache__/` and hidden entries (`.venv/`, `.git/`).
fn copy_app(dir: &Path, into: &Path) -> anyhow::Result<()> {
    let skipped = |entry: &walkdir::DirEntry| {
        let name = entry.file_name().to_string_lossy();
        entry.depth() > 0
            && (name.starts_with('.')
                || name == "__pycache__"
                || (entry.depth() == 1 && name == "build"))
    };
    for entry in walkdir::WalkDir::new(dir).into_iter().filter_entry(|e| !skipped(e)) {
        let entry = entry?;
        let target = into.join(entry.path().strip_prefix(dir)?);
        if entry.file_type().is_dir() {
            std::fs::create_dir_all(&target)?;
        } else {
            std::fs::copy(entry.path(), &target)?;
        }
    }
    Ok(())
}

/// componentize-py's own words, which point at the Python file and line, made readable: it
/// names the folders given with `-p` `/0` and `/1`, so say which they are; and it wraps the
/// policy's traceback in one of its command-line script (`sys.exit(script())`, then
/// `AssertionError: `), which says nothing about the policy, so drop that.
fn toolchain_output(text: &str, dir: &Path, sdk: &Path) -> String {
    const WRAPPER: &str = "Traceback (most recent call last):\n";
    let mut text = text;
    if let Some(at) = text.find("\nAssertionError: ")
        && text.starts_with(WRAPPER)
        && !text[..at].contains("/0/")
        && !text[..at].contains("/1/")
    {
        text = &text[at + "\nAssertionError: ".len()..];
    }
    // A placeholder starts a path: after a quote, a parenthesis or a space.
    let placeholder = regex::Regex::new(r#"(^|["'(\s])/([01])/"#).expect("a valid regex");
    let folder = |path: &Path| path.display().to_string().trim_end_matches('/').to_string();
    let (dir, sdk) = (folder(dir), folder(sdk));
    placeholder
        .replace_all(text, |caps: &regex::Captures| {
            let folder = if &caps[2] == "0" { &dir } else { &sdk };
            format!("{}{folder}/", &caps[1])
        })
        .into_owned()
}

/// `name` of the `[project]` table of `pyproject.toml`: enough TOML for that one line
/// (`name = "…"` or `'…'`), without a TOML parser in the CLI.
fn project_name(text: &str) -> anyhow::Result<String> {
    let mut in_project = false;
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            in_project = line.split('#').next().is_some_and(|table| table.trim() == "[project]");
            continue;
        }
        let Some(value) = line.strip_prefix("name").map(str::trim_start) else { continue };
        let Some(value) = value.strip_prefix('=').map(str::trim) else { continue };
        if !in_project {
            continue;
        }
        let value = value.split(" #").next().unwrap_or(value).trim();
        let quoted = value.len() >= 2
            && (value.starts_with('"') && value.ends_with('"')
                || value.starts_with('\'') && value.ends_with('\''));
        let name = &value[1..value.len().saturating_sub(1).max(1)];
        let valid = quoted
            && !name.is_empty()
            && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
        if !valid {
            bail!("`name = {value}` of `[project]` is not a quoted name such as \"my-policy\"");
        }
        return Ok(name.to_string());
    }
    bail!("no `name = \"…\"` in the `[project]` table; add one (it names the component)")
}

#[cfg(test)]
mod tests {
    use super::{copy_app, project_name, toolchain_output};
    use std::path::Path;

    #[test]
    fn shows_the_policy_error_with_its_paths() {
        let raw = "Traceback (most recent call last):\n  File \"/venv/bin/componentize-py\", line 8, in <module>\n    sys.exit(script())\n             ^^^^^^^^\nAssertionError: Traceback (most recent call last):\n  File \"/0/policy.py\", line 13, in <module>\n    from x import y\nImportError: cannot import name 'y' from 'x' (/1/x/__init__.py)\n";
        let shown = toolchain_output(raw, Path::new("rule/"), Path::new("rule/build/sdk"));
        assert_eq!(
            shown,
            "Traceback (most recent call last):\n  File \"rule/policy.py\", line 13, in <module>\n    from x import y\nImportError: cannot import name 'y' from 'x' (rule/build/sdk/x/__init__.py)\n"
        );
        // Anything else is shown as it is.
        assert_eq!(
            toolchain_output("error: a/0/b\n", Path::new("r"), Path::new("s")),
            "error: a/0/b\n"
        );
    }

    #[test]
    fn the_build_copies_the_source_only() {
        let dir = tempfile::tempdir().unwrap();
        let write = |path: &str| {
            let path = dir.path().join(path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, "x = 1\n").unwrap();
        };
        for path in [
            "policy.py",
            "pyproject.toml",
            "rules/names.py",
            "rules/build/kept.py",
            "build/sdk/tagpolicy_guest/__init__.py",
            "__pycache__/policy.cpython-312.pyc",
            "rules/__pycache__/names.cpython-312.pyc",
            ".venv/lib/site.py",
        ] {
            write(path);
        }
        let into = tempfile::tempdir().unwrap();
        copy_app(dir.path(), into.path()).unwrap();
        let mut copied: Vec<String> = walkdir::WalkDir::new(into.path())
            .into_iter()
            .map(|e| e.unwrap())
            .filter(|e| e.file_type().is_file())
            .map(|e| e.path().strip_prefix(into.path()).unwrap().display().to_string())
            .collect();
        copied.sort();
        assert_eq!(
            copied,
            ["policy.py", "pyproject.toml", "rules/build/kept.py", "rules/names.py"]
        );
    }

    #[test]
    fn reads_the_project_name_only() {
        let text = "[tool.x]\nname = \"no\"\n\n[project] # the policy\nname = 'min-tags'\nversion = \"0.1.0\"\n";
        assert_eq!(project_name(text).unwrap(), "min-tags");
        assert!(
            project_name("[project]\nversion = \"1\"\n")
                .unwrap_err()
                .to_string()
                .contains("no `name")
        );
        assert!(project_name("[project]\nname = min\n").is_err());
        assert!(project_name("[project]\nname = \"a/b\"\n").is_err());
    }
}
