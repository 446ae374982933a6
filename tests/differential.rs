//! Differential test: native models of the reference policies (test code, written from the
//! rules in docs/policies.md, not from the policies) and the compiled WASM policies must agree:
//! `immutable-tags` and `min-tags` on 100,000 random pushes and deletions over random states
//! and settings; `image-requirements` and `change-freeze` on 20,000 more each, with random
//! image facts (manifests, annotations, labels, referrers) and random request times; and
//! `immutable-tags` on 20,000 changes of signature tags over random signature manifests.

mod common;
#[path = "support/models.rs"]
mod models;

use models::*;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;
use tagpolicy::{ConfiguredPolicy, Decision, Engine, Limits, Outcome, TagMap};

const SETTINGS_VARIANTS: usize = 100;
const REQUESTS_PER_VARIANT: usize = 1000;

fn configure(engine: &Engine, name: &str, settings: &Value) -> ConfiguredPolicy {
    // Decisions are compared here, not timings: on a loaded machine a policy past its default
    // 50 ms deadline fails closed, which is a timing, not a disagreement.
    let policy = engine.load_embedded(name).unwrap();
    let limits = Limits { evaluate_deadline: Duration::from_secs(2), ..policy.limits() };
    policy
        .with_limits(limits)
        .unwrap()
        .configure(settings)
        .unwrap_or_else(|e| panic!("{settings}: {e}"))
}

#[test]
fn wasm_policies_agree_with_native_models_on_100k_requests() {
    let engine = Engine::new().unwrap();
    let mut rng = Rng(0x0007_a990_11c0_ffee);
    let mut checked = 0;
    let mut denied = [0usize; 2];
    for variant in 0..SETTINGS_VARIANTS {
        let (immutable_settings, immutable_model) = ImmutableModel::random(&mut rng);
        let (min_settings, min_model) = MinTagsModel::random(&mut rng);
        let immutable = configure(&engine, "immutable-tags", &immutable_settings);
        let min_tags = configure(&engine, "min-tags", &min_settings);
        for i in 0..REQUESTS_PER_VARIANT {
            let state = random_state(&mut rng);
            let request = random_request(&mut rng, &state);
            let view: Arc<TagMap> = Arc::new(state.clone());
            let context =
                || format!("variant {variant} request {i}\nrequest: {request:?}\nstate: {state:?}");

            let decision = immutable.evaluate(&request, view.clone()).unwrap();
            let wasm_denied: BTreeSet<String> =
                decision.denials().filter_map(|f| f.tag.clone()).collect();
            let model_denied = immutable_model.denied(&request, &state);
            assert_eq!(
                wasm_denied,
                model_denied,
                "immutable-tags {immutable_settings}\n{}",
                context()
            );
            assert_eq!(
                decision.outcome == Outcome::Deny,
                !model_denied.is_empty(),
                "{}",
                context()
            );
            denied[0] += usize::from(!model_denied.is_empty());

            let decision = min_tags.evaluate(&request, view).unwrap();
            let expected = min_model.findings(&request, &state);
            assert_eq!(
                decision.denials().count(),
                expected,
                "min-tags {min_settings}\n{}",
                context()
            );
            assert_eq!(decision.outcome == Outcome::Deny, expected > 0, "{}", context());
            denied[1] += usize::from(expected > 0);
            checked += 1;
        }
    }
    assert_eq!(checked, 100_000);
    // Both outcomes must be well represented, or the comparison proves little.
    for count in denied {
        assert!((10_000..90_000).contains(&count), "denials {denied:?} of {checked}");
    }
}

#[test]
fn immutable_tags_agrees_with_its_model_on_20k_changes_of_signature_tags() {
    const VARIANTS: usize = 50;
    const REQUESTS: usize = 400;
    let engine = Engine::new().unwrap();
    let mut rng = Rng(0x5157_a9e5_0f7a_9105);
    let (mut checked, mut denied) = (0, 0);
    for variant in 0..VARIANTS {
        let (settings, model) = ImmutableModel::random(&mut rng);
        let policy = configure(&engine, "immutable-tags", &settings);
        for i in 0..REQUESTS {
            let (state, request) = random_signature_case(&mut rng);
            let decision = policy.evaluate(&request, Arc::new(state.clone())).unwrap();
            let expected = model.denied_in(&request, &state);
            assert_eq!(
                denied_tags(&decision),
                expected,
                "immutable-tags {settings}\nvariant {variant} request {i}\nrequest: {request:?}\nstate: {state:?}"
            );
            denied += usize::from(!expected.is_empty());
            checked += 1;
        }
    }
    assert_eq!(checked, VARIANTS * REQUESTS);
    assert!((2_000..18_000).contains(&denied), "{denied} of {checked} denied");
    eprintln!("immutable-tags: {checked} changes of signature tags, {denied} denied");
}

/// The count of unmet requirements a denial lists (`…does not: a; b; c`).
fn requirements_listed(reason: &str) -> usize {
    let (_, list) = reason.split_once(" does not: ").unwrap_or_else(|| panic!("{reason}"));
    list.split("; ").count()
}

fn denied_tags(decision: &Decision) -> BTreeSet<String> {
    decision.denials().filter_map(|f| f.tag.clone()).collect()
}

#[test]
fn image_and_freeze_policies_agree_with_native_models_on_20k_requests_each() {
    const VARIANTS: usize = 50;
    const REQUESTS: usize = 400;
    let engine = Engine::new().unwrap();
    let mut rng = Rng(0x0001_4a9e_f4ee_2e05);
    let mut denied = [0usize; 2];
    let mut checked = 0;
    for variant in 0..VARIANTS {
        let (image_settings, image_model) = ImageRequirementsModel::random(&mut rng);
        let (freeze_settings, freeze_model) = ChangeFreezeModel::random(&mut rng);
        let image_policy = configure(&engine, "image-requirements", &image_settings);
        let freeze_policy = configure(&engine, "change-freeze", &freeze_settings);
        for i in 0..REQUESTS {
            let (state, request) = random_case(&mut rng);
            let view = Arc::new(state.clone());
            let context =
                || format!("variant {variant} request {i}\nrequest: {request:?}\nstate: {state:?}");

            let decision = image_policy.evaluate(&request, view.clone()).unwrap();
            let wasm: BTreeMap<String, usize> = decision
                .denials()
                .map(|f| (f.tag.clone().unwrap(), requirements_listed(&f.reason)))
                .collect();
            let model = image_model.denied(&request, &state);
            assert_eq!(wasm, model, "image-requirements {image_settings}\n{}", context());
            assert_eq!(decision.outcome == Outcome::Deny, !model.is_empty(), "{}", context());
            denied[0] += usize::from(!model.is_empty());

            let decision = freeze_policy.evaluate(&request, view).unwrap();
            let model = freeze_model.denied(&request);
            assert_eq!(
                denied_tags(&decision),
                model,
                "change-freeze {freeze_settings}\n{}",
                context()
            );
            assert_eq!(decision.outcome == Outcome::Deny, !model.is_empty(), "{}", context());
            denied[1] += usize::from(!model.is_empty());
            checked += 1;
        }
    }
    assert_eq!(checked, VARIANTS * REQUESTS);
    for count in denied {
        assert!((2_000..18_000).contains(&count), "denials {denied:?} of {checked}");
    }
}

#[test]
fn semver_series_agrees_with_a_native_model_on_20k_pushes() {
    let engine = Engine::new().unwrap();
    let mut rng = Rng(0x5e3e_5e21_e5d0_0d1e);
    let mut denied = 0;
    for variant in 0..20 {
        let model = SemverModel { latest: variant % 4 != 0 };
        let settings = serde_json::json!({ "latest": model.latest });
        let policy = configure(&engine, "semver-series", &settings);
        for i in 0..1000 {
            let (state, request) = random_semver_case(&mut rng);
            let expected = model.denied(&request, &state);
            let decision = policy.evaluate(&request, Arc::new(state.clone())).unwrap();
            assert_eq!(
                denied_tags(&decision),
                expected,
                "variant {variant} push {i} {settings}\nrequest: {request:?}\nstate: {:?}",
                state.iter().collect::<Vec<_>>()
            );
            denied += usize::from(!expected.is_empty());
        }
    }
    assert!((2_000..18_000).contains(&denied), "{denied} of 20,000 denied");
}
