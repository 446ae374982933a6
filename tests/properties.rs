//! Property tests over the host boundary: whatever a caller hands the host (strings of any
//! content and size, huge states, huge pushes, malformed scenario files), it answers with
//! a decision or a clear error and never panics.

mod common;

use common::digest;
use proptest::prelude::*;
use serde_json::json;
use std::path::Path;
use std::sync::{Arc, OnceLock};
use tagpolicy::{
    Actor, ConfiguredPolicy, Engine, ManifestDeletion, Operation, Push, Request, TagChange, TagMap,
};
use tagpolicy_scenario::Scenario;

fn engine() -> &'static Engine {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    ENGINE.get_or_init(|| Engine::new().unwrap())
}

/// The three reference policies, configured once per test process.
fn policies() -> &'static [ConfiguredPolicy] {
    static POLICIES: OnceLock<Vec<ConfiguredPolicy>> = OnceLock::new();
    POLICIES.get_or_init(|| {
        let engine = Engine::new().unwrap();
        let settings = [
            ("immutable-tags", json!({"mutable": ["latest", r"\d+\.\d+"], "owners": [{"pattern": "ci-.*", "actors": ["ci-bot"]}]})),
            ("min-tags", json!({"min_tags": 2, "required": [r"\d+\.\d+\.\d+"]})),
            ("semver-series", json!({})),
        ];
        settings.iter().map(|(name, s)| engine.load_embedded(name).unwrap().configure(s).unwrap()).collect()
    })
}

fn any_text() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[a-z0-9._-]{1,20}",
        r"v?[0-9]{1,3}(\.[0-9]{1,3}){0,3}(-rc[0-9])?",
        Just(String::new()),
        Just("x".repeat(4000)),
    ]
}

fn any_request() -> impl Strategy<Value = Request> {
    fn change() -> impl Strategy<Value = TagChange> {
        (any_text(), proptest::option::of(any_text()))
            .prop_map(|(tag, current)| TagChange { tag, current })
    }
    let operation = prop_oneof![
        (any_text(), proptest::collection::vec(change(), 0..8))
            .prop_map(|(digest, tags)| Operation::Push(Push { digest, tags })),
        proptest::collection::vec(change(), 0..8).prop_map(Operation::DeleteTags),
        (any_text(), proptest::collection::vec(any_text(), 0..8)).prop_map(|(digest, tags)| {
            Operation::DeleteManifest(ManifestDeletion { digest, tags })
        }),
    ];
    let actor = (proptest::option::of(any_text()), proptest::collection::vec(any_text(), 0..4))
        .prop_map(|(id, groups)| Actor { id, groups });
    let time = (any::<i64>(), 0u32..1_000_000_000)
        .prop_map(|(seconds, nanoseconds)| tagpolicy::Instant { seconds, nanoseconds });
    (any_text(), actor, operation, time).prop_map(|(repository, actor, operation, time)| Request {
        repository,
        actor,
        operation,
        time,
    })
}

fn any_state() -> impl Strategy<Value = TagMap> {
    proptest::collection::vec((any_text(), any_text()), 0..16)
        .prop_map(|entries| entries.into_iter().collect())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn any_request_gets_a_decision_from_every_reference_policy(request in any_request(), state in any_state()) {
        let state = Arc::new(state);
        for policy in policies() {
            let decision = policy.evaluate(&request, state.clone());
            prop_assert!(decision.is_ok(), "{}: {:?}", policy.name(), decision);
            for finding in decision.unwrap().findings {
                prop_assert!(finding.reason.len() <= tagpolicy::MAX_REASON_BYTES);
            }
        }
    }

    #[test]
    fn any_text_is_accepted_or_refused_by_the_scenario_parser(text in any::<String>()) {
        let _ = Scenario::from_yaml(&text, Path::new("fuzz.yaml"));
    }

    #[test]
    fn mangled_scenarios_are_accepted_or_refused_with_the_file_named(
        cut in 0usize..600,
        insert in any::<String>(),
    ) {
        let valid = include_str!("scenarios/seed.yaml");
        let mut cut = cut.min(valid.len());
        while !valid.is_char_boundary(cut) {
            cut -= 1;
        }
        let text = format!("{}{insert}{}", &valid[..cut], &valid[cut..]);
        if let Err(error) = Scenario::from_yaml(&text, Path::new("fuzz.yaml")) {
            prop_assert!(error.to_string().starts_with("`fuzz.yaml`: "), "{}", error);
        }
    }

    #[test]
    fn random_or_cut_bytes_are_refused_as_components_with_a_reason(
        bytes in proptest::collection::vec(any::<u8>(), 0..4096),
        cut in any::<prop::sample::Index>(),
    ) {
        let engine = engine();
        let real = tagpolicy::embedded::bytes("min-tags").unwrap();
        let candidates = [
            bytes.clone(),
            [b"\0asm\x0d\0\x01\0".as_slice(), &bytes].concat(),
            real[..cut.index(real.len())].to_vec(),
        ];
        for candidate in &candidates {
            let error = engine.load_bytes(candidate, "fuzz.wasm").err();
            prop_assert!(error.is_some(), "{} random bytes loaded as a policy", candidate.len());
            prop_assert!(error.unwrap().to_string().starts_with("`fuzz.wasm` "));
        }
    }

    #[test]
    fn name_checks_never_panic(text in any::<String>()) {
        let _ = tagpolicy::oci::check_tag(&text);
        let _ = tagpolicy::oci::check_repository(&text);
        let _ = tagpolicy::oci::check_digest(&text);
    }
}

#[test]
fn ten_thousand_tags_in_a_repository_and_a_thousand_in_a_push() {
    let state: TagMap = (0..10_000)
        .map(|i| (format!("1.{}.{}", i / 100, i % 100), digest(&format!("img-{}", i % 500))))
        .collect();
    let state = Arc::new(state);
    let image = digest("img-new");
    let tags: Vec<TagChange> = (0..1_000)
        .map(|i| {
            let tag =
                if i % 2 == 0 { format!("1.{}.{}", i / 100, i % 100) } else { format!("9.{i}") };
            TagChange { current: tagpolicy::RepositoryView::digest_of(&*state, &tag), tag }
        })
        .collect();
    let request = Request {
        repository: "team/app".into(),
        actor: Actor::anonymous(),
        operation: Operation::Push(Push { digest: image, tags }),
        time: tagpolicy::Instant::EPOCH,
    };
    // Moving 500 releases; a new image with 1,000 tags, releases among them; series `9.x`
    // without any release.
    let expected = [("immutable-tags", false), ("min-tags", true), ("semver-series", false)];
    // A generous deadline: this checks answers on huge input, not speed on a loaded machine.
    let engine = Engine::with_limits(tagpolicy::Limits {
        evaluate_deadline: std::time::Duration::from_secs(10),
        ..Default::default()
    })
    .unwrap();
    for (name, allowed) in expected {
        let settings = if name == "min-tags" {
            json!({"min_tags": 2, "required": [r"\d+\.\d+\.\d+"]})
        } else {
            json!({})
        };
        let policy = engine.load_embedded(name).unwrap().configure(&settings).unwrap();
        let decision =
            policy.evaluate(&request, state.clone()).unwrap_or_else(|f| panic!("{name}: {f}"));
        assert_eq!(decision.is_allowed(), allowed, "{name}: {}", decision.summary());
        assert!(decision.findings.len() <= tagpolicy::MAX_FINDINGS + 1);
    }
}
