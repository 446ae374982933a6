//! The workloads `tagpolicy bench` and the criterion benches share: synthetic repositories and
//! pushes, and a native Rust baseline of the `immutable-tags` rule to compare a policy with.
//!
//! Two kinds of repository: the 200 tags and 1000 mixed single-tag pushes every earlier
//! measurement used ([`synthetic_pushes`]), and a repository of any size with pushes chosen
//! to make a policy ask the host's index its questions ([`sized`]).

use regex::RegexSet;
use std::collections::BTreeMap;
use tagpolicy::{
    Actor, Instant, Operation, Outcome, Push, RepositoryView, Request, Stamp, TagChange,
    TagHistory, TagMap,
};
use tagpolicy_scenario::label_digest;

/// The baseline rule's settings, also the default for `--policy immutable-tags`.
pub const MUTABLE: [&str; 3] = ["latest", r"\d+\.\d+", "dev-.*"];
pub const PUSHES: usize = 1000;
/// The grace period `immutable-tags` is given in a sized repository (`grace: {period: 15m}`).
pub const GRACE_SECONDS: i64 = 15 * 60;
/// The smallest sized repository: enough tags for releases, series and CI builds to push to.
pub const MIN_TAGS: usize = 100;

/// A repository of 200 tags and 1000 single-tag pushes: creations, moves of mutable and
/// immutable tags, identical re-pushes, in a fixed pseudo-random order.
pub fn synthetic_pushes() -> (TagMap, Vec<Request>) {
    let image = |n: u64| label_digest(&format!("img-{n}"));
    let mut state = TagMap::new();
    for i in 0..200u64 {
        let tag = match i % 4 {
            0 => format!("1.{}.{}", i / 10, i % 10),
            1 => format!("1.{}", i),
            2 => format!("dev-{i}"),
            _ => format!("build-{i}"),
        };
        state.set(&tag, &image(i % 50));
    }
    let tags: Vec<(String, String)> =
        state.iter().map(|(t, d)| (t.to_string(), d.to_string())).collect();
    let mut next = Rng::new();
    let pushes = (0..PUSHES)
        .map(|i| {
            let (tag, current) = match next.next() % 4 {
                0 => (format!("new-{i}"), None),
                1 => ("latest".to_string(), state.digest_of("latest")),
                _ => {
                    let (tag, digest) = &tags[(next.next() % tags.len() as u64) as usize];
                    (tag.clone(), Some(digest.clone()))
                }
            };
            // Half of the pushes of an existing tag are identical re-pushes.
            let digest = match (&current, next.next() % 2) {
                (Some(current), 0) => current.clone(),
                _ => image(1000 + i as u64),
            };
            Request {
                repository: "team/app".into(),
                actor: Actor::anonymous(),
                operation: Operation::Push(Push { digest, tags: vec![TagChange { tag, current }] }),
                time: Instant::EPOCH,
            }
        })
        .collect();
    (state, pushes)
}

/// One tag of a synthetic repository, before it is indexed.
pub struct Entry {
    pub tag: String,
    pub digest: String,
    pub history: Option<TagHistory>,
}

/// Which pushes a workload decides: chosen by the policy, so that each asks the index the
/// questions its rule asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pushes {
    /// The 200-tag repository's mixed single-tag pushes ([`synthetic_pushes`]).
    Mixed200,
    /// Series tags and `latest` (`semver-series`: `tags-of`, `find-tags` newest first).
    SeriesTags,
    /// New images (`min-tags`: `tags-of`).
    NewImages,
    /// Moves of existing tags (`immutable-tags` with a grace period: `history-of`).
    Moves,
    /// A third of each of the three above, for any other policy.
    Mixed,
}

impl Pushes {
    /// The pushes of a sized repository for the policy named `policy`.
    pub fn for_policy(policy: &str) -> Pushes {
        match policy {
            "semver-series" => Pushes::SeriesTags,
            "min-tags" => Pushes::NewImages,
            "immutable-tags" => Pushes::Moves,
            _ => Pushes::Mixed,
        }
    }

    /// What they are, in a sentence for the report.
    pub fn describe(self) -> &'static str {
        match self {
            Pushes::Mixed200 => {
                "single-tag pushes: a new tag, `latest` moved, or an existing tag re-pushed \
                 (identical) or moved, in a fixed pseudo-random order"
            }
            Pushes::SeriesTags => {
                "series-tag pushes, a quarter each: a new release of a random series with its \
                 series tag `X.Y` (allowed); `X.Y` moved back to an older release of its series \
                 (denied); `latest` moved to an older release (denied); the successor of the \
                 newest release with `X.Y`, `X` and `latest` (allowed)"
            }
            Pushes::NewImages => {
                "new-image pushes, a quarter each: a CI build with its `build-N` and `sha-H` \
                 tags (denied: no release tag); the same with a release tag (allowed); a \
                 single `build-N` tag (denied); another tag on an image already tagged (allowed)"
            }
            Pushes::Moves => {
                "tag moves, a fifth each: a release created more than 15m ago, by `ci-bot` \
                 (denied); a CI tag created by `ci-bot` within the last 15m, moved by `ci-bot` \
                 (allowed: grace period) and by `alice` (denied); an older CI tag, by `ci-bot` \
                 (denied); a series tag `X.Y` (allowed: mutable)"
            }
            Pushes::Mixed => {
                "a third each of the series-tag pushes of semver-series, the new-image pushes \
                 of min-tags and the tag moves of immutable-tags"
            }
        }
    }

    /// The settings the policy is measured with unless `--settings` is given.
    pub fn settings(self) -> serde_json::Value {
        match self {
            Pushes::Mixed200 => serde_json::json!({ "mutable": MUTABLE }),
            Pushes::Moves => {
                serde_json::json!({ "mutable": MUTABLE, "grace": { "period": "15m" } })
            }
            Pushes::NewImages => {
                serde_json::json!({ "min_tags": 2, "required": [r"v?\d+\.\d+\.\d+"] })
            }
            Pushes::SeriesTags | Pushes::Mixed => serde_json::json!({}),
        }
    }

    /// The native baseline of `immutable-tags` with [`Pushes::settings`], where the pushes
    /// are those `immutable-tags` is measured with.
    pub fn native(self) -> Option<NativeImmutableTags> {
        match self {
            Pushes::Mixed200 => Some(NativeImmutableTags::new()),
            Pushes::Moves => Some(NativeImmutableTags::with_grace(GRACE_SECONDS)),
            _ => None,
        }
    }
}

/// A synthetic repository and the pushes to decide in it.
pub struct Workload {
    pub entries: Vec<Entry>,
    pub pushes: Vec<Request>,
    pub kind: Pushes,
    /// What the repository holds, in a sentence for the report.
    pub repository: String,
}

impl Workload {
    /// The 200-tag repository and its 1000 mixed pushes.
    pub fn mixed200() -> Workload {
        let (state, pushes) = synthetic_pushes();
        let entries = state
            .iter()
            .map(|(tag, digest)| Entry { tag: tag.into(), digest: digest.into(), history: None })
            .collect();
        Workload {
            entries,
            pushes,
            kind: Pushes::Mixed200,
            repository: "200 tags: `1.N.N`, `1.N`, `dev-N`, `build-N`, on 50 images".into(),
        }
    }
}

/// The index of `entries`, as a host builds it.
pub fn index(entries: &[Entry]) -> TagMap {
    let mut map = TagMap::new();
    for entry in entries {
        map.set_with_history(&entry.tag, &entry.digest, entry.history.clone());
    }
    map
}

/// The time image 0 was pushed (2026-01-01T00:00:00Z); one image follows a minute later.
const FIRST_IMAGE: i64 = 1_767_225_600;
/// CI tags of this many of the newest images have a recorded history; older ones do not
/// (as in a gate that started recording then).
const RECORDED_IMAGES: u64 = 32;
/// Every this many images, one is a release.
const RELEASE_EVERY: u64 = 8;

/// A release of the synthetic repository.
struct Release {
    major: u64,
    minor: u64,
    patch: u64,
    digest: String,
    created: i64,
}

impl Release {
    /// `1.2.3`, or `v1.2.3` in a third of the series.
    fn tag(&self, patch: u64) -> String {
        let v = if (self.major + self.minor).is_multiple_of(3) { "v" } else { "" };
        format!("{v}{}.{}.{patch}", self.major, self.minor)
    }
}

/// What pushes are made of: the repository's releases and CI tags.
struct Synthetic {
    /// In creation order, which is version order.
    releases: Vec<Release>,
    /// Index in `releases` of the newest release of each series `X.Y`.
    newest_of_series: BTreeMap<(u64, u64), usize>,
    /// CI tags with their digests and creation times, in creation order.
    ci: Vec<(String, String, i64)>,
    images: u64,
    /// When the pushes are made: a minute after the newest image.
    now: i64,
}

/// A repository of `size` tags (at least [`MIN_TAGS`]) as a busy project's registry holds
/// them, and 1000 pushes of `kind` to decide in it.
pub fn sized(size: usize, kind: Pushes) -> Workload {
    let (entries, synthetic) = repository(size);
    let summary = format!(
        "{size} tags on {} images: per image a CI tag `build-N` and a commit tag `sha-H`; every \
         {RELEASE_EVERY}th image a release ({} releases `X.Y.Z`, `vX.Y.Z` in a third of the {} \
         series, 1 to 30 per series, 1 to 15 series per major), `X.Y`, `X` and `latest` on the \
         newest release of theirs; the history of the releases and of the CI tags of the last \
         {RECORDED_IMAGES} images recorded",
        synthetic.images,
        synthetic.releases.len(),
        synthetic.newest_of_series.len()
    );
    let pushes = match kind {
        Pushes::Mixed200 => unreachable!("the 200-tag workload is `Workload::mixed200`"),
        Pushes::SeriesTags => series_pushes(&synthetic),
        Pushes::NewImages => new_image_pushes(&synthetic),
        Pushes::Moves => moves(&synthetic),
        Pushes::Mixed => {
            let all = [series_pushes(&synthetic), new_image_pushes(&synthetic), moves(&synthetic)];
            (0..PUSHES).map(|i| all[i % 3][i].clone()).collect()
        }
    };
    Workload { entries, pushes, kind, repository: summary }
}

fn repository(size: usize) -> (Vec<Entry>, Synthetic) {
    assert!(size >= MIN_TAGS, "a sized repository has at least {MIN_TAGS} tags");
    let mut rng = Rng::new();
    let mut synthetic = Synthetic {
        releases: Vec::new(),
        newest_of_series: BTreeMap::new(),
        ci: Vec::new(),
        images: 0,
        now: 0,
    };
    let (mut major, mut minor, mut patch) = (1u64, 0u64, 0u64);
    let mut patches_left = 1 + rng.next() % 30;
    let mut minors_left = 1 + rng.next() % 15;
    // `latest`, then per image its tags, and per new series and major its series tag.
    let mut count = 1;
    let mut image = 0u64;
    while count < size {
        let digest = image_digest(image);
        let created = FIRST_IMAGE + 60 * image as i64;
        synthetic.ci.push((format!("build-{}", 100_000 + image), digest.clone(), created));
        synthetic.ci.push((format!("sha-{:012x}", commit(image)), digest.clone(), created));
        count += 2;
        if image.is_multiple_of(RELEASE_EVERY) {
            count += 1 + usize::from(patch == 0) + usize::from(patch == 0 && minor == 0);
            synthetic.newest_of_series.insert((major, minor), synthetic.releases.len());
            synthetic.releases.push(Release { major, minor, patch, digest, created });
            patch += 1;
            patches_left -= 1;
            if patches_left == 0 {
                (minor, patch, patches_left) = (minor + 1, 0, 1 + rng.next() % 30);
                minors_left -= 1;
                if minors_left == 0 {
                    (major, minor, minors_left) = (major + 1, 0, 1 + rng.next() % 15);
                }
            }
        }
        image += 1;
    }
    // The last image may have made a few too many (at most 4): the CI tags of the newest
    // images go, and the releases stay.
    synthetic.ci.truncate(synthetic.ci.len() - (count - size));
    synthetic.images = image;
    synthetic.now = FIRST_IMAGE + 60 * image as i64;

    let recorded_since = FIRST_IMAGE + 60 * image.saturating_sub(RECORDED_IMAGES) as i64;
    let stamp = |at: i64| Stamp {
        at: Instant { seconds: at, nanoseconds: 0 },
        actor: Some("ci-bot".into()),
    };
    let created = |at: i64| Some(TagHistory { changed: stamp(at), created: Some(stamp(at)) });
    let mut entries = Vec::with_capacity(size);
    for (tag, digest, at) in &synthetic.ci {
        let history = if *at >= recorded_since { created(*at) } else { None };
        entries.push(Entry { tag: tag.clone(), digest: digest.clone(), history });
    }
    let mut majors: BTreeMap<u64, usize> = BTreeMap::new();
    for (index, release) in synthetic.releases.iter().enumerate() {
        let tag = release.tag(release.patch);
        entries.push(Entry {
            tag,
            digest: release.digest.clone(),
            history: created(release.created),
        });
        majors.insert(release.major, index);
    }
    let series_tags = synthetic
        .newest_of_series
        .iter()
        .map(|((major, minor), index)| (format!("{major}.{minor}"), *index))
        .chain(majors.iter().map(|(major, index)| (major.to_string(), *index)))
        .chain([("latest".to_string(), synthetic.releases.len() - 1)]);
    for (tag, index) in series_tags {
        let release = &synthetic.releases[index];
        let history = Some(TagHistory { changed: stamp(release.created), created: None });
        entries.push(Entry { tag, digest: release.digest.clone(), history });
    }
    debug_assert_eq!(entries.len(), size);
    (entries, synthetic)
}

/// A digest no other image has: the synthetic repository's image `n`.
fn image_digest(n: u64) -> String {
    let mut state = n;
    let mut word = || {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    };
    format!("sha256:{:016x}{:016x}{:016x}{:016x}", word(), word(), word(), word())
}

/// Images pushed by the benchmark: numbered after every image of the repository.
const PUSHED_IMAGES: u64 = 1 << 40;

/// A 48-bit commit hash, different for every image (an odd multiplier is a bijection).
fn commit(image: u64) -> u64 {
    image.wrapping_mul(0x9e37_79b9_7f4b) & ((1 << 48) - 1)
}

fn request(synthetic: &Synthetic, digest: String, tags: Vec<TagChange>, actor: &str) -> Request {
    Request {
        repository: "team/app".into(),
        actor: Actor { id: Some(actor.into()), groups: Vec::new() },
        operation: Operation::Push(Push { digest, tags }),
        time: Instant { seconds: synthetic.now, nanoseconds: 0 },
    }
}

/// The tag as it is in the repository before the push.
fn change(tag: String, current: Option<&str>) -> TagChange {
    TagChange { tag, current: current.map(String::from) }
}

fn series_pushes(s: &Synthetic) -> Vec<Request> {
    let mut rng = Rng::new();
    let newest = s.releases.last().expect("a sized repository has releases");
    let series_digest = |release: &Release| {
        let index = s.newest_of_series[&(release.major, release.minor)];
        s.releases[index].digest.as_str()
    };
    (0..PUSHES)
        .map(|i| {
            let pushed = image_digest(PUSHED_IMAGES + i as u64);
            let release = &s.releases[(rng.next() % s.releases.len() as u64) as usize];
            let series = format!("{}.{}", release.major, release.minor);
            match i % 4 {
                0 => {
                    let last = &s.releases[s.newest_of_series[&(release.major, release.minor)]];
                    let tags = vec![
                        change(last.tag(last.patch + 1), None),
                        change(series, Some(series_digest(release))),
                    ];
                    request(s, pushed, tags, "ci-bot")
                }
                1 => {
                    // An older release of the series, when it has one.
                    let older = (0..8)
                        .map(|_| &s.releases[(rng.next() % s.releases.len() as u64) as usize])
                        .find(|r| r.digest != series_digest(r))
                        .unwrap_or(release);
                    let series = format!("{}.{}", older.major, older.minor);
                    let tags = vec![change(series, Some(series_digest(older)))];
                    request(s, older.digest.clone(), tags, "ci-bot")
                }
                2 => {
                    let tags = vec![change("latest".into(), Some(&newest.digest))];
                    request(s, release.digest.clone(), tags, "ci-bot")
                }
                _ => {
                    let series = format!("{}.{}", newest.major, newest.minor);
                    let tags = vec![
                        change(newest.tag(newest.patch + 1), None),
                        change(series, Some(&newest.digest)),
                        change(newest.major.to_string(), Some(&newest.digest)),
                        change("latest".into(), Some(&newest.digest)),
                    ];
                    request(s, pushed, tags, "ci-bot")
                }
            }
        })
        .collect()
}

fn new_image_pushes(s: &Synthetic) -> Vec<Request> {
    let mut rng = Rng::new();
    let newest = s.releases.last().expect("a sized repository has releases");
    (0..PUSHES)
        .map(|i| {
            let n = PUSHED_IMAGES + i as u64;
            let pushed = image_digest(n);
            let build = change(format!("build-{n}"), None);
            let sha = change(format!("sha-{:012x}", commit(n)), None);
            let release = change(newest.tag(newest.patch + 1 + i as u64), None);
            match i % 4 {
                0 => request(s, pushed, vec![build, sha], "ci-bot"),
                1 => request(s, pushed, vec![build, sha, release], "ci-bot"),
                2 => request(s, pushed, vec![build], "ci-bot"),
                _ => {
                    let (_, digest, _) = &s.ci[(rng.next() % s.ci.len() as u64) as usize];
                    request(s, digest.clone(), vec![change(format!("promoted-{i}"), None)], "alice")
                }
            }
        })
        .collect()
}

fn moves(s: &Synthetic) -> Vec<Request> {
    let mut rng = Rng::new();
    let past_grace = |at: i64| s.now - at > GRACE_SECONDS;
    let old_releases: Vec<&Release> = s.releases.iter().filter(|r| past_grace(r.created)).collect();
    let (old_ci, recent_ci): (Vec<_>, Vec<_>) = s.ci.iter().partition(|(_, _, at)| past_grace(*at));
    let pick = |rng: &mut Rng, len: usize| (rng.next() % len as u64) as usize;
    (0..PUSHES)
        .map(|i| {
            let pushed = image_digest(PUSHED_IMAGES + i as u64);
            let (tag, current, actor) = match i % 5 {
                0 => {
                    let release = old_releases[pick(&mut rng, old_releases.len())];
                    (release.tag(release.patch), release.digest.as_str(), "ci-bot")
                }
                1 | 2 => {
                    let (tag, digest, _) = recent_ci[pick(&mut rng, recent_ci.len())];
                    (tag.clone(), digest.as_str(), if i % 5 == 1 { "ci-bot" } else { "alice" })
                }
                3 => {
                    let (tag, digest, _) = old_ci[pick(&mut rng, old_ci.len())];
                    (tag.clone(), digest.as_str(), "ci-bot")
                }
                _ => {
                    let release = &s.releases[pick(&mut rng, s.releases.len())];
                    let index = s.newest_of_series[&(release.major, release.minor)];
                    let series = format!("{}.{}", release.major, release.minor);
                    (series, s.releases[index].digest.as_str(), "ci-bot")
                }
            };
            request(s, pushed, vec![change(tag, Some(current))], actor)
        })
        .collect()
}

/// A fixed pseudo-random sequence (xorshift), the same on every run.
struct Rng(u64);

impl Rng {
    fn new() -> Self {
        Rng(0x9e37_79b9_7f4a_7c15)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// The `immutable-tags` rule with [`MUTABLE`] exceptions (and a grace period, if given),
/// written natively.
pub struct NativeImmutableTags {
    mutable: RegexSet,
    grace_seconds: Option<i64>,
}

impl NativeImmutableTags {
    pub fn new() -> Self {
        let anchored = MUTABLE.iter().map(|p| format!("^(?:{p})$"));
        Self { mutable: RegexSet::new(anchored).expect("valid patterns"), grace_seconds: None }
    }

    /// The rule with `grace: {period: <seconds>, same_actor: true}`.
    pub fn with_grace(seconds: i64) -> Self {
        Self { grace_seconds: Some(seconds), ..Self::new() }
    }

    /// Without a grace period the rule needs only the request's current digests; with one,
    /// the history of each immutable tag it moves.
    pub fn outcome(&self, request: &Request, repository: &dyn RepositoryView) -> Outcome {
        let Operation::Push(push) = &request.operation else { return Outcome::Allow };
        let moves_immutable = push.tags.iter().any(|change| {
            matches!(&change.current, Some(d) if *d != push.digest)
                && !self.mutable.is_match(&change.tag)
                && !self.in_grace(&change.tag, request, repository)
        });
        if moves_immutable { Outcome::Deny } else { Outcome::Allow }
    }

    fn in_grace(&self, tag: &str, request: &Request, repository: &dyn RepositoryView) -> bool {
        let Some(period) = self.grace_seconds else { return false };
        let Some(created) = repository.history_of(tag).and_then(|history| history.created) else {
            return false;
        };
        let nanos =
            |at: &Instant| i128::from(at.seconds) * 1_000_000_000 + i128::from(at.nanoseconds);
        let age = nanos(&request.time) - nanos(&created.at);
        (0..=i128::from(period) * 1_000_000_000).contains(&age)
            && created.actor.is_some()
            && created.actor == request.actor.id
    }
}
