//! The host library with the real compiled reference policies and a misbehaving one.

mod common;

use common::{digest, hostile_policy, push};
use serde_json::json;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tagpolicy::{
    ConfiguredPolicy, Engine, Error, Failure, Isolation, Limits, Mode, Outcome, PolicySet, TagMap,
};

fn engine() -> Engine {
    Engine::new().expect("engine")
}

fn state(entries: &[(&str, &str)]) -> Arc<TagMap> {
    Arc::new(entries.iter().map(|(tag, image)| (tag.to_string(), digest(image))).collect())
}

fn hostile(engine: &Engine, behaviour: &str) -> Result<ConfiguredPolicy, Error> {
    engine.load_file(hostile_policy())?.configure(&json!({ "behaviour": behaviour }))
}

#[test]
fn embedded_policies_load_with_metadata_and_only_granted_imports() {
    let engine = engine();
    for name in tagpolicy::embedded::names() {
        let policy = engine.load_embedded(name).unwrap();
        let metadata = policy.metadata();
        assert_eq!(metadata.name, name);
        assert_eq!(metadata.version, env!("CARGO_PKG_VERSION"));
        assert!(!metadata.description.is_empty());
        let example: serde_json::Value = serde_json::from_str(&metadata.settings_example).unwrap();
        // The advertised example must itself be accepted.
        policy.configure(&example).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(policy.exports(), ["tagpolicy:policy/policy@0.3.1"]);
        for import in policy.imports() {
            let allowed =
                ["tagpolicy:policy/", "wasi:io/", "wasi:cli/", "wasi:random/", "wasi:clocks/"];
            assert!(allowed.iter().any(|p| import.starts_with(p)), "{name} imports {import}");
            assert!(!import.contains("filesystem") && !import.contains("sockets"), "{import}");
        }
        assert_eq!(policy.sha256().len(), 64);
    }
}

#[test]
fn settings_errors_name_the_field_and_value() {
    let engine = engine();
    let cases = [
        (
            "immutable-tags",
            json!({"mutabel": ["latest"]}),
            "settings.mutabel: unknown field `mutabel`",
        ),
        (
            "immutable-tags",
            json!({"mutable": ["latest", "[a-"]}),
            "settings.mutable[1]: `[a-` is not a valid regex: unclosed character class",
        ),
        (
            "immutable-tags",
            json!({"default": "sometimes"}),
            "settings.default: unknown variant `sometimes`, expected `immutable` or `mutable`",
        ),
        (
            "immutable-tags",
            json!({"owners": [{"pattern": "ci-.*", "actors": []}]}),
            "settings.owners[0].actors: empty",
        ),
        ("immutable-tags", json!({"immutable": ["(?=x)"]}), "look-around"),
        (
            "min-tags",
            json!({"min_tags": "two"}),
            "settings.min_tags: invalid type: string \"two\", expected u32",
        ),
        ("min-tags", json!({"min_tags": -1}), "settings.min_tags: invalid value: integer `-1`"),
        (
            "semver-series",
            json!({"latest": true, "lates": 1}),
            "settings.lates: unknown field `lates`",
        ),
    ];
    for (name, settings, wanted) in cases {
        let error = engine
            .load_embedded(name)
            .unwrap()
            .configure(&settings)
            .err()
            .expect("must be refused");
        let message = error.to_string();
        assert!(matches!(error, Error::Settings { .. }), "{message}");
        assert!(
            message.starts_with(&format!("policy `{name}` rejected its settings: ")),
            "{message}"
        );
        assert!(message.contains(wanted), "wanted `{wanted}` in: {message}");
    }
}

#[test]
fn bad_components_are_refused_with_precise_errors() {
    let engine = engine();
    let error = engine.load_bytes(b"hello, not wasm", "junk.bin").err().unwrap();
    assert!(matches!(error, Error::NotWasm { .. }), "{error}");

    let core_module = b"\0asm\x01\0\0\0";
    let error = engine.load_bytes(core_module, "core.wasm").err().unwrap();
    assert!(matches!(error, Error::CoreModule { .. }), "{error}");
    assert!(error.to_string().contains("wasm32-wasip2"), "{error}");

    let empty_component = b"\0asm\x0d\0\x01\0";
    let error = engine.load_bytes(empty_component, "empty.wasm").err().unwrap();
    assert!(matches!(error, Error::WrongWorld { .. }), "{error}");
    assert!(error.to_string().contains("tagpolicy:policy/policy@0.3.1"), "{error}");

    // Policies built for other versions of the contract: refused with what to do (a newer
    // one may call what this host lacks).
    for version in ["0.1.0", "0.2.0", "0.3.2", "0.4.0"] {
        let old = wat::parse_str(format!(
            r#"(component
                 (import "tagpolicy:policy/repository@{version}" (instance))
                 (core module $m (func (export "f")))
                 (core instance $i (instantiate $m))
                 (func $f (canon lift (core func $i "f")))
                 (instance $policy (export "metadata" (func $f)))
                 (export "tagpolicy:policy/policy@{version}" (instance $policy)))"#
        ))
        .unwrap();
        let error = engine.load_bytes(&old, "old.wasm").err().unwrap();
        assert_eq!(
            error.to_string(),
            format!(
                "`old.wasm` targets the contract `tagpolicy:policy@{version}`, but this host runs \
                 `@0.3.1` (and loads the earlier `0.3` versions): rebuild the policy with this \
                 host's SDK (`tagpolicy build`)"
            )
        );
    }

    let real = tagpolicy::embedded::bytes("min-tags").unwrap();
    // A policy built for 0.3.0 (the names of its imports and export say so: the same bytes
    // with the version in every name rewritten, which keeps every length) loads and decides.
    let built_for_0_3_0 = rename_contract_version(real, b"@0.3.1", b"@0.3.0");
    let old = engine.load_bytes(&built_for_0_3_0, "min-tags-0.3.0.wasm").unwrap();
    assert_eq!(old.exports(), ["tagpolicy:policy/policy@0.3.0"]);
    let old = old.configure(&json!({"min_tags": 2})).unwrap();
    let one_tag = push("app-2", &[("latest", None)]);
    assert_eq!(old.evaluate(&one_tag, state(&[])).unwrap().outcome, Outcome::Deny);

    let error = engine.load_bytes(&real[..real.len() / 2], "truncated.wasm").err().unwrap();
    assert!(matches!(error, Error::InvalidComponent { .. }), "{error}");

    let wants_files = wat::parse_str(
        r#"(component
             (import "wasi:filesystem/types@0.2.6" (instance))
             (import "wasi:sockets/tcp@0.2.6" (instance)))"#,
    )
    .unwrap();
    let error = engine.load_bytes(&wants_files, "greedy.wasm").err().unwrap();
    assert_eq!(
        error.to_string(),
        "`greedy.wasm` imports what the host does not grant: wasi:filesystem/types@0.2.6, wasi:sockets/tcp@0.2.6"
    );

    let error = engine.load_file("/nonexistent/policy.wasm").err().unwrap();
    assert!(
        error.to_string().starts_with("cannot read policy file `/nonexistent/policy.wasm`"),
        "{error}"
    );
    let error = engine.load_embedded("immutable").err().unwrap();
    assert!(error.to_string().contains("immutable-tags, min-tags, semver-series"), "{error}");
}

#[test]
fn a_runaway_policy_is_stopped_and_denied_and_the_host_goes_on() {
    let engine = engine();
    let request = push("app-2", &[("latest", None)]);
    let view = state(&[]);
    let good = engine.load_embedded("min-tags").unwrap().configure(&json!({})).unwrap();

    type Expected = fn(&Failure) -> bool;
    let cases: [(&str, Expected); 6] = [
        ("loop", |f| matches!(f, Failure::Deadline(d) if *d == Duration::from_millis(50))),
        (
            "panic",
            |f| matches!(f, Failure::Panic(m) if m.contains("the hostile policy panics on purpose")),
        ),
        ("grow-memory", |f| matches!(f, Failure::Memory(bytes) if *bytes == 64 << 20)),
        ("recurse", |f| matches!(f, Failure::StackOverflow)),
        // Rust keeps large locals on a stack in linear memory; running off its end is an
        // out-of-bounds access, reported as the trap it is.
        (
            "recurse-with-locals",
            |f| matches!(f, Failure::Trap(m) if m.contains("out of bounds memory access")),
        ),
        // Said through `verdict.fail`: the policy's failure (its denial does not decide), its
        // reason cut to the cap on reasons.
        (
            "fail",
            |f| matches!(f, Failure::Exception(m) if m.starts_with("cannot decide: why why") && m.len() <= 1024),
        ),
    ];
    for (behaviour, expected) in cases {
        let policy = hostile(&engine, behaviour).unwrap();
        let started = Instant::now();
        let failure = policy.evaluate(&request, view.clone()).expect_err(behaviour);
        assert!(expected(&failure), "{behaviour}: {failure:?}");
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{behaviour} took {:?}",
            started.elapsed()
        );
        // The same policy fails the same way again (a fresh instance), and a good policy
        // on the same engine is unaffected.
        assert!(expected(&policy.evaluate(&request, view.clone()).expect_err(behaviour)));
        assert_eq!(good.evaluate(&request, view.clone()).unwrap().outcome, Outcome::Allow);

        let set = PolicySet::new().with(policy, Mode::Enforce);
        let decision = set.evaluate(&request, view.clone());
        // Refused, and not as a rule's denial: the outcome says the policy failed.
        assert_eq!(decision.outcome, Outcome::Error, "{behaviour} must fail closed");
        assert!(!decision.is_allowed());
        let failed = decision.failures().next().and_then(|f| f.failure.as_ref());
        assert!(failed.is_some_and(expected), "{behaviour}: {failed:?}");
        assert!(decision.summary().starts_with("policy `hostile` "), "{}", decision.summary());
    }
}

/// What a policy writes through the contract's `output` (Python's `print`, JavaScript's
/// `console.log`) goes with its call's result, as its stdout does.
#[test]
fn what_a_policy_writes_through_output_goes_with_its_call() {
    let engine = engine();
    let policy = hostile(&engine, "fail").unwrap();
    let (result, printed) = policy.evaluate_printing(&push("a", &[("x", None)]), state(&[]));
    assert!(matches!(result, Err(Failure::Exception(_))), "{result:?}");
    let printed = printed.expect("what it wrote");
    assert_eq!((printed.policy.as_str(), printed.text.as_str()), ("hostile", "giving up\n"));
}

#[test]
fn a_deadline_message_names_the_policy_and_the_limit() {
    let engine = engine();
    let policy = hostile(&engine, "loop").unwrap();
    let decision = PolicySet::new()
        .with(policy, Mode::Enforce)
        .evaluate(&push("a", &[("x", None)]), state(&[]));
    assert_eq!(
        decision.summary(),
        "policy `hostile` exceeded its 50 ms deadline; the request is denied"
    );
}

#[test]
fn a_policy_that_loops_while_configuring_is_refused_at_load() {
    let engine = Engine::with_limits(Limits {
        configure_deadline: Duration::from_millis(100),
        ..Limits::default()
    })
    .unwrap();
    let error = hostile(&engine, "loop-in-configure").err().unwrap();
    assert_eq!(
        error.to_string(),
        "policy `hostile` failed while loading: exceeded its 100 ms deadline"
    );
}

#[test]
fn an_instance_that_trapped_is_replaced() {
    let engine = engine();
    let policy = hostile(&engine, "panic-every-second-call").unwrap();
    let request = push("a", &[("x", None)]);
    let view = state(&[]);
    assert!(policy.evaluate(&request, view.clone()).is_ok());
    assert!(matches!(policy.evaluate(&request, view.clone()), Err(Failure::Panic(_))));
    // A fresh instance counts from one again.
    assert!(policy.evaluate(&request, view.clone()).is_ok());
}

#[test]
fn huge_reasons_are_truncated() {
    // Building and copying an 8 MiB reason is real work: on a loaded 2-core CI machine it
    // took longer than the default 50 ms deadline once. This test is about truncation, so
    // it gets a deadline that only a hang would reach.
    let engine = Engine::with_limits(Limits {
        evaluate_deadline: Duration::from_secs(10),
        ..Limits::default()
    })
    .unwrap();
    let policy = hostile(&engine, "huge-reason").unwrap();
    let decision = policy.evaluate(&push("a", &[("x", None)]), state(&[])).unwrap();
    assert_eq!(decision.outcome, Outcome::Deny);
    let reason = &decision.findings[0].reason;
    assert!(reason.len() <= tagpolicy::MAX_REASON_BYTES, "{}", reason.len());
    assert!(reason.ends_with("… (truncated)"));
}

#[test]
fn audit_mode_turns_failures_and_denials_into_warnings() {
    let engine = engine();
    let set = PolicySet::new().with(hostile(&engine, "panic").unwrap(), Mode::Audit).with(
        engine.load_embedded("immutable-tags").unwrap().configure(&json!({})).unwrap(),
        Mode::Audit,
    );
    let decision =
        set.evaluate(&push("new", &[("1.0.0", Some("old"))]), state(&[("1.0.0", "old")]));
    assert_eq!(decision.outcome, Outcome::Warn);
    assert_eq!(decision.warnings().count(), 2);
    assert!(decision.findings.iter().all(|f| f.reason.starts_with("audit: would deny: ")));
}

#[test]
fn one_policy_decides_from_many_threads_alike() {
    let engine = engine();
    let policy = Arc::new(
        engine
            .load_embedded("immutable-tags")
            .unwrap()
            .configure(&json!({"mutable": ["latest"]}))
            .unwrap(),
    );
    let view = state(&[("1.0.0", "old"), ("latest", "old")]);
    let threads: Vec<_> = (0..8)
        .map(|thread| {
            let (policy, view) = (policy.clone(), view.clone());
            std::thread::spawn(move || {
                for i in 0..100 {
                    let tag = if (thread + i) % 2 == 0 { "1.0.0" } else { "latest" };
                    let decision =
                        policy.evaluate(&push("new", &[(tag, Some("old"))]), view.clone()).unwrap();
                    let expected = if tag == "latest" { Outcome::Allow } else { Outcome::Deny };
                    assert_eq!(decision.outcome, expected, "thread {thread} call {i}");
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
}

#[test]
fn policies_read_the_repository_through_the_host() {
    let engine = engine();
    let policy = engine.load_embedded("semver-series").unwrap().configure(&json!({})).unwrap();
    let request = push("img-1", &[("1.2", Some("img-1"))]);
    // `1.2` moves to img-1, but the repository says 1.2.5 (on img-5) is newer.
    let request = match request.operation {
        tagpolicy::Operation::Push(mut p) => {
            p.tags[0].current = Some(digest("img-5"));
            tagpolicy::Request { operation: tagpolicy::Operation::Push(p), ..request }
        }
        _ => unreachable!(),
    };
    let decision = policy
        .evaluate(&request, state(&[("1.2.1", "img-1"), ("1.2.5", "img-5"), ("1.2", "img-5")]))
        .unwrap();
    assert_eq!(decision.outcome, Outcome::Deny);
    assert!(
        decision.summary().contains("(1.2.5), but this image carries only 1.2.1"),
        "{}",
        decision.summary()
    );
}

#[test]
fn the_compile_cache_serves_later_loads_and_survives_a_corrupt_entry() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::builder().cache_dir(dir.path()).build().unwrap();
    assert_eq!(engine.cache_dir(), Some(dir.path()));
    let first = engine.load_embedded("semver-series").unwrap();
    let entries: Vec<_> =
        std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(entries.len(), 1);
    assert!(entries[0].file_name().unwrap().to_str().unwrap().starts_with(first.sha256()));

    // A later engine (another process, in practice) loads from the cache and decides alike.
    let later = Engine::builder().cache_dir(dir.path()).build().unwrap();
    let cached = later.load_embedded("semver-series").unwrap();
    assert_eq!(cached.metadata(), first.metadata());
    let request = push("img", &[("1.0", None)]);
    let view = state(&[("1.0.0", "other")]);
    let decide = |p: &tagpolicy::Policy| {
        p.configure(&json!({})).unwrap().evaluate(&request, view.clone()).unwrap()
    };
    assert_eq!(decide(&cached), decide(&first));

    // A damaged entry is ignored and rewritten, never trusted.
    std::fs::write(&entries[0], b"garbage").unwrap();
    let recovered = Engine::builder()
        .cache_dir(dir.path())
        .build()
        .unwrap()
        .load_embedded("semver-series")
        .unwrap();
    assert_eq!(decide(&recovered), decide(&first));
    assert!(std::fs::metadata(&entries[0]).unwrap().len() > 1000, "rewritten");
}

#[test]
fn an_isolated_configuration_is_snapshotted_once_and_its_compilation_cached() {
    let dir = tempfile::tempdir().unwrap();
    let entries = || std::fs::read_dir(dir.path()).unwrap().count();
    let settings = json!({"mutable": ["latest"]});
    let request = push("new", &[("latest", Some("old")), ("1.0.0", Some("old"))]);
    let view = state(&[("latest", "old"), ("1.0.0", "old")]);
    let mut summaries = Vec::new();
    for _ in 0..2 {
        // A fresh engine each time, as a restarted process would have.
        let engine = Engine::builder().cache_dir(dir.path()).build().unwrap();
        let isolated = engine
            .load_embedded("immutable-tags")
            .unwrap()
            .with_isolation(Isolation::Isolated)
            .configure(&settings)
            .unwrap();
        assert!(isolated.uses_snapshot());
        let decision = isolated.evaluate(&request, view.clone()).unwrap();
        assert_eq!(decision.outcome, Outcome::Deny);
        summaries.push(decision.summary());
        // The component, its instrumented copy and the snapshot: the same bytes each
        // time, so the second engine compiles nothing.
        assert_eq!(entries(), 3);
    }
    assert_eq!(summaries[0], summaries[1]);
    assert!(summaries[0].contains("tag `1.0.0` is immutable"), "{}", summaries[0]);
}

/// `component` with every occurrence of `from` replaced by `to` (of the same length).
fn rename_contract_version(component: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    assert_eq!(from.len(), to.len());
    let mut renamed = component.to_vec();
    let mut replaced = 0;
    let mut at = 0;
    while let Some(found) = renamed[at..].windows(from.len()).position(|w| w == from) {
        renamed[at + found..at + found + to.len()].copy_from_slice(to);
        at += found + to.len();
        replaced += 1;
    }
    assert!(replaced > 0, "no `{}` in the component", String::from_utf8_lossy(from));
    renamed
}
