//! The Python and JavaScript ports of the reference policies (policies/python,
//! policies/javascript): each is built with `tagpolicy build` exactly as a policy author
//! would build it, passes the Rust originals' scenario suites (`tagpolicy test --replace`),
//! reused and isolated, and gives the same decision as its Rust original, findings and
//! reasons included, on 10,000 generated requests (for `immutable-tags`, half of them changes
//! of signature tags), and refuses the same bad settings.
//!
//! Python and JavaScript policies also meet the sandbox's limits (a loop, a memory bomb) and
//! run in the gate, hot reload included.
//!
//! The toolchains come from `tests/setup` (pinned); a missing one fails these tests.

mod common;
#[path = "support/models.rs"]
mod models;
#[path = "support/registry.rs"]
mod registry;

use common::{push, workspace};
use models::*;
use registry::{Gate, Layout, Registry, eventually_within, sha256_hex, skopeo_copy, text};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tagpolicy::{
    ConfiguredPolicy, Enforcement, Engine, FailMode, Failure, Isolation, Limits, Mode, Outcome,
    Policy, PolicySet, TagMap,
};

const POLICIES: [&str; 5] =
    ["immutable-tags", "min-tags", "semver-series", "image-requirements", "change-freeze"];

#[derive(Debug, Clone, Copy)]
enum Lang {
    Python,
    JavaScript,
}

impl Lang {
    fn folder(self) -> &'static str {
        match self {
            Lang::Python => "python",
            Lang::JavaScript => "javascript",
        }
    }
}

/// The compile cache of everything here: `tagpolicy build` compiles each component into it,
/// and the engines, `tagpolicy test` and the gate then load that compilation instead of
/// compiling a Python or JavaScript runtime again (tens of seconds each).
fn compile_cache() -> PathBuf {
    workspace().join("target/test-policy-cache")
}

/// The command line tool with the pinned toolchains `tests/setup` installed.
fn tagpolicy() -> Command {
    let root = workspace();
    let python = root.join("target/toolchains/python/bin/componentize-py");
    let javascript = root.join("guest/javascript/node_modules/.bin/componentize-js");
    for tool in [&python, &javascript] {
        assert!(tool.is_file(), "`{}` is missing: run tests/setup", tool.display());
    }
    let mut command = Command::new(env!("CARGO_BIN_EXE_tagpolicy"));
    command
        .env("TAGPOLICY_COMPONENTIZE_PY", python)
        .env("TAGPOLICY_COMPONENTIZE_JS", javascript)
        .env("TAGPOLICY_CACHE_DIR", compile_cache());
    command
}

/// Every port of `lang`, built once per test process: (policy name, component).
fn ports(lang: Lang) -> &'static [(&'static str, PathBuf)] {
    static PYTHON: OnceLock<Vec<(&str, PathBuf)>> = OnceLock::new();
    static JAVASCRIPT: OnceLock<Vec<(&str, PathBuf)>> = OnceLock::new();
    let cell = match lang {
        Lang::Python => &PYTHON,
        Lang::JavaScript => &JAVASCRIPT,
    };
    cell.get_or_init(|| {
        POLICIES
            .iter()
            .map(|name| {
                (*name, build(&workspace().join("policies").join(lang.folder()).join(name)))
            })
            .collect()
    })
}

/// `tagpolicy build DIR`; the component's path.
fn build(dir: &Path) -> PathBuf {
    let name = dir.file_name().unwrap().to_str().unwrap();
    let out = tagpolicy().arg("build").arg(dir).args(["--output", "json"]).output().unwrap();
    assert!(
        out.status.success(),
        "tagpolicy build {} failed:\n{}",
        dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let built: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(built["name"], name, "{built}");
    PathBuf::from(built["path"].as_str().unwrap())
}

/// Run the scenario files with each Rust original replaced by its port: all of them with
/// reused instances, and each policy's own suite (`tests/scenarios/<name>.yaml`) isolated,
/// since every isolated policy set snapshots its components anew and a snapshot of a Python
/// or JavaScript runtime takes seconds.
fn scenarios_pass(lang: Lang) {
    let scenarios = workspace().join("tests/scenarios");
    let own: Vec<PathBuf> =
        POLICIES.iter().map(|name| scenarios.join(format!("{name}.yaml"))).collect();
    for (isolation, files) in [("reuse", vec![scenarios.clone()]), ("isolated", own)] {
        let mut command = tagpolicy();
        command.args(["test", "--isolation", isolation]);
        for (name, path) in ports(lang) {
            command.arg("--replace").arg(format!("{name}={}", path.display()));
        }
        let out = command.args(&files).output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{lang:?} ports, {isolation}:\n{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(stdout.contains(" passed, 0 failed"), "{stdout}");
    }
}

#[test]
fn python_ports_pass_the_scenario_suites() {
    scenarios_pass(Lang::Python);
}

#[test]
fn javascript_ports_pass_the_scenario_suites() {
    scenarios_pass(Lang::JavaScript);
}

/// Settings the Rust original accepts, at random, for `name`.
fn random_settings(rng: &mut Rng, name: &str) -> Value {
    match name {
        "immutable-tags" => ImmutableModel::random(rng).0,
        "min-tags" => MinTagsModel::random(rng).0,
        "semver-series" => json!({"latest": rng.chance(50)}),
        "image-requirements" => ImageRequirementsModel::random(rng).0,
        "change-freeze" => ChangeFreezeModel::random(rng).0,
        other => panic!("no settings generator for `{other}`"),
    }
}

/// Settings each original refuses; the port must refuse them too, naming the same field.
fn bad_settings(name: &str) -> Vec<Value> {
    let common = vec![json!({"no_such_field": 1})];
    let own = match name {
        "immutable-tags" => vec![
            json!({"default": "sometimes"}),
            json!({"mutable": ["latest", "[a-"]}),
            json!({"owners": [{"pattern": "ci-.*"}]}),
            json!({"signature_tags": "append-sometimes"}),
        ],
        "min-tags" => vec![json!({"min_tags": "two"}), json!({"required": ["(unclosed"]})],
        "semver-series" => vec![json!({"latest": "yes"})],
        "image-requirements" => vec![json!({"rules": "all"}), json!({"rules": [{"tags": ["("]}]})],
        "change-freeze" => vec![
            json!({"windows": [{"from": "yesterday", "until": "2026-01-01T00:00:00Z"}]}),
            json!({"windows": [{"days": ["someday"], "from": "10:00", "until": "11:00"}]}),
        ],
        _ => vec![],
    };
    common.into_iter().chain(own).collect()
}

/// The field an error names: the text before the first `: `.
fn field(error: &str) -> &str {
    error.split(": ").next().unwrap_or(error)
}

fn agree_with_rust(lang: Lang) {
    const VARIANTS: usize = 25;
    const REQUESTS: usize = 400;
    let engine = cache_engine();
    for (name, path) in ports(lang) {
        // Decisions are compared here, not timings: a generous deadline keeps a loaded CI
        // machine (or a garbage collection) from turning into a false disagreement.
        let patient = |policy: Policy| {
            let limits = Limits { evaluate_deadline: Duration::from_secs(2), ..policy.limits() };
            policy.with_limits(limits).unwrap()
        };
        let rust = patient(engine.load_embedded(name).unwrap());
        let port = patient(engine.load_file(path).unwrap());
        assert_eq!(port.metadata(), rust.metadata(), "{lang:?} {name}: metadata");
        for settings in bad_settings(name) {
            let (Err(rust_error), Err(port_error)) =
                (rust.configure(&settings), port.configure(&settings))
            else {
                panic!("{lang:?} {name}: the original and the port must both refuse {settings}");
            };
            let (rust_error, port_error) = (rust_error.to_string(), port_error.to_string());
            assert_eq!(
                field(&rust_error),
                field(&port_error),
                "{lang:?} {name} {settings}:\nrust: {rust_error}\nport: {port_error}"
            );
        }
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ name.len() as u64);
        let (mut checked, mut denied) = (0, 0);
        for variant in 0..VARIANTS {
            let settings = random_settings(&mut rng, name);
            let configure = |policy: &Policy| -> ConfiguredPolicy {
                policy.configure(&settings).unwrap_or_else(|e| panic!("{name} {settings}: {e}"))
            };
            let (rust_policy, port_policy) = (configure(&rust), configure(&port));
            for i in 0..REQUESTS {
                // Every other request of immutable-tags changes signature tags, whose rule
                // reads the manifests they point at.
                let (state, request) = if *name == "immutable-tags" && i % 2 == 1 {
                    random_signature_case(&mut rng)
                } else {
                    random_case(&mut rng)
                };
                let view = Arc::new(state.clone());
                let expected = rust_policy.evaluate(&request, view.clone()).unwrap();
                let actual = port_policy.evaluate(&request, view).unwrap();
                assert_eq!(
                    actual, expected,
                    "{lang:?} {name} {settings}\nvariant {variant} request {i}: {request:?}\nstate: {state:?}"
                );
                denied += usize::from(expected.outcome == Outcome::Deny);
                checked += 1;
            }
        }
        assert_eq!(checked, VARIANTS * REQUESTS);
        // Both outcomes must occur often, or agreement proves little.
        assert!((500..9_500).contains(&denied), "{lang:?} {name}: {denied} of {checked} denied");
        eprintln!("{lang:?} {name}: {checked} requests, {denied} denied, no disagreement");
    }
}

#[test]
fn python_ports_agree_with_rust_on_10k_requests_each() {
    agree_with_rust(Lang::Python);
}

#[test]
fn javascript_ports_agree_with_rust_on_10k_requests_each() {
    agree_with_rust(Lang::JavaScript);
}

fn cache_engine() -> Engine {
    Engine::builder().cache_dir(compile_cache()).build().unwrap()
}

/// Each reference policy's metadata has one source, `policies/<name>/metadata.json`: the Rust
/// original (`include_metadata!`) and the JavaScript port (an `import`) read it when they are
/// built; the Python port holds a copy, as componentize-py reads nothing outside the policy's
/// folder. Whatever the language, the component must say what the file says, byte for byte.
#[test]
fn every_language_gives_the_metadata_of_the_policy_file() {
    let engine = cache_engine();
    let check = |lang: &str, name: &str, policy: Policy| {
        let file = workspace().join("policies").join(name).join("metadata.json");
        let source: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
        let metadata = policy.metadata();
        let said = json!({
            "name": metadata.name,
            "version": metadata.version,
            "description": metadata.description,
            "settings_example": metadata.settings_example,
        });
        assert_eq!(said, source, "{lang} {name}: not the metadata of {}", file.display());
    };
    for name in POLICIES {
        check("Rust", name, engine.load_embedded(name).unwrap());
    }
    for lang in [Lang::Python, Lang::JavaScript] {
        for (name, path) in ports(lang) {
            check(&format!("{lang:?}"), name, engine.load_file(path).unwrap());
        }
    }
}

#[test]
fn a_python_or_javascript_loop_or_memory_bomb_is_stopped_and_the_push_denied() {
    let engine = cache_engine();
    let empty = || Arc::new(TagMap::new());
    for dir in ["tests/policies/hostile-python", "tests/policies/hostile-javascript"] {
        let path = build(&workspace().join(dir));
        for isolation in [Isolation::Reuse, Isolation::Isolated] {
            let policy = engine.load_file(&path).unwrap().with_isolation(isolation);
            // The bomb gets time enough that the memory limit, not the deadline, stops it
            // on a loaded machine; the loop gets the default deadline.
            let patient = policy
                .with_limits(Limits {
                    evaluate_deadline: Duration::from_secs(10),
                    ..policy.limits()
                })
                .unwrap();
            let configured =
                [policy.configure(&json!({})).unwrap(), patient.configure(&json!({})).unwrap()];
            for tag in ["loop", "bomb", "loop", "bomb"] {
                let (policy, expected): (_, fn(&Failure) -> bool) = match tag {
                    "loop" => (&configured[0], |f| matches!(f, Failure::Deadline(_))),
                    _ => (&configured[1], |f| matches!(f, Failure::Memory(_))),
                };
                let failure = policy.evaluate(&push("a", &[(tag, None)]), empty()).unwrap_err();
                assert!(expected(&failure), "{dir} {isolation:?} `{tag}`: {failure}");
                // The host goes on, and so does the policy with its next request.
                let fine = policy.evaluate(&push("a", &[("fine", None)]), empty()).unwrap();
                assert_eq!(fine.outcome, Outcome::Allow, "{dir} {isolation:?} after `{tag}`");
            }
            // In a policy set, the failure refuses the push (fail closed, outcome `error`)
            // and says why.
            let set = PolicySet::new().with(
                patient.configure(&json!({})).unwrap(),
                Enforcement { mode: Mode::Enforce, fail: FailMode::Closed },
            );
            let decision = set.evaluate(&push("a", &[("bomb", None)]), empty());
            assert_eq!(decision.outcome, Outcome::Error, "{dir} {isolation:?}");
            assert!(
                decision.summary().contains("exceeded its 64 MiB memory limit"),
                "{}",
                decision.summary()
            );
        }
    }
}

/// The gate runs a JavaScript port, then, after a hot reload, the Python port of the same
/// policy, in front of the real registry: skopeo's pushes are decided by each.
#[test]
fn the_gate_runs_ports_and_hot_swaps_between_them() {
    let rules = |path: &Path| {
        format!(
            "rules:\n  - repositories: [\"team/**\"]\n    policies:\n      - policy: {}\n        settings: {{mutable: [\"latest\"]}}\n",
            path.display()
        )
    };
    let by_name = |lang: Lang| {
        ports(lang).iter().find(|(name, _)| *name == "immutable-tags").unwrap().1.clone()
    };
    let registry = Registry::start();
    let gate = Gate::start_with_cache(
        &registry.url(),
        &rules(&by_name(Lang::JavaScript)),
        &compile_cache(),
    );
    let images = tempfile::tempdir().unwrap();
    let first = Layout::image(images.path(), 1, 1024);
    let second = Layout::image(images.path(), 2, 1024);
    let push = |layout: &Layout, tag: &str| {
        skopeo_copy(layout, &gate.address, &format!("team/app:{tag}"), false)
    };

    let out = push(&first, "1.0.0");
    assert!(out.status.success(), "{}", text(&out));
    let out = push(&second, "1.0.0");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("denied: immutable-tags: tag `1.0.0` is immutable"),
        "{}",
        text(&out)
    );

    std::fs::write(
        gate.config_path(),
        Gate::config_text(&registry.url(), &rules(&by_name(Lang::Python))),
    )
    .unwrap();
    // The gate sees the file change and reloads (as it would on SIGHUP).
    // (It loads the Python component first, a runtime of tens of MB: allow for a loaded
    // machine.)
    eventually_within(Duration::from_secs(120), "the gate reloads", || {
        gate.log().contains("configuration reloaded")
    });
    // The log names the component each load brought in, by its sha256.
    let sha256 = |lang| sha256_hex(&std::fs::read(by_name(lang)).unwrap());
    let log = gate.log();
    let (javascript, python) = (sha256(Lang::JavaScript), sha256(Lang::Python));
    let loaded_at = |sha: &str| log.find(sha).unwrap_or_else(|| panic!("{sha} not in\n{log}"));
    assert!(loaded_at(&javascript) < log.find("configuration reloaded").unwrap(), "{log}");
    assert!(loaded_at(&python) > loaded_at(&javascript), "{log}");

    let out = push(&second, "1.0.0");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("denied: immutable-tags: tag `1.0.0` is immutable"),
        "{}",
        text(&out)
    );
    let out = push(&second, "latest");
    assert!(out.status.success(), "{}", text(&out));
    let decisions = gate.decisions();
    let outcomes: Vec<&str> = decisions.iter().map(|d| d["decision"].as_str().unwrap()).collect();
    assert_eq!(outcomes, ["allow", "deny", "deny", "allow"]);
}

/// The SDKs' own unit tests, run outside a component against a fake host, so that
/// `cargo test` runs them with everything else.
#[test]
fn the_python_and_javascript_sdk_unit_tests_pass() {
    let root = workspace();
    for (what, program, args) in [
        ("python", "python3", &["-m", "unittest", "discover", "-s", "guest/python/tests"][..]),
        ("javascript", "node", &["--test", "guest/javascript/test/"][..]),
    ] {
        let out = Command::new(program).args(args).current_dir(root).output().unwrap();
        let output = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "{what} SDK tests failed:\n{output}");
        // Both runners say how many ran; none at all would pass vacuously.
        let ran = match what {
            "python" => output.contains("\nOK") && !output.contains("Ran 0 tests"),
            _ => output.contains("# pass") && !output.contains("# pass 0"),
        };
        assert!(ran, "{what} SDK tests did not run:\n{output}");
    }
}

/// Python and JavaScript components get no more than Rust ones: built with WASI stubbed or
/// disabled, they import the contract and nothing else, and `inspect` says so.
#[test]
fn ports_import_nothing_but_the_contract() {
    for lang in [Lang::Python, Lang::JavaScript] {
        for (name, path) in ports(lang) {
            let out =
                tagpolicy().arg("inspect").arg(path).args(["--output", "json"]).output().unwrap();
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
            let inspection: Value = serde_json::from_slice(&out.stdout).unwrap();
            let imports = inspection["imports"].as_array().unwrap();
            assert!(!imports.is_empty(), "{inspection}");
            for import in imports {
                let import = import.as_str().unwrap();
                assert!(
                    import.starts_with("tagpolicy:policy/"),
                    "{lang:?} {name} imports `{import}`"
                );
            }
            let out = tagpolicy().arg("inspect").arg(path).output().unwrap();
            let text = String::from_utf8_lossy(&out.stdout);
            assert!(text.contains("imports (all granted; no WASI at all):"), "{text}");
        }
    }
}

/// One way to break a freshly scaffolded policy: the template line containing `find` becomes
/// `broken`; the build fails in the step of `tool`, whose message must contain `message`.
struct Break {
    find: &'static str,
    broken: &'static str,
    tool: &'static str,
    message: &'static str,
}

/// `tagpolicy new NAME --lang LANG` in a temporary folder, then each break in turn: `tagpolicy
/// build` fails, shows the toolchain's own error, and points at the policy's file and the line
/// of the break (not a bundle or a placeholder path), so an author can go straight to it.
fn build_errors_name_the_file_and_line(lang: Lang, breaks: &[Break]) {
    let temp = tempfile::tempdir().unwrap();
    let name = "broken-rule";
    let out = tagpolicy()
        .args(["new", name, "--lang", lang.folder()])
        .current_dir(temp.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let file = match lang {
        Lang::Python => "policy.py",
        Lang::JavaScript => "policy.js",
    };
    let source_path = temp.path().join(name).join(file);
    let source = std::fs::read_to_string(&source_path).unwrap();
    // The build's steps, each announced before it runs.
    let steps: &[&str] = match lang {
        Lang::Python => &["componentize-py"],
        Lang::JavaScript => &["rolldown", "componentize-js"],
    };
    for Break { find, broken, tool, message } in breaks {
        let index = source
            .lines()
            .position(|line| line.contains(find))
            .unwrap_or_else(|| panic!("no line with `{find}` in the {lang:?} template:\n{source}"));
        let line = index + 1;
        let lines: Vec<&str> =
            source.lines().enumerate().map(|(i, l)| if i == index { broken } else { l }).collect();
        std::fs::write(&source_path, lines.join("\n") + "\n").unwrap();

        let out = tagpolicy().arg("build").arg(name).current_dir(temp.path()).output().unwrap();
        let output = text(&out);
        assert!(
            !out.status.success() && out.status.code().is_some(),
            "{lang:?} `{broken}`: {output}"
        );
        assert!(output.contains(message), "{lang:?} `{broken}`: no `{message}` in\n{output}");
        // Python names the file as given to `tagpolicy build`; rolldown and componentize-js
        // name it relative to the policy's folder.
        let at = match lang {
            Lang::Python => output.contains(&format!("File \"{name}/{file}\", line {line}")),
            Lang::JavaScript => output.match_indices(&format!("{file}:{line}:")).any(|(i, _)| {
                !output[..i].ends_with(|c: char| c.is_alphanumeric() || "/.-_".contains(c))
            }),
        };
        assert!(at, "{lang:?} `{broken}`: the output names no `{file}` line {line}:\n{output}");
        for internal in ["\"/0/", "(/0/", "\"/1/", "(/1/", ".bundle.js:", "sys.exit(script())"] {
            assert!(!output.contains(internal), "{lang:?} `{broken}`: `{internal}` in\n{output}");
        }
        // Progress announces each step up to the one that failed, and no further; the last
        // line names the tool and the folder.
        let stderr = String::from_utf8_lossy(&out.stderr);
        let progress: Vec<&str> = stderr.lines().filter(|l| l.starts_with("build: ")).collect();
        let failed = steps.iter().position(|step| step == tool).unwrap() + 1;
        assert_eq!(progress.len(), failed, "{lang:?} `{broken}`: {output}");
        for (line, step) in progress.iter().zip(steps) {
            assert!(line.contains(step) && line.contains(name), "{lang:?} `{broken}`: {output}");
        }
        let last = stderr.trim_end().lines().last().unwrap_or_default();
        assert!(
            last.starts_with("error: ")
                && last.contains(tool)
                && last.contains(&format!("failed to build the policy in `{name}`")),
            "{lang:?} `{broken}`: {output}"
        );
    }
}

#[test]
fn a_python_build_error_names_the_file_and_line() {
    build_errors_name_the_file_and_line(
        Lang::Python,
        &[
            Break {
                find: "exempt = any(",
                broken: "        exempt = any(group in",
                tool: "componentize-py",
                message: "SyntaxError: '(' was never closed",
            },
            Break {
                find: "from tagpolicy_guest.text import",
                broken: "from tagpolicy_guest.text import code_list, no_such_name",
                tool: "componentize-py",
                message: "ImportError: cannot import name 'no_such_name' from 'tagpolicy_guest.text'",
            },
        ],
    );
}

#[test]
fn a_javascript_build_error_names_the_file_and_line() {
    build_errors_name_the_file_and_line(
        Lang::JavaScript,
        &[
            Break {
                find: "const exempt = ",
                broken: "    const exempt = request.actor(.groups;",
                tool: "rolldown",
                message: "[PARSE_ERROR]",
            },
            Break {
                find: "import { definePolicy",
                broken: "import { definePolicy, settings as s, noSuchName } from 'tagpolicy-guest';",
                tool: "rolldown",
                message: "\"noSuchName\" is not exported",
            },
            // Past the bundler: componentize-js runs the module and reports the bundle's
            // line, which the build maps back to the source.
            Break {
                find: "description: ",
                broken: "  description: noSuchFunction(),",
                tool: "componentize-js",
                message: "ReferenceError: noSuchFunction is not defined",
            },
        ],
    );
}

/// `tagpolicy build` of the test policy `tests/policies/NAME`, then `tagpolicy eval` of its
/// `scenario.yaml`: the table's text with its wrapping undone, and each push's result from
/// the JSON output.
fn built_and_evaluated(name: &str) -> (String, Vec<Value>) {
    let dir = workspace().join("tests/policies").join(name);
    build(&dir);
    let scenario = dir.join("scenario.yaml");
    let out = tagpolicy().arg("eval").arg(&scenario).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let words: Vec<&str> = stdout.split_whitespace().filter(|w| !["│", "┆"].contains(w)).collect();
    let out = tagpolicy().arg("eval").arg(&scenario).args(["--output", "json"]).output().unwrap();
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let results = report["results"].as_array().unwrap().clone();
    // The scenario's `expect`s (error for a throw, allow for a print) pass as a test too.
    let test = tagpolicy().arg("test").arg(&scenario).output().unwrap();
    assert!(test.status.success(), "{}", String::from_utf8_lossy(&test.stdout));
    (words.join(" "), results)
}

/// A push's first reason ("" for none), and its failure's kind ("" for none).
fn first_finding(result: &Value) -> (&str, &str) {
    let finding = &result["findings"][0];
    (finding["reason"].as_str().unwrap_or(""), finding["failure"]["kind"].as_str().unwrap_or(""))
}

/// `expected`, with runs of spaces as the table's unwrapped text has them.
fn in_table(text: &str, expected: &str) -> bool {
    text.contains(&expected.split_whitespace().collect::<Vec<_>>().join(" "))
}

/// A JavaScript policy's own bug is the policy's failure (outcome `error`, kind `exception`),
/// reported with its message and the line of the policy's source (mapped back from the bundle
/// by the table the build appends), in text and JSON, as Python's are; `console.log` prints
/// with the push.
#[test]
fn a_javascript_exception_names_its_message_and_the_policy_line() {
    let (text, results) = built_and_evaluated("throwing-javascript");
    let typo = "policy `throwing-javascript` failed: TypeError: request.tagOf is not a function (policy.js:13); the request is denied";
    assert!(in_table(&text, typo), "`{typo}` not in\n{text}");
    assert_eq!(results[0]["outcome"], "error", "{results:?}");
    assert_eq!(first_finding(&results[0]), (typo, "exception"), "{results:?}");
    let printed = "checking print {\"tags\":1}\n";
    assert_eq!(results[1]["outcome"], "allow", "{results:?}");
    assert_eq!(results[1]["output"][0]["text"], printed, "{results:?}");
    assert!(in_table(&text, "[throwing-javascript] printed: checking print"), "{text}");
    let thrown = first_finding(&results[2]);
    assert!(thrown.0.contains("no throw-string (thrown, not an Error)"), "{results:?}");
    assert_eq!((results[2]["outcome"].as_str(), thrown.1), (Some("error"), "exception"));
    assert_eq!(
        (results[3]["outcome"].as_str(), first_finding(&results[3])),
        (Some("allow"), ("", ""))
    );
}

/// The same for Python: an exception names the policy's line, not the SDK's; `print` prints.
#[test]
fn a_python_exception_or_print_names_the_policy_line() {
    let (text, results) = built_and_evaluated("throwing-python");
    let typo = "policy `throwing-python` failed: AttributeError: 'Change' object has no attribute 'digets' (policy.py, line 18); the request is denied";
    assert!(in_table(&text, typo), "`{typo}` not in\n{text}");
    assert_eq!(results[0]["outcome"], "error", "{results:?}");
    assert_eq!(first_finding(&results[0]), (typo, "exception"), "{results:?}");
    assert_eq!(results[1]["outcome"], "allow", "{results:?}");
    assert_eq!(results[1]["output"][0]["text"], "checking print\n", "{results:?}");
    assert!(in_table(&text, "[throwing-python] printed: checking print"), "{text}");
    assert_eq!(
        (results[2]["outcome"].as_str(), first_finding(&results[2])),
        (Some("allow"), ("", ""))
    );
}
