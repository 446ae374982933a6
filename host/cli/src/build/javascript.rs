//! JavaScript policies: an ES module package (`package.json`) that imports the SDK as
//! `tagpolicy-guest`, bundled by rolldown and built into a component by componentize-js.
//!
//! The SDK and the WIT contract are embedded in this binary and written next to the build,
//! so a policy always gets the SDK that matches the host's contract, whatever is installed;
//! only the toolchain (componentize-js and rolldown, pinned in the policy's `package.json`)
//! comes from npm.

use anyhow::{Context, bail};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The SDK's modules, written as `tagpolicy-guest/` for the bundler.
const SDK: &[(&str, &str)] = &[
    ("index.js", include_str!("../../../../guest/javascript/src/index.js")),
    ("sdk.js", include_str!("../../../../guest/javascript/src/sdk.js")),
    ("wit.js", include_str!("../../../../guest/javascript/src/wit.js")),
    ("host.js", include_str!("../../../../guest/javascript/src/host.js")),
    ("findings.js", include_str!("../../../../guest/javascript/src/findings.js")),
    ("policy.js", include_str!("../../../../guest/javascript/src/policy.js")),
    ("request.js", include_str!("../../../../guest/javascript/src/request.js")),
    ("settings.js", include_str!("../../../../guest/javascript/src/settings.js")),
    ("pattern.js", include_str!("../../../../guest/javascript/src/pattern.js")),
    ("facts.js", include_str!("../../../../guest/javascript/src/facts.js")),
    ("time.js", include_str!("../../../../guest/javascript/src/time.js")),
    ("tags.js", include_str!("../../../../guest/javascript/src/tags.js")),
];

const WIT: &str = include_str!("../../../../wit/policy.wit");

/// A policy gets no ambient capability: with every WASI feature of StarlingMonkey disabled
/// the component imports nothing but the `tagpolicy:policy` interfaces (the default build
/// would import `wasi:http`, which hosts do not provide).
const DISABLED_FEATURES: &[&str] = &["stdio", "random", "clocks", "http", "fetch-event"];

/// How to get the toolchain, pinned as `guest/javascript/package.json` pins it
/// (componentize-js 0.23.0 loads preview2-shim without declaring it as a dependency).
const INSTALL: &str = "npm install --save-dev --save-exact @bytecodealliance/componentize-js@0.23.0 @bytecodealliance/preview2-shim@0.25.0 rolldown@1.3.2";

/// Build the policy in `dir` and answer the component's path, `<dir>/build/<name>.wasm`.
pub fn build(dir: &Path) -> anyhow::Result<PathBuf> {
    let dir = dir.canonicalize().with_context(|| format!("cannot read `{}`", dir.display()))?;
    let package_json = dir.join("package.json");
    let package: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(&package_json)
            .with_context(|| format!("cannot read `{}`", package_json.display()))?,
    )
    .with_context(|| format!("`{}` is not valid JSON", package_json.display()))?;
    let Some(name) = package["name"].as_str() else {
        bail!("`{}` has no `name`", package_json.display());
    };
    // A scoped package `@team/rule` builds `rule.wasm`.
    let name = name.rsplit('/').next().unwrap_or(name);
    let main = dir.join(package["main"].as_str().unwrap_or("policy.js"));
    if !main.is_file() {
        bail!("`{}` is missing (the `main` of `{}`)", main.display(), package_json.display());
    }

    let componentize =
        find_tool(&dir, "componentize-js", std::env::var_os("TAGPOLICY_COMPONENTIZE_JS"))?;
    // rolldown is installed with componentize-js; look next to it first.
    let beside = componentize.with_file_name("rolldown");
    let rolldown = if beside.is_file() { beside } else { find_tool(&dir, "rolldown", None)? };

    // Everything the build writes stays under `build/`, which a new policy's .gitignore skips.
    let out_dir = dir.join("build");
    let work = out_dir.join(".tagpolicy");
    if work.exists() {
        std::fs::remove_dir_all(&work)
            .with_context(|| format!("cannot clear `{}`", work.display()))?;
    }
    let sdk = work.join("tagpolicy-guest");
    std::fs::create_dir_all(&sdk)?;
    std::fs::create_dir_all(work.join("wit"))?;
    for (file, text) in SDK {
        std::fs::write(sdk.join(file), text)?;
    }
    std::fs::write(work.join("wit/policy.wit"), WIT)?;

    // One ES module for componentize-js: the policy's own modules and the SDK inlined, the
    // host's `tagpolicy:*` interfaces left as imports for componentize-js to link.
    let bundle = work.join(format!("{name}.bundle.js"));
    let config = work.join("rolldown.config.mjs");
    let js = |path: &Path| serde_json::to_string(&path.display().to_string()).expect("a string");
    std::fs::write(
        &config,
        format!(
            "export default {{\n  input: {input},\n  external: [/^tagpolicy:/],\n  resolve: {{ alias: {{ 'tagpolicy-guest': {sdk} }} }},\n  output: {{ file: {bundle}, format: 'esm' }},\n}};\n",
            input = js(&main),
            sdk = js(&sdk.join("index.js")),
            bundle = js(&bundle),
        ),
    )?;
    eprintln!("build: bundling {name} with rolldown…");
    run(Command::new(&rolldown).arg("-c").arg(&config).current_dir(&dir), &dir, "rolldown")?;

    let component = out_dir.join(format!("{name}.wasm"));
    eprintln!("build: componentize-js {name}…");
    run(
        Command::new(&componentize)
            .arg(&bundle)
            .arg("--wit")
            .arg(work.join("wit"))
            .args(["--world-name", "tag-policy", "--disable"])
            .args(DISABLED_FEATURES)
            .arg("--out")
            .arg(&component)
            .current_dir(&dir),
        &dir,
        "componentize-js",
    )?;
    Ok(component)
}

/// Run a toolchain step; on failure show its own output (it names the JS file and line) and
/// fail naming the policy's folder.
fn run(command: &mut Command, dir: &Path, tool: &str) -> anyhow::Result<()> {
    let output = command.output().with_context(|| format!("cannot run `{tool}`"))?;
    if !output.status.success() {
        eprint!("{}", String::from_utf8_lossy(&output.stdout));
        eprint!("{}", String::from_utf8_lossy(&output.stderr));
        bail!("`{tool}` failed to build the policy in `{}` (its output is above)", dir.display());
    }
    Ok(())
}

/// Find `tool`: `env` if given, else `node_modules/.bin/<tool>` in `dir` or a parent (where
/// `npm ci` puts the pinned version), else on the PATH.
fn find_tool(dir: &Path, tool: &str, env: Option<std::ffi::OsString>) -> anyhow::Result<PathBuf> {
    if let Some(path) = env {
        return Ok(PathBuf::from(path));
    }
    if let Some(found) =
        dir.ancestors().map(|d| d.join("node_modules/.bin").join(tool)).find(|p| p.is_file())
    {
        return Ok(found);
    }
    if let Some(found) = std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|d| d.join(tool))
        .find(|p| p.is_file())
    {
        return Ok(found);
    }
    bail!(
        "cannot find `{tool}` for `{}`: install the pinned toolchain in the policy's folder (`{INSTALL}`) or set $TAGPOLICY_COMPONENTIZE_JS",
        dir.display()
    )
}

#[cfg(test)]
mod tests {
    /// Every module of the SDK is embedded: a module added to `guest/javascript/src` but not
    /// to [`super::SDK`] would only fail when a policy is built.
    #[test]
    fn embeds_every_sdk_module() {
        let src =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../guest/javascript/src");
        let mut on_disk: Vec<String> = std::fs::read_dir(src)
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|name| name.ends_with(".js"))
            .collect();
        on_disk.sort();
        let mut embedded: Vec<String> =
            super::SDK.iter().map(|(name, _)| name.to_string()).collect();
        embedded.sort();
        assert_eq!(embedded, on_disk);
    }
}
