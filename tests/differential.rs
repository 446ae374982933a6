//! Differential test: native models of the reference policies (test code, written from the
//! rules in docs/policies.md, not from the policies) and the compiled WASM policies must agree:
//! `immutable-tags` and `min-tags` on 100,000 random pushes and deletions over random states
//! and settings; `image-requirements` and `change-freeze` on 20,000 more each, with random
//! image facts (manifests, annotations, labels, referrers) and random request times.

mod common;

use common::digest;
use regex::Regex;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::collections::BTreeSet;
use std::sync::Arc;
use tagpolicy::{
    Actor, ConfiguredPolicy, Decision, Engine, ImageFacts, Images, Instant, KeyValue, Manifest,
    ManifestDeletion, Operation, Outcome, Push, Referrer, RepositoryState, RepositoryView, Request,
    TagChange, TagMap,
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
    /// Some of `keys` (each with `percent` chance), each with one of `values`.
    fn entries(&mut self, keys: &[&str], percent: u64, values: &[&str]) -> Vec<(String, String)> {
        let keys = self.subset(keys, percent);
        keys.into_iter().map(|key| (key.to_string(), self.pick(values).to_string())).collect()
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

const SIGNATURE: &str = "application/vnd.dev.cosign.artifact.sig.v1+json";
const SBOM: &str = "application/spdx+json";
const ATTESTATION: &str = "application/vnd.in-toto+json";
const ARTIFACT_TYPES: &[&str] = &[SIGNATURE, SBOM, ATTESTATION];
const VERSION: &str = "org.opencontainers.image.version";
const SOURCE: &str = "org.opencontainers.image.source";
const VERSIONS: &[&str] = &["1.0.0", "v1.2.3", "1.2.3", "2.0.0", "2.0.0-rc1", "v2", "dev"];
const SOURCES: &[&str] = &["https://github.com/team/app", "https://github.com/fork/app", ""];
const LABELS: &[&str] = &["maintainer", "vendor"];
const LABEL_VALUES: &[&str] = &["team", "Team Inc.", "someone else"];
/// Patterns for annotation and label values (matched whole).
const VALUE_PATTERNS: &[&str] = &["https://github\\.com/team/.*", ".+", "team|Team Inc\\.", ".*"];
const GROUPS: &[&str] = &["release-managers", "developers", "ops"];

/// Random facts for every image of [`IMAGES`]; an image has no manifest one time in ten
/// (the host knows nothing of it).
fn random_images(rng: &mut Rng) -> Images {
    let mut images = Images::new();
    for (n, image) in IMAGES.iter().enumerate() {
        if rng.chance(10) {
            continue;
        }
        let mut manifest = Manifest::bare("application/vnd.oci.image.manifest.v1+json");
        let mut annotations = rng.entries(&[VERSION], 70, VERSIONS);
        annotations.extend(rng.entries(&[SOURCE], 60, SOURCES));
        manifest.annotations = tagpolicy::image::key_values(annotations);
        let labels = rng.entries(LABELS, 50, LABEL_VALUES);
        let referrers = rng
            .subset(ARTIFACT_TYPES, 50)
            .into_iter()
            .enumerate()
            .map(|(i, artifact_type)| Referrer {
                digest: digest(&format!("referrer-{n}-{i}")),
                media_type: "application/vnd.oci.image.manifest.v1+json".into(),
                artifact_type: artifact_type.into(),
                annotations: Vec::new(),
            })
            .collect();
        let facts = ImageFacts {
            manifest: Some(manifest),
            labels: tagpolicy::image::key_values(labels),
            referrers,
        };
        images.insert(&digest(image), facts);
    }
    images
}

/// One image-requirements rule, as the docs state it.
struct ImageRule {
    tags: Vec<Regex>,
    referrers: Vec<String>,
    annotations: Vec<(String, String)>,
    labels: Vec<(String, String)>,
    version_matches_tag: bool,
}

/// The image-requirements rules, from docs/policies.md.
struct ImageRequirementsModel {
    rules: Vec<ImageRule>,
}

impl ImageRequirementsModel {
    fn random(rng: &mut Rng) -> (Value, Self) {
        let mut files = Vec::new();
        let mut rules = Vec::new();
        for _ in 0..1 + rng.below(3) {
            let mut tags = rng.subset(PATTERNS, 25);
            if tags.is_empty() {
                tags.push(rng.pick(PATTERNS));
            }
            let referrers: Vec<String> =
                rng.subset(ARTIFACT_TYPES, 35).iter().map(|t| t.to_string()).collect();
            let annotations = rng.entries(&[VERSION, SOURCE], 25, VALUE_PATTERNS);
            let labels = rng.entries(LABELS, 25, VALUE_PATTERNS);
            let mut version_matches_tag = rng.chance(35);
            if referrers.is_empty() && annotations.is_empty() && labels.is_empty() {
                version_matches_tag = true; // a rule must require something
            }
            files.push(json!({
                "tags": tags,
                "referrers": referrers,
                "annotations": annotations.iter().cloned().collect::<BTreeMap<_, _>>(),
                "labels": labels.iter().cloned().collect::<BTreeMap<_, _>>(),
                "version_matches_tag": version_matches_tag,
            }));
            rules.push(ImageRule {
                tags: tags.iter().map(|p| whole(p)).collect(),
                referrers,
                annotations,
                labels,
                version_matches_tag,
            });
        }
        (json!({ "rules": files }), ImageRequirementsModel { rules })
    }

    /// What each refused tag's image lacks: one entry per distinct unmet requirement.
    fn denied(&self, request: &Request, state: &RepositoryState) -> BTreeMap<String, usize> {
        let mut denied = BTreeMap::new();
        let Operation::Push(push) = &request.operation else { return denied };
        let facts = state.images.get(&push.digest);
        let manifest = facts.and_then(|f| f.manifest.as_ref());
        let find = |pairs: &[KeyValue], key: &str| {
            pairs.iter().find(|kv| kv.key == key).map(|kv| kv.value.clone())
        };
        let strip_v = |text: &str| text.strip_prefix('v').unwrap_or(text).to_string();
        for change in &push.tags {
            if change.current.as_deref() == Some(push.digest.as_str()) {
                continue; // an identical re-push changes nothing
            }
            let mut unmet = BTreeSet::new();
            for rule in self.rules.iter().filter(|r| r.tags.iter().any(|t| t.is_match(&change.tag)))
            {
                let Some(manifest) = manifest else {
                    unmet.insert("unknown image".to_string());
                    continue;
                };
                for wanted in &rule.referrers {
                    let present =
                        facts.unwrap().referrers.iter().any(|r| &r.artifact_type == wanted);
                    if !present {
                        unmet.insert(format!("referrer {wanted}"));
                    }
                }
                let checks = [
                    (&rule.annotations, &manifest.annotations, "annotation"),
                    (&rule.labels, &facts.unwrap().labels, "label"),
                ];
                for (wanted, have, kind) in checks {
                    for (key, pattern) in wanted {
                        match find(have, key) {
                            None => unmet.insert(format!("{kind} {key} absent")),
                            Some(value) if !whole(pattern).is_match(&value) => {
                                unmet.insert(format!("{kind} {key} not {pattern}"))
                            }
                            Some(_) => false,
                        };
                    }
                }
                if rule.version_matches_tag {
                    match find(&manifest.annotations, VERSION) {
                        None => unmet.insert(format!("annotation {VERSION} absent")),
                        Some(version) if strip_v(&version) != strip_v(&change.tag) => {
                            unmet.insert("version is not the tag".into())
                        }
                        Some(_) => false,
                    };
                }
            }
            if !unmet.is_empty() {
                denied.insert(change.tag.clone(), unmet.len());
            }
        }
        denied
    }
}

/// A change-freeze window: fixed (seconds since the epoch) or weekly (days 0 = Monday,
/// minutes of the day).
enum FreezeWindow {
    Fixed { from: i64, until: i64 },
    Weekly { days: Vec<usize>, from: i64, until: i64 },
}

/// The change-freeze rules, from docs/policies.md.
struct ChangeFreezeModel {
    windows: Vec<FreezeWindow>,
    tags: Vec<Regex>,
    exempt_actors: Vec<String>,
    exempt_groups: Vec<String>,
}

/// Monday 2026-11-23T00:00:00Z: the random request times fall in the four weeks after it.
const FREEZE_EPOCH: i64 = 1_795_392_000;
const FOUR_WEEKS: i64 = 28 * 86_400;
const DAY_NAMES: &[&str] = &["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

impl ChangeFreezeModel {
    fn random(rng: &mut Rng) -> (Value, Self) {
        let mut files = Vec::new();
        let mut windows = Vec::new();
        for _ in 0..1 + rng.below(3) {
            if rng.chance(50) {
                let from = FREEZE_EPOCH + rng.below(FOUR_WEEKS as usize) as i64;
                let until = from + 1 + rng.below(21 * 86_400) as i64;
                let text = |seconds| Instant { seconds, nanoseconds: 0 }.to_rfc3339();
                files.push(json!({"from": text(from), "until": text(until)}));
                windows.push(FreezeWindow::Fixed { from, until });
            } else {
                let mut days: Vec<usize> = (0..7).filter(|_| rng.chance(50)).collect();
                if days.is_empty() {
                    days.push(rng.below(7));
                }
                // Quarter hours from 00:00 to 24:00, from before until.
                let a = rng.below(97) as i64 * 15;
                let b = rng.below(97) as i64 * 15;
                let (from, until) = if a == b { (0, 1440) } else { (a.min(b), a.max(b)) };
                let clock = |minutes: i64| format!("{:02}:{:02}", minutes / 60, minutes % 60);
                let names: Vec<&str> = days.iter().map(|d| DAY_NAMES[*d]).collect();
                files.push(json!({"days": names, "from": clock(from), "until": clock(until)}));
                windows.push(FreezeWindow::Weekly { days, from, until });
            }
        }
        let tags = rng.subset(PATTERNS, 20);
        let exempt_actors: Vec<String> =
            rng.subset(&["ci-bot", "alice", "bob"], 15).iter().map(|a| a.to_string()).collect();
        let exempt_groups: Vec<String> =
            rng.subset(GROUPS, 15).iter().map(|g| g.to_string()).collect();
        let settings = json!({
            "windows": files,
            "tags": tags,
            "exempt_actors": exempt_actors,
            "exempt_groups": exempt_groups,
        });
        let model = ChangeFreezeModel {
            windows,
            tags: tags.iter().map(|p| whole(p)).collect(),
            exempt_actors,
            exempt_groups,
        };
        (settings, model)
    }

    fn in_window(&self, seconds: i64) -> bool {
        // 1970-01-01 was a Thursday (day 3 counting Monday as 0).
        let day = (seconds.div_euclid(86_400) + 3).rem_euclid(7) as usize;
        let minute = seconds.rem_euclid(86_400) / 60;
        self.windows.iter().any(|window| match window {
            FreezeWindow::Fixed { from, until } => (*from..*until).contains(&seconds),
            FreezeWindow::Weekly { days, from, until } => {
                days.contains(&day) && (*from..*until).contains(&minute)
            }
        })
    }

    /// The tags it refuses.
    fn denied(&self, request: &Request) -> BTreeSet<String> {
        let actor = &request.actor;
        let exempt = actor.id.as_ref().is_some_and(|id| self.exempt_actors.contains(id))
            || actor.groups.iter().any(|g| self.exempt_groups.contains(g));
        if exempt || !self.in_window(request.time.seconds) {
            return BTreeSet::new();
        }
        let changed: Vec<&str> = match &request.operation {
            Operation::Push(push) => push
                .tags
                .iter()
                .filter(|t| t.current.as_deref() != Some(push.digest.as_str()))
                .map(|t| t.tag.as_str())
                .collect(),
            Operation::DeleteTags(tags) => {
                tags.iter().filter(|t| t.current.is_some()).map(|t| t.tag.as_str()).collect()
            }
            Operation::DeleteManifest(m) => m.tags.iter().map(String::as_str).collect(),
        };
        changed
            .into_iter()
            .filter(|tag| self.tags.is_empty() || self.tags.iter().any(|r| r.is_match(tag)))
            .map(String::from)
            .collect()
    }
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
            let state = RepositoryState {
                tags: random_state(&mut rng),
                images: Arc::new(random_images(&mut rng)),
            };
            let mut request = random_request(&mut rng, &state.tags);
            request.actor.groups = rng.subset(GROUPS, 20).iter().map(|g| g.to_string()).collect();
            request.time = Instant {
                seconds: FREEZE_EPOCH + rng.below(FOUR_WEEKS as usize) as i64,
                nanoseconds: 0,
            };
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
