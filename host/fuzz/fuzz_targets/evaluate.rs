//! Arbitrary requests at arbitrary times over arbitrary repository states and image facts
//! (annotations, config labels, referrers), decided by the five reference policies: each
//! must answer (a policy failure here is a bug in it) and the host must never panic.
#![no_main]

use arbitrary::{Arbitrary, Unstructured};
use libfuzzer_sys::fuzz_target;
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tagpolicy::key_values;
use tagpolicy::{
    Actor, ConfiguredPolicy, Engine, ImageFacts, Images, Instant, Limits, Manifest,
    ManifestDeletion, Operation, Push, Referrer, RepositoryState, Request, TagChange,
};

// The `Arbitrary` impls are written out rather than derived: the derive feature of `arbitrary`
// changes the build of cranelift (which depends on it) from the test build's, and the fuzz
// build would then compile wasmtime a second time (host/fuzz/run).
#[derive(Debug)]
enum Kind {
    Push { digest: String, tags: Vec<(String, Option<String>)> },
    DeleteTags(Vec<(String, Option<String>)>),
    DeleteManifest { digest: String, tags: Vec<String> },
}

#[derive(Debug)]
struct Input {
    state: Vec<(String, String)>,
    actor: Option<String>,
    groups: Vec<String>,
    kind: Kind,
    time: (i64, u32),
    /// Facts of images by digest: annotations, labels, referrers' artifact types (`None`: the
    /// host knows nothing of it).
    images: Vec<(String, Option<Facts>)>,
    /// Facts of the pushed image, so that they are found without guessing its digest.
    pushed: Option<Facts>,
}

#[derive(Debug)]
struct Facts {
    annotations: Vec<(String, String)>,
    labels: Vec<(String, String)>,
    referrers: Vec<(String, String)>,
}

impl<'a> Arbitrary<'a> for Kind {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        Ok(match u.int_in_range(0..=2u8)? {
            0 => Kind::Push { digest: u.arbitrary()?, tags: u.arbitrary()? },
            1 => Kind::DeleteTags(u.arbitrary()?),
            _ => Kind::DeleteManifest { digest: u.arbitrary()?, tags: u.arbitrary()? },
        })
    }
}

impl<'a> Arbitrary<'a> for Input {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        Ok(Input {
            state: u.arbitrary()?,
            actor: u.arbitrary()?,
            groups: u.arbitrary()?,
            kind: u.arbitrary()?,
            time: u.arbitrary()?,
            images: u.arbitrary()?,
            pushed: u.arbitrary()?,
        })
    }
}

impl<'a> Arbitrary<'a> for Facts {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        Ok(Facts { annotations: u.arbitrary()?, labels: u.arbitrary()?, referrers: u.arbitrary()? })
    }
}

fn policies() -> &'static [ConfiguredPolicy] {
    static POLICIES: OnceLock<Vec<ConfiguredPolicy>> = OnceLock::new();
    POLICIES.get_or_init(|| {
        // Fuel, not the wall clock: a fuzzer shares the machine, and a 50 ms deadline can fire
        // on an honest policy that was merely descheduled (seen in the first 10-minute run).
        let limits = Limits {
            fuel: Some(100_000_000),
            evaluate_deadline: Duration::from_secs(60),
            configure_deadline: Duration::from_secs(60),
            ..Limits::default()
        };
        let engine = Engine::with_limits(limits).expect("engine");
        [
            ("immutable-tags", r#"{"mutable":["latest","\\d+\\.\\d+"],"owners":[{"pattern":"ci-.*","actors":["ci-bot"]}]}"#),
            ("min-tags", r#"{"min_tags":2,"required":["\\d+\\.\\d+\\.\\d+"]}"#),
            ("semver-series", r#"{}"#),
            ("image-requirements", r#"{"rules":[{"tags":["v?\\d+\\.\\d+\\.\\d+"],"referrers":["application/spdx+json"],"annotations":{"org.opencontainers.image.source":"https://.*"},"labels":{"maintainer":".+"},"version_matches_tag":true},{"tags":["latest"],"referrers":["application/vnd.dev.cosign.artifact.sig.v1+json"]}]}"#),
            ("change-freeze", r#"{"windows":[{"from":"2026-12-20T00:00:00Z","until":"2027-01-04T00:00:00Z"},{"days":["sat","sun"]},{"days":["fri"],"from":"16:00"}],"exempt_groups":["release-managers"]}"#),
        ]
        .iter()
        .map(|(name, settings)| {
            let settings = serde_json::from_str(settings).expect("settings");
            engine.load_embedded(name).expect("load").configure(&settings).expect("configure")
        })
        .collect()
    })
}

fn changes(tags: Vec<(String, Option<String>)>) -> Vec<TagChange> {
    tags.into_iter().map(|(tag, current)| TagChange { tag, current }).collect()
}

fuzz_target!(|input: Input| {
    let operation = match input.kind {
        Kind::Push { digest, tags } => Operation::Push(Push { digest, tags: changes(tags) }),
        Kind::DeleteTags(tags) => Operation::DeleteTags(changes(tags)),
        Kind::DeleteManifest { digest, tags } => {
            Operation::DeleteManifest(ManifestDeletion { digest, tags })
        }
    };
    let request = Request {
        repository: "team/app".into(),
        actor: Actor { id: input.actor, groups: input.groups },
        operation,
        time: Instant { seconds: input.time.0, nanoseconds: input.time.1 % 1_000_000_000 },
    };
    let mut declared = input.images;
    if let Operation::Push(push) = &request.operation {
        declared.push((push.digest.clone(), input.pushed));
    }
    let mut images = Images::new();
    for (digest, facts) in declared {
        let facts = facts.map_or_else(ImageFacts::default, |facts| {
            let mut manifest = Manifest::bare("application/vnd.oci.image.manifest.v1+json");
            manifest.annotations = key_values(facts.annotations);
            let referrers = facts
                .referrers
                .into_iter()
                .map(|(digest, artifact_type)| Referrer {
                    digest,
                    media_type: manifest.media_type.clone(),
                    artifact_type,
                    annotations: Vec::new(),
                })
                .collect();
            ImageFacts { manifest: Some(manifest), labels: key_values(facts.labels), referrers }
        });
        images.insert(&digest, facts);
    }
    let state = Arc::new(RepositoryState {
        tags: std::sync::Arc::new(input.state.into_iter().collect()),
        images: Arc::new(images),
    });
    for policy in policies() {
        if let Err(failure) = policy.evaluate(&request, state.clone()) {
            panic!("{} failed: {failure}", policy.name());
        }
    }
});
