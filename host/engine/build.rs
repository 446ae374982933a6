//! Builds the reference policies for `wasm32-wasip2` so that the `tagpolicy` binary can
//! embed them: the CLI then works on a fresh machine with no policy file at hand.

use std::path::{Path, PathBuf};
use std::process::Command;

const POLICIES: &[&str] =
    &["immutable-tags", "min-tags", "semver-series", "image-requirements", "change-freeze"];
const TARGET: &str = "wasm32-wasip2";
/// The bench's floor (tests/policies/floor), embedded but not offered as a policy.
const FLOOR: &str = "floor-policy";

fn main() {
    let manifest_dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap());
    let root = manifest_dir.join("../..").canonicalize().expect("host/engine/ is in the workspace");
    // What the nested build reads, and nothing else: the Python and JavaScript ports and SDKs
    // beside these are built (into their own folders) by tests, and watching them made every
    // cargo command after a test run rebuild the engine and all that depends on it.
    let sources = [
        "wit",
        "guest/src",
        "guest/Cargo.toml",
        "tests/policies/floor",
        "Cargo.toml",
        "Cargo.lock",
    ];
    for watched in sources {
        println!("cargo:rerun-if-changed={}", root.join(watched).display());
    }
    for policy in POLICIES {
        println!("cargo:rerun-if-changed={}", root.join("policies").join(policy).display());
    }
    // A separate target directory: the outer build holds the lock on the main one.
    let target_dir = root.join("target").join("embedded-policies");

    // TAGPOLICY_POLICY_TOOLCHAIN=stable builds the policies with another rustup toolchain
    // than the host, e.g. when the host is built with a nightly that lacks the wasm target
    // (the fuzz targets).
    println!("cargo:rerun-if-env-changed=TAGPOLICY_POLICY_TOOLCHAIN");
    let mut command = match std::env::var("TAGPOLICY_POLICY_TOOLCHAIN") {
        Ok(toolchain) => {
            let mut command = Command::new("cargo");
            command.arg(format!("+{toolchain}")).env_remove("RUSTUP_TOOLCHAIN");
            command
        }
        Err(_) => Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into())),
    };
    command
        .current_dir(&root)
        .args(["build", "--release", "--locked", "--target", TARGET, "--target-dir"])
        .arg(&target_dir);
    for policy in POLICIES {
        command.args(["-p", policy]);
    }
    command.args(["-p", FLOOR]);
    // Do not leak the outer build's settings (host flags, clippy as a wrapper, profile
    // and feature variables) into the nested wasm build.
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy();
        if key.starts_with("CARGO_") && key != "CARGO_HOME"
            || key.starts_with("RUSTC")
            || key == "RUSTFLAGS"
            || key == "RUSTDOCFLAGS"
        {
            command.env_remove(key.as_ref());
        }
    }
    let status = command.status().expect("cannot run cargo to build the reference policies");
    if !status.success() {
        panic!(
            "building the reference policies for `{TARGET}` failed; is the target installed? \
             run `rustup target add {TARGET}`"
        );
    }

    let out_dir = PathBuf::from(std::env::var_os("OUT_DIR").unwrap());
    let mut table = String::from("pub(crate) const EMBEDDED: &[(&str, &[u8])] = &[\n");
    for policy in POLICIES {
        let file = target_dir
            .join(TARGET)
            .join("release")
            .join(format!("{}.wasm", policy.replace('-', "_")));
        let copy = out_dir.join(format!("{policy}.wasm"));
        copy_file(&file, &copy);
        table.push_str(&format!(
            "    ({policy:?}, include_bytes!({:?})),\n",
            copy.display().to_string()
        ));
    }
    table.push_str("];\n");
    let floor = out_dir.join("floor.wasm");
    copy_file(&target_dir.join(TARGET).join("release").join("floor_policy.wasm"), &floor);
    table.push_str(&format!(
        "/// A policy that allows without reading the request: the cost of a call.\n\
         pub const FLOOR: &[u8] = include_bytes!({:?});\n",
        floor.display().to_string()
    ));
    std::fs::write(out_dir.join("embedded.rs"), table).unwrap();
}

fn copy_file(from: &Path, to: &Path) {
    std::fs::copy(from, to).unwrap_or_else(|e| panic!("cannot copy `{}`: {e}", from.display()));
}
