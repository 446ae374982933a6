//! Random settings, repository states and requests for the reference policies, and native
//! models of their rules (test code, written from the rules in docs/policies.md, not from the
//! policies). Shared by the differential tests (components against these models) and the
//! port tests (Python and JavaScript ports against the Rust components).
#![allow(dead_code)]

use super::common::digest;
use regex::Regex;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use tagpolicy::{
    Actor, Descriptor, ImageFacts, Images, Instant, KeyValue, Manifest, ManifestDeletion,
    Operation, Push, Referrer, RepositoryState, RepositoryView, Request, Stamp, TagChange,
    TagHistory, TagMap,
};
/// A small deterministic generator (xorshift64*), so that a failure can be replayed.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    pub fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
    pub fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())]
    }
    pub fn subset<T: Clone>(&mut self, items: &[T], percent: u64) -> Vec<T> {
        items.iter().filter(|_| self.chance(percent)).cloned().collect()
    }
    /// Some of `keys` (each with `percent` chance), each with one of `values`.
    pub fn entries(
        &mut self,
        keys: &[&str],
        percent: u64,
        values: &[&str],
    ) -> Vec<(String, String)> {
        let keys = self.subset(keys, percent);
        keys.into_iter().map(|key| (key.to_string(), self.pick(values).to_string())).collect()
    }
}

pub const TAGS: &[&str] = &[
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
pub const PATTERNS: &[&str] = &[
    "latest",
    r"\d+\.\d+",
    r"v?\d+\.\d+\.\d+",
    "ci-.*",
    ".*",
    "dev|feature-.*",
    r"v\d+",
    "release-.*",
];
pub const IMAGES: &[&str] = &["img-a", "img-b", "img-c", "img-d", "img-e"];
pub const ACTORS: &[Option<&str>] = &[None, Some("ci-bot"), Some("alice"), Some("bob")];

pub fn whole(pattern: &str) -> Regex {
    Regex::new(&format!("^(?:{pattern})$")).unwrap()
}

/// The time around which random histories and requests are set (2027-01-15T08:00:00Z).
pub const BASE_TIME: i64 = 1_800_000_000;

/// The immutable-tags rules, from the README.
pub struct ImmutableModel {
    default_immutable: bool,
    mutable: Vec<Regex>,
    immutable: Vec<Regex>,
    owners: Vec<(Regex, Vec<String>)>,
    /// The grace period in seconds, and whether only the creator may use it.
    grace: Option<(i64, bool)>,
    /// `append-only`, `immutable` or `mutable`: how signature tags may change.
    signature_tags: &'static str,
}

impl ImmutableModel {
    pub fn random(rng: &mut Rng) -> (Value, Self) {
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
        let mut settings = json!({
            "default": default,
            "mutable": mutable,
            "immutable": immutable,
            "owners": owners.iter().map(|(p, a)| json!({"pattern": p, "actors": a})).collect::<Vec<_>>(),
        });
        let grace = rng.chance(40).then(|| {
            let (text, seconds) = rng.pick(&[("90s", 90), ("15m", 900), ("1h", 3600)]);
            let same_actor = rng.pick(&[None, Some(true), Some(false)]);
            settings["grace"] = match same_actor {
                Some(same) => json!({"period": text, "same_actor": same}),
                None => json!({"period": text}),
            };
            (seconds, same_actor.unwrap_or(true))
        });
        let signature_tags =
            match rng.pick(&[None, Some("append-only"), Some("immutable"), Some("mutable")]) {
                Some(mode) => {
                    settings["signature_tags"] = json!(mode);
                    mode
                }
                None => "append-only",
            };
        let model = ImmutableModel {
            signature_tags,
            default_immutable: default == "immutable",
            mutable: mutable.iter().map(|p| whole(p)).collect(),
            immutable: immutable.iter().map(|p| whole(p)).collect(),
            owners: owners.iter().map(|(p, a)| (whole(p), a.clone())).collect(),
            grace,
        };
        (settings, model)
    }

    /// Whether moving `tag` now falls within its grace period.
    fn in_grace(&self, tag: &str, request: &Request, state: &TagMap) -> bool {
        let Some((seconds, same_actor)) = self.grace else { return false };
        let Some(created) = state.history_of(tag).and_then(|history| history.created) else {
            return false;
        };
        let nanos =
            |at: Instant| i128::from(at.seconds) * 1_000_000_000 + i128::from(at.nanoseconds);
        let age = nanos(request.time) - nanos(created.at);
        let actor_ok = !same_actor || created.actor.is_some() && created.actor == request.actor.id;
        (0..=i128::from(seconds) * 1_000_000_000).contains(&age) && actor_ok
    }

    pub fn is_immutable(&self, tag: &str) -> bool {
        if signed_image(tag).is_some() {
            return self.signature_tags == "immutable";
        }
        if self.immutable.iter().any(|r| r.is_match(tag)) {
            return true;
        }
        if self.mutable.iter().any(|r| r.is_match(tag)) {
            return false;
        }
        self.default_immutable
    }

    /// The tags it refuses, with `state` as the repository before the request and no image
    /// known.
    pub fn denied(&self, request: &Request, state: &TagMap) -> BTreeSet<String> {
        let state = RepositoryState { tags: Arc::new(state.clone()), images: Arc::default() };
        self.denied_in(request, &state)
    }

    /// Whether the `append-only` rule refuses the change of signature tag `tag` of `image`.
    fn refuses_signature_change(
        &self,
        image: &str,
        before: Option<&str>,
        after: Option<&str>,
        state: &RepositoryState,
    ) -> bool {
        let Some(after) = after else {
            return state.tags.tags_of(image).iter().any(|tag| self.is_immutable(tag));
        };
        let Some(new) = state.images.manifest(after) else { return true };
        if new.subject.is_some_and(|subject| subject.digest != image) {
            return true;
        }
        let Some(before) = before else { return false };
        let Some(old) = state.images.manifest(before) else { return true };
        let kept: Vec<&Descriptor> = new.layers.iter().chain(&new.manifests).collect();
        old.layers.iter().chain(&old.manifests).any(|entry| !kept.contains(&entry))
    }

    /// The tags it refuses, with `state` as the repository before the request.
    pub fn denied_in(&self, request: &Request, state: &RepositoryState) -> BTreeSet<String> {
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
            if let Some(image) = signed_image(&tag)
                && self.signature_tags == "append-only"
            {
                let (before, after) = (before.as_deref(), after.as_deref());
                if owned_elsewhere || self.refuses_signature_change(&image, before, after, state) {
                    denied.insert(tag);
                }
                continue;
            }
            let moves_or_deletes = before.is_some();
            let graced = after.is_some() && self.in_grace(&tag, request, &state.tags);
            if owned_elsewhere || moves_or_deletes && self.is_immutable(&tag) && !graced {
                denied.insert(tag);
            }
        }
        denied
    }
}

/// The image a signature tag names, as docs/policies.md says: `sha256-<64 hex>`, optionally
/// with `.sig`, `.att` or `.sbom`.
pub fn signed_image(tag: &str) -> Option<String> {
    let captures = whole(r"sha256-([0-9a-f]{64})(\.sig|\.att|\.sbom)?").captures(tag)?;
    Some(format!("sha256:{}", &captures[1]))
}

/// The min-tags rules, from the README.
pub struct MinTagsModel {
    min_tags: usize,
    required: Vec<Regex>,
}

impl MinTagsModel {
    pub fn random(rng: &mut Rng) -> (Value, Self) {
        let min_tags = rng.below(4);
        let required = rng.subset(PATTERNS, 15);
        let settings = json!({"min_tags": min_tags, "required": required});
        (settings, MinTagsModel { min_tags, required: required.iter().map(|p| whole(p)).collect() })
    }

    /// How many findings it gives (each unmet rule is one).
    pub fn findings(&self, request: &Request, state: &TagMap) -> usize {
        let Operation::Push(push) = &request.operation else { return 0 };
        if !state.tags_of(&push.digest).is_empty() {
            return 0;
        }
        let tags: BTreeSet<&str> = push.tags.iter().map(|t| t.tag.as_str()).collect();
        let too_few = usize::from(tags.len() < self.min_tags);
        too_few + self.required.iter().filter(|r| !tags.iter().any(|t| r.is_match(t))).count()
    }
}

/// Some of [`TAGS`] on random images; half of them with a recorded history (set within the
/// two hours before [`BASE_TIME`], by a random actor; created then, earlier, or before the
/// records began).
pub fn random_state(rng: &mut Rng) -> TagMap {
    random_state_before(rng, BASE_TIME)
}

/// [`random_state`] with histories set in the two hours before `latest` (seconds).
pub fn random_state_before(rng: &mut Rng, latest: i64) -> TagMap {
    let mut state = TagMap::new();
    for tag in rng.subset(TAGS, 40) {
        let digest = digest(rng.pick(IMAGES));
        let history = rng.chance(50).then(|| random_history(rng, latest));
        state.set_with_history(tag, &digest, history);
    }
    state
}

fn random_stamp(rng: &mut Rng, latest: i64) -> Stamp {
    let at = Instant { seconds: latest - rng.below(7200) as i64, nanoseconds: rng.pick(&[0, 1]) };
    Stamp { at, actor: rng.pick(ACTORS).map(String::from) }
}

pub fn random_history(rng: &mut Rng, latest: i64) -> TagHistory {
    let changed = random_stamp(rng, latest);
    let created = match rng.below(3) {
        0 => Some(changed.clone()),
        1 => Some(random_stamp(rng, changed.at.seconds)),
        _ => None,
    };
    TagHistory { changed, created }
}

pub fn random_request(rng: &mut Rng, state: &TagMap) -> Request {
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
    // Within a grace period of some recorded creations, past it for others.
    let time = Instant { seconds: BASE_TIME + rng.below(1200) as i64, nanoseconds: 0 };
    Request { repository: "team/app".into(), actor, operation, time }
}

pub const SIGNATURE: &str = "application/vnd.dev.cosign.artifact.sig.v1+json";
pub const SBOM: &str = "application/spdx+json";
pub const ATTESTATION: &str = "application/vnd.in-toto+json";
pub const ARTIFACT_TYPES: &[&str] = &[SIGNATURE, SBOM, ATTESTATION];
pub const VERSION: &str = "org.opencontainers.image.version";
pub const SOURCE: &str = "org.opencontainers.image.source";
pub const VERSIONS: &[&str] = &["1.0.0", "v1.2.3", "1.2.3", "2.0.0", "2.0.0-rc1", "v2", "dev"];
pub const SOURCES: &[&str] = &["https://github.com/team/app", "https://github.com/fork/app", ""];
pub const LABELS: &[&str] = &["maintainer", "vendor"];
pub const LABEL_VALUES: &[&str] = &["team", "Team Inc.", "someone else"];
/// Patterns for annotation and label values (matched whole).
pub const VALUE_PATTERNS: &[&str] =
    &["https://github\\.com/team/.*", ".+", "team|Team Inc\\.", ".*"];
pub const GROUPS: &[&str] = &["release-managers", "developers", "ops"];

/// Random facts for every image of [`IMAGES`]; an image has no manifest one time in ten
/// (the host knows nothing of it).
pub fn random_images(rng: &mut Rng) -> Images {
    let mut images = Images::new();
    for (n, image) in IMAGES.iter().enumerate() {
        if rng.chance(10) {
            continue;
        }
        let mut manifest = Manifest::bare("application/vnd.oci.image.manifest.v1+json");
        let mut annotations = rng.entries(&[VERSION], 70, VERSIONS);
        annotations.extend(rng.entries(&[SOURCE], 60, SOURCES));
        manifest.annotations = tagpolicy::key_values(annotations);
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
            labels: tagpolicy::key_values(labels),
            referrers,
        };
        images.insert(&digest(image), facts);
    }
    images
}

/// One image-requirements rule, as the docs state it.
pub struct ImageRule {
    tags: Vec<Regex>,
    referrers: Vec<String>,
    annotations: Vec<(String, String)>,
    labels: Vec<(String, String)>,
    version_matches_tag: bool,
}

/// The image-requirements rules, from docs/policies.md.
pub struct ImageRequirementsModel {
    rules: Vec<ImageRule>,
}

impl ImageRequirementsModel {
    pub fn random(rng: &mut Rng) -> (Value, Self) {
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
    pub fn denied(&self, request: &Request, state: &RepositoryState) -> BTreeMap<String, usize> {
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
pub enum FreezeWindow {
    Fixed { from: i64, until: i64 },
    Weekly { days: Vec<usize>, from: i64, until: i64 },
}

/// The change-freeze rules, from docs/policies.md.
pub struct ChangeFreezeModel {
    windows: Vec<FreezeWindow>,
    tags: Vec<Regex>,
    exempt_actors: Vec<String>,
    exempt_groups: Vec<String>,
}

/// Monday 2026-11-23T00:00:00Z: the random request times fall in the four weeks after it.
pub const FREEZE_EPOCH: i64 = 1_795_392_000;
pub const FOUR_WEEKS: i64 = 28 * 86_400;
pub const DAY_NAMES: &[&str] = &["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

impl ChangeFreezeModel {
    pub fn random(rng: &mut Rng) -> (Value, Self) {
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

    pub fn in_window(&self, seconds: i64) -> bool {
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
    pub fn denied(&self, request: &Request) -> BTreeSet<String> {
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

/// A random repository (tags and image facts) and a random request against it, with actor
/// groups and a time in the four weeks after [`FREEZE_EPOCH`]: every input any reference
/// policy reads.
pub fn random_case(rng: &mut Rng) -> (RepositoryState, Request) {
    let time = FREEZE_EPOCH + rng.below(FOUR_WEEKS as usize) as i64;
    // Histories within the two hours before the request, some within a grace period.
    let latest = time + rng.below(1200) as i64;
    let tags = random_state_before(rng, latest);
    let state = RepositoryState { tags: Arc::new(tags), images: Arc::new(random_images(rng)) };
    let mut request = random_request(rng, &state.tags);
    request.actor.groups = rng.subset(GROUPS, 20).iter().map(|g| g.to_string()).collect();
    request.time = Instant { seconds: time + rng.below(1200) as i64, nanoseconds: 0 };
    (state, request)
}

/// Signature and attestation manifests (cosign's layout, or a referrers index) the signature
/// tags of [`random_signature_case`] point at.
pub const SIGNATURE_MANIFESTS: &[&str] = &["sigs-1", "sigs-2", "sigs-3", "sigs-4", "sigs-5"];

/// The signature tags of the first three [`IMAGES`] (cosign's suffixes and the referrers tag
/// schema), and two that only look like one.
pub fn signature_tags() -> Vec<String> {
    let mut tags: Vec<String> = IMAGES[..3]
        .iter()
        .flat_map(|image| {
            let hex = digest(image).replace(':', "-");
            ["", ".sig", ".att", ".sbom"].map(|suffix| format!("{hex}{suffix}"))
        })
        .collect();
    tags.push("sha256-abc.sig".into());
    tags.push(format!("{}.sig", digest("img-a").replace(':', "-").to_uppercase()));
    tags
}

/// What signature manifests list: signatures of one payload told apart by their annotation
/// (as cosign writes them), a DSSE envelope, referrer descriptors of an index.
fn signature_entry(rng: &mut Rng) -> Descriptor {
    let (digest_label, media_type, annotations): (&str, &str, &[(&str, &str)]) = match rng.below(6)
    {
        0 => (
            "payload",
            "application/vnd.dev.cosign.simplesigning.v1+json",
            &[("dev.cosignproject.cosign/signature", "one")],
        ),
        1 => (
            "payload",
            "application/vnd.dev.cosign.simplesigning.v1+json",
            &[("dev.cosignproject.cosign/signature", "two")],
        ),
        2 => ("payload", "application/vnd.dev.cosign.simplesigning.v1+json", &[]),
        3 => (
            "envelope",
            "application/vnd.dsse.envelope.v1+json",
            &[("predicateType", "https://slsa.dev/provenance/v1")],
        ),
        4 => ("referrer-1", "application/vnd.oci.image.manifest.v1+json", &[]),
        _ => ("referrer-2", "application/vnd.oci.image.manifest.v1+json", &[]),
    };
    Descriptor {
        media_type: media_type.into(),
        digest: digest(digest_label),
        size: 100,
        artifact_type: None,
        annotations: tagpolicy::key_values(annotations.iter().copied()),
        platform: None,
    }
}

/// A repository whose images have signature tags, and a request that pushes or deletes some
/// of them: signature manifests whose layers and listed manifests come from a small pool (so
/// that moves keep, add and drop entries), with a subject one time in four, and unknown to
/// the host one time in ten.
pub fn random_signature_case(rng: &mut Rng) -> (RepositoryState, Request) {
    let mut tags = random_state(rng);
    let signature_tags = signature_tags();
    for tag in rng.subset(&signature_tags, 40) {
        tags.set(&tag, &digest(rng.pick(SIGNATURE_MANIFESTS)));
    }
    let mut images = random_images(rng);
    for label in SIGNATURE_MANIFESTS {
        if rng.chance(10) {
            continue;
        }
        let mut manifest = Manifest::bare("application/vnd.oci.image.manifest.v1+json");
        manifest.layers = (0..rng.below(4)).map(|_| signature_entry(rng)).collect();
        manifest.manifests = (0..rng.below(3)).map(|_| signature_entry(rng)).collect();
        if rng.chance(25) {
            let mut subject = signature_entry(rng);
            subject.digest = digest(rng.pick(IMAGES));
            manifest.subject = Some(subject);
        }
        images.insert(
            &digest(label),
            ImageFacts { manifest: Some(manifest), ..ImageFacts::default() },
        );
    }
    let current = |tag: &String| TagChange { tag: tag.clone(), current: tags.digest_of(tag) };
    let mut touched: BTreeSet<String> = (0..1 + rng.below(2))
        .map(|_| signature_tags[rng.below(signature_tags.len())].clone())
        .collect();
    if rng.chance(20) {
        touched.insert(rng.pick(TAGS).to_string());
    }
    let operation = match rng.below(10) {
        0..=6 => Operation::Push(Push {
            digest: digest(rng.pick(SIGNATURE_MANIFESTS)),
            tags: touched.iter().map(current).collect(),
        }),
        7 | 8 => Operation::DeleteTags(touched.iter().map(current).collect()),
        _ => {
            let digest = digest(rng.pick(SIGNATURE_MANIFESTS));
            Operation::DeleteManifest(ManifestDeletion { tags: tags.tags_of(&digest), digest })
        }
    };
    let actor = Actor { id: rng.pick(ACTORS).map(String::from), groups: vec![] };
    let time = Instant { seconds: BASE_TIME + rng.below(1200) as i64, nanoseconds: 0 };
    let state = RepositoryState { tags: Arc::new(tags), images: Arc::new(images) };
    (state, Request { repository: "team/app".into(), actor, operation, time })
}

/// The semver-series rules, from docs/policies.md: a series tag (`X`, `X.Y`, with or without
/// `v`) and `latest` (unless `latest: false`) may only be pushed onto an image that carries,
/// after the push, the newest release of the series (of the repository for `latest`).
pub struct SemverModel {
    pub latest: bool,
}

/// `(major, minor, patch)` of a release tag: canonical numbers, optional `v`.
fn release_of(tag: &str) -> Option<(u64, u64, u64)> {
    let captures = whole(r"v?(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)").captures(tag)?;
    let number = |i: usize| captures[i].parse::<u64>().ok();
    Some((number(1)?, number(2)?, number(3)?))
}

/// `(major, minor)` of a series tag.
fn series_of(tag: &str) -> Option<(u64, Option<u64>)> {
    let captures = whole(r"v?(0|[1-9][0-9]*)(?:\.(0|[1-9][0-9]*))?").captures(tag)?;
    let major = captures[1].parse::<u64>().ok()?;
    let minor = match captures.get(2) {
        Some(minor) => Some(minor.as_str().parse::<u64>().ok()?),
        None => None,
    };
    Some((major, minor))
}

impl SemverModel {
    /// The tags it refuses.
    pub fn denied(&self, request: &Request, state: &TagMap) -> BTreeSet<String> {
        let Operation::Push(push) = &request.operation else { return BTreeSet::new() };
        let mut after: BTreeMap<String, String> =
            state.iter().map(|(tag, digest)| (tag.to_string(), digest.to_string())).collect();
        for change in &push.tags {
            after.insert(change.tag.clone(), push.digest.clone());
        }
        let mut denied = BTreeSet::new();
        for change in &push.tags {
            if change.current.as_deref() == Some(push.digest.as_str()) {
                continue;
            }
            let follows: Option<(u64, Option<u64>)> = match series_of(&change.tag) {
                Some(series) => Some(series),
                None if self.latest && change.tag == "latest" => None,
                None => continue,
            };
            let member = |(major, minor, _): (u64, u64, u64)| match follows {
                Some((m, n)) => major == m && n.is_none_or(|n| n == minor),
                None => true,
            };
            let newest =
                after.keys().filter_map(|tag| release_of(tag)).filter(|v| member(*v)).max();
            let carried = after
                .iter()
                .filter(|(_, digest)| **digest == push.digest)
                .filter_map(|(tag, _)| release_of(tag));
            let carries = newest.is_some_and(|newest| carried.into_iter().any(|v| v == newest));
            if !carries {
                denied.insert(change.tag.clone());
            }
        }
        denied
    }
}

/// Tags for semver-series cases: releases with and without `v` (some not canonical, some
/// too large, some pre-releases), series tags, `latest` and others.
pub fn semver_tags(rng: &mut Rng) -> Vec<String> {
    let mut tags = Vec::new();
    for _ in 0..rng.below(40) {
        let (major, minor, patch) = (rng.below(3), rng.below(3), rng.below(12));
        let v = if rng.chance(25) { "v" } else { "" };
        tags.push(match rng.below(20) {
            0 => format!("{major}.{minor}.{patch}-rc{}", rng.below(3)),
            1 => format!("0{major}.{minor}.{patch}"),
            2 => "99999999999999999999.0.0".to_string(),
            3 => format!("build-2026120{major}"),
            _ => format!("{v}{major}.{minor}.{patch}"),
        });
    }
    tags
}

/// A semver-series case: a state of [`semver_tags`] and a push of releases, series tags and
/// `latest` onto one of [`IMAGES`].
pub fn random_semver_case(rng: &mut Rng) -> (TagMap, Request) {
    let mut state = TagMap::new();
    for tag in semver_tags(rng) {
        state.set(&tag, &digest(rng.pick(IMAGES)));
    }
    let image = digest(rng.pick(IMAGES));
    let mut tags: BTreeSet<String> = semver_tags(rng).into_iter().take(rng.below(3)).collect();
    for _ in 0..1 + rng.below(3) {
        let v = if rng.chance(20) { "v" } else { "" };
        tags.insert(match rng.below(3) {
            0 => "latest".to_string(),
            1 => format!("{v}{}", rng.below(3)),
            _ => format!("{v}{}.{}", rng.below(3), rng.below(3)),
        });
    }
    let push = Push {
        tags: tags
            .into_iter()
            .map(|tag| TagChange { current: state.digest_of(&tag), tag })
            .collect(),
        digest: image,
    };
    let request = Request {
        repository: "team/app".into(),
        actor: Actor::anonymous(),
        operation: Operation::Push(push),
        time: Instant::EPOCH,
    };
    (state, request)
}
