//! The `tagpolicy` binary as users and CI run it: exit codes, output, error messages.

mod common;
#[path = "support/doc.rs"]
mod doc;

use common::workspace;
use std::path::Path;
use std::process::{Command, Output};

fn tagpolicy(args: &[&str], dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tagpolicy"))
        .args(args)
        .current_dir(dir)
        .env_remove("RUST_BACKTRACE")
        // Compiled policies are shared between the tests, and kept out of the home folder.
        .env("TAGPOLICY_CACHE_DIR", workspace().join("target").join("test-cache"))
        .output()
        .expect("run tagpolicy")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn scenario(dir: &Path, name: &str, yaml: &str) -> String {
    std::fs::write(dir.join(name), yaml).unwrap();
    name.to_string()
}

#[test]
fn eval_shows_each_decision_and_exits_1_on_a_denial() {
    let out = tagpolicy(&["eval", "examples/release.yaml"], workspace());
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}{}", text(&out.stderr));
    // Cells wrap at the table's width: check words that stay on one line.
    assert!(stdout.contains("release 1.2.11 with its series"), "{stdout}");
    assert!(stdout.contains("[immutable-tags] tag `1.2.10` is immutable"), "{stdout}");
    assert!(stdout.contains("2 allowed, 0 warned, 6 denied"), "{stdout}");
}

#[test]
fn eval_json_is_one_document_for_machines() {
    let out = tagpolicy(&["eval", "examples/release.yaml", "--output", "json"], workspace());
    assert_eq!(out.status.code(), Some(1));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON on stdout");
    assert_eq!(report["repository"], "team/app");
    assert_eq!(report["denied"], 6);
    let first = &report["results"][0];
    assert_eq!(first["outcome"], "allow");
    assert_eq!(first["image"], "app-1211");
    assert_eq!(first["tags"], serde_json::json!(["1.2.11", "1.2", "latest"]));
    let second = &report["results"][1];
    assert_eq!(second["outcome"], "deny");
    assert_eq!(second["findings"][0]["policy"], "immutable-tags");
    assert_eq!(second["findings"][0]["severity"], "deny");
    assert_eq!(second["findings"][0]["tag"], "1.2.10");
}

#[test]
fn eval_exits_0_when_everything_is_allowed_and_policy_can_be_overridden() {
    let dir = tempfile::tempdir().unwrap();
    let file = scenario(
        dir.path(),
        "s.yaml",
        "repository: team/app\nstate: {\"1.0\": a}\npushes:\n  - {image: b, tags: [\"1.0\"]}\n",
    );
    std::fs::write(dir.path().join("settings.yaml"), "mutable: ['\\d+\\.\\d+']\n").unwrap();
    let out = tagpolicy(
        &["eval", &file, "--policy", "immutable-tags", "--settings", "settings.yaml"],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(0), "{}{}", text(&out.stdout), text(&out.stderr));
    // Without the settings, the default (immutable) applies.
    let out = tagpolicy(&["eval", &file, "--policy", "immutable-tags"], dir.path());
    assert_eq!(out.status.code(), Some(1));
    // A scenario without policies needs --policy.
    let out = tagpolicy(&["eval", &file], dir.path());
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr)
            .contains("`s.yaml`: policies: none; list them in the scenario or pass `--policy`")
    );
}

#[test]
fn the_scenario_suite_passes_with_reused_and_with_isolated_instances() {
    for isolation in ["reuse", "isolated"] {
        let out = tagpolicy(&["test", "tests/scenarios", "--isolation", isolation], workspace());
        let stdout = text(&out.stdout);
        assert_eq!(out.status.code(), Some(0), "{isolation}: {stdout}{}", text(&out.stderr));
        let last = stdout.lines().last().unwrap();
        let passed: usize = last.strip_suffix(" passed, 0 failed").expect(last).parse().unwrap();
        assert!(passed >= 40, "{last}");
    }
    let out = tagpolicy(&["test", "tests/scenarios", "--isolation", "shared"], workspace());
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("`shared` is not an isolation mode"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn test_reports_failures_with_expected_actual_and_reasons() {
    let dir = tempfile::tempdir().unwrap();
    scenario(
        dir.path(),
        "wrong.yaml",
        r#"repository: team/app
policies: [{policy: immutable-tags}]
state: {"1.0.0": a}
pushes:
  - {name: moves a release, image: b, tags: ["1.0.0"], expect: allow}
  - {name: right, image: b, tags: ["2.0.0"], expect: allow}
  - {name: wrong reason, image: c, tags: ["1.0.0"], expect: deny, reason: frozen}
"#,
    );
    let out = tagpolicy(&["test", "."], dir.path());
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("FAILED ./wrong.yaml push 1 `moves a release`: b → 1.0.0"), "{stdout}");
    assert!(stdout.contains("expected allow, got deny"), "{stdout}");
    assert!(stdout.contains("[immutable-tags] tag `1.0.0` is immutable"), "{stdout}");
    assert!(stdout.contains("expected a reason containing `frozen`"), "{stdout}");
    assert!(stdout.ends_with("1 passed, 2 failed\n"), "{stdout}");

    let out = tagpolicy(&["test", ".", "--output", "json"], dir.path());
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["failed"], 2);
    assert_eq!(summary["failures"][0]["expected"], "allow");
    assert_eq!(summary["failures"][0]["actual"], "deny");
}

#[test]
fn a_crashing_policy_fails_a_test_that_expects_deny_and_passes_one_that_expects_error() {
    let dir = tempfile::tempdir().unwrap();
    let crash = |expect: &str| {
        format!(
            "repository: team/app\npolicies:\n  - policy: {}\n    settings: {{behaviour: panic}}\npushes:\n  - {{name: crash, image: a, tags: [\"1.0\"], {expect}}}\n",
            common::hostile_policy().display()
        )
    };
    scenario(dir.path(), "deny.yaml", &crash("expect: deny"));
    let out = tagpolicy(&["test", "deny.yaml"], dir.path());
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}{}", text(&out.stderr));
    assert!(stdout.contains("expected deny, got error: policy `hostile` panicked: "), "{stdout}");
    assert!(stdout.ends_with("0 passed, 1 failed\n"), "{stdout}");
    let out = tagpolicy(&["test", "deny.yaml", "--output", "json"], dir.path());
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["failures"][0]["actual"], "error", "{summary}");

    // `expect: error` matches, with a reason as printed, `[policy]` and all.
    let reason = "expect: error, reason: \"[hostile] policy `hostile` panicked\"";
    scenario(dir.path(), "error.yaml", &crash(reason));
    let out = tagpolicy(&["test", "error.yaml"], dir.path());
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));

    // `eval` shows the outcome and the failure, and exits 1: the push was refused.
    let out = tagpolicy(&["eval", "error.yaml"], dir.path());
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("ERROR"), "{stdout}");
    assert!(stdout.contains("0 allowed, 0 warned, 0 denied, 1 refused because a policy failed"));
    let out = tagpolicy(&["eval", "error.yaml", "--output", "json"], dir.path());
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!((report["denied"].as_u64(), report["failed"].as_u64()), (Some(0), Some(1)));
    let push = &report["results"][0];
    assert_eq!(push["outcome"], "error", "{report}");
    assert_eq!(push["findings"][0]["severity"], "deny", "{report}");
    assert_eq!(push["findings"][0]["failure"]["kind"], "panic", "{report}");
    let message = push["findings"][0]["failure"]["message"].as_str().unwrap();
    assert!(message.starts_with("panicked: the hostile policy panics on purpose"), "{message}");

    // A rule's denial is not an error.
    let denial = "repository: team/app\npolicies: [{policy: immutable-tags}]\nstate: {\"1.0\": a}\npushes:\n  - {image: b, tags: [\"1.0\"], expect: error}\n";
    scenario(dir.path(), "denial.yaml", denial);
    let out = tagpolicy(&["test", "denial.yaml"], dir.path());
    assert!(text(&out.stdout).contains("expected error, got deny"), "{}", text(&out.stdout));
}

#[test]
fn test_says_on_stderr_what_it_loads_and_snapshots_per_file() {
    let args = ["test", "tests/scenarios/audit-mode.yaml", "--isolation", "isolated"];
    let out = tagpolicy(&args, workspace());
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    // Not a terminal: one line per file.
    assert_eq!(
        text(&out.stderr),
        "test: tests/scenarios/audit-mode.yaml: loading immutable-tags (and snapshotting it), \
         min-tags (and snapshotting it)\n"
    );
    let out = tagpolicy(&["test", "tests/scenarios/audit-mode.yaml"], workspace());
    assert_eq!(
        text(&out.stderr),
        "test: tests/scenarios/audit-mode.yaml: loading immutable-tags, min-tags\n"
    );
}

#[test]
fn bench_checks_the_settings_first_and_shows_the_policys_example() {
    let out = tagpolicy(&["bench", "--policy", "change-freeze", "--seconds", "1"], workspace());
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("missing field `windows`"), "{stderr}");
    assert!(stderr.contains("`change-freeze` needs settings: pass `--settings FILE`"), "{stderr}");
    assert!(stderr.contains(r#"its own example: {"windows":"#), "{stderr}");
    // Before the long measurements: the compile to the cache, the baseline.
    assert!(!stderr.contains("bench: loading from the compile cache"), "{stderr}");
}

#[test]
fn invalid_input_exits_2_naming_file_push_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let base = "repository: team/app\npolicies: [{policy: immutable-tags}]\npushes:\n  - {name: p, image: a, tags: [latest]}\n";
    let cases = [
        (base.replace("tags: [latest]", "tags: [latest], colour: red"), "`bad.yaml`: pushes[0]: unknown field `colour`"),
        (base.replace("[latest]", "[\"la test\"]"), "`bad.yaml`: pushes[0] (`p`): tags[0]: `la test` is not a valid tag"),
        (base.replace("team/app", "Team/App"), "`bad.yaml`: repository: `Team/App` is not a valid repository name"),
        (base.replace("image: a", "digest: \"sha256:abc\""), "`bad.yaml`: pushes[0] (`p`): digest: `sha256:abc` is not a valid digest"),
        (base.replace("[latest]", "[]"), "`bad.yaml`: pushes[0] (`p`): tags: empty; a push applies at least one tag"),
        (base.replace("immutable-tags", "missing.wasm"), "`bad.yaml`: policies[0] (`missing.wasm`): cannot read policy file"),
        (base.replace("immutable-tags", "immutable"), "no embedded policy is named `immutable`"),
        (base.replace("{policy: immutable-tags}", "{policy: immutable-tags, settings: {mutable: [\"(\"]}}"), "policy `immutable-tags` rejected its settings: settings.mutable[0]: `(` is not a valid regex"),
        (base.replace("{policy: immutable-tags}", "{policy: immutable-tags, sha256: \"0000000000000000000000000000000000000000000000000000000000000000\"}"), "does not match its pin"),
        ("repository: [\n".to_string(), "`bad.yaml`: "),
        (format!("{base}images:\n  a: {{labels: {{x: y}}, colour: red}}\n"), "`bad.yaml`: images.a: unknown field `colour`"),
        (base.replace("{policy: immutable-tags}", "{policy: immutable-tags, limits: {lookups_ms: 0}}"), "`bad.yaml`: policies[0]: limits.lookups_ms: must be between 1 and 600000"),
        (format!("{base}images:\n  a: {{referrers: [{{artifact_type: t, colour: red}}]}}\n"), "`bad.yaml`: images.a.referrers[0]: unknown field `colour`"),
    ];
    for (yaml, wanted) in cases {
        scenario(dir.path(), "bad.yaml", &yaml);
        for command in ["eval", "test"] {
            let out = tagpolicy(&[command, "bad.yaml"], dir.path());
            let stderr = text(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{command} {yaml}: {stderr}");
            assert!(stderr.contains(wanted), "{command}: wanted `{wanted}` in: {stderr}");
            assert!(!stderr.contains("panicked"), "{stderr}");
            // Each cause once: messages quote their causes.
            assert!(stderr.matches("rejected its settings").count() <= 1, "{stderr}");
        }
    }
    let out = tagpolicy(&["eval", "nowhere.yaml"], dir.path());
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("cannot read scenario `nowhere.yaml`"));
    let out = tagpolicy(&["eval", "bad.yaml", "--settings", "x.yaml"], dir.path());
    assert_eq!(out.status.code(), Some(2), "--settings needs --policy");
}

/// A state file of `tags` tags, as a busy repository holds them: CI tags on their own images
/// (some named by digest), 400 series of 25 releases each with their series tags, and the
/// series 7.3 whose newest release, `7.3.41`, is neither the last by name (`7.3.9` is) nor
/// the only shape (`v7.3.40`, `7.3.42-rc1`).
fn large_state_file(tags: usize) -> String {
    let mut lines = vec![
        "# the tags of team/app: `tag image`, the image a label or a digest".to_string(),
        String::new(),
    ];
    for major in 0..20 {
        for minor in 0..20 {
            let last = if (major, minor) == (7, 3) { 41 } else { 24 };
            for patch in 0..=last {
                let v = if (major, minor, patch) == (7, 3, 40) { "v" } else { "" };
                lines.push(format!("{v}{major}.{minor}.{patch} rel-{major}.{minor}.{patch}"));
            }
            lines.push(format!("{major}.{minor} rel-{major}.{minor}.{last}"));
        }
        lines.push(format!("{major} rel-{major}.19.24"));
    }
    lines.push("7.3.42-rc1 rel-7.3.42-rc1".into());
    lines.push("latest rel-19.19.24".into());
    let mut build = 0;
    while lines.iter().filter(|l| !l.is_empty() && !l.starts_with('#')).count() < tags {
        let image = if build % 10 == 0 {
            tagpolicy_scenario::label_digest(&format!("img-{build}"))
        } else {
            format!("img-{build}")
        };
        lines.push(format!("build-{build} {image}"));
        build += 1;
    }
    lines.join("\n") + "\n"
}

/// Pushes into a repository of 200,000 tags, each expected to be decided as in a small one.
const LARGE_SCENARIO: &str = r#"repository: team/app
policies:
  - policy: semver-series
  - policy: min-tags
    settings: {min_tags: 2, required: ["v?\\d+\\.\\d+\\.\\d+"]}
  - policy: immutable-tags
    settings: {mutable: [latest, "\\d+\\.\\d+"], grace: {period: 15m}}
state_file: tags.txt
history:
  build-189000: {changed: "2026-12-04T09:55:00Z", by: ci-bot}
time: "2026-12-04T10:00:00Z"
pushes:
  - name: 7.3 back to an older release
    image: rel-7.3.39
    tags: ["7.3"]
    expect: deny
    reason: "must point at the newest release of series 7.3 (7.3.41), but this image carries only 7.3.39"
  - name: a release with its series tag
    image: app-7.3.43
    tags: ["7.3.43", "7.3"]
    actor: ci-bot
    expect: allow
  - name: 7.3 stays on the release just pushed
    image: rel-7.3.41
    tags: ["7.3"]
    expect: deny
    reason: "series 7.3 (7.3.43)"
  - name: latest only on the newest release
    image: rel-7.3.41
    tags: [latest]
    expect: deny
    reason: "newest release of the repository (19.19.24)"
  - name: a new image with one tag
    image: ci-new-1
    tags: [build-900001]
    actor: ci-bot
    expect: deny
    reason: "a new image must arrive with at least 2 tags"
  - name: a new image with a release
    image: ci-new-2
    tags: [build-900002, "20.0.0"]
    actor: ci-bot
    expect: allow
  - name: latest follows it
    image: ci-new-2
    tags: [latest]
    expect: allow
  - name: another tag on an image of the state file, named by digest there
    image: img-120
    tags: [promoted-120]
    expect: allow
  - name: a release of the state file never moves
    image: img-121
    tags: ["3.4.5"]
    actor: ci-bot
    expect: deny
    reason: "tag `3.4.5` is immutable (matches no pattern and the default is immutable): it cannot move from"
  - name: another actor may not move a CI tag in its grace period
    image: img-122
    tags: [build-189000]
    actor: alice
    expect: deny
    reason: "only `ci-bot`, who created it, may move it in its 15m grace period"
  - name: its creator may
    image: img-122
    tags: [build-189000]
    actor: ci-bot
    expect: allow
  - name: a CI tag older than the records may not move
    image: img-122
    tags: [build-42]
    actor: ci-bot
    expect: deny
    reason: "its creation is not on record"
"#;

#[test]
fn eval_and_test_decide_as_well_in_a_repository_of_200000_tags() {
    let dir = tempfile::tempdir().unwrap();
    let state = large_state_file(200_000);
    assert_eq!(state.lines().filter(|l| !l.is_empty() && !l.starts_with('#')).count(), 200_000);
    std::fs::write(dir.path().join("tags.txt"), state).unwrap();
    let file = scenario(dir.path(), "large.yaml", LARGE_SCENARIO);

    let out = tagpolicy(&["test", &file], dir.path());
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", text(&out.stderr));
    assert!(stdout.ends_with("12 passed, 0 failed\n"), "{stdout}");

    let out = tagpolicy(&["eval", &file, "--output", "json"], dir.path());
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let outcomes: Vec<&str> = report["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(
        outcomes,
        [
            "deny", "allow", "deny", "deny", "deny", "allow", "allow", "allow", "deny", "deny",
            "allow", "deny"
        ]
    );
    // Each denial comes from the policy whose rule it is, and only from it.
    let policies = |index: usize| -> Vec<&str> {
        let findings = report["results"][index]["findings"].as_array().unwrap();
        let mut policies: Vec<&str> =
            findings.iter().map(|f| f["policy"].as_str().unwrap()).collect();
        policies.dedup();
        policies
    };
    assert_eq!(policies(0), ["semver-series"]);
    assert_eq!(policies(4), ["min-tags"]);
    assert_eq!(policies(8), ["immutable-tags"]);
    assert_eq!(report["results"][7]["image"], "img-120");

    // The expectations tell the rules from a stand-in that allows everything.
    std::fs::write(dir.path().join("allow-all.wasm"), tagpolicy::embedded::FLOOR).unwrap();
    let replaced: Vec<String> = ["semver-series", "min-tags", "immutable-tags"]
        .iter()
        .flat_map(|name| ["--replace".to_string(), format!("{name}=allow-all.wasm")])
        .collect();
    let mut args: Vec<&str> = vec!["test"];
    args.extend(replaced.iter().map(String::as_str));
    args.push(&file);
    let out = tagpolicy(&args, dir.path());
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    assert!(text(&out.stdout).ends_with("5 passed, 7 failed\n"), "{}", text(&out.stdout));
}

#[test]
fn a_bad_state_file_line_or_history_entry_exits_2_naming_the_file_and_the_line_or_field() {
    let dir = tempfile::tempdir().unwrap();
    let head = "repository: team/app\npolicies: [{policy: immutable-tags}]\nstate_file: tags.txt\n";
    let pushes = "pushes:\n  - {image: a, tags: [\"1.0.1\"]}\n";
    let good = "# comment\n\n1.0.0 a\nlatest sha256:4bf5122f344554c53bde2ebb8cd2b7e3d1600ad631c385a5d7cce23c7785459a\n";
    let cases = [
        (
            format!("{good}build-1\n"),
            "",
            "`bad.yaml`: state_file: `tags.txt` line 5: `build-1`: expected `tag image` (a label or a digest)",
        ),
        (
            format!("{good}build-1 img-1 extra\n"),
            "",
            "`tags.txt` line 5: `build-1 img-1 extra`: expected `tag image`",
        ),
        (format!("{good}-x img-1\n"), "", "`tags.txt` line 5: `-x` is not a valid tag"),
        (
            format!("{good}build-2 sha256:12\n"),
            "",
            "`tags.txt` line 5: `build-2`: `sha256:12` is not a valid digest",
        ),
        (
            good.to_string(),
            "history:\n  \"1.0.0\": {changed: yesterday}\n",
            "`bad.yaml`: history.1.0.0.changed: `yesterday` is not an RFC 3339 time",
        ),
        (
            good.to_string(),
            "history:\n  \"1.0.0\": {changed: \"2026-12-04T10:00:00Z\", created: \"2026-12-05T10:00:00Z\"}\n",
            "`bad.yaml`: history.1.0.0.created: `2026-12-05T10:00:00Z` is after `changed`",
        ),
        (
            good.to_string(),
            "history:\n  \"1.0.0\": {changed: \"2026-12-04T10:00:00Z\", created: unknown, created_by: ci-bot}\n",
            "`bad.yaml`: history.1.0.0.created_by: not with `created: unknown`",
        ),
        (
            good.to_string(),
            "history:\n  \"2.0.0\": {changed: \"2026-12-04T10:00:00Z\"}\n",
            "`bad.yaml`: history.2.0.0: `2.0.0` is not a tag of the state",
        ),
        (
            good.to_string(),
            "history:\n  \"1.0.0\": {changed: \"2026-12-04T10:00:00Z\", colour: red}\n",
            "`bad.yaml`: history.1.0.0: unknown field `colour`",
        ),
    ];
    for (state, history, wanted) in cases {
        std::fs::write(dir.path().join("tags.txt"), state).unwrap();
        scenario(dir.path(), "bad.yaml", &format!("{head}{history}{pushes}"));
        for command in ["eval", "test"] {
            let out = tagpolicy(&[command, "bad.yaml"], dir.path());
            let stderr = text(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{command} {wanted}: {stderr}");
            assert!(stderr.contains(wanted), "{command}: wanted `{wanted}` in: {stderr}");
            assert!(!stderr.contains("panicked"), "{stderr}");
            // Each cause once: messages quote their causes.
            assert!(stderr.matches("rejected its settings").count() <= 1, "{stderr}");
        }
    }
    // The same files without the bad line or entry are valid.
    std::fs::write(dir.path().join("tags.txt"), good).unwrap();
    let history = "history:\n  \"1.0.0\": {changed: \"2026-12-04T10:00:00Z\", by: ci-bot, created: unknown}\n";
    scenario(dir.path(), "good.yaml", &format!("{head}{history}{pushes}"));
    let out = tagpolicy(&["eval", "good.yaml"], dir.path());
    assert_eq!(out.status.code(), Some(0), "{}{}", text(&out.stdout), text(&out.stderr));
    let out = tagpolicy(&["eval", "nowhere.yaml"], dir.path());
    assert_eq!(out.status.code(), Some(2));
    std::fs::remove_file(dir.path().join("tags.txt")).unwrap();
    let out = tagpolicy(&["eval", "good.yaml"], dir.path());
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("`good.yaml`: state_file: cannot read `tags.txt`"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn push_refuses_bad_versions_and_times_before_reaching_a_registry() {
    let dir = tempfile::tempdir().unwrap();
    // Port 9 on 127.0.0.1 answers nothing: each case must be refused before any connection.
    let target = "127.0.0.1:9/policies/immutable-tags:1";
    let cases: [(&[&str], Option<&str>, &str); 4] = [
        (&["--policy-version", "latest"], None, "version `latest` is not a semantic version"),
        (
            &["--annotation", "org.opencontainers.image.version=9.9.9"],
            None,
            "give the version with `--policy-version`",
        ),
        (&[], Some("soon"), "SOURCE_DATE_EPOCH `soon` is not a number of seconds"),
        (
            &[],
            Some("99999999999999999"),
            "SOURCE_DATE_EPOCH `99999999999999999` is after the year 9999",
        ),
    ];
    for (extra, epoch, wanted) in cases {
        let mut command = Command::new(env!("CARGO_BIN_EXE_tagpolicy"));
        command.args(["push", "immutable-tags", target]).args(extra).current_dir(dir.path());
        command.env("TAGPOLICY_CACHE_DIR", workspace().join("target").join("test-cache"));
        match epoch {
            Some(epoch) => command.env("SOURCE_DATE_EPOCH", epoch),
            None => command.env_remove("SOURCE_DATE_EPOCH"),
        };
        let out = command.output().unwrap();
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{extra:?} {epoch:?}: {stderr}");
        assert!(stderr.contains(wanted), "wanted `{wanted}` in: {stderr}");
        assert!(!stderr.contains("panicked") && !stderr.contains("127.0.0.1:9"), "{stderr}");
    }
}

#[test]
fn inspect_shows_metadata_and_refuses_what_is_not_a_policy() {
    let out = tagpolicy(&["inspect", "semver-series", "--output", "json"], workspace());
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let info: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(info["metadata"]["name"], "semver-series");
    assert_eq!(info["exports"], serde_json::json!(["tagpolicy:policy/policy@0.3.1"]));
    assert!(info["size"].as_u64().unwrap() > 10_000);

    let out = tagpolicy(&["inspect", "immutable-tags"], workspace());
    assert!(text(&out.stdout).starts_with("immutable-tags 0.1.0\n"), "{}", text(&out.stdout));

    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("junk.wasm"), b"not a component").unwrap();
    let out = tagpolicy(&["inspect", "junk.wasm"], dir.path());
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        text(&out.stderr),
        "error: `junk.wasm` is not a WebAssembly binary (it does not start with `\\0asm`)\n"
    );
}

#[test]
fn new_then_build_then_test_gives_a_working_policy() {
    let dir = tempfile::tempdir().unwrap();
    let out = tagpolicy(&["new", "tag-naming"], dir.path());
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let out = tagpolicy(&["new", "tag-naming"], dir.path());
    assert_eq!(out.status.code(), Some(2), "an existing folder is not overwritten");
    let out = tagpolicy(&["new", "Bad_Name"], dir.path());
    assert_eq!(out.status.code(), Some(2));

    let crate_dir = dir.path().join("tag-naming");
    // The SDK is the one the binary carries, in the policy's own folder: nothing points into
    // this checkout, so the folder builds on any machine with tagpolicy and Rust.
    let manifest = std::fs::read_to_string(crate_dir.join("Cargo.toml")).unwrap();
    assert!(
        manifest.contains(r#"tagpolicy-guest = { path = "build/tagpolicy-guest" }"#),
        "{manifest}"
    );
    assert!(!manifest.contains("path = \"/"), "no absolute path: {manifest}");
    std::fs::remove_dir_all(crate_dir.join("build")).unwrap();
    let out = tagpolicy(&["build", "tag-naming", "--output", "json"], dir.path());
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let built: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(built["name"], "tag-naming");
    assert!(Path::new(built["path"].as_str().unwrap()).is_file());

    let out = tagpolicy(&["test", "scenarios"], &crate_dir);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", text(&out.stderr));
    assert!(stdout.ends_with("4 passed, 0 failed\n"), "{stdout}");

    let out = tagpolicy(&["build", "nowhere"], dir.path());
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr)
            .contains("no `Cargo.toml`, `pyproject.toml` or `package.json` in `nowhere`"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn test_replace_runs_a_suite_with_another_build_and_refuses_a_misspelt_name() {
    let dir = tempfile::tempdir().unwrap();
    // A stand-in that allows everything, in place of immutable-tags.
    std::fs::write(dir.path().join("allow-all.wasm"), tagpolicy::embedded::FLOOR).unwrap();
    let suite = scenario(
        dir.path(),
        "suite.yaml",
        "repository: team/app\npolicies:\n  - policy: immutable-tags\nstate: {\"1.0\": a}\npushes:\n  - {name: a release never moves, image: b, tags: [\"1.0\"], expect: deny}\n",
    );
    let out = tagpolicy(&["test", &suite], dir.path());
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
    let out =
        tagpolicy(&["test", "--replace", "immutable-tags=allow-all.wasm", &suite], dir.path());
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    assert!(text(&out.stdout).contains("expected deny, got allow"), "{}", text(&out.stdout));
    // A misspelt name must not pass by testing the original.
    let out = tagpolicy(&["test", "--replace", "immutable-tag=allow-all.wasm", &suite], dir.path());
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stdout));
    assert!(
        text(&out.stderr)
            .contains("--replace immutable-tag=…: no scenario names the policy `immutable-tag`"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn the_docs_show_the_python_and_javascript_policies_that_new_generates() {
    let page = std::fs::read_to_string(workspace().join("docs/policies.md")).unwrap();
    for (template, name) in [
        (include_str!("../host/cli/src/templates/python-policy.py.txt"), "naming-py"),
        (include_str!("../host/cli/src/templates/javascript-policy.js.txt"), "naming-js"),
    ] {
        let generated = template.replace("{{name}}", name);
        assert!(
            page.contains(&generated),
            "docs/policies.md must show the policy `new` writes for `{name}`"
        );
    }
}

#[test]
fn the_docs_show_the_policy_that_new_generates() {
    let readme = std::fs::read_to_string(workspace().join("docs/policies.md")).unwrap();
    let template =
        include_str!("../host/cli/src/templates/rust-lib.rs.txt").replace("{{name}}", "tag-naming");
    assert!(
        readme.contains(&template),
        "docs/policies.md must show templates/rust-lib.rs.txt as generated for `tag-naming`"
    );
}

#[test]
fn compiled_policies_are_cached_and_no_cache_skips_the_cache() {
    let cache = tempfile::tempdir().unwrap();
    let run = |extra: &[&str]| {
        let mut args = vec!["inspect", "min-tags"];
        args.extend_from_slice(extra);
        Command::new(env!("CARGO_BIN_EXE_tagpolicy"))
            .args(&args)
            .env("TAGPOLICY_CACHE_DIR", cache.path())
            .output()
            .unwrap()
    };
    let entries = || std::fs::read_dir(cache.path()).map(|d| d.count()).unwrap_or(0);
    assert!(run(&["--no-cache"]).status.success());
    assert_eq!(entries(), 0, "--no-cache writes nothing");
    assert!(run(&[]).status.success());
    assert_eq!(entries(), 1, "one compiled component");
    let again = run(&[]);
    assert!(again.status.success());
    assert_eq!(entries(), 1);
    assert!(text(&again.stdout).starts_with("min-tags 0.1.0\n"));
}

#[test]
fn bench_reports_every_measure_as_json() {
    let out = tagpolicy(&["bench", "--seconds", "1", "--output", "json"], workspace());
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("bench: native baseline"), "progress on stderr");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    for field in [
        "native_ns",
        "reused_ns",
        "isolated_ns",
        "reused_p99_ns",
        "isolated_p99_ns",
        "decisions_per_second",
        "threads",
        "compile_ms",
        "cached_load_us",
        "isolated_configure_ns",
        "isolated_configure_p99_ns",
        "snapshot_ms",
        "floor_reused_ns",
        "floor_isolated_ns",
    ] {
        let value = report[field].as_f64().unwrap_or_else(|| panic!("{field} missing: {report}"));
        assert!(value > 0.0, "{field} = {value}");
    }
    assert_eq!(report["isolated_from_snapshot"], true, "{report}");
    assert!(report["size_bytes"].as_u64().unwrap() > 10_000, "{report}");
    let memory = &report["memory"];
    assert_eq!(memory["decisions"], 100_000, "{report}");
    for field in ["first_bytes", "peak_bytes", "last_bytes"] {
        assert!(memory[field].as_u64().unwrap() >= 64 << 10, "{field}: {report}");
    }
    // Rust instances do not grow: replaced only every `recycle_after` (10,000) decisions.
    assert_eq!(memory["replaced"], 10, "{report}");
    // Without `--tags`, the 200-tag repository of every earlier measurement.
    assert_eq!(report["tags"], 200, "{report}");
    let decided = &report["decided"];
    let total: u64 =
        ["allowed", "warned", "denied"].iter().map(|k| decided[k].as_u64().unwrap()).sum();
    assert_eq!(total, 1000, "{report}");
    let out = tagpolicy(&["bench", "--seconds", "0"], workspace());
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn the_repository_size_commands_run() {
    // The commands of docs/performance.md, "Decisions at any repository size", in a
    // repository of 1,000 tags and one second per measure instead of 1,000,000 and ten.
    let marker = "run by tests/cli.rs: the_repository_size_commands_run";
    let [block]: [doc::Block; 1] = doc::blocks(workspace(), "docs/performance.md")
        .into_iter()
        .filter(|b| b.marker.as_deref() == Some(marker))
        .collect::<Vec<_>>()
        .try_into()
        .expect("one block of docs/performance.md is marked `<!-- run by tests/cli.rs: the_repository_size_commands_run -->`");
    let script = doc::script(&block, workspace(), &[("--tags 1000000", "--tags 1000 --seconds 1")]);
    let out = doc::run(&script, workspace(), Path::new(env!("CARGO_BIN_EXE_tagpolicy")));
    assert!(out.status.success(), "{script}\n{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("bench: indexing 1000 tags"), "progress on stderr");
    let reports: Vec<serde_json::Value> = serde_json::Deserializer::from_slice(&out.stdout)
        .into_iter()
        .collect::<Result<_, _>>()
        .expect("one JSON document per command");
    let policies: Vec<&str> = reports.iter().map(|r| r["policy"].as_str().unwrap()).collect();
    assert_eq!(policies, ["semver-series 0.1.0", "min-tags 0.1.0", "immutable-tags 0.1.0"]);
    for report in &reports {
        assert_eq!((report["tags"].as_u64(), report["pushes"].as_u64()), (Some(1000), Some(1000)));
        assert!(report["repository"].as_str().unwrap().starts_with("1000 tags on "), "{report}");
        assert!(!report["pushes_are"].as_str().unwrap().is_empty(), "{report}");
        // What the policy decided: some pushes of each kind, every push once.
        let decided = &report["decided"];
        let count = |key: &str| decided[key].as_u64().unwrap();
        assert!(count("allowed") > 0 && count("denied") > 0, "{report}");
        assert_eq!(count("allowed") + count("warned") + count("denied"), 1000, "{report}");
        assert!(report["index_build_ms"].as_f64().unwrap() > 0.0, "{report}");
        let resident = report["resident_bytes"].as_u64().expect("VmRSS on Linux");
        assert!(report["peak_resident_bytes"].as_u64().unwrap() >= resident, "{report}");
        assert!(report["index_resident_bytes"].is_u64(), "{report}");
        assert!(report["reused_ns"].as_f64().unwrap() > 0.0, "{report}");
        // A native baseline only where there is one: immutable-tags with its own settings.
        let native = report["policy"] == "immutable-tags 0.1.0";
        assert_eq!(report["native_ns"].is_f64(), native, "{report}");
        assert_eq!(report["reused_vs_native"].is_f64(), native, "{report}");
    }
    assert_eq!(reports[2]["settings"]["grace"]["period"], "15m", "moves read tag histories");
    assert_eq!(reports[1]["settings"]["min_tags"], 2);

    // People read that there is no baseline, not a ratio to another rule's.
    let args = ["bench", "--policy", "semver-series", "--tags", "100", "--seconds", "1"];
    let out = tagpolicy(&args, workspace());
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    for line in [
        "semver-series 0.1.0 on 1000 synthetic pushes, in a repository of 100 tags",
        "  pushes: series-tag pushes",
        "  decided: ",
        "  index of 100 tags ",
        "  native baseline          none",
        "  process memory ",
    ] {
        assert!(stdout.contains(line), "`{line}` in:\n{stdout}");
    }
    assert!(!stdout.contains("native\n") && !stdout.contains("× native"), "{stdout}");
    let out = tagpolicy(&["bench", "--tags", "99"], workspace());
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("--tags: 99; give between 100 and 10000000"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn serve_check_loads_the_gate_configuration_or_names_what_is_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let config = |name: &str, yaml: &str| scenario(dir.path(), name, yaml);
    let valid = config(
        "gate.yaml",
        "listen: 127.0.0.1:0\nupstream: http://127.0.0.1:5001\nrules:\n  - repositories: [\"team/**\"]\n    policies:\n      - policy: immutable-tags\n        settings: {mutable: [latest]}\n",
    );
    let out = tagpolicy(&["serve", "--config", &valid, "--check"], dir.path());
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("valid") && stdout.contains("team/** -> immutable-tags"), "{stdout}");
    assert!(stdout.contains("every request is anonymous"), "{stdout}");

    let cases = [
        (
            "unknown.yaml",
            "listen: 127.0.0.1:0\nupstream: http://x:1\nrulz: []\n",
            "unknown field `rulz`",
        ),
        (
            "settings.yaml",
            "listen: 127.0.0.1:0\nupstream: http://x:1\nrules:\n  - repositories: [a]\n    policies:\n      - policy: immutable-tags\n        settings: {mutable: [\"(\"]}\n",
            "rules[0].policies[0] (`immutable-tags`)",
        ),
        (
            "identity.yaml",
            "listen: 127.0.0.1:0\nupstream: http://x:1\nidentity:\n  htpasswd: missing.htpasswd\n",
            "identity.htpasswd: cannot read",
        ),
    ];
    for (name, yaml, expected) in cases {
        let path = config(name, yaml);
        let out = tagpolicy(&["serve", "--config", &path, "--check"], dir.path());
        assert_eq!(out.status.code(), Some(2), "{name}");
        let stderr = text(&out.stderr);
        assert!(stderr.contains(name) && stderr.contains(expected), "{name}: {stderr}");
    }
}

/// What a policy prints goes with the push it was printed for: in the table (the start of
/// it, and how much the engine's 64 KiB cap dropped) and in JSON (all it kept, and the count).
#[test]
fn eval_shows_what_policies_printed_with_their_push_capped_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let hostile = common::hostile_policy();
    let file = scenario(
        dir.path(),
        "printing.yaml",
        &format!(
            "repository: team/app\npolicies:\n  - policy: {}\n    settings: {{behaviour: chatty}}\npushes:\n  - name: chatty\n    image: app-1\n    tags: [a]\n    expect: allow\n",
            hostile.display()
        ),
    );
    let out = tagpolicy(&["eval", &file], dir.path());
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", text(&out.stderr));
    let line = format!("{}\n", "chatter ".repeat(128));
    let dropped = 200 * line.len() - (64 << 10);
    assert!(stdout.contains("[hostile] printed:"), "{stdout}");
    assert!(stdout.contains("(the rest in --output json)"), "{stdout}");
    assert!(
        stdout.contains(&format!("({dropped} more bytes dropped: the cap is reached)")),
        "{stdout}"
    );

    let out = tagpolicy(&["eval", &file, "--output", "json"], dir.path());
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON on stdout");
    let output = &report["results"][0]["output"];
    assert_eq!(output[0]["policy"], "hostile", "{output}");
    assert_eq!(output[0]["text"].as_str().unwrap().len(), 64 << 10);
    assert_eq!(output[0]["dropped_bytes"], dropped);
}
