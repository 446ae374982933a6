//! The documentation's code blocks, for the tests that run them (tests/docs.rs). A block is
//! marked by the HTML comment on the line before its fence: `<!-- run by tests/FILE.rs: FN -->`
//! (that test runs the commands), `<!-- run by .ci/run -->` (CI runs them), `<!-- gate config -->`
//! and `<!-- scenario -->` (parsed and loaded), `<!-- output of: COMMAND -->` (compared).
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A fenced block of a document.
#[derive(Debug, Clone)]
pub struct Block {
    /// The document, relative to the workspace.
    pub file: String,
    /// The line of the opening fence (1-based).
    pub line: usize,
    /// The fence's info string (`sh`, `yaml`, `text`, `rust`, …).
    pub info: String,
    /// The marker comment's text, without `<!--` and `-->`.
    pub marker: Option<String>,
    pub text: String,
}

impl Block {
    pub fn at(&self) -> String {
        format!("{}:{}", self.file, self.line)
    }
}

/// README.md and every page under docs/ (and docs/sdk/, the SDK references).
pub fn documents(workspace: &Path) -> Vec<String> {
    let mut files = vec!["README.md".to_string()];
    for folder in ["docs", "docs/sdk"] {
        let mut pages: Vec<String> = std::fs::read_dir(workspace.join(folder))
            .unwrap()
            .map(|entry| entry.unwrap().file_name().into_string().unwrap())
            .filter(|name| name.ends_with(".md"))
            .map(|name| format!("{folder}/{name}"))
            .collect();
        pages.sort();
        files.extend(pages);
    }
    files
}

pub fn blocks(workspace: &Path, file: &str) -> Vec<Block> {
    let text = std::fs::read_to_string(workspace.join(file)).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let mut blocks = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let Some(info) = lines[i].strip_prefix("```").filter(|info| !info.is_empty()) else {
            i += 1;
            continue;
        };
        let marker = (i > 0)
            .then(|| lines[i - 1].trim())
            .and_then(|l| l.strip_prefix("<!--")?.strip_suffix("-->"))
            .map(|m| m.trim().to_string());
        let start = i;
        i += 1;
        let mut body = Vec::new();
        while i < lines.len() && !lines[i].starts_with("```") {
            body.push(lines[i]);
            i += 1;
        }
        blocks.push(Block {
            file: file.to_string(),
            line: start + 1,
            info: info.to_string(),
            marker,
            text: body.join("\n") + "\n",
        });
        i += 1;
    }
    blocks
}

/// Every block of every document.
pub fn all_blocks(workspace: &Path) -> Vec<Block> {
    documents(workspace).iter().flat_map(|file| blocks(workspace, file)).collect()
}

/// The shell blocks marked as run by `test` in tests/docs.rs.
pub fn run_by(workspace: &Path, test: &str) -> Vec<Block> {
    let marker = format!("run by tests/docs.rs: {test}");
    let found: Vec<Block> = all_blocks(workspace)
        .into_iter()
        .filter(|b| b.marker.as_deref() == Some(marker.as_str()))
        .collect();
    assert!(!found.is_empty(), "no block is marked `<!-- {marker} -->`");
    found
}

/// The block marked `marker` that comes last before `before` in the same document (the
/// configuration a command block uses).
pub fn preceding(workspace: &Path, before: &Block, marker: &str) -> Block {
    blocks(workspace, &before.file)
        .into_iter()
        .rfind(|b| b.line < before.line && b.marker.as_deref() == Some(marker))
        .unwrap_or_else(|| panic!("{}: no `<!-- {marker} -->` block before it", before.at()))
}

/// A shell script that runs `block` as a person would, with what a test must change:
/// - `substitutions` applied first (ports, image paths);
/// - `tagpolicy serve --config F` without `--check` (a command that runs until stopped) runs in
///   the background; the script goes on once it prints that it is listening;
/// - `cargo install --locked --path DIR` checks that DIR is the package of the `tagpolicy`
///   binary the tests run (which is on PATH already) instead of building it again.
pub fn script(block: &Block, workspace: &Path, substitutions: &[(&str, &str)]) -> String {
    let mut text = block.text.clone();
    for (from, to) in substitutions {
        text = text.replace(from, to);
    }
    let mut script =
        String::from("set -euo pipefail\ntrap 'kill $(jobs -p) 2>/dev/null || true' EXIT\n");
    for (n, line) in text.lines().enumerate() {
        let command = line.split(" #").next().unwrap().trim().trim_end_matches('&').trim();
        if command.starts_with("tagpolicy serve") && !command.contains("--check") {
            script.push_str(&format!(
                "{command} >serve-{n}.out 2>serve-{n}.log &\n\
                 for _ in $(seq 300); do grep -q listening serve-{n}.out && break; sleep 0.1; done\n\
                 grep -q listening serve-{n}.out || {{ cat serve-{n}.log >&2; exit 1; }}\n"
            ));
        } else if let Some(rest) = command.strip_prefix("cargo install --locked --path ") {
            let dir = rest.split_whitespace().next().unwrap();
            script.push_str(&format!(
                "grep -q '^name = \"tagpolicy\"' '{}/{dir}/Cargo.toml'\n",
                workspace.display()
            ));
        } else {
            script.push_str(line);
            script.push('\n');
        }
    }
    script
}

/// Run `script` with bash in `dir`, with the `tagpolicy` binary first on PATH.
pub fn run(script: &str, dir: &Path, tagpolicy: &Path) -> Output {
    let bin: PathBuf = tagpolicy.parent().unwrap().to_path_buf();
    // The Python and JavaScript toolchains as tests/setup installs them, found on the PATH
    // the way the docs tell a policy author to put them there.
    let root = crate::common::workspace();
    let python = root.join("target/toolchains/python/bin");
    let javascript = root.join("guest/javascript/node_modules/.bin");
    let path = format!(
        "{}:{}:{}:{}",
        bin.display(),
        python.display(),
        javascript.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    Command::new("bash").arg("-c").arg(script).current_dir(dir).env("PATH", path).output().unwrap()
}

/// Run `script` as [`run`] does, but as on a machine with only `tagpolicy` installed: the
/// PATH without the toolchains tests/setup installs, without $TAGPOLICY_COMPONENTIZE_PY and
/// $TAGPOLICY_COMPONENTIZE_JS, and `cache` as the cache directory.
pub fn run_bare(script: &str, dir: &Path, tagpolicy: &Path, cache: &Path) -> Output {
    let root = crate::common::workspace();
    let toolchains = [root.join("target/toolchains"), root.join("guest/javascript/node_modules")];
    let path = std::env::var_os("PATH").unwrap_or_default();
    let kept =
        std::env::split_paths(&path).filter(|d| !toolchains.iter().any(|t| d.starts_with(t)));
    let bin = tagpolicy.parent().unwrap().to_path_buf();
    let path = std::env::join_paths(std::iter::once(bin).chain(kept)).unwrap();
    Command::new("bash")
        .arg("-c")
        .arg(script)
        .current_dir(dir)
        .env("PATH", path)
        .env("TAGPOLICY_CACHE_DIR", cache)
        .env_remove("TAGPOLICY_COMPONENTIZE_PY")
        .env_remove("TAGPOLICY_COMPONENTIZE_JS")
        .output()
        .unwrap()
}
