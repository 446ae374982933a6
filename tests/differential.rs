//! Differential test: native models of `immutable-tags` and `min-tags` (test code, written
//! from the README's rules, not from the policies) and the compiled WASM policies must agree
//! on 100,000 random pushes and deletions over random states and settings.

mod common;

use common::digest;
use regex::Regex;
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::sync::Arc;
use tagpolicy::{
    Actor, ConfiguredPolicy, Engine, ManifestDeletion, Operation, Outcome, Push, RepositoryView,
    Request, TagChange, TagMap,
};

const SETTINGS_VARIANTS: usize = 100;
const REQUESTS_PER_VARIANT: usize = 1000;

/// A small deterministic generator (xorshift64*), so that a failure can be replayed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())]
    }
    fn subset<T: Clone>(&mut self, items: &[T], percent: u64) -> Vec<T> {
        items.iter().filter(|_| self.chance(percent)).cloned().collect()
    }
}

const TAGS: &[&str] = &[
    "latest",
    "stable",
    "1.0.0",
    "1.0",
    "1",
    "v1.2.3",
    "1.2",
    "2.0.0",
    "2.0.0-rc1",
    "ci-1",
    "ci-2",
    "dev",
    "feature-x",
    "release-3",
    "v2",
    "nightly",
];
const PATTERNS: &[&str] = &[
    "latest",
    r"\d+\.\d+",
    r"v?\d+\.\d+\.\d+",
    "ci-.*",
    ".*",
    "dev|feature-.*",
    r"v\d+",
    "release-.*",
];
const IMAGES: &[&str] = &["img-a", "img-b", "img-c", "img-d", "img-e"];
const ACTORS: &[Option<&str>] = &[None, Some("ci-bot"), Some("alice"), Some("bob")];

fn whole(pattern: &str) -> Regex {
    Regex::new(&format!("^(?:{pattern})$")).unwrap()
}

/// The immutable-tags rules, from the README.
struct ImmutableModel {
    default_immutable: bool,
    mutable: Vec<Regex>,
    immutable: Vec<Regex>,
    owners: Vec<(Regex, Vec<String>)>,
}

impl ImmutableModel {
    fn random(rng: &mut Rng) -> (Value, Self) {
        let default = rng.pick(&["immutable", "mutable"]);
        let mutable = rng.subset(PATTERNS, 25);
        let immutable = rng.subset(PATTERNS, 20);
        let owners: Vec<(String, Vec<String>)> = (0..rng.below(3))
            .map(|_| {
                let mut actors: Vec<String> = rng
                    .subset(&["ci-bot", "alice", "bob"], 50)
                    .iter()
                    .map(|a| a.to_string())
                    .collect();
                if actors.is_empty() {
                    actors.push("ci-bot".into());
                }
                (rng.pick(PATTERNS).to_string(), actors)
            })
            .collect();
        let settings = json!({
            "default": default,
            "mutable": mutable,
            "immutable": immutable,
            "owners": owners.iter().map(|(p, a)| json!({"pattern": p, "actors": a})).collect::<Vec<_>>(),
        });
        let model = ImmutableModel {
            default_immutable: default == "immutable",
            mutable: mutable.iter().map(|p| whole(p)).collect(),
            immutable: immutable.iter().map(|p| whole(p)).collect(),
            owners: owners.iter().map(|(p, a)| (whole(p), a.clone())).collect(),
        };
        (settings, model)
    }

    fn is_immutable(&self, tag: &str) -> bool {
        if self.immutable.iter().any(|r| r.is_match(tag)) {
            return true;
        }
        if self.mutable.iter().any(|r| r.is_match(tag)) {
            return false;
        }
        self.default_immutable
    }

    /// The tags it refuses.
    fn denied(&self, request: &Request) -> BTreeSet<String> {
        // (tag, before, after) for every touched tag.
        let changes: Vec<(String, Option<String>, Option<String>)> = match &request.operation {
            Operation::Push(p) => p
                .tags
                .iter()
                .map(|t| (t.tag.clone(), t.current.clone(), Some(p.digest.clone())))
                .collect(),
            Operation::DeleteTags(tags) => {
                tags.iter().map(|t| (t.tag.clone(), t.current.clone(), None)).collect()
            }
            Operation::DeleteManifest(m) => {
                m.tags.iter().map(|t| (t.clone(), Some(m.digest.clone()), None)).collect()
            }
        };
        let actor = request.actor.id.as_deref();
        let mut denied = BTreeSet::new();
        for (tag, before, after) in changes {
            if before == after || before.is_none() && after.is_none() {
                continue; // identical re-push, or deleting what does not exist
            }
            let owned_elsewhere = self.owners.iter().any(|(pattern, actors)| {
                pattern.is_match(&tag) && !actor.is_some_and(|a| actors.iter().any(|x| x == a))
            });
            let moves_or_deletes = before.is_some();
            if owned_elsewhere || moves_or_deletes && self.is_immutable(&tag) {
                denied.insert(tag);
            }
        }
        denied
    }
}

/// The min-tags rules, from the README.
struct MinTagsModel {
    min_tags: usize,
    required: Vec<Regex>,
}

impl MinTagsModel {
    fn random(rng: &mut Rng) -> (Value, Self) {
        let min_tags = rng.below(4);
        let required = rng.subset(PATTERNS, 15);
        let settings = json!({"min_tags": min_tags, "required": required});
        (settings, MinTagsModel { min_tags, required: required.iter().map(|p| whole(p)).collect() })
    }

    /// How many findings it gives (each unmet rule is one).
    fn findings(&self, request: &Request, state: &TagMap) -> usize {
        let Operation::Push(push) = &request.operation else { return 0 };
        if !state.tags_of(&push.digest).is_empty() {
            return 0;
        }
        let tags: BTreeSet<&str> = push.tags.iter().map(|t| t.tag.as_str()).collect();
        let too_few = usize::from(tags.len() < self.min_tags);
        too_few + self.required.iter().filter(|r| !tags.iter().any(|t| r.is_match(t))).count()
    }
}

fn random_state(rng: &mut Rng) -> TagMap {
    let mut state = TagMap::new();
    for tag in rng.subset(TAGS, 40) {
        state.set(tag, &digest(rng.pick(IMAGES)));
    }
    state
}

fn random_request(rng: &mut Rng, state: &TagMap) -> Request {
    let actor = Actor { id: rng.pick(ACTORS).map(String::from), groups: vec![] };
    let current = |tag: &str| TagChange { tag: tag.to_string(), current: state.digest_of(tag) };
    let operation = match rng.below(10) {
        0..=6 => {
            let mut tags: Vec<&str> = rng.subset(TAGS, 15);
            if tags.is_empty() {
                tags.push(rng.pick(TAGS));
            }
            Operation::Push(Push {
                digest: digest(rng.pick(IMAGES)),
                tags: tags.into_iter().map(current).collect(),
            })
        }
        7 | 8 => {
            let tags = vec![rng.pick(TAGS), rng.pick(TAGS)];
            let tags: BTreeSet<&str> = tags.into_iter().collect();
            Operation::DeleteTags(tags.into_iter().map(current).collect())
        }
        _ => {
            let digest = digest(rng.pick(IMAGES));
            Operation::DeleteManifest(ManifestDeletion { tags: state.tags_of(&digest), digest })
        }
    };
    Request { repository: "team/app".into(), actor, operation, time: tagpolicy::Instant::EPOCH }
}

fn configure(engine: &Engine, name: &str, settings: &Value) -> ConfiguredPolicy {
    engine
        .load_embedded(name)
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
            let model_denied = immutable_model.denied(&request);
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
