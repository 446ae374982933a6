//! Real clients through the gate: oras-py (PyPI `oras`, pinned in tests/clients/requirements.txt
//! and installed by tests/setup into target/toolchains/clients) attaches a signature and an
//! SBOM to an image and then releases it, on CNCF distribution 2.8 (no referrers API: the
//! client keeps the referrers tag `sha256-<hex>`) and on a stand-in with the referrers API
//! (the client sees `OCI-Subject` and writes no such tag); and a push a policy denies shows
//! the policy's reason in oras-py's output after one request, not after a storm of retries.
//! tests/clients/oras_client.py is the driver; docs/clients.md shows what every client prints.

mod common;
#[path = "support/referrers_registry.rs"]
mod referrers_registry;
#[path = "support/registry.rs"]
mod registry;

use referrers_registry::ReferrersRegistry;
use registry::{Client, Gate, Registry, text};
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const SIGNATURE: &str = "application/vnd.dev.cosign.artifact.sig.v1+json";
const SBOM: &str = "application/spdx+json";

/// `immutable-tags` at its defaults (every tag immutable, the signature tags append-only), and
/// release tags only on an image with a signature and an SBOM.
const RULES: &str = r#"rules:
  - repositories: ["team/**"]
    policies:
      - policy: immutable-tags
      - policy: image-requirements
        settings:
          rules:
            - tags: ["\\d+\\.\\d+\\.\\d+"]
              referrers: ["application/vnd.dev.cosign.artifact.sig.v1+json", "application/spdx+json"]
"#;

/// oras-py run through the driver script, with files to push in a temporary folder.
struct Oras {
    python: PathBuf,
    script: PathBuf,
    files: tempfile::TempDir,
}

/// How long one oras-py command may take: oras-py's retries after a 403 last about 130 s, so
/// a bound well under that ends a retry storm instead of waiting it out (the assertions are on
/// request counts, never on this time).
const COMMAND_BOUND: Duration = Duration::from_secs(60);

impl Oras {
    /// The driver with the oras-py tests/setup installed; a missing one fails the test, as
    /// the ports tests fail without their toolchains, so that CI never passes by skipping.
    fn installed() -> Oras {
        let python = common::workspace().join("target/toolchains/clients/bin/python");
        assert!(
            python.exists(),
            "oras-py is not installed at {}: run tests/setup",
            python.display()
        );
        let script = common::workspace().join("tests/clients/oras_client.py");
        Oras { python, script, files: tempfile::tempdir().unwrap() }
    }

    /// A file named `name` holding `content`, to push.
    fn file(&self, name: &str, content: &str) -> String {
        let path = self.files.path().join(name);
        std::fs::write(&path, content).unwrap();
        path.display().to_string()
    }

    /// Run `oras_client.py ARGS`, killed after [`COMMAND_BOUND`].
    fn run(&self, args: &[&str]) -> Output {
        let mut child = Command::new(&self.python)
            .arg(&self.script)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + COMMAND_BOUND;
        while child.try_wait().unwrap().is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        child.wait_with_output().unwrap()
    }

    /// Run it; it must succeed. Its standard output.
    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(out.status.success(), "oras_client.py {args:?}:\n{}", text(&out));
        String::from_utf8(out.stdout).unwrap()
    }
}

fn host(gate: &Gate) -> &str {
    &gate.address
}

/// Push the image `team/app:build-1`, then attach a signature and an SBOM to it; the attach
/// commands' outputs and the image's digest.
fn push_and_attach(oras: &Oras, gate: &Gate) -> (Vec<String>, String) {
    let image = oras.file("app.txt", "the application");
    let pushed = oras.ok(&["push", host(gate), "team/app:build-1", &image]);
    let digest = pushed.split_whitespace().last().unwrap().to_string();
    assert!(digest.starts_with("sha256:"), "{pushed}");
    let signature = oras.file("signature.sig", "a signature");
    let sbom = oras.file("sbom.spdx.json", r#"{"spdxVersion":"SPDX-2.3"}"#);
    let attached = [(SIGNATURE, signature), (SBOM, sbom)]
        .iter()
        .map(|(kind, file)| oras.ok(&["attach", host(gate), "team/app", "build-1", kind, file]))
        .collect();
    (attached, digest)
}

/// Every decision so far allowed its request.
fn all_allowed(gate: &Gate) {
    let decisions = gate.decisions();
    assert!(!decisions.is_empty());
    for decision in &decisions {
        assert_eq!(decision["decision"], "allow", "{decision}");
    }
}

/// The second referrer moves `sha256-<hex>` to an index that keeps the first: allowed by
/// `immutable-tags`' append-only signature tags (issue 26), refused before them.
#[test]
fn oras_py_on_the_fallback_keeps_the_referrers_tag_and_the_release_is_allowed() {
    let oras = Oras::installed();
    let registry = Registry::start();
    let gate = Gate::start(&registry.url(), RULES);
    let (attached, digest) = push_and_attach(&oras, &gate);
    let fallback = digest.replace(':', "-");
    // distribution 2.8 answers no `OCI-Subject`: the client writes the index tag, once
    // created and once moved to an index that keeps the first referrer.
    assert!(
        attached[0].contains(&format!("fallback tag {fallback} (1 referrers)")),
        "{attached:?}"
    );
    assert!(
        attached[1].contains(&format!("fallback tag {fallback} (2 referrers)")),
        "{attached:?}"
    );

    oras.ok(&["tag", host(&gate), "team/app", "build-1", "1.0.0"]);
    all_allowed(&gate);
    let direct = Client::new(&registry.url());
    assert_eq!(direct.tags("team/app"), ["1.0.0", "build-1", fallback.as_str()]);
    assert_eq!(direct.digest_of("team/app", "1.0.0").as_deref(), Some(digest.as_str()));
    let index = direct.get_manifest("team/app", &fallback).json();
    let types: Vec<&str> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["artifactType"].as_str().unwrap())
        .collect();
    assert_eq!(types, [SIGNATURE, SBOM]);
    // oras-py lists what the registry has, through the gate.
    let tags = oras.ok(&["tags", host(&gate), "team/app"]);
    let mut tags: Vec<&str> = tags.lines().collect();
    tags.sort();
    assert_eq!(tags, ["1.0.0", "build-1", fallback.as_str()]);
}

#[test]
fn oras_py_on_a_registry_with_the_referrers_api_writes_no_fallback_tag() {
    let oras = Oras::installed();
    let registry = Registry::start();
    let stand_in = ReferrersRegistry::start(&registry.url());
    let gate = Gate::start(&stand_in.url, RULES);
    let (attached, digest) = push_and_attach(&oras, &gate);
    // The gate passed the registry's `OCI-Subject` on: the client wrote no index tag.
    for output in &attached {
        assert!(output.contains("OCI-Subject, no fallback tag"), "{attached:?}");
    }
    assert_eq!(stand_in.referrers_of("team/app", &digest), 2);

    // The gate finds both referrers through the referrers API: the release is allowed.
    oras.ok(&["tag", host(&gate), "team/app", "build-1", "1.0.0"]);
    all_allowed(&gate);
    let direct = Client::new(&registry.url());
    assert_eq!(direct.tags("team/app"), ["1.0.0", "build-1"]);
    let fallback_writes: Vec<String> = registry
        .requests()
        .into_iter()
        .filter(|r| r.starts_with("PUT ") && r.contains("/manifests/sha256-"))
        .collect();
    assert!(fallback_writes.is_empty(), "{fallback_writes:?}");
    let referrers = Client::new(&stand_in.url)
        .get(&format!("/v2/team/app/referrers/{digest}?artifactType=application%2Fspdx%2Bjson"));
    assert_eq!(referrers.header_all("oci-filters-applied"), ["artifactType"]);
    assert_eq!(referrers.json()["manifests"].as_array().unwrap().len(), 1);
}

/// oras-py takes a 403 for an authentication challenge and retries it; the gate answers a
/// policy's denial with 409 `DENIED`, which oras-py reports with its message.
#[test]
fn a_denied_oras_py_push_shows_the_reason_after_one_request() {
    let oras = Oras::installed();
    let registry = Registry::start();
    let gate = Gate::start(&registry.url(), RULES);
    // A release tag on an image nothing refers to: `image-requirements` denies it.
    let image = oras.file("app.txt", "an unsigned application");
    let out = oras.run(&["push", host(&gate), "team/app:1.0.0", &image]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{}", text(&out));
    assert!(
        stderr.contains(&format!("no artifact of type `{SIGNATURE}` refers to it")),
        "oras-py does not show the reason:\n{}",
        text(&out)
    );
    assert!(!stderr.contains("Retrying"), "oras-py retried:\n{}", text(&out));

    // One manifest PUT reached the gate, was decided once and denied, and none reached the
    // registry.
    let decisions = gate.decisions();
    assert_eq!(decisions.len(), 1, "{decisions:?}");
    assert_eq!(decisions[0]["decision"], "deny");
    assert_eq!(decisions[0]["tags"], serde_json::json!(["1.0.0"]));
    let metrics = gate.metrics();
    assert!(
        metrics.contains(r#"tagpolicy_gate_requests_total{route="manifest_put"} 1"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(
            r#"tagpolicy_gate_decisions_total{policy="image-requirements",outcome="deny"} 1"#
        ),
        "{metrics}"
    );
    let puts =
        registry.requests().into_iter().filter(|r| r.starts_with("PUT /v2/team/app/manifests/"));
    assert_eq!(puts.count(), 0);
}
