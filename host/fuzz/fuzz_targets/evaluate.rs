//! Arbitrary requests over arbitrary repository states, decided by the three reference
//! policies: each must answer (a policy failure here is a bug in it) and the host must
//! never panic.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tagpolicy::{
    Actor, ConfiguredPolicy, Engine, Instant, Limits, ManifestDeletion, Operation, Push, Request,
    TagChange, TagMap,
};

#[derive(Debug, Arbitrary)]
enum Kind {
    Push { digest: String, tags: Vec<(String, Option<String>)> },
    DeleteTags(Vec<(String, Option<String>)>),
    DeleteManifest { digest: String, tags: Vec<String> },
}

#[derive(Debug, Arbitrary)]
struct Input {
    state: Vec<(String, String)>,
    actor: Option<String>,
    groups: Vec<String>,
    kind: Kind,
    time: (i64, u32),
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
    let state: Arc<TagMap> = Arc::new(input.state.into_iter().collect());
    for policy in policies() {
        if let Err(failure) = policy.evaluate(&request, state.clone()) {
            panic!("{} failed: {failure}", policy.name());
        }
    }
});
