//! What a policy can reach (nothing ambient), what its failures mean for a request, and
//! that misbehaviour of one request does not hold up others.

mod common;

use common::{hostile_policy, push, test_policy};
use serde_json::json;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use tagpolicy::{
    Enforcement, Engine, Error, FailMode, Isolation, Limits, Loader, Mode, Outcome, PolicySet,
    PolicySpec, TagMap,
};

fn empty() -> Arc<TagMap> {
    Arc::new(TagMap::new())
}

#[test]
fn a_policy_sees_no_environment_clock_randomness_or_stdin() {
    let engine = Engine::new().unwrap();
    let snoop = engine.load_file(test_policy("snoop-policy")).unwrap();
    let request = push("a", &[("x", None)]);
    let seen = |policy: &tagpolicy::ConfiguredPolicy| {
        policy.evaluate(&request, empty()).unwrap().summary()
    };
    let first = seen(&snoop.configure(&json!({})).unwrap());
    assert!(first.starts_with("env=0 args=0 time=0 elapsed=0 hash="), "{first}");
    assert!(first.ends_with(" stdin=0"), "{first}");
    // "Randomness" is a fixed sequence: a fresh instance sees the same hash seed.
    assert_eq!(first, seen(&snoop.configure(&json!({})).unwrap()));
}

#[test]
fn a_policy_that_imports_files_or_sockets_is_refused_at_load() {
    let engine = Engine::new().unwrap();
    let error = engine.load_file(test_policy("escape-policy")).err().unwrap();
    let Error::ForbiddenImports { imports, .. } = &error else { panic!("{error}") };
    assert!(imports.iter().any(|i| i.starts_with("wasi:filesystem/")), "{imports:?}");
    assert!(imports.iter().any(|i| i.starts_with("wasi:sockets/")), "{imports:?}");
    assert!(
        imports.iter().all(|i| !i.starts_with("wasi:cli/") && !i.starts_with("tagpolicy:")),
        "{imports:?}"
    );
    assert!(error.to_string().contains("imports what the host does not grant: wasi:"), "{error}");
}

#[test]
fn a_policy_with_invalid_metadata_is_refused_at_load() {
    let engine = Engine::new().unwrap();
    let error = engine.load_file(test_policy("bad-metadata-policy")).err().unwrap();
    assert!(matches!(error, Error::Metadata { .. }), "{error}");
    assert!(
        error.to_string().contains("name `Not A Valid Name` must be 1 to 64 lowercase letters"),
        "{error}"
    );
}

#[test]
fn a_chatty_policy_keeps_working_and_its_output_stays_capped() {
    let engine = Engine::new().unwrap();
    let policy = engine
        .load_file(hostile_policy())
        .unwrap()
        .configure(&json!({"behaviour": "chatty"}))
        .unwrap();
    let request = push("a", &[("x", None)]);
    // 200 KiB of output per call, far beyond the 64 KiB cap, on one reused instance: each
    // decision carries its own call's output, cut at the cap, the rest counted.
    let line = format!("{}\n", "chatter ".repeat(128));
    for call in 0..50 {
        let decision =
            policy.evaluate(&request, empty()).unwrap_or_else(|f| panic!("call {call}: {f}"));
        assert_eq!(decision.outcome, Outcome::Allow);
        let [printed] = decision.output.as_slice() else { panic!("{:?}", decision.output) };
        assert_eq!(printed.policy, "hostile");
        assert_eq!(printed.text.len(), 64 << 10, "call {call}");
        assert!(printed.text.starts_with(&line), "call {call}");
        assert_eq!(printed.dropped_bytes as usize, 200 * line.len() - (64 << 10), "call {call}");
    }
}

/// What a policy printed is kept for a failed call too, where it may explain the failure;
/// a policy that prints nothing has no entry.
#[test]
fn output_is_kept_on_failure_and_absent_when_nothing_was_printed() {
    let engine = Engine::new().unwrap();
    let hostile = |behaviour: &str| {
        engine.load_file(hostile_policy()).unwrap().configure(&json!({"behaviour": behaviour}))
    };
    let request = push("a", &[("x", None)]);
    let (result, printed) = hostile("panic").unwrap().evaluate_printing(&request, empty());
    assert!(matches!(result, Err(tagpolicy::Failure::Panic(_))), "{result:?}");
    assert!(printed.unwrap().text.contains("panicked at"));
    let (result, printed) = hostile("allow").unwrap().evaluate_printing(&request, empty());
    assert!(result.is_ok() && printed.is_none(), "{result:?} {printed:?}");
    // In a policy set, each policy that printed has its entry on the decision.
    let set = PolicySet::new().with(hostile("chatty").unwrap(), Mode::Enforce);
    let decision = set.evaluate(&request, empty());
    assert_eq!(decision.output.len(), 1, "{:?}", decision.output);
}

#[test]
fn fail_open_allows_with_a_warning_that_names_the_failure() {
    let engine = Engine::new().unwrap();
    let policy = engine
        .load_file(hostile_policy())
        .unwrap()
        .configure(&json!({"behaviour": "panic"}))
        .unwrap();
    let set =
        PolicySet::new().with(policy, Enforcement { mode: Mode::Enforce, fail: FailMode::Open });
    let decision = set.evaluate(&push("a", &[("x", None)]), empty());
    assert_eq!(decision.outcome, Outcome::Warn);
    // Allowed, and still on record as a failure (a scenario's `expect: error` matches it).
    let failure = decision.failures().next().and_then(|f| f.failure.as_ref());
    assert_eq!(failure.map(|f| f.kind()), Some("panic"));
    let summary = decision.summary();
    assert!(
        summary.starts_with("policy `hostile` panicked: the hostile policy panics on purpose (at ")
            && summary.ends_with("); allowed because it fails open"),
        "{summary}"
    );
}

#[test]
fn limits_and_fail_mode_can_be_set_per_policy_in_a_spec() {
    let loader = Loader::new(Engine::new().unwrap());
    let spec: PolicySpec = serde_yaml_ng::from_str(&format!(
        "policy: {}\nsettings: {{behaviour: loop}}\nfail: open\nlimits: {{evaluate_ms: 20, memory_mib: 8}}\n",
        hostile_policy().display()
    ))
    .unwrap();
    spec.check().unwrap();
    let set =
        loader.policy_set(std::slice::from_ref(&spec), Path::new("")).map_err(|(_, e)| e).unwrap();
    let decision = set.evaluate(&push("a", &[("x", None)]), empty());
    assert_eq!(decision.outcome, Outcome::Warn);
    assert_eq!(
        decision.summary(),
        "policy `hostile` exceeded its 20 ms deadline; allowed because it fails open"
    );

    for (yaml, wanted) in [
        (
            "policy: x\nlimits: {evaluate_ms: 0}\n",
            "limits.evaluate_ms: must be between 1 and 60000",
        ),
        (
            "policy: x\nlimits: {memory_mib: 100000}\n",
            "limits.memory_mib: must be between 1 and 4096",
        ),
        ("policy: x\nsha256: abc\n", "sha256: `abc` is not 64 hex digits"),
    ] {
        let spec: PolicySpec = serde_yaml_ng::from_str(yaml).unwrap();
        assert_eq!(spec.check().unwrap_err(), wanted);
    }
    let unknown =
        serde_yaml_ng::from_str::<PolicySpec>("policy: x\nlimits: {cpu: 1}\n").unwrap_err();
    assert!(unknown.to_string().contains("unknown field `cpu`"), "{unknown}");
}

#[test]
fn a_pinned_policy_loads_only_with_its_own_digest() {
    let loader = Loader::new(Engine::new().unwrap());
    let actual = loader.load("min-tags", Path::new("")).unwrap().sha256().to_string();
    let mut spec = PolicySpec::new("min-tags", None);
    spec.sha256 = Some(actual.to_uppercase());
    assert!(loader.configure(&spec, Path::new("")).is_ok(), "hex case does not matter");
    spec.sha256 = Some("0".repeat(64));
    let error = loader.configure(&spec, Path::new("")).err().unwrap();
    assert!(matches!(error, Error::PinMismatch { .. }), "{error}");
    assert!(error.to_string().contains(&format!("got `{actual}`")), "{error}");
}

#[test]
fn a_hostile_request_does_not_hold_up_the_others() {
    let engine = Engine::new().unwrap();
    let policy = Arc::new(
        engine
            .load_file(hostile_policy())
            .unwrap()
            .configure(&json!({"behaviour": "loop-if-tag-is-boom"}))
            .unwrap(),
    );
    let deadline = policy.policy().limits().evaluate_deadline;
    let stop = Arc::new(AtomicBool::new(false));
    let bomber = {
        let (policy, stop) = (policy.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut stopped = 0;
            while !stop.load(Ordering::Relaxed) {
                let failure = policy.evaluate(&push("a", &[("boom", None)]), empty()).unwrap_err();
                assert!(matches!(failure, tagpolicy::Failure::Deadline(_)), "{failure}");
                stopped += 1;
            }
            stopped
        })
    };
    let workers: Vec<_> = (0..3)
        .map(|_| {
            let policy = policy.clone();
            std::thread::spawn(move || {
                let mut slowest = Duration::ZERO;
                for _ in 0..300 {
                    let started = Instant::now();
                    let decision = policy.evaluate(&push("a", &[("fine", None)]), empty()).unwrap();
                    slowest = slowest.max(started.elapsed());
                    assert_eq!(decision.outcome, Outcome::Allow);
                }
                slowest
            })
        })
        .collect();
    let slowest = workers.into_iter().map(|w| w.join().unwrap()).max().unwrap();
    stop.store(true, Ordering::Relaxed);
    let stopped = bomber.join().unwrap();
    assert!(stopped >= 1, "the hostile request ran");
    // Each good request finished within its own deadline, although the hostile one ran
    // concurrently for whole deadlines at a time.
    assert!(slowest < deadline, "a good request took {slowest:?}");
}

#[test]
fn isolated_instances_and_recycled_ones_carry_no_state_between_requests() {
    let engine = Engine::new().unwrap();
    let policy = engine.load_file(hostile_policy()).unwrap();
    let settings = json!({"behaviour": "panic-every-second-call"});
    let request = push("a", &[("x", None)]);
    // Reused: the second call on the same instance panics (the policy counts its calls).
    let reused = policy.configure(&settings).unwrap();
    assert!(reused.evaluate(&request, empty()).is_ok());
    assert!(reused.evaluate(&request, empty()).is_err());
    // Isolated, or recycled after every decision: every call is the instance's first.
    let isolated = policy.with_isolation(Isolation::Isolated).configure(&settings).unwrap();
    assert!(isolated.uses_snapshot(), "isolated requests start from the configured snapshot");
    let limits = Limits { recycle_after: 1, ..policy.limits() };
    let recycled = policy.with_limits(limits).unwrap().configure(&settings).unwrap();
    for call in 0..5 {
        assert!(isolated.evaluate(&request, empty()).is_ok(), "isolated call {call}");
        assert!(recycled.evaluate(&request, empty()).is_ok(), "recycled call {call}");
    }
}

fn moves(tag: &str) -> tagpolicy::Request {
    push("b", &[(tag, Some("a"))])
}

fn outcome(rule: &tagpolicy::ConfiguredPolicy, request: &tagpolicy::Request) -> Option<Outcome> {
    rule.evaluate(request, empty()).ok().map(|decision| decision.outcome)
}

#[test]
fn pattern_sets_are_counted_while_a_configuration_holds_them() {
    // A gate with hundreds of rules, each with its own list, and reloads that rewrite them:
    // the limit on a policy's pattern sets counts what the live configurations hold.
    let engine = Engine::new().unwrap();
    let policy = engine.load_embedded("immutable-tags").unwrap();
    let configure = |tag: String| policy.configure(&json!({"mutable": [tag]})).unwrap();
    let rules: Vec<_> = (0..300).map(|n| configure(format!("rule-{n}"))).collect();
    // Each still decides with its own list: `rule-299` may move under the last rule only.
    assert_eq!(outcome(&rules[299], &moves("rule-299")), Some(Outcome::Allow));
    assert_eq!(outcome(&rules[0], &moves("rule-299")), Some(Outcome::Deny));
    drop(rules);
    // Reloads that change the list every time, long past any count of sets ever made.
    for reload in 0..600 {
        let tag = format!("reload-{reload}");
        assert_eq!(outcome(&configure(tag.clone()), &moves(&tag)), Some(Outcome::Allow), "{tag}");
    }
}

#[test]
fn more_reusing_configurations_than_pool_slots_still_decide() {
    // Each reusing configuration keeps an idle instance between requests. Kept without a
    // budget, as many rules as pool slots filled the pool with idle instances and every
    // request that needed one more was denied ("maximum concurrent limit ... reached").
    let engine = Engine::builder().instance_pool(Some(8)).build().unwrap();
    let policy = engine.load_embedded("immutable-tags").unwrap();
    let rules: Vec<_> = (0..20)
        .map(|n| policy.configure(&json!({"mutable": [format!("rule-{n}")]})).unwrap())
        .collect();
    for round in 0..3 {
        for (n, rule) in rules.iter().enumerate() {
            let tag = format!("rule-{n}");
            assert_eq!(
                outcome(rule, &moves(&tag)),
                Some(Outcome::Allow),
                "round {round}, rule {n}"
            );
        }
    }
    // Half of the slots at most are idle: four requests can still run at once.
    let idle = rules.iter().filter(|rule| rule.idle_memory().is_some()).count();
    assert_eq!(idle, 4);
}

#[test]
fn an_isolated_configuration_keeps_the_sets_its_snapshot_uses() {
    // Instances from the snapshot use the handle `configure` got without preparing it again;
    // were it released with the configuring instance, the next list would take its handle.
    let engine = Engine::new().unwrap();
    let policy =
        engine.load_embedded("immutable-tags").unwrap().with_isolation(Isolation::Isolated);
    let configure = |tag: &str| policy.configure(&json!({"mutable": [tag]})).unwrap();
    let first = configure("first");
    assert!(first.uses_snapshot());
    let second = configure("second");
    for _ in 0..3 {
        assert_eq!(outcome(&first, &moves("first")), Some(Outcome::Allow));
        assert_eq!(outcome(&first, &moves("second")), Some(Outcome::Deny));
        assert_eq!(outcome(&second, &moves("second")), Some(Outcome::Allow));
    }
}

#[test]
fn a_memory_limit_met_in_one_call_is_not_blamed_for_the_next_failure() {
    // The first call's memory.grow is refused and the policy copes; the second call panics.
    // The panic is reported as a panic, not as the memory limit of a call long finished.
    let engine = Engine::new().unwrap();
    let policy = engine.load_file(hostile_policy()).unwrap();
    let configured = policy.configure(&json!({"behaviour": "refused-grow-then-panic"})).unwrap();
    let request = push("a", &[("x", None)]);
    assert_eq!(configured.evaluate(&request, empty()).map(|d| d.outcome), Ok(Outcome::Allow));
    let failure = configured.evaluate(&request, empty()).unwrap_err();
    assert!(
        matches!(&failure, tagpolicy::Failure::Panic(message) if message.contains("an unrelated panic")),
        "{failure:?}"
    );
}

#[test]
fn limits_that_cannot_apply_are_refused_naming_the_field() {
    let engine = Engine::new().unwrap();
    let policy = engine.load_file(hostile_policy()).unwrap();
    let refused = |limits: Limits| match policy.with_limits(limits) {
        Err(tagpolicy::Error::Limits(error)) => error.to_string(),
        other => panic!("accepted: {:?}", other.map(|p| p.limits())),
    };
    let base = policy.limits();
    let zero = refused(Limits { evaluate_deadline: Duration::ZERO, ..base });
    assert!(zero.starts_with("limits.evaluate_deadline: "), "{zero}");
    // A MiB count that would wrap when shifted into bytes saturates, and is then refused.
    let spec = tagpolicy::LimitsSpec { memory_mib: Some(usize::MAX >> 4), ..Default::default() };
    let huge = refused(spec.apply(base));
    assert!(huge.starts_with("limits.memory_bytes: "), "{huge}");
    // Fuel on an engine built without it would be ignored.
    let fuel = refused(Limits { fuel: Some(1_000_000), ..base });
    assert!(fuel.contains("built without fuel"), "{fuel}");
    // And an engine that counts fuel needs a fuel limit on every policy.
    let counting =
        Engine::with_limits(Limits { fuel: Some(1_000_000), ..Limits::default() }).unwrap();
    let metered = counting.load_file(hostile_policy()).unwrap();
    let missing = match metered.with_limits(Limits { fuel: None, ..metered.limits() }) {
        Err(tagpolicy::Error::Limits(error)) => error.to_string(),
        other => panic!("accepted: {:?}", other.map(|p| p.limits())),
    };
    assert!(missing.contains("needs a fuel limit"), "{missing}");
    // The engine's own limits are checked when it is built.
    let engine =
        Engine::with_limits(Limits { lookups_deadline: Duration::ZERO, ..Limits::default() });
    assert!(
        matches!(engine, Err(tagpolicy::Error::Limits(ref e)) if e.field == "lookups_deadline")
    );
}

#[test]
fn a_reused_instance_whose_memory_only_grows_is_replaced_before_it_hits_the_limit() {
    // Garbage-collected runtimes (Python, JavaScript) keep growing across calls; an instance
    // that reached the cap would deny an innocent request. This one keeps 1 MiB per call.
    let engine = Engine::new().unwrap();
    let policy = engine.load_file(hostile_policy()).unwrap();
    let limits = Limits { memory_bytes: 16 << 20, ..policy.limits() };
    let leaky = policy
        .with_limits(limits)
        .unwrap()
        .configure(&json!({"behaviour": "leak-per-call"}))
        .unwrap();
    let request = push("a", &[("x", None)]);
    let mut replaced = 0;
    let mut last_uses = 0;
    for call in 0..100 {
        let decision = leaky.evaluate(&request, empty());
        assert_eq!(decision.map(|d| d.outcome), Ok(Outcome::Allow), "call {call}");
        let (bytes, uses) = leaky.idle_memory().unwrap_or((0, 0));
        assert!(bytes <= 8 << 20 || uses == 0, "call {call}: an idle instance of {bytes} bytes");
        replaced += usize::from(uses <= last_uses);
        last_uses = uses;
    }
    assert!(replaced >= 10, "replaced {replaced} times in 100 calls");
}

#[test]
fn a_policy_holding_a_host_stream_after_configure_is_configured_per_request_instead() {
    let engine = Engine::new().unwrap();
    let policy = engine.load_file(hostile_policy()).unwrap().with_isolation(Isolation::Isolated);
    let request = push("a", &[("x", None)]);
    // Printing in `configure` leaves the guest holding a stderr stream, which a snapshot
    // cannot carry into a new instance: the host falls back to configuring per request.
    let printing = policy.configure(&json!({"behaviour": "print-in-configure"})).unwrap();
    assert!(!printing.uses_snapshot());
    let quiet = policy.configure(&json!({"behaviour": "allow"})).unwrap();
    assert!(quiet.uses_snapshot());
    for policy in [&printing, &quiet] {
        for _ in 0..3 {
            assert_eq!(policy.evaluate(&request, empty()).unwrap().outcome, Outcome::Allow);
        }
    }
    // Turned off on purpose: configured per request.
    let unsnapshotted = engine
        .load_file(hostile_policy())
        .unwrap()
        .with_isolation(Isolation::Isolated)
        .with_snapshot(false)
        .configure(&json!({"behaviour": "allow"}))
        .unwrap();
    assert!(!unsnapshotted.uses_snapshot());
    assert_eq!(unsnapshotted.evaluate(&request, empty()).unwrap().outcome, Outcome::Allow);
}

#[test]
fn fuel_stops_a_loop_after_the_same_work_on_any_machine() {
    let limits = Limits { fuel: Some(5_000_000), ..Limits::default() };
    let engine = Engine::with_limits(limits).unwrap();
    let request = push("a", &[("x", None)]);
    let looping = engine
        .load_file(hostile_policy())
        .unwrap()
        .configure(&json!({"behaviour": "loop"}))
        .unwrap();
    let failure = looping.evaluate(&request, empty()).unwrap_err();
    assert_eq!(failure.to_string(), "ran out of its 5000000 units of fuel");
    // Honest policies decide well within the same budget, call after call.
    let honest = engine.load_embedded("immutable-tags").unwrap().configure(&json!({})).unwrap();
    for _ in 0..3 {
        assert_eq!(honest.evaluate(&request, empty()).unwrap().outcome, Outcome::Allow);
    }
    // The snapshot's `configure` runs with the same budget, so fuel does not cost isolated
    // policies their snapshot.
    let isolated = engine
        .load_embedded("immutable-tags")
        .unwrap()
        .with_isolation(Isolation::Isolated)
        .configure(&json!({}))
        .unwrap();
    assert!(isolated.uses_snapshot());
    assert_eq!(isolated.evaluate(&request, empty()).unwrap().outcome, Outcome::Allow);
}

/// A repository whose every answer takes `delay`, as a gate's index or registry can.
struct Slow {
    delay: Duration,
    tags: TagMap,
}

impl tagpolicy::RepositoryView for Slow {
    fn find_tags(&self, query: &tagpolicy::TagQuery) -> Vec<tagpolicy::TagEntry> {
        std::thread::sleep(self.delay);
        self.tags.find(query)
    }
    fn count_tags(&self) -> u64 {
        std::thread::sleep(self.delay);
        self.tags.len() as u64
    }
    fn digest_of(&self, tag: &str) -> Option<String> {
        std::thread::sleep(self.delay);
        tagpolicy::RepositoryView::digest_of(&self.tags, tag)
    }
    fn tags_of(&self, digest: &str) -> Vec<String> {
        std::thread::sleep(self.delay);
        tagpolicy::RepositoryView::tags_of(&self.tags, digest)
    }
}

#[test]
fn the_hosts_time_on_a_policys_behalf_is_not_the_policys() {
    // `semver-series` asks for the image's tags and the newest release of the series: two
    // answers of 100 ms each, four times its 50 ms deadline, all of it the host's.
    let state: TagMap = [("1.2.3", common::digest("a"))].into_iter().collect();
    let view = Arc::new(Slow { delay: Duration::from_millis(100), tags: state });
    let request = push("a", &[("1.2", None)]);
    let decide = |lookups_deadline: Duration| {
        let limits = Limits {
            evaluate_deadline: Duration::from_millis(50),
            lookups_deadline,
            ..Limits::default()
        };
        let engine = Engine::with_limits(limits).unwrap();
        let policy = engine.load_embedded("semver-series").unwrap().configure(&json!({})).unwrap();
        policy.evaluate(&request, view.clone())
    };
    let decision = decide(Duration::from_secs(10)).unwrap_or_else(|f| panic!("{f}"));
    assert_eq!(decision.outcome, Outcome::Allow, "{}", decision.summary());
    // The host's own budget still bounds a policy that keeps it asking.
    let failure = decide(Duration::from_millis(150)).unwrap_err();
    assert_eq!(failure, tagpolicy::Failure::Lookups(Duration::from_millis(150)), "{failure}");
    assert!(failure.to_string().contains("kept the host busy"), "{failure}");
}
