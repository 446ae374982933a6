//! `tagpolicy audit` against the real registry (docker-registry), filled straight at the
//! registry with known violations of the reference policies beside compliant images: the
//! audit finds exactly those, in text and JSON, exits 1, and 0 once they are fixed;
//! `--compare` lists exactly the images a changed pattern affects; an unreachable registry,
//! one that refuses the audit's reads, and a malformed configuration exit 2 with an error.

mod common;
#[path = "support/registry.rs"]
mod registry;
#[path = "support/stand_in.rs"]
mod stand_in;

use registry::{Client, Gate, Registry, text};
use serde_json::{Value, json};
use std::path::Path;
use std::process::Output;

const SIGNATURE: &str = "application/vnd.dev.cosign.artifact.sig.v1+json";

/// Inside the freeze of `frozen/**` below.
const FROZEN: &str = "2026-12-24T12:00:00Z";
/// After it.
const THAWED: &str = "2027-01-10T12:00:00Z";

/// The rules audited: release tags need a signature and series tags follow their newest
/// release (`team/app`); a new image needs two tags (`team/web`); releases freeze over the
/// year's end (`frozen/**`); signature tags only grow and name their own image (`team/sig`,
/// immutable-tags' defaults); `team/lib`'s releases need a signature. `other/**` is ungoverned.
fn rules(lib_tags: &str) -> String {
    format!(
        r#"rules:
  - repositories: ["team/app"]
    policies:
      - policy: image-requirements
        settings: {{rules: [{{tags: ["\\d+\\.\\d+\\.\\d+"], referrers: ["{SIGNATURE}"]}}]}}
      - policy: semver-series
  - repositories: ["team/web"]
    policies:
      - policy: min-tags
        settings: {{min_tags: 2}}
  - repositories: ["frozen/**"]
    policies:
      - policy: change-freeze
        settings: {{windows: [{{name: year-end, from: "2026-12-20T00:00:00Z", until: "2027-01-04T00:00:00Z"}}], tags: ["\\d+\\.\\d+\\.\\d+"]}}
  - repositories: ["team/sig"]
    policies:
      - policy: immutable-tags
  - repositories: ["team/lib"]
    policies:
      - policy: image-requirements
        settings: {{rules: [{{tags: [{lib_tags}], referrers: ["{SIGNATURE}"]}}]}}
"#
    )
}

/// Push an image unique to `label` by digest, then tag it with `tags`; its digest.
fn image(client: &Client, repository: &str, label: &str, tags: &[&str]) -> String {
    let (manifest, digest) = client.image_manifest(repository, label);
    for reference in std::iter::once(digest.as_str()).chain(tags.iter().copied()) {
        let pushed = client.put_manifest(repository, reference, &manifest);
        assert_eq!(pushed.status, 201, "{repository}:{reference}: {}", pushed.body);
    }
    digest
}

/// Tag `digest` with `tag` (or move `tag` onto it).
fn tag(client: &Client, repository: &str, digest: &str, tag: &str) {
    let manifest = client.get_manifest(repository, digest);
    assert_eq!(manifest.status, 200, "{}", manifest.body);
    let pushed = client.put_manifest(repository, tag, manifest.body.as_bytes());
    assert_eq!(pushed.status, 201, "{}", pushed.body);
}

/// A cosign signature of `digest`, in cosign's layout without a referrers API.
fn sign(client: &Client, repository: &str, digest: &str) {
    let config = client.upload_blob(repository, b"{}");
    let layer = client.upload_blob(repository, digest.as_bytes());
    let signature = json!({
        "schemaVersion": 2,
        "mediaType": registry::MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config, "size": 2},
        "layers": [{"mediaType": "application/vnd.dev.cosign.simplesigning.v1+json", "digest": layer,
                    "size": digest.len(), "annotations": {"dev.cosignproject.cosign/signature": "MEUCIQ..."}}],
    })
    .to_string();
    let tag = format!("{}.sig", digest.replace(':', "-"));
    assert_eq!(client.put_manifest(repository, &tag, signature.as_bytes()).status, 201);
}

fn audit(dir: &Path, args: &[&str]) -> Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_tagpolicy"))
        .arg("audit")
        .args(args)
        .current_dir(dir)
        .env("TAGPOLICY_CACHE_DIR", common::workspace().join("target/test-cache"))
        .output()
        .unwrap()
}

fn config(dir: &Path, name: &str, upstream: &str, rest: &str) {
    std::fs::write(dir.join(name), Gate::config_text(upstream, rest)).unwrap();
}

/// Every (repository, tag, policy) a JSON report's findings name, a finding about the whole
/// push naming each of its image's tags.
fn violations(report: &Value) -> Vec<(String, String, String)> {
    let mut found = Vec::new();
    for repository in report["repositories"].as_array().unwrap() {
        for image in repository["findings"].as_array().unwrap() {
            for finding in image["findings"].as_array().unwrap() {
                let tags: Vec<&str> = match finding["tag"].as_str() {
                    Some(tag) => vec![tag],
                    None => image["tags"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|t| t.as_str().unwrap())
                        .collect(),
                };
                for tag in tags {
                    let name = repository["name"].as_str().unwrap().to_string();
                    found.push((
                        name,
                        tag.to_string(),
                        finding["policy"].as_str().unwrap().to_string(),
                    ));
                }
            }
        }
    }
    found.sort();
    found
}

fn owned(expected: &[(&str, &str, &str)]) -> Vec<(String, String, String)> {
    let mut owned: Vec<_> =
        expected.iter().map(|(r, t, p)| (r.to_string(), t.to_string(), p.to_string())).collect();
    owned.sort();
    owned
}

#[test]
fn audit_finds_exactly_the_violations_and_none_once_they_are_fixed() {
    let registry = Registry::start();
    let client = Client::new(&registry.url());
    // team/app: a signed release with its series (compliant); an unsigned release whose
    // series tag is behind the series' newest release; that newest release, signed.
    let signed = image(&client, "team/app", "a", &["1.0.0", "1.0"]);
    sign(&client, "team/app", &signed);
    let unsigned = image(&client, "team/app", "b", &["1.1.0", "1.1"]);
    let newest = image(&client, "team/app", "c", &["1.1.1"]);
    sign(&client, "team/app", &newest);
    // team/web: an image with two tags (compliant), one with one tag.
    image(&client, "team/web", "d", &["2.0.0", "latest"]);
    let lonely = image(&client, "team/web", "e", &["solo"]);
    // frozen/app: a release created in the freeze, and a tag the freeze does not cover.
    image(&client, "frozen/app", "f", &["3.0.0"]);
    image(&client, "frozen/app", "g", &["dev"]);
    // team/sig: a release, and a signature tag of it whose manifest names another image.
    let released = image(&client, "team/sig", "p", &["2.0.0"]);
    let (other, other_digest) = client.image_manifest("team/sig", "q");
    assert_eq!(client.put_manifest("team/sig", "2.1.0", &other).status, 201);
    let empty = client.upload_blob("team/sig", b"{}");
    let misattributed = json!({
        "schemaVersion": 2,
        "mediaType": registry::MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": empty, "size": 2},
        "layers": [],
        "subject": {"mediaType": registry::MANIFEST, "digest": other_digest, "size": other.len()},
    })
    .to_string();
    let misattributed_digest = format!("sha256:{}", registry::sha256_hex(misattributed.as_bytes()));
    let foreign = format!("{}.sig", released.replace(':', "-"));
    assert_eq!(client.put_manifest("team/sig", &foreign, misattributed.as_bytes()).status, 201);
    // Ungoverned: never audited.
    image(&client, "other/x", "h", &["1.0.0"]);

    let dir = tempfile::tempdir().unwrap();
    config(dir.path(), "gate.yaml", &registry.url(), &rules(r#""\\d+\\.\\d+\\.\\d+""#));
    let out = audit(dir.path(), &["--config", "gate.yaml", "--time", FROZEN, "--output", "json"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let report: Value = serde_json::from_slice(&out.stdout).expect("JSON on stdout");
    assert_eq!(
        violations(&report),
        owned(&[
            ("frozen/app", "3.0.0", "change-freeze"),
            ("team/app", "1.1", "semver-series"),
            ("team/app", "1.1.0", "image-requirements"),
            ("team/sig", &foreign, "immutable-tags"),
            ("team/web", "solo", "min-tags"),
        ]),
        "{report:#}"
    );
    let summary = &report["summary"];
    // team/lib holds nothing, so the catalog does not list it.
    assert_eq!(summary["repositories"], 4, "{summary}");
    assert_eq!(summary["denied_images"], 4, "{summary}");
    // team/app: 3 images and 2 signatures; team/web 2; frozen/app 2; team/sig 3.
    assert_eq!(
        (summary["images"].as_u64(), summary["tags"].as_u64()),
        (Some(12), Some(15)),
        "{summary}"
    );
    assert_eq!(summary["policies"]["min-tags"]["denials"], 1, "{summary}");
    assert!(summary["upstream_requests"].as_u64().unwrap() > 0, "{summary}");
    let names: Vec<&str> = report["repositories"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["frozen/app", "team/app", "team/sig", "team/web"],
        "other/x is not governed"
    );

    // The table says the same, with the reasons.
    let out = audit(dir.path(), &["--config", "gate.yaml", "--time", FROZEN]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let table = String::from_utf8_lossy(&out.stdout);
    for expected in [
        "[image-requirements] tag `1.1.0`",
        "[semver-series]",
        "[min-tags]",
        "[change-freeze]",
        "[immutable-tags] signature tag",
        "4 repositories, 12 images, 15 tags: 4 images denied",
        "  min-tags: 1 denial, 0 warnings, 0 errors",
        &lonely[..19],
        &unsigned[..19],
    ] {
        assert!(table.contains(expected), "`{expected}` not in\n{table}");
    }

    // The page: what the JSON counts, read back from the page as headless Chromium renders
    // it, with no console error, sorted as its address asks.
    let out = audit(
        dir.path(),
        &["--config", "gate.yaml", "--time", FROZEN, "--output", "html", "audit.html"],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let (dom, console) = rendered(&dir.path().join("audit.html"), "#sort=4");
    assert!(!console.contains("CONSOLE"), "console messages:\n{console}");
    for (id, key) in [
        ("repositories", "repositories"),
        ("images", "images"),
        ("tags", "tags"),
        ("denied-images", "denied_images"),
    ] {
        let shown = between(&dom, &format!("<dd id=\"count-{id}\">"), "</dd>");
        assert_eq!(shown, summary[key].to_string(), "count-{id} in\n{dom}");
    }
    // Five findings, sorted by policy (column 4).
    let policies: Vec<&str> = dom
        .split("<tr class=\"deny\">")
        .skip(1)
        .map(|row| {
            row.split("<td>").nth(4).and_then(|cell| cell.split("</td>").next()).unwrap_or("")
        })
        .collect();
    assert_eq!(
        policies,
        ["change-freeze", "image-requirements", "immutable-tags", "min-tags", "semver-series"],
        "{dom}"
    );
    assert!(
        dom.contains("data-label=\"team/app\" data-value=\"1\""),
        "the chart by repository: {dom}"
    );

    // Fixed: the release signed and its series moved to the newest release, the lonely
    // image given a second tag, the misattributed signature deleted, and the freeze over.
    assert_eq!(client.delete_manifest("team/sig", &misattributed_digest).status, 202);
    sign(&client, "team/app", &unsigned);
    tag(&client, "team/app", &newest, "1.1");
    tag(&client, "team/web", &lonely, "solo-2");
    let out = audit(dir.path(), &["--config", "gate.yaml", "--time", THAWED]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("0 images denied"), "{}", text(&out));
}

#[test]
fn compare_lists_exactly_the_images_a_changed_pattern_affects() {
    let registry = Registry::start();
    let client = Client::new(&registry.url());
    let release = image(&client, "team/lib", "r", &["4.0.0"]);
    sign(&client, "team/lib", &release);
    let nightly = image(&client, "team/lib", "n", &["nightly", "build-7"]);
    let dir = tempfile::tempdir().unwrap();
    let upstream = registry.url();
    config(dir.path(), "now.yaml", &upstream, &rules(r#""\\d+\\.\\d+\\.\\d+""#));
    config(dir.path(), "next.yaml", &upstream, &rules(r#""\\d+\\.\\d+\\.\\d+", "nightly""#));
    let args = ["--config", "now.yaml", "--compare", "next.yaml", "--repository", "team/lib"];
    let out = audit(dir.path(), &[&args[..], &["--output", "json"]].concat());
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let comparison: Value = serde_json::from_slice(&out.stdout).expect("JSON on stdout");
    let denied = comparison["newly_denied"].as_array().unwrap();
    assert_eq!(denied.len(), 1, "{comparison:#}");
    assert_eq!(denied[0]["digest"], nightly.as_str());
    assert_eq!(denied[0]["tags"], json!(["nightly"]), "only the tag the new pattern guards");
    assert!(comparison["newly_allowed"].as_array().unwrap().is_empty(), "{comparison:#}");
    // The other way round, the same image is newly allowed; nothing is newly denied.
    let out = audit(dir.path(), &["--config", "next.yaml", "--compare", "now.yaml"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(table.contains("0 images newly denied, 1 newly allowed"), "{table}");
    assert!(table.contains(&nightly[..19]), "{table}");
}

#[test]
fn an_unreachable_or_refusing_registry_and_a_bad_config_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    // Nothing listens on the port of a registry that was stopped.
    let mut stopped = Registry::start();
    let upstream = stopped.url();
    stopped.stop();
    config(dir.path(), "gone.yaml", &upstream, &rules(r#""x""#));
    let out = audit(dir.path(), &["--config", "gone.yaml"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("cannot list the repositories of"), "{stderr}");
    assert!(stderr.contains("unreachable"), "{stderr}");

    // A registry that wants credentials the configuration does not give.
    let (locked, _) = stand_in::start(|_| stand_in::Answer::Reply {
        status: 401,
        headers: vec![("www-authenticate", "Basic realm=\"registry\"".into())],
        body: br#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}"#
            .to_vec(),
    });
    config(dir.path(), "locked.yaml", &locked, &rules(r#""x""#));
    let out = audit(dir.path(), &["--config", "locked.yaml"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("cannot list the repositories of") && stderr.contains("401"),
        "{stderr}"
    );

    std::fs::write(
        dir.path().join("bad.yaml"),
        "listen: 127.0.0.1:0\nupstream: http://127.0.0.1:1\nrulez: []\n",
    )
    .unwrap();
    let out = audit(dir.path(), &["--config", "bad.yaml"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("bad.yaml"), "{}", text(&out));
    let out = audit(dir.path(), &["--config", "gone.yaml", "--output", "html"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--output html needs a file"),
        "{}",
        text(&out)
    );
}

/// `page` as headless Chromium renders it (the DOM after its scripts ran, opened at `hash`),
/// and what Chromium logged (console messages are logged as `CONSOLE(…)`).
fn rendered(page: &Path, hash: &str) -> (String, String) {
    let profile = tempfile::tempdir().unwrap();
    let out = std::process::Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--enable-logging=stderr",
            "--v=0",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(["--virtual-time-budget=5000", "--dump-dom"])
        .arg(format!("file://{}{hash}", page.display()))
        .output()
        .expect("`chromium` (Debian package chromium, installed by tests/setup)");
    assert!(out.status.success(), "{}", text(&out));
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The text between the first `start` and the next `end`.
fn between<'a>(text: &'a str, start: &str, end: &str) -> &'a str {
    let from = text.find(start).unwrap_or_else(|| panic!("no `{start}` in\n{text}")) + start.len();
    let to = text[from..].find(end).unwrap() + from;
    &text[from..to]
}
