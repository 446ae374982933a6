//! The workload `tagpolicy bench` and the criterion benches share: synthetic pushes, and a
//! native Rust baseline of the `immutable-tags` rule to compare the policy with.

use regex::RegexSet;
use tagpolicy::scenario::label_digest;
use tagpolicy::{Actor, Operation, Outcome, Push, RepositoryView, Request, TagChange, TagMap};

/// The baseline rule's settings, also the default for `--policy immutable-tags`.
pub const MUTABLE: [&str; 3] = ["latest", r"\d+\.\d+", "dev-.*"];
pub const PUSHES: usize = 1000;

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
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let pushes = (0..PUSHES)
        .map(|i| {
            let (tag, current) = match next() % 4 {
                0 => (format!("new-{i}"), None),
                1 => ("latest".to_string(), state.digest_of("latest")),
                _ => {
                    let (tag, digest) = &tags[(next() % tags.len() as u64) as usize];
                    (tag.clone(), Some(digest.clone()))
                }
            };
            // Half of the pushes of an existing tag are identical re-pushes.
            let digest = match (&current, next() % 2) {
                (Some(current), 0) => current.clone(),
                _ => image(1000 + i as u64),
            };
            Request {
                repository: "team/app".into(),
                actor: Actor::anonymous(),
                operation: Operation::Push(Push { digest, tags: vec![TagChange { tag, current }] }),
                time: tagpolicy::Instant::EPOCH,
            }
        })
        .collect();
    (state, pushes)
}

/// The `immutable-tags` rule with [`MUTABLE`] exceptions, written natively.
pub struct NativeImmutableTags {
    mutable: RegexSet,
}

impl NativeImmutableTags {
    pub fn new() -> Self {
        let anchored = MUTABLE.iter().map(|p| format!("^(?:{p})$"));
        Self { mutable: RegexSet::new(anchored).expect("valid patterns") }
    }

    /// The rule needs only the request's current digests, not the repository.
    pub fn outcome(&self, request: &Request) -> Outcome {
        let Operation::Push(push) = &request.operation else { return Outcome::Allow };
        let moves_immutable = push.tags.iter().any(|change| {
            matches!(&change.current, Some(d) if *d != push.digest)
                && !self.mutable.is_match(&change.tag)
        });
        if moves_immutable { Outcome::Deny } else { Outcome::Allow }
    }
}
