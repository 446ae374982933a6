//! The documentation as users read it: every shell block in README.md and docs/ is run by a
//! test (here, or by .ci/run), every gate configuration and scenario shown parses and loads,
//! and the output the README shows is the output the CLI prints. What a test must change to
//! run a block on a shared machine (ports, image paths, shorter durations) is listed where it
//! does so; see tests/support/doc.rs for how blocks become scripts.

mod common;
#[path = "support/doc.rs"]
mod doc;
#[path = "support/registry.rs"]
mod registry;
#[path = "support/rust_api.rs"]
mod rust_api;

use common::workspace;
use doc::Block;
use registry::{Client, Layout, Registry, skopeo_copy, text};
use std::path::Path;

fn tagpolicy() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_tagpolicy"))
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Run `block` in `dir` with `substitutions`; it must succeed.
fn run_block(block: &Block, dir: &Path, substitutions: &[(&str, &str)]) -> std::process::Output {
    let script = doc::script(block, workspace(), substitutions);
    let out = doc::run(&script, dir, tagpolicy());
    assert!(out.status.success(), "{} failed:\n{script}\n{}", block.at(), text(&out));
    out
}

/// A gate configuration block, with `substitutions`, written as `dir/name`.
fn write_config(block: &Block, dir: &Path, name: &str, substitutions: &[(&str, &str)]) {
    let mut text = block.text.clone();
    for (from, to) in substitutions {
        text = text.replace(from, to);
    }
    std::fs::write(dir.join(name), text).unwrap();
}

#[test]
fn every_shell_block_is_run_by_a_test() {
    let ci = std::fs::read_to_string(workspace().join(".ci/run")).unwrap();
    let this = std::fs::read_to_string(workspace().join("tests/docs.rs")).unwrap();
    let mut problems = Vec::new();
    let blocks = doc::all_blocks(workspace());
    for block in blocks.iter().filter(|b| b.info == "sh") {
        match block.marker.as_deref() {
            Some("run by .ci/run") => {
                for line in block.text.lines().filter(|l| !l.starts_with('#') && !l.is_empty()) {
                    if !ci.lines().any(|c| c.trim() == line.trim()) {
                        problems.push(format!("{}: .ci/run does not run `{line}`", block.at()));
                    }
                }
            }
            Some(marker) => match marker.strip_prefix("run by tests/docs.rs: ") {
                Some(test) if this.contains(&format!("fn {test}()")) => {}
                _ => problems.push(format!("{}: `{marker}` names no test here", block.at())),
            },
            None => problems.push(format!("{}: no `<!-- run by ... -->` marker", block.at())),
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    assert!(blocks.iter().filter(|b| b.info == "sh").count() >= 8, "the blocks were not found");
}

#[test]
fn every_configuration_shown_parses_and_loads() {
    let loader = tagpolicy::Loader::new(tagpolicy::Engine::new().unwrap());
    let mut checked = 0;
    for block in doc::all_blocks(workspace()) {
        match block.marker.as_deref() {
            Some("gate config") => {
                let path = workspace().join(&block.file);
                let config = tagpolicy_gate::GateConfig::from_yaml(&block.text, &path)
                    .unwrap_or_else(|e| panic!("{}: {e}", block.at()));
                // Examples that name key and password files, or policies in a registry, are
                // loaded by the tests that run them, with those files and the registry made.
                if config.identity.is_none()
                    && config.tls.is_none()
                    && config.policy_registries == Default::default()
                {
                    config.load(&loader).unwrap_or_else(|e| panic!("{}: {e}", block.at()));
                }
            }
            Some("scenario") => {
                // Parsed, loaded and run: every expectation it states must hold.
                let path = workspace().join(&block.file);
                let scenario = tagpolicy_scenario::Scenario::from_yaml(&block.text, &path)
                    .unwrap_or_else(|e| panic!("{}: {e}", block.at()));
                let policies = loader
                    .policy_set(&scenario.policies, scenario.base_dir())
                    .unwrap_or_else(|(i, e)| panic!("{}: policies[{i}]: {e}", block.at()));
                for (step, result) in scenario.steps.iter().zip(scenario.run(&policies)) {
                    if let Some(wrong) = step.mismatch(&result.decision) {
                        panic!("{}: `{}`: {wrong}: {:?}", block.at(), step.name, result.decision);
                    }
                }
            }
            _ => continue,
        }
        checked += 1;
    }
    assert!(checked >= 4, "only {checked} configurations found");
}

#[test]
fn the_readme_shows_what_eval_prints() {
    let shown = doc::blocks(workspace(), "README.md")
        .into_iter()
        .find(|b| b.marker.as_deref() == Some("output of: tagpolicy eval examples/release.yaml"))
        .expect("the README shows the output of the release example");
    let out = std::process::Command::new(tagpolicy())
        .args(["eval", "examples/release.yaml"])
        .current_dir(workspace())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(String::from_utf8_lossy(&out.stdout), shown.text, "README.md:{}", shown.line);
}

#[test]
fn the_readme_run_command_decides_the_release_day() {
    // `cargo run --release --locked -p tagpolicy-cli --` is the `tagpolicy` binary under test,
    // and `rustup target add` has been done by tests/setup.
    for block in doc::run_by(workspace(), "the_readme_run_command_decides_the_release_day") {
        let command = block.text.lines().find(|l| !l.starts_with('#')).unwrap();
        let (setup, run) = command.split_once(" && ").unwrap();
        assert_eq!(setup, "rustup target add wasm32-wasip2");
        let args = run.strip_prefix("cargo run --release --locked -p tagpolicy-cli -- ").unwrap();
        // It exits with 1: the example holds denied pushes.
        let substituted = format!("set +e\ntagpolicy {args}\ntest $? -eq 1");
        let block = Block { text: substituted, ..block };
        run_block(&block, workspace(), &[]);
    }
}

#[test]
fn the_tour_builds_a_policy() {
    // The same three commands in the README's tour and in docs/policies.md.
    for block in doc::run_by(workspace(), "the_tour_builds_a_policy") {
        let dir = tempfile::tempdir().unwrap();
        run_block(&block, dir.path(), &[]);
        assert!(dir.path().join("tag-naming/Cargo.toml").is_file(), "{}", block.at());
    }
}

/// docs/policies.md "Write your first policy": each language's block, from an empty folder
/// outside the repository with an empty cache and no toolchain on the PATH, builds a policy
/// that passes its scenarios and prints; then a typo in the Python and JavaScript rules is
/// the policy's error at the author's line, which the page quotes, and fails `expect: deny`.
#[test]
fn a_first_policy_builds_and_passes_in_each_language() {
    let blocks = doc::run_by(workspace(), "a_first_policy_builds_and_passes_in_each_language");
    assert_eq!(blocks.len(), 3, "one block per language");
    let page = std::fs::read_to_string(workspace().join("docs/policies.md")).unwrap();
    let page = page.split_whitespace().collect::<Vec<_>>().join(" ");
    for block in blocks {
        let dir = tempfile::tempdir().unwrap();
        let cache = tempfile::tempdir().unwrap();
        let script = doc::script(&block, workspace(), &[]);
        let out = doc::run_bare(&script, dir.path(), tagpolicy(), cache.path());
        assert!(out.status.success(), "{} failed:\n{script}\n{}", block.at(), text(&out));
        assert!(text(&out).contains("3 passed, 0 failed"), "{}", text(&out));
        if !block.text.contains("tagpolicy new latest-robot-rs") {
            let lang = if block.text.contains("--lang python") { "py" } else { "js" };
            let installed = format!("installing the pinned componentize-{lang}");
            assert!(text(&out).contains(&installed), "{}", text(&out));
        }
        let name = ["rs", "py", "js"]
            .map(|lang| format!("latest-robot-{lang}"))
            .into_iter()
            .find(|name| block.text.contains(&format!("tagpolicy new {name}")))
            .expect("a block of the section");
        let folder = dir.path().join(&name);
        let run = |script: &str| doc::run_bare(script, &folder, tagpolicy(), cache.path());

        // What the rule printed goes with the refused push.
        let out = run("tagpolicy eval scenarios/basic.yaml --output json");
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let printed = &report["results"][1]["output"][0];
        assert_eq!(printed["policy"], name.as_str(), "{report}");
        assert!(printed["text"].as_str().unwrap().starts_with("move of `latest` by"), "{report}");

        // A typo: the policy's error, quoted by the page, and no longer a denial.
        let (file, typo, message) = match &name[13..] {
            "py" => (
                "policy.py",
                "s/change.tag == /change.tagg == /",
                "AttributeError: 'Change' object has no attribute 'tagg' (policy.py, line 25)",
            ),
            "js" => (
                "policy.js",
                "s/change.isIdentical()/change.isIdenticall()/",
                "TypeError: change.isIdenticall is not a function (policy.js:14)",
            ),
            _ => continue,
        };
        let out = run(&format!(
            "sed -i '{typo}' {file} && tagpolicy build . && tagpolicy test scenarios"
        ));
        let stdout = text(&out);
        let failure = format!("policy `{name}` failed: {message}; the request is denied");
        assert!(stdout.contains("expected deny, got error"), "{stdout}");
        assert!(stdout.contains(&failure), "{stdout}");
        assert!(page.contains(&failure), "docs/policies.md does not quote `{failure}`");
    }
}

/// A registry on a free port, an image layout, and the substitutions that point a block's
/// fixed addresses (the gate on 5000, the registry on 5001) and `oci:./image:v` at them.
struct Stage {
    registry: Registry,
    image: Layout,
    other: Layout,
    gate_port: u16,
    dir: tempfile::TempDir,
}

impl Stage {
    fn new() -> Stage {
        let dir = tempfile::tempdir().unwrap();
        let image = Layout::image(dir.path(), 1, 1024);
        let other = Layout::image(dir.path(), 2, 1024);
        Stage { registry: Registry::start(), image, other, gate_port: free_port(), dir }
    }

    fn substitutions(&self) -> Vec<(String, String)> {
        vec![
            ("127.0.0.1:5000".into(), format!("127.0.0.1:{}", self.gate_port)),
            ("127.0.0.1:5001".into(), format!("127.0.0.1:{}", self.registry.port)),
            ("oci:./image:v".into(), self.image.oci_ref()),
            ("oci:./other:v".into(), self.other.oci_ref()),
        ]
    }

    fn run(&self, block: &Block) {
        let owned = self.substitutions();
        let pairs: Vec<(&str, &str)> =
            owned.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
        let config = doc::preceding(workspace(), block, "gate config");
        let name =
            config.text.lines().next().and_then(|l| l.strip_prefix("# ")).unwrap_or("gate.yaml");
        write_config(&config, self.dir.path(), name.split_whitespace().next().unwrap(), &pairs);
        run_block(block, self.dir.path(), &pairs);
    }

    fn direct(&self) -> Client {
        Client::new(&self.registry.url())
    }
}

#[test]
fn the_tour_gate_decides_a_push() {
    let stage = Stage::new();
    let [block] = doc::run_by(workspace(), "the_tour_gate_decides_a_push").try_into().unwrap();
    stage.run(&block);
    assert_eq!(stage.direct().digest_of("team/app", "1.2.3"), Some(stage.image.digest.clone()));

    // What the tour says next: another image as `team/app:1.2.3` is denied, with the reason
    // shown. The same rules, in a gate of the tests' own on a free port.
    let config = doc::preceding(workspace(), &block, "gate config");
    let rules: String = config
        .text
        .lines()
        .filter(|l| !l.starts_with("listen") && !l.starts_with("upstream"))
        .map(|l| format!("{l}\n"))
        .collect();
    let gate = registry::Gate::start(&stage.registry.url(), &rules);
    let out = skopeo_copy(&stage.other, &gate.address, "team/app:1.2.3", false);
    assert!(!out.status.success(), "{}", text(&out));
    let readme = std::fs::read_to_string(workspace().join("README.md")).unwrap();
    let shown = "denied: immutable-tags: tag `1.2.3` is immutable";
    assert!(readme.contains(shown), "the README no longer says `{shown}`");
    assert!(String::from_utf8_lossy(&out.stderr).contains(shown), "{}", text(&out));
}

#[test]
fn the_gate_page_commands_run() {
    let stage = Stage::new();
    let [block] = doc::run_by(workspace(), "the_gate_page_commands_run").try_into().unwrap();
    stage.run(&block);
    assert_eq!(stage.direct().digest_of("team/app", "1.2.3"), Some(stage.image.digest.clone()));
}

#[test]
fn the_signature_walkthrough_runs() {
    let stage = Stage::new();
    let [block] = doc::run_by(workspace(), "the_signature_walkthrough_runs").try_into().unwrap();
    // cosign is not packaged for Debian: the stand-in writes its key-pair layout.
    let shim = workspace().join("tests/support/cosign_layout.py");
    let owned = stage.substitutions();
    let mut pairs: Vec<(&str, &str)> =
        owned.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
    let cosign = format!("python3 {} ", shim.display());
    pairs.push(("cosign ", &cosign));
    let config = doc::preceding(workspace(), &block, "gate config");
    write_config(&config, stage.dir.path(), "gate.yaml", &pairs);
    let out = run_block(&block, stage.dir.path(), &pairs);
    let printed = String::from_utf8_lossy(&out.stdout);

    let direct = stage.direct();
    let image = &stage.image.digest;
    assert_eq!(direct.digest_of("team/app", "1.0.0").as_ref(), Some(image), "{printed}");
    let hex = image.strip_prefix("sha256:").unwrap();
    let layers = |suffix: &str| {
        let tag = format!("sha256-{hex}{suffix}");
        let manifest = direct.get_manifest("team/app", &tag);
        assert_eq!(manifest.status, 200, "{tag}: {}", manifest.body);
        manifest.json()["layers"].as_array().unwrap().len()
    };
    // Both signatures and both attestations are there, after both refusals.
    assert_eq!((layers(".sig"), layers(".att")), (2, 2), "{printed}");
    let refused = std::fs::read_to_string(stage.dir.path().join("refused.json")).unwrap();
    assert!(refused.contains("would drop 1 of the 2 entries it lists"), "{refused}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("which carries immutable tag `1.0.0`"),
        "{}",
        text(&out)
    );
    eprintln!("{printed}\n{}", String::from_utf8_lossy(&out.stderr));
}

/// docs/audit.md: fill a registry, audit it (a violation, exit 1; JSON and HTML written), fix
/// it (exit 0), compare with a stricter configuration (exit 1). What the page shows of the
/// first audit's output is what it prints.
#[test]
fn the_audit_walkthrough_runs() {
    let stage = Stage::new();
    let blocks = doc::run_by(workspace(), "the_audit_walkthrough_runs");
    assert_eq!(blocks.len(), 3);
    let outputs: Vec<String> = blocks
        .iter()
        .map(|block| {
            let owned = stage.substitutions();
            let pairs: Vec<(&str, &str)> =
                owned.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
            let config = doc::preceding(workspace(), block, "gate config");
            let name = config.text.lines().next().and_then(|l| l.strip_prefix("# ")).unwrap();
            write_config(&config, stage.dir.path(), name, &pairs);
            text(&run_block(block, stage.dir.path(), &pairs))
        })
        .collect();
    let page = std::fs::read_to_string(workspace().join("docs/audit.md")).unwrap();
    let shown = page.split("```text\n").nth(1).unwrap().split("```").next().unwrap();
    for line in shown.lines() {
        // The digest, the time and the port vary; the rest is printed as shown.
        let fixed = line.split("sha256:…").last().unwrap();
        let fixed = fixed.split(" s, ").last().unwrap().split("`http").next().unwrap();
        assert!(outputs[0].contains(fixed.trim()), "`{fixed}` not in\n{}", outputs[0]);
    }
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(stage.dir.path().join("audit.json")).unwrap())
            .unwrap();
    assert_eq!(report["summary"]["denied_images"], 1, "{report}");
    let html = std::fs::read_to_string(stage.dir.path().join("audit.html")).unwrap();
    assert!(html.contains("<dd id=\"count-denied-images\">1</dd>"), "{html}");
    assert!(outputs[1].contains("0 images denied"), "{}", outputs[1]);
    assert!(outputs[2].contains("2 images newly denied, 0 newly allowed"), "{}", outputs[2]);
    assert!(outputs[2].contains("exit status 1"), "{}", outputs[2]);
}

#[test]
fn the_identity_example_runs() {
    let stage = Stage::new();
    // `manifest.json`: an image manifest whose blobs are in the registry.
    let (manifest, digest) = stage.direct().image_manifest("team/app", "build");
    std::fs::write(stage.dir.path().join("manifest.json"), manifest).unwrap();
    let [block] = doc::run_by(workspace(), "the_identity_example_runs").try_into().unwrap();
    stage.run(&block);
    assert_eq!(stage.direct().digest_of("team/app", "build-1"), Some(digest));
    assert_eq!(stage.direct().digest_of("team/app", "1.0.0"), Some(stage.image.digest.clone()));
}

#[test]
fn the_tls_example_runs() {
    let stage = Stage::new();
    let port = free_port();
    let [block] = doc::run_by(workspace(), "the_tls_example_runs").try_into().unwrap();
    let owned = stage.substitutions();
    let mut pairs: Vec<(&str, &str)> =
        owned.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
    let tls_address = format!("127.0.0.1:{port}");
    pairs.push(("127.0.0.1:5443", &tls_address));
    let config = doc::preceding(workspace(), &block, "gate config");
    write_config(&config, stage.dir.path(), "gate-tls.yaml", &pairs);
    run_block(&block, stage.dir.path(), &pairs);
    assert_eq!(stage.direct().digest_of("team/app", "1.0.0"), Some(stage.image.digest.clone()));
}

#[test]
fn the_registry_page_commands_run() {
    let stage = Stage::new();
    let [block] = doc::run_by(workspace(), "the_registry_page_commands_run").try_into().unwrap();
    stage.run(&block);
    let direct = stage.direct();
    let digest = direct.digest_of("policies/immutable-tags", "stable").expect("pushed");
    let signatures = format!("sha256-{}.sig", digest.strip_prefix("sha256:").unwrap());
    assert!(direct.digest_of("policies/immutable-tags", &signatures).is_some(), "signed");
    assert!(stage.dir.path().join("policy-cache/tags.json").is_file(), "the gate cached it");
}

#[test]
fn the_performance_commands_run() {
    // Shorter runs than the page shows (one second per measure, two connections), on the
    // binaries this test run was built with (`TAGPOLICY_PREBUILT`: no cargo build inside).
    let [block] = doc::run_by(workspace(), "the_performance_commands_run").try_into().unwrap();
    let out = run_block(
        &block,
        workspace(),
        &[
            ("--seconds 10", "--seconds 1"),
            ("tests/load/run 10 8", "TAGPOLICY_PREBUILT=1 tests/load/run 1 2"),
        ],
    );
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(printed.contains("| manifest PUT | gate with TLS → registry |"), "{printed}");
}

#[test]
fn the_index_measure_commands_run() {
    // The smallest repository, two rounds, on the binaries this test run was built with.
    let [block] = doc::run_by(workspace(), "the_index_measure_commands_run").try_into().unwrap();
    let out = run_block(
        &block,
        workspace(),
        &[
            (
                "tests/load/index 100 10000 100000",
                "TAGPOLICY_PREBUILT=1 tests/load/index --iterations 2 100",
            ),
            (
                "tests/load/index --redis 100 10000 100000",
                "TAGPOLICY_PREBUILT=1 tests/load/index --redis --iterations 2 100",
            ),
        ],
    );
    let printed = String::from_utf8_lossy(&out.stdout);
    // Both runs printed their measures, and after the fill no push cost more than its writes.
    assert_eq!(printed.matches("\"fill_requests\"").count(), 2, "{printed}");
    assert_eq!(printed.matches("\"redis_bytes\"").count(), 1, "{printed}");
    let pushes = printed.matches("\"delete by digest (denied)\": 1").count();
    assert_eq!(pushes, 2, "{printed}");
}

/// docs/performance.md "Auditing a registry": the measure at a small size, on the binaries this
/// test run was built with; its requests are exactly what the registry logged.
#[test]
fn the_audit_measure_runs() {
    let [block] = doc::run_by(workspace(), "the_audit_measure_runs").try_into().unwrap();
    let small = [("tests/load/audit 1000 100", "TAGPOLICY_PREBUILT=1 tests/load/audit 5 100")];
    let out = run_block(&block, workspace(), &small);
    let measured: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON object");
    assert_eq!(
        (measured["repositories"].as_u64(), measured["tags"].as_u64()),
        (Some(5), Some(500))
    );
    // The catalog, 5 tag lists, a HEAD per tag; min-tags and semver-series find their plants.
    assert_eq!(measured["upstream_requests"], 506, "{measured}");
    assert_eq!(measured["registry_requests"], measured["upstream_requests"], "{measured}");
    assert_eq!(measured["policies"]["min-tags"]["denials"], 25, "{measured}");
    assert_eq!(measured["policies"]["semver-series"]["denials"], 5, "{measured}");
}

#[test]
fn the_language_cost_commands_run() {
    // One second per measure instead of ten; the builds are the ones the page shows.
    let [block] = doc::run_by(workspace(), "the_language_cost_commands_run").try_into().unwrap();
    let out =
        run_block(&block, workspace(), &[("tagpolicy bench ", "tagpolicy bench --seconds 1 ")]);
    let printed = String::from_utf8_lossy(&out.stdout);
    for policy in [
        "immutable-tags 0.1.0 on 1000 synthetic pushes",
        "component size",
        "memory, reused, 100000 decisions",
    ] {
        assert_eq!(printed.matches(policy).count(), 3, "{printed}");
    }
}

/// GitHub's anchor for a heading: lowercase, punctuation dropped, spaces as dashes.
fn anchor(heading: &str) -> String {
    heading
        .trim_start_matches('#')
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || *c == ' ' || *c == '-' || *c == '_')
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

#[test]
fn every_link_points_somewhere() {
    let mut problems = Vec::new();
    let mut links = 0;
    for file in doc::documents(workspace()) {
        let text = std::fs::read_to_string(workspace().join(&file)).unwrap();
        let base = workspace().join(&file).parent().unwrap().to_path_buf();
        for (at, _) in text.match_indices("](") {
            let rest = &text[at + 2..];
            let Some(end) = rest.find(')') else { continue };
            let target = &rest[..end];
            if target.starts_with("http") || target.contains(' ') {
                continue;
            }
            links += 1;
            let (path, fragment) = target.split_once('#').unwrap_or((target, ""));
            let linked = if path.is_empty() { workspace().join(&file) } else { base.join(path) };
            if !linked.exists() {
                problems.push(format!("{file}: `{target}`: no such file"));
                continue;
            }
            if !fragment.is_empty() {
                let headings = std::fs::read_to_string(&linked).unwrap_or_default();
                if !headings.lines().filter(|l| l.starts_with('#')).any(|l| anchor(l) == fragment) {
                    problems.push(format!("{file}: `{target}`: no such heading"));
                }
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    assert!(links >= 10, "only {links} links found");
}

/// docs/sdk/python.md and docs/sdk/javascript.md are what their generators write from the
/// SDKs' sources today. Each generator also fails, naming the item, when a public item has no
/// docstring (JSDoc comment) or no example, or when an example fails against the fake host.
#[test]
fn the_sdk_api_references_match_their_sources() {
    let dir = tempfile::tempdir().unwrap();
    for (page, program, script) in [
        ("python.md", "python3", "guest/python/tools/api_reference.py"),
        ("javascript.md", "node", "guest/javascript/tools/api-reference.js"),
    ] {
        let command = format!("{program} {script}");
        let written = dir.path().join(page);
        let out = std::process::Command::new(program)
            .arg(script)
            .arg(&written)
            .current_dir(workspace())
            // Python: no __pycache__ in the repository.
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .output()
            .unwrap_or_else(|e| panic!("`{command}`: {e}"));
        assert!(out.status.success(), "`{command}` refused the SDK's sources:\n{}", text(&out));
        let generated = std::fs::read_to_string(&written).unwrap();
        let committed =
            std::fs::read_to_string(workspace().join("docs/sdk").join(page)).unwrap_or_default();
        if generated != committed {
            let line = generated.lines().zip(committed.lines()).position(|(a, b)| a != b);
            let line = line.unwrap_or(generated.lines().count().min(committed.lines().count()));
            panic!(
                "docs/sdk/{page} is out of date with the SDK's sources (first difference at line \
                 {}: `{}` is now `{}`); regenerate it with `{command}`",
                line + 1,
                committed.lines().nth(line).unwrap_or("(end of file)"),
                generated.lines().nth(line).unwrap_or("(end of file)"),
            );
        }
    }
}

/// The Rust SDK's reference is its rustdoc (`cargo doc -p tagpolicy-guest --open`): every
/// public item of guest/src has docs (`#![deny(missing_docs)]`) with an example, which `cargo
/// test` compiles, and runs where it needs no host.
#[test]
fn every_public_item_of_the_rust_sdk_has_an_example() {
    let report = rust_api::check(&workspace().join("guest/src/lib.rs"));
    assert!(
        report.without_example.is_empty(),
        "public items of the Rust SDK whose docs show no example (a ``` block):\n{}",
        report.without_example.join("\n")
    );
    // The SDK has about a hundred; far fewer means the check lost sight of them.
    assert!(report.checked >= 80, "only {} public items found in guest/src", report.checked);
}

#[test]
fn the_production_commands_run() {
    // The image from the binary this test run built (no second cargo build), then the alert
    // rules' checks and unit tests.
    let [image, rules] =
        doc::run_by(workspace(), "the_production_commands_run").try_into().unwrap();
    let out =
        run_block(&image, workspace(), &[("cargo build --release --locked -p tagpolicy-cli", ":")]);
    let printed = text(&out);
    assert!(printed.contains("tagpolicy:0.1.0: ") && printed.contains("oci-archive"), "{printed}");
    let out = run_block(&rules, workspace(), &[]);
    let printed = text(&out);
    assert!(printed.contains("SUCCESS"), "{printed}");
    assert!(!printed.contains("FAILED"), "{printed}");
}

#[test]
fn the_data_path_measure_runs() {
    // An 8 MiB blob, one round, one second per manifest measure, on this run's binaries.
    let [block] = doc::run_by(workspace(), "the_data_path_measure_runs").try_into().unwrap();
    let out = run_block(
        &block,
        workspace(),
        &[(
            "tests/load/datapath",
            "TAGPOLICY_PREBUILT=1 tests/load/datapath --mib 8 --rounds 1 --seconds 1",
        )],
    );
    let printed = String::from_utf8_lossy(&out.stdout);
    let rows = [
        "| blob GET, 8 at once | gate |",
        "| manifest HEAD | gate |",
        "| blob GET, 1 client | copy relay |",
        "| manifest GET | splice relay |",
        "the gate: ",
    ];
    for row in rows {
        assert!(printed.contains(row), "no `{row}` in:\n{printed}");
    }
    // Every path's row gives its process's CPU per unit of work and its whole path's, which
    // counts the clients too and so is more; where the cores are full, how busy the path kept
    // them and, for a proxy, the throughput its CPU allows: the registry path's CPU over its own.
    let rows: Vec<Vec<&str>> = printed
        .lines()
        .filter(|l| l.starts_with("| blob ") || l.starts_with("| manifest "))
        .map(|l| l.trim_matches('|').split('|').map(str::trim).collect())
        .collect();
    assert_eq!(rows.len(), 5 * 4, "{printed}");
    let number = |cell: &str| -> f64 { cell.split(' ').next().unwrap().parse().unwrap() };
    for row in &rows {
        let [measure, path, _, _, _, own, whole, estimate] = row[..] else { panic!("row {row:?}") };
        for cpu in [own, whole] {
            assert!(cpu.ends_with(" per GiB") || cpu.ends_with(" per request"), "{row:?}");
        }
        assert!(number(whole) > number(own), "the clients' CPU is not counted: {row:?}");
        if measure != "blob GET, 8 at once" && !measure.starts_with("manifest ") {
            assert_eq!(estimate, "", "one transfer at a time does not fill the cores: {row:?}");
            continue;
        }
        assert!(estimate.ends_with(" cores busy"), "{row:?}");
        if path != "registry" {
            let registry = rows.iter().find(|r| r[0] == measure && r[1] == "registry").unwrap();
            let allowed = number(registry[6]) / number(whole);
            let share = number(estimate.split(" of its throughput").next().unwrap());
            assert!((share - allowed).abs() <= 0.02 + 0.05 * allowed, "{row:?}: {allowed}");
        }
    }
}

#[test]
fn every_alert_has_a_runbook_section() {
    let rules = std::fs::read_to_string(workspace().join("deploy/prometheus/alerts.yaml")).unwrap();
    let page = std::fs::read_to_string(workspace().join("docs/production.md")).unwrap();
    let anchors: Vec<String> = page
        .lines()
        .filter_map(|line| line.strip_prefix('#'))
        .map(|heading| heading.trim_start_matches('#').trim().to_lowercase().replace(' ', "-"))
        .collect();
    let mut linked = 0;
    for line in rules.lines().filter(|l| l.contains("runbook_url")) {
        let anchor = line.split("docs/production.md#").nth(1).unwrap().trim_end_matches('"');
        assert!(anchors.iter().any(|a| a == anchor), "no section `{anchor}` in docs/production.md");
        linked += 1;
    }
    assert!(linked >= 15, "only {linked} runbook links in deploy/prometheus/alerts.yaml");
}
