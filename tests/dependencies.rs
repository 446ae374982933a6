//! The engine is what embedders depend on (docs/embedding.md): its normal dependency tree must
//! hold no HTTP server or client, TLS, CLI, JWT, bcrypt, metrics, table printer or cache
//! client. Those belong to tagpolicy-gate and tagpolicy-cli; a dependency added to the engine
//! for convenience would reach every embedder.

use std::path::Path;
use std::process::Command;

const FORBIDDEN: &[&str] = &[
    "hyper",
    "h2",
    "rustls",
    "tokio-rustls",
    "reqwest",
    "clap",
    "jsonwebtoken",
    "bcrypt",
    "prometheus-client",
    "comfy-table",
    "redis",
    "oci-client",
];

/// Package names in `cargo tree -e normal -p tagpolicy`, each once.
fn engine_tree() -> Vec<String> {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let out = Command::new(env!("CARGO"))
        .current_dir(&workspace)
        .args(["tree", "-e", "normal", "-p", "tagpolicy", "--locked", "--offline"])
        .args(["--prefix", "none", "--format", "{p}"])
        .output()
        .expect("run cargo tree");
    assert!(
        out.status.success(),
        "cargo tree failed: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    // Lines are `name vX.Y.Z [(path)] [(*)]`.
    let mut names: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|line| line.split_whitespace().next().map(str::to_string))
        .collect();
    names.sort();
    names.dedup();
    names
}

#[test]
fn the_engine_depends_on_no_server_client_or_cli_crate() {
    let names = engine_tree();
    // The tree was read: the engine and its runtime are in it.
    for expected in ["tagpolicy", "wasmtime"] {
        assert!(names.iter().any(|n| n == expected), "no `{expected}` in {names:?}");
    }
    let found: Vec<&str> =
        FORBIDDEN.iter().copied().filter(|f| names.iter().any(|n| n == f)).collect();
    assert!(
        found.is_empty(),
        "the engine's dependency tree holds {found:?}: they belong in tagpolicy-gate or \
         tagpolicy-cli (see docs/embedding.md); `cargo tree -e normal -p tagpolicy -i <name>` \
         shows the path"
    );
}
