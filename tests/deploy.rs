//! deploy/: the Kubernetes manifests render and validate offline against the Kubernetes
//! schemas (kubernetes-validate, installed by tests/setup into target/toolchains/deploy), keep
//! the invariants a production deployment rests on, and carry a gate.yaml that
//! `tagpolicy serve --check` accepts with the files the Deployment mounts next to it; the
//! systemd unit passes `systemd-analyze verify` and keeps its sandbox.

mod common;
#[path = "support/pki.rs"]
mod pki;

use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The oldest Kubernetes the manifests are for (the kubelet's own preStop `sleep` is on by
/// default from 1.30), and the newest kubernetes-validate bundles schemas for.
const KUBERNETES: &[&str] = &["1.30", "1.37"];

/// The shutdown grace the gate gives requests in flight (limits.shutdown_grace's default).
const SHUTDOWN_GRACE_SECONDS: i64 = 25;

fn manifests_dir() -> PathBuf {
    common::workspace().join("deploy/kubernetes")
}

/// `tests/deploy/manifests.py ARGS` with the pinned kubernetes-validate; a missing install
/// fails the test, as the other toolchain tests do, so that CI never passes by skipping.
fn manifests_py(args: &[&str]) -> Output {
    let python = common::workspace().join("target/toolchains/deploy/bin/python");
    assert!(
        python.exists(),
        "kubernetes-validate is not installed at {}: run tests/setup",
        python.display()
    );
    Command::new(python)
        .current_dir(common::workspace())
        .arg("tests/deploy/manifests.py")
        .args(args)
        .output()
        .expect("run tests/deploy/manifests.py")
}

/// What the kustomization renders to, and the example Secrets, validated for Kubernetes
/// `version` (strict: unknown fields are errors); panics naming each invalid object and field.
fn rendered(version: &str) -> Rendered {
    let dir = manifests_dir();
    let secrets = dir.join("secrets.example.yaml");
    let out = manifests_py(&[
        dir.to_str().unwrap(),
        "--kubernetes",
        version,
        "--also",
        secrets.to_str().unwrap(),
        "--kubectl",
    ]);
    assert!(
        out.status.success(),
        "deploy/kubernetes does not validate for Kubernetes {version}:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let result: Value = serde_json::from_slice(&out.stdout).expect("manifests.py prints JSON");
    let objects = result["objects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| (entry["source"].as_str().unwrap().to_string(), entry["object"].clone()))
        .collect();
    Rendered { objects, kubectl: result["kubectl"].as_str().unwrap().to_string() }
}

struct Rendered {
    /// (file, object), the kustomization's first, then secrets.example.yaml's.
    objects: Vec<(String, Value)>,
    /// `compared` when a kubectl on PATH rendered the same objects, `absent` without one.
    kubectl: String,
}

impl Rendered {
    fn all(&self, kind: &str) -> Vec<&Value> {
        self.objects.iter().map(|(_, o)| o).filter(|o| o["kind"] == kind).collect()
    }

    fn one(&self, kind: &str, name: &str) -> &Value {
        let found: Vec<_> =
            self.all(kind).into_iter().filter(|o| o["metadata"]["name"] == name).collect();
        assert_eq!(found.len(), 1, "expected exactly one {kind}/{name} in deploy/kubernetes");
        found[0]
    }

    /// Every workload's pod template, by `Kind/name`.
    fn pod_templates(&self) -> Vec<(String, &Value)> {
        self.objects
            .iter()
            .map(|(_, o)| o)
            .filter(|o| o["spec"]["template"]["spec"].is_object())
            .map(|o| (name_of(o), &o["spec"]["template"]))
            .collect()
    }
}

fn name_of(object: &Value) -> String {
    format!("{}/{}", object["kind"].as_str().unwrap(), object["metadata"]["name"].as_str().unwrap())
}

/// Whether a label selector's `matchLabels` (and nothing else) picks pods labelled `labels`.
fn selects(selector: &Value, labels: &Value) -> bool {
    let Some(wanted) = selector["matchLabels"].as_object() else { return false };
    selector.get("matchExpressions").is_none()
        && !wanted.is_empty()
        && wanted.iter().all(|(key, value)| labels.get(key) == Some(value))
}

fn container<'a>(deployment: &'a Value, name: &str) -> &'a Value {
    deployment["spec"]["template"]["spec"]["containers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("{} has no container `{name}`", name_of(deployment)))
}

/// The number of a container's port named `name`.
fn port_number(container: &Value, name: &str) -> i64 {
    container["ports"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == name)
        .unwrap_or_else(|| panic!("container `{}` has no port `{name}`", container["name"]))
        ["containerPort"]
        .as_i64()
        .unwrap()
}

/// The port of an `ADDRESS:PORT` in gate.yaml.
fn listen_port(config: &Value, field: &str) -> i64 {
    let address = config[field].as_str().unwrap_or_else(|| panic!("gate.yaml has no `{field}`"));
    address.rsplit_once(':').unwrap().1.parse().unwrap()
}

/// The gate.yaml in the ConfigMap, as written.
fn gate_yaml(rendered: &Rendered) -> String {
    rendered.one("ConfigMap", "tagpolicy-gate")["data"]["gate.yaml"].as_str().unwrap().to_string()
}

#[test]
fn the_manifests_render_and_validate_against_the_kubernetes_schemas() {
    for version in KUBERNETES {
        let rendered = rendered(version);
        let kinds: Vec<String> = rendered.objects.iter().map(|(_, o)| name_of(o)).collect();
        eprintln!(
            "Kubernetes {version}: {} objects valid ({}); kubectl kustomize: {}",
            kinds.len(),
            kinds.join(", "),
            rendered.kubectl
        );
        for kind in [
            "Namespace",
            "ConfigMap",
            "Deployment",
            "Service",
            "PodDisruptionBudget",
            "NetworkPolicy",
            "Secret",
        ] {
            assert!(!rendered.all(kind).is_empty(), "no {kind} in deploy/kubernetes");
        }
        // The kustomization's namespace on every namespaced object, the example Secrets too.
        for (source, object) in &rendered.objects {
            if object["kind"] != "Namespace" {
                assert_eq!(
                    object["metadata"]["namespace"],
                    "tagpolicy",
                    "{source}: {} is not in the namespace tagpolicy",
                    name_of(object)
                );
            }
        }
    }
}

#[test]
fn an_invalid_manifest_is_named_with_its_field() {
    // The validator and the renderer catch what the test relies on them for: a copy of the
    // manifests with a misspelled field, one with a kind Kubernetes does not have, and one with
    // a value of the wrong type, each named with its file, object and field.
    let cases = [
        (
            "readOnlyRootFilesystem: true",
            "readOnlyRootFileSystem: true",
            "Deployment/tagpolicy-gate: spec.template.spec.containers.0.securityContext",
        ),
        (
            "kind: PodDisruptionBudget",
            "kind: PodDisruptionBudgit",
            "PodDisruptionBudgit/tagpolicy-gate: no schema for kind",
        ),
        (
            "periodSeconds: 2\n",
            "periodSeconds: \"2\"\n",
            "Deployment/tagpolicy-gate: spec.template.spec.containers.0.startupProbe.periodSeconds",
        ),
    ];
    for (from, to, expected) in cases {
        let copy = tempfile::tempdir().unwrap();
        for entry in std::fs::read_dir(manifests_dir()).unwrap() {
            let path = entry.unwrap().path();
            std::fs::copy(&path, copy.path().join(path.file_name().unwrap())).unwrap();
        }
        let gate = copy.path().join("gate.yaml");
        let text = std::fs::read_to_string(&gate).unwrap();
        assert!(text.contains(from), "gate.yaml no longer has `{from}`");
        std::fs::write(&gate, text.replacen(from, to, 1)).unwrap();
        let out = manifests_py(&[copy.path().to_str().unwrap(), "--kubernetes", KUBERNETES[0]]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "`{to}` passed validation");
        assert!(
            stderr.contains(expected),
            "the error does not name the object and field `{expected}`: {stderr}"
        );
    }
}

#[test]
fn the_renderer_refuses_kustomize_features_it_does_not_implement() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("cm.yaml"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n",
    )
    .unwrap();
    for (extra, expected) in [
        ("patches: [{path: p.yaml}]\n", "patches"),
        ("labels: [{pairs: {a: b}, includeSelectors: true}]\n", "labels"),
        ("images: [{name: x, digest: sha256:00}]\n", "images"),
    ] {
        std::fs::write(
            dir.path().join("kustomization.yaml"),
            format!(
                "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources: [cm.yaml]\n{extra}"
            ),
        )
        .unwrap();
        let out = manifests_py(&[dir.path().to_str().unwrap(), "--kubernetes", KUBERNETES[0]]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "the renderer accepted `{extra}`");
        assert!(stderr.contains(expected), "the refusal does not name `{expected}`: {stderr}");
    }
}

#[test]
fn the_gates_keep_the_production_invariants() {
    let rendered = rendered(KUBERNETES[0]);
    let gate = rendered.one("Deployment", "tagpolicy-gate");
    let pod = &gate["spec"]["template"];
    let labels = &pod["metadata"]["labels"];
    let config: Value = serde_yaml_ng::from_str(&gate_yaml(&rendered)).unwrap();

    // Three replicas; a disruption budget that keeps two, and so lets one go.
    let replicas = gate["spec"]["replicas"].as_i64().unwrap();
    assert_eq!(replicas, 3, "the gate Deployment runs {replicas} replicas, not 3");
    assert!(selects(&gate["spec"]["selector"], labels), "the Deployment selects other pods");
    let pdb = rendered.one("PodDisruptionBudget", "tagpolicy-gate");
    let min_available = pdb["spec"]["minAvailable"].as_i64().expect("minAvailable as a number");
    assert!(
        (1..replicas).contains(&min_available),
        "PodDisruptionBudget minAvailable {min_available} with {replicas} replicas: a drain could never evict a gate, or no gate need stay"
    );
    assert!(selects(&pdb["spec"]["selector"], labels), "the PodDisruptionBudget selects no gate");

    // The image, its ports and the gate.yaml's listeners agree; the Service reaches the gates.
    let c = container(gate, "gate");
    assert_eq!(c["image"], "tagpolicy:0.1.0");
    assert_eq!(port_number(c, "registry"), listen_port(&config, "listen"));
    assert_eq!(port_number(c, "admin"), listen_port(&config, "admin_listen"));
    let service = rendered.one("Service", "tagpolicy-gate");
    assert!(selects(&serde_json::json!({"matchLabels": service["spec"]["selector"]}), labels));
    assert!(
        service["spec"]["ports"].as_array().unwrap().iter().all(|p| p["targetPort"] == "registry"),
        "the Service sends clients to a port other than the gate's"
    );

    // Probes on the admin listener: startup and liveness /healthz, readiness /readyz.
    for (probe, path) in
        [("startupProbe", "/healthz"), ("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")]
    {
        let get = &c[probe]["httpGet"];
        assert_eq!(get["path"], path, "{probe} asks {} instead of {path}", get["path"]);
        assert_eq!(get["port"], "admin", "{probe} is not on the admin port");
    }
    let startup = &c["startupProbe"];
    let startup_budget = startup["periodSeconds"].as_i64().unwrap_or(10)
        * startup["failureThreshold"].as_i64().unwrap_or(3);
    assert!(startup_budget >= 60, "the startupProbe gives compiles only {startup_budget}s");

    // Shutdown: the preStop sleep and the gate's grace fit in the grace period.
    let sleep = c["lifecycle"]["preStop"]["sleep"]["seconds"].as_i64().unwrap_or(0);
    let grace = pod["spec"]["terminationGracePeriodSeconds"].as_i64().unwrap_or(30);
    assert!(
        grace > sleep + SHUTDOWN_GRACE_SECONDS,
        "terminationGracePeriodSeconds {grace} leaves the gate less than its {SHUTDOWN_GRACE_SECONDS}s shutdown grace after a {sleep}s preStop sleep"
    );

    // The compile cache and /tmp on emptyDirs, the cache where TAGPOLICY_CACHE_DIR says.
    let env: BTreeMap<&str, &Value> = c["env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["name"].as_str().unwrap(), &e["value"]))
        .collect();
    assert_eq!(env.get("TAGPOLICY_CACHE_DIR").copied(), Some(&Value::from("/var/cache/tagpolicy")));
    let volumes = pod["spec"]["volumes"].as_array().unwrap();
    let volume_at = |path: &str| -> &Value {
        let mount = c["volumeMounts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["mountPath"] == path)
            .unwrap_or_else(|| panic!("nothing is mounted at {path}"));
        volumes.iter().find(|v| v["name"] == mount["name"]).unwrap()
    };
    for path in ["/var/cache/tagpolicy", "/tmp"] {
        assert!(volume_at(path)["emptyDir"].is_object(), "{path} is not an emptyDir");
    }
    // The image runs `tagpolicy serve --config /etc/tagpolicy/gate.yaml`.
    let projected = &volume_at("/etc/tagpolicy")["projected"]["sources"];
    assert!(
        projected.as_array().unwrap().iter().any(|s| s["configMap"]["name"] == "tagpolicy-gate")
    );
}

#[test]
fn every_container_runs_unprivileged_with_resources_set() {
    let rendered = rendered(KUBERNETES[0]);
    let templates = rendered.pod_templates();
    assert!(templates.len() >= 2, "expected the gate and Redis workloads");
    for (workload, template) in templates {
        let spec = &template["spec"];
        assert_eq!(
            spec["automountServiceAccountToken"], false,
            "{workload}: service account token mounted"
        );
        let containers: Vec<&Value> = ["initContainers", "containers"]
            .iter()
            .filter_map(|k| spec[k].as_array())
            .flatten()
            .collect();
        for c in containers {
            let at = format!("{workload}: container `{}`", c["name"].as_str().unwrap());
            let sc = &c["securityContext"];
            for (field, want) in [
                ("runAsNonRoot", Value::from(true)),
                ("runAsUser", Value::from(65532)),
                ("readOnlyRootFilesystem", Value::from(true)),
                ("allowPrivilegeEscalation", Value::from(false)),
                ("capabilities", serde_json::json!({"drop": ["ALL"]})),
                ("seccompProfile", serde_json::json!({"type": "RuntimeDefault"})),
            ] {
                assert_eq!(sc[field], want, "{at}: securityContext.{field} is {}", sc[field]);
            }
            for side in ["requests", "limits"] {
                for resource in ["cpu", "memory"] {
                    assert!(
                        c["resources"][side][resource].is_string(),
                        "{at}: resources.{side}.{resource} is not set"
                    );
                }
            }
        }
    }
}

#[test]
fn the_network_policies_fence_the_gates_and_redis() {
    let rendered = rendered(KUBERNETES[0]);
    let gate_labels =
        &rendered.one("Deployment", "tagpolicy-gate")["spec"]["template"]["metadata"]["labels"];
    let redis = rendered.one("Deployment", "tagpolicy-redis");
    let redis_labels = &redis["spec"]["template"]["metadata"]["labels"];
    let redis_port = port_number(container(redis, "redis"), "redis");
    let policies = rendered.all("NetworkPolicy");
    let for_pods = |labels: &Value| -> &Value {
        let found: Vec<_> =
            policies.iter().filter(|p| selects(&p["spec"]["podSelector"], labels)).collect();
        assert_eq!(found.len(), 1, "expected one NetworkPolicy selecting {labels}");
        found[0]
    };
    let both = serde_json::json!(["Ingress", "Egress"]);

    let gate = for_pods(gate_labels);
    assert_eq!(gate["spec"]["policyTypes"], both);
    let ingress = gate["spec"]["ingress"].as_array().unwrap();
    let rule_for = |port: &str| {
        let rules: Vec<_> = ingress
            .iter()
            .filter(|r| r["ports"].as_array().unwrap().iter().any(|p| p["port"] == port))
            .collect();
        assert_eq!(rules.len(), 1, "expected one ingress rule for the gate's port `{port}`");
        rules[0]
    };
    assert!(rule_for("registry").get("from").is_none(), "clients cannot reach the gate's port");
    let admin_from = rule_for("admin")["from"].as_array().expect("the admin port open to all");
    assert!(!admin_from.is_empty());
    for peer in admin_from {
        assert!(
            peer["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"] == "monitoring"
                && peer["podSelector"]["matchLabels"].is_object(),
            "the admin port admits {peer}, not only Prometheus pods in the monitoring namespace"
        );
    }
    let egress = gate["spec"]["egress"].as_array().unwrap();
    assert!(
        egress.iter().any(|r| {
            r["to"]
                .as_array()
                .unwrap()
                .iter()
                .any(|peer| selects(&peer["podSelector"], redis_labels))
                && r["ports"].as_array().unwrap().iter().any(|p| p["port"] == redis_port)
        }),
        "the gates may not reach Redis"
    );
    assert!(
        egress.iter().any(|r| r["ports"].as_array().unwrap().iter().any(|p| p["port"] == 53)),
        "the gates may not resolve names"
    );

    let policy = for_pods(redis_labels);
    assert_eq!(policy["spec"]["policyTypes"], both);
    assert!(policy["spec"].get("egress").is_none(), "Redis may call out");
    for rule in policy["spec"]["ingress"].as_array().unwrap() {
        let from = rule["from"].as_array().expect("Redis open to every pod");
        assert!(
            from.iter().all(|peer| {
                peer.get("namespaceSelector").is_none()
                    && peer.get("ipBlock").is_none()
                    && selects(&peer["podSelector"], gate_labels)
            }),
            "Redis admits more than the gates: {from:?}"
        );
    }
}

/// The Deployment's config volume laid out in `dir` as the kubelet would: gate.yaml from the
/// ConfigMap, and for each Secret item a file of the kind its key names (`secret` gives the
/// content of each Secret key, or test material where it is None).
fn lay_out_config(rendered: &Rendered, dir: &Path, secret: impl Fn(&str, &str) -> Option<String>) {
    let gate = rendered.one("Deployment", "tagpolicy-gate");
    let volume = gate["spec"]["template"]["spec"]["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["projected"].is_object())
        .expect("a projected config volume");
    let issued = pki::Authority::new("deploy-test-ca").server(&["tagpolicy-gate.tagpolicy.svc"], 1);
    for source in volume["projected"]["sources"].as_array().unwrap() {
        for (kind, reference) in source.as_object().unwrap() {
            let name = reference["name"].as_str().unwrap();
            for item in reference["items"].as_array().unwrap() {
                let (key, path) = (item["key"].as_str().unwrap(), item["path"].as_str().unwrap());
                let content = match (kind.as_str(), key) {
                    ("configMap", _) => {
                        rendered.one("ConfigMap", name)["data"][key].as_str().unwrap().to_string()
                    }
                    (_, _) if secret(name, key).is_some() => secret(name, key).unwrap(),
                    (_, "tls.crt") => issued.cert_pem.clone(),
                    (_, "tls.key") => issued.key_pem.clone(),
                    (_, k) if k.ends_with(".htpasswd") => {
                        format!("alice:{}\n", bcrypt::hash("wonderland", 4).unwrap())
                    }
                    (_, k) if k.ends_with(".password") => "reader-password\n".to_string(),
                    (kind, key) => panic!("no test material for {kind} {name} key {key}"),
                };
                let file = dir.join(path);
                std::fs::create_dir_all(file.parent().unwrap()).unwrap();
                std::fs::write(file, content).unwrap();
            }
        }
    }
}

fn check(config: &Path) -> Output {
    let cache = tempfile::tempdir().unwrap();
    Command::new(env!("CARGO_BIN_EXE_tagpolicy"))
        .args(["serve", "--check", "--config"])
        .arg(config)
        .env("TAGPOLICY_CACHE_DIR", cache.path())
        .output()
        .unwrap()
}

#[test]
fn the_configmap_gate_yaml_passes_tagpolicy_serve_check() {
    let rendered = rendered(KUBERNETES[0]);
    let dir = tempfile::tempdir().unwrap();
    lay_out_config(&rendered, dir.path(), |_, _| None);
    let out = check(&dir.path().join("gate.yaml"));
    assert!(
        out.status.success(),
        "the ConfigMap's gate.yaml, with the files the Deployment mounts beside it, fails `tagpolicy serve --check`:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn the_placeholder_secrets_start_no_gate() {
    // secrets.example.yaml says that a gate given its placeholders refuses to start.
    let rendered = rendered(KUBERNETES[0]);
    let secrets: Vec<&Value> = rendered
        .objects
        .iter()
        .filter(|(source, _)| source.ends_with("secrets.example.yaml"))
        .map(|(_, o)| o)
        .collect();
    for (name, key) in [
        ("tagpolicy-tls", "tls.crt"),
        ("tagpolicy-tls", "tls.key"),
        ("tagpolicy-credentials", "users.htpasswd"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        lay_out_config(&rendered, dir.path(), |n, k| {
            (n == name && k == key).then(|| {
                let secret = secrets.iter().find(|s| s["metadata"]["name"] == n).unwrap();
                secret["stringData"][k].as_str().unwrap().to_string()
            })
        });
        let out = check(&dir.path().join("gate.yaml"));
        assert_eq!(out.status.code(), Some(2), "the placeholder {name} {key} was accepted");
    }
}

/// The unit's `Key=value` lines (a key set twice keeps every value).
fn unit_settings(text: &str) -> BTreeMap<String, Vec<String>> {
    let mut settings: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for line in text.lines().map(str::trim) {
        if line.starts_with('#') || line.starts_with('[') || line.is_empty() {
            continue;
        }
        let (key, value) = line.split_once('=').expect("Key=value");
        settings.entry(key.to_string()).or_default().push(value.to_string());
    }
    settings
}

#[test]
fn the_systemd_unit_verifies_and_keeps_its_sandbox() {
    let unit = common::workspace().join("deploy/systemd/tagpolicy.service");
    let text = std::fs::read_to_string(&unit).unwrap();
    let settings = unit_settings(&text);
    let one = |key: &str| -> &str {
        let values = settings.get(key).unwrap_or_else(|| panic!("tagpolicy.service has no {key}="));
        values.last().unwrap()
    };
    for (key, want) in [
        ("ProtectSystem", "strict"),
        ("ProtectHome", "yes"),
        ("PrivateTmp", "yes"),
        ("NoNewPrivileges", "yes"),
        ("DynamicUser", "yes"),
        ("CapabilityBoundingSet", ""),
        ("RestrictAddressFamilies", "AF_INET AF_INET6 AF_UNIX"),
        ("CacheDirectory", "tagpolicy"),
        ("KillSignal", "SIGTERM"),
        ("ExecReload", "/bin/kill -HUP $MAINPID"),
    ] {
        assert_eq!(one(key), want, "tagpolicy.service: {key}=");
    }
    assert!(settings["SystemCallFilter"].iter().any(|v| v == "@system-service"));
    assert!(settings["Environment"].iter().any(|v| v == "TAGPOLICY_CACHE_DIR=%C/tagpolicy"));
    // wasmtime maps the code it compiles executable: W^X denial would stop every policy.
    assert!(
        !settings.contains_key("MemoryDenyWriteExecute"),
        "MemoryDenyWriteExecute breaks the JIT"
    );
    let stop: i64 = one("TimeoutStopSec").trim_end_matches('s').parse().unwrap();
    assert!(stop > SHUTDOWN_GRACE_SECONDS, "TimeoutStopSec={stop} cuts the shutdown grace short");

    // systemd-analyze checks every key and value, and that ExecStart's binary exists: the
    // unit with this build's binary in place of /usr/local/bin/tagpolicy.
    let installed = "/usr/local/bin/tagpolicy ";
    assert!(text.contains(installed), "ExecStart no longer runs {installed}");
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("tagpolicy.service");
    std::fs::write(
        &copy,
        text.replace(installed, &format!("{} ", env!("CARGO_BIN_EXE_tagpolicy"))),
    )
    .unwrap();
    let analyze = |args: &[&str]| {
        Command::new("systemd-analyze")
            .args(args)
            .arg(&copy)
            .output()
            .expect("systemd-analyze (Debian's systemd; tests/setup installs it)")
    };
    let out = analyze(&["verify"]);
    // It warns on stderr, and exits 0, for unknown keys and values it cannot parse.
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && stderr.trim().is_empty(), "systemd-analyze verify:\n{stderr}");
    let out = analyze(&["security", "--offline=true", "--no-pager"]);
    let report = String::from_utf8_lossy(&out.stdout);
    let score: f64 = report
        .lines()
        .find_map(|l| l.split_once("Overall exposure level for tagpolicy.service: "))
        .and_then(|(_, rest)| rest.split_whitespace().next())
        .unwrap_or_else(|| {
            panic!("no exposure level in:\n{report}{}", String::from_utf8_lossy(&out.stderr))
        })
        .parse()
        .unwrap();
    eprintln!("systemd-analyze security: exposure {score}");
    assert!(score <= 2.0, "the unit's exposure rose to {score}:\n{report}");
}
