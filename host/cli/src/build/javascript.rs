//! JavaScript policies: an ES module package (`package.json`) that imports the SDK as
//! `tagpolicy-guest`, bundled by rolldown and built into a component by componentize-js.
//!
//! The SDK and the WIT contract are embedded in this binary and written next to the build,
//! so a policy always gets the SDK that matches the host's contract, whatever is installed;
//! only the toolchain (componentize-js and rolldown, pinned in the policy's `package.json`)
//! comes from npm.

use super::toolchain::{self, Toolchain};
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
    ("errors.js", include_str!("../../../../guest/javascript/src/errors.js")),
    ("console.js", include_str!("../../../../guest/javascript/src/console.js")),
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
    // Messages name the folder as the author gave it; the tools get its full path.
    let shown = dir;
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

    // The author's own toolchain if there is one, else the pinned one in the cache.
    let componentize =
        match find_tool(&dir, "componentize-js", std::env::var_os("TAGPOLICY_COMPONENTIZE_JS")) {
            Some(found) => found,
            None => toolchain::installed(Toolchain::JavaScript)?,
        };
    // rolldown is installed with componentize-js; look next to it first.
    let beside = componentize.with_file_name("rolldown");
    let rolldown = match beside.is_file() {
        true => beside,
        false => find_tool(&dir, "rolldown", None).with_context(|| {
            format!(
                "cannot find `rolldown` beside `{}` nor on the PATH; it is installed with componentize-js (`{INSTALL}`)",
                componentize.display()
            )
        })?,
    };

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
    // host's `tagpolicy:*` interfaces left as imports for componentize-js to link. Its source
    // map (not referenced from the bundle, which stays as it was) takes componentize-js's
    // errors, which name the bundle's lines, back to the policy's.
    let bundle = work.join(format!("{name}.bundle.js"));
    let config = work.join("rolldown.config.mjs");
    let js = |path: &Path| serde_json::to_string(&path.display().to_string()).expect("a string");
    std::fs::write(
        &config,
        format!(
            "export default {{\n  input: {input},\n  external: [/^tagpolicy:/],\n  resolve: {{ alias: {{ 'tagpolicy-guest': {sdk} }} }},\n  output: {{ file: {bundle}, format: 'esm', sourcemap: 'hidden' }},\n}};\n",
            input = js(&main),
            sdk = js(&sdk.join("index.js")),
            bundle = js(&bundle),
        ),
    )?;
    eprintln!("build: bundling {name} with rolldown…");
    run(
        Command::new(&rolldown).arg("-c").arg(&config).current_dir(&dir),
        shown,
        "rolldown",
        |text| text.to_string(),
    )?;
    append_line_table(&bundle, &dir)?;

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
        shown,
        "componentize-js",
        |text| to_source(text, &bundle, &dir),
    )?;
    Ok(component)
}

/// Run a toolchain step; on failure show its own output, which names the JS file and line
/// (after `rewrite`), without the toolchain's own stack, and fail naming the policy's folder.
fn run(
    command: &mut Command,
    dir: &Path,
    tool: &str,
    rewrite: impl Fn(&str) -> String,
) -> anyhow::Result<()> {
    let output = command.output().with_context(|| format!("cannot run `{tool}`"))?;
    if !output.status.success() {
        for text in [&output.stdout, &output.stderr] {
            eprint!("{}", without_toolchain_stack(&rewrite(&String::from_utf8_lossy(text))));
        }
        bail!("`{tool}` failed to build the policy in `{}` (its output is above)", dir.display());
    }
    Ok(())
}

/// `text` without what points into the toolchain rather than the policy: stack frames in
/// `node_modules`, Node's excerpt of the toolchain line that threw (up to the blank line after
/// it) and Node's version, which an author could take for the error's place; and the runs of
/// blank lines they leave.
fn without_toolchain_stack(text: &str) -> String {
    let mut kept = String::with_capacity(text.len());
    let mut in_excerpt = false;
    for line in text.split_inclusive('\n') {
        let bare = line.trim_end();
        if in_excerpt {
            in_excerpt = !bare.is_empty();
            continue;
        }
        if bare.starts_with("file://") && bare.contains("/node_modules/") {
            in_excerpt = true;
            continue;
        }
        let frame = bare.trim_start().starts_with("at ") && bare.contains("/node_modules/");
        let repeated_blank = bare.is_empty() && (kept.is_empty() || kept.ends_with("\n\n"));
        if frame || bare.starts_with("Node.js v") || repeated_blank {
            continue;
        }
        kept.push_str(line);
    }
    kept
}

/// `text` with each `…<bundle name>:LINE:COLUMN` replaced by the place in the policy's source
/// (relative to `dir`) that the bundle's source map gives; as it is without a map.
fn to_source(text: &str, bundle: &Path, dir: &Path) -> String {
    let Some(map) = read_map(bundle) else {
        return text.to_string();
    };
    let name = regex::escape(&bundle.file_name().expect("a file").to_string_lossy());
    let location =
        regex::Regex::new(&format!(r#"[^\s"'()\[\]@]*{name}:(\d+):(\d+)"#)).expect("a valid regex");
    let base = bundle.parent().expect("in a folder");
    location
        .replace_all(text, |caps: &regex::Captures| {
            let place = caps[1].parse().ok().zip(caps[2].parse().ok());
            let Some((source, line, column)) =
                place.and_then(|(line, column)| map.original(line, column))
            else {
                return caps[0].to_string();
            };
            let path = normalize(&base.join(source));
            let path = path.strip_prefix(dir).unwrap_or(&path);
            format!("{}:{line}:{column}", path.display())
        })
        .into_owned()
}

/// Append to `bundle` the table that takes its lines back to the policy's own files (see
/// guest/javascript/src/errors.js), so that an exception names the author's line. Appended,
/// not prepended, so the bundle's lines, and the map, stay as they were. The table holds
/// one entry per mapped segment of the policy's own files (the SDK and `node_modules` are
/// left out), so it grows with the policy's source, not with the SDK.
fn append_line_table(bundle: &Path, dir: &Path) -> anyhow::Result<()> {
    let Some(map) = read_map(bundle) else { return Ok(()) };
    let base = bundle.parent().expect("in a folder");
    let mut sources = Vec::new();
    // The index in `sources` of each of the map's sources that is the policy's own.
    let own: Vec<Option<usize>> = map
        .sources
        .iter()
        .map(|source| {
            let path = normalize(&base.join(source));
            let ours = path.starts_with(dir)
                && !path.starts_with(base)
                && !path.components().any(|c| c.as_os_str() == "node_modules");
            ours.then(|| {
                sources.push(path.strip_prefix(dir).unwrap_or(&path).display().to_string());
                sources.len() - 1
            })
        })
        .collect();
    let lines: Vec<Vec<(u64, usize, u64)>> = map
        .lines
        .iter()
        .map(|segments| {
            let mut kept: Vec<(u64, usize, u64)> = Vec::new();
            for &(column, source, line, _) in segments {
                let Some(Some(source)) = own.get(source) else { continue };
                // Only where the original line changes: the table needs lines, not columns.
                if kept.last().is_none_or(|last| (last.1, last.2) != (*source, line + 1)) {
                    kept.push((column, *source, line + 1));
                }
            }
            kept
        })
        .collect();
    let table = serde_json::json!({ "sources": sources, "lines": lines });
    let mut file = std::fs::OpenOptions::new().append(true).open(bundle)?;
    use std::io::Write;
    writeln!(file, "\nglobalThis[Symbol.for('tagpolicy.lineTable')] = {table};")
        .with_context(|| format!("cannot write `{}`", bundle.display()))
}

/// The source map rolldown wrote beside `bundle`, if it did and it parses.
fn read_map(bundle: &Path) -> Option<SourceMap> {
    let map = bundle
        .with_file_name(format!("{}.map", bundle.file_name().expect("a file").to_string_lossy()));
    SourceMap::parse(&std::fs::read_to_string(&map).ok()?)
}

/// `path` with `.` and `..` resolved by name (the map's sources are relative to its folder).
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

/// A source map (version 3), enough of it to take a generated line and column back.
struct SourceMap {
    sources: Vec<String>,
    /// Per generated line: (generated column, source, line, column), all from 0, by column.
    lines: Vec<Vec<(u64, usize, u64, u64)>>,
}

impl SourceMap {
    fn parse(json: &str) -> Option<SourceMap> {
        let map: serde_json::Value = serde_json::from_str(json).ok()?;
        let sources = map["sources"]
            .as_array()?
            .iter()
            .map(|s| s.as_str().map(str::to_string))
            .collect::<Option<Vec<_>>>()?;
        // Every field but the generated column carries on across lines, as deltas.
        let (mut source, mut line, mut column) = (0i64, 0i64, 0i64);
        let mut lines = Vec::new();
        for generated in map["mappings"].as_str()?.split(';') {
            let mut segments = Vec::new();
            let mut generated_column = 0i64;
            for segment in generated.split(',').filter(|s| !s.is_empty()) {
                let fields = vlq(segment)?;
                generated_column += fields[0];
                if fields.len() >= 4 {
                    source += fields[1];
                    line += fields[2];
                    column += fields[3];
                    segments.push((
                        u64::try_from(generated_column).ok()?,
                        usize::try_from(source).ok()?,
                        u64::try_from(line).ok()?,
                        u64::try_from(column).ok()?,
                    ));
                }
            }
            segments.sort_unstable();
            lines.push(segments);
        }
        Some(SourceMap { sources, lines })
    }

    /// The source, line and column (from 1, as the toolchains print them) of the generated
    /// `line` and `column` (from 1): the last mapping at or before the column, else the line's
    /// first.
    fn original(&self, line: u64, column: u64) -> Option<(&str, u64, u64)> {
        let segments = self.lines.get(usize::try_from(line.checked_sub(1)?).ok()?)?;
        let column = column.saturating_sub(1);
        let at = segments.iter().rev().find(|s| s.0 <= column).or(segments.first())?;
        Some((self.sources.get(at.1)?, at.2 + 1, at.3 + 1))
    }
}

/// The numbers of one base64 VLQ segment of a source map.
fn vlq(segment: &str) -> Option<Vec<i64>> {
    const DIGITS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let (mut numbers, mut value, mut shift) = (Vec::new(), 0i64, 0u32);
    for byte in segment.bytes() {
        let digit = DIGITS.iter().position(|&d| d == byte)? as i64;
        value |= (digit & 31) << shift;
        if digit & 32 != 0 {
            shift += 5;
            if shift > 60 {
                return None;
            }
            continue;
        }
        numbers.push(if value & 1 == 1 { -(value >> 1) } else { value >> 1 });
        (value, shift) = (0, 0);
    }
    (shift == 0 && !numbers.is_empty()).then_some(numbers)
}

/// Find `tool`: `env` if given, else `node_modules/.bin/<tool>` in `dir` or a parent (where
/// `npm ci` puts the pinned version), else on the PATH.
fn find_tool(dir: &Path, tool: &str, env: Option<std::ffi::OsString>) -> Option<PathBuf> {
    if let Some(path) = env {
        return Some(PathBuf::from(path));
    }
    let beside_policy =
        dir.ancestors().map(|d| d.join("node_modules/.bin").join(tool)).find(|p| p.is_file());
    beside_policy.or_else(|| {
        std::env::var_os("PATH")
            .iter()
            .flat_map(std::env::split_paths)
            .map(|d| d.join(tool))
            .find(|p| p.is_file())
    })
}

#[cfg(test)]
mod tests {
    use super::{SourceMap, vlq, without_toolchain_stack};

    #[test]
    fn decodes_source_map_numbers() {
        assert_eq!(vlq("AAAA"), Some(vec![0, 0, 0, 0]));
        assert_eq!(vlq("gBADC"), Some(vec![16, 0, -1, 1]));
        assert_eq!(vlq("g"), None);
        assert_eq!(vlq("A!"), None);
    }

    #[test]
    fn maps_a_bundle_place_back_to_its_source() {
        // Line 1 comes from `a.js` 1:1; line 2 from `b.js` 3:5, and from column 9 on 4:1.
        let map = r#"{"version":3,"sources":["a.js","b.js"],"mappings":"AAAA;ACEI,QACJ"}"#;
        let map = SourceMap::parse(map).unwrap();
        assert_eq!(map.original(1, 1), Some(("a.js", 1, 1)));
        assert_eq!(map.original(2, 1), Some(("b.js", 3, 5)));
        assert_eq!(map.original(2, 12), Some(("b.js", 4, 1)));
        assert_eq!(map.original(3, 1), None);
    }

    #[test]
    fn drops_the_toolchain_stack_only() {
        let text = "file:///x/node_modules/c/src/c.js:365\n    throw new Error(err);\n          ^\n\nError: failed\npolicy.js:3:1 ReferenceError: f is not defined\n  @policy.js:3:1\n    at c (file:///x/node_modules/c/src/c.js:365:11)\n\nNode.js v20.20.2\n";
        assert_eq!(
            without_toolchain_stack(text),
            "Error: failed\npolicy.js:3:1 ReferenceError: f is not defined\n  @policy.js:3:1\n\n"
        );
        assert_eq!(without_toolchain_stack("\n error\n\n\n\nat x\n"), " error\n\nat x\n");
    }

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
