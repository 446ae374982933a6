//! Criterion benches of the paths `tagpolicy bench` measures, on the same synthetic pushes:
//! the native baseline of the `immutable-tags` rule, a decision with a reused instance, with
//! a reused instance of a rule without patterns (the crossing alone), a fresh pooled
//! instance from the configured snapshot, one configured anew, one allocated
//! on demand, compiling a policy, loading it from the compile cache, and wasmtime's
//! deserialization alone; and in repositories of 100 and 1,000,000 tags (`repository/`), the
//! host's index queries alone and `semver-series` deciding the series-tag pushes of
//! `tagpolicy bench --tags`. `cargo bench -p tagpolicy`; compare the ratios, not the times.

// Shared with `tagpolicy bench`, which uses all of it.
#[allow(dead_code)]
#[path = "../../cli/src/bench/workload.rs"]
mod workload;

use criterion::{Criterion, criterion_group, criterion_main};
use std::hint::black_box;
use std::sync::Arc;
use tagpolicy::{ConfiguredPolicy, Engine, Isolation, RepositoryView, TagMap, TagOrder, TagQuery};
use workload::{MUTABLE, NativeImmutableTags, Pushes, synthetic_pushes};

fn configured(engine: &Engine, isolation: Isolation, snapshot: bool) -> ConfiguredPolicy {
    configured_with(engine, isolation, snapshot, serde_json::json!({ "mutable": MUTABLE }))
}

fn configured_with(
    engine: &Engine,
    isolation: Isolation,
    snapshot: bool,
    settings: serde_json::Value,
) -> ConfiguredPolicy {
    engine
        .load_embedded("immutable-tags")
        .unwrap()
        .with_isolation(isolation)
        .with_snapshot(snapshot)
        .configure(&settings)
        .unwrap()
}

fn decisions(c: &mut Criterion) {
    let (state, pushes) = synthetic_pushes();
    let state: Arc<TagMap> = Arc::new(state);
    let pooled = Engine::new().unwrap();
    let on_demand = Engine::builder().instance_pool(None).build().unwrap();
    let mut group = c.benchmark_group("decision");

    let native = NativeImmutableTags::new();
    let mut next = 0;
    group.bench_function("native", |b| {
        b.iter(|| {
            next = (next + 1) % pushes.len();
            black_box(native.outcome(&pushes[next], state.as_ref()))
        })
    });
    let policies = [
        ("reused", configured(&pooled, Isolation::Reuse, true)),
        // The same crossing without the three pattern calls to the host: what the call
        // itself costs (lowering the request, running the rule, lifting the decision).
        (
            "reused_no_patterns",
            configured_with(
                &pooled,
                Isolation::Reuse,
                true,
                serde_json::json!({"default": "mutable"}),
            ),
        ),
        ("isolated", configured(&pooled, Isolation::Isolated, true)),
        ("isolated_configured", configured(&pooled, Isolation::Isolated, false)),
        ("isolated_on_demand", configured(&on_demand, Isolation::Isolated, true)),
    ];
    for (name, policy) in &policies {
        let view: Arc<dyn RepositoryView> = state.clone();
        group.bench_function(*name, |b| {
            b.iter(|| {
                next = (next + 1) % pushes.len();
                black_box(policy.evaluate(&pushes[next], view.clone()).unwrap())
            })
        });
    }
    group.finish();
}

fn loading(c: &mut Criterion) {
    let bytes = tagpolicy::embedded::bytes("immutable-tags").unwrap();
    let mut group = c.benchmark_group("load");
    group.sample_size(10);
    let engine = Engine::new().unwrap();
    group.bench_function("compile", |b| {
        b.iter(|| engine.load_bytes(bytes, "immutable-tags").unwrap())
    });
    let dir = tempfile::tempdir().unwrap();
    let cached = Engine::builder().cache_dir(dir.path()).build().unwrap();
    cached.load_bytes(bytes, "immutable-tags").unwrap();
    group.sample_size(50);
    group.bench_function("from_cache", |b| {
        b.iter(|| cached.load_bytes(bytes, "immutable-tags").unwrap())
    });
    // wasmtime's part of that alone, on an engine with wasmtime's defaults: deserializing
    // the compiled component from memory and from a mapped file (what the spike measured).
    let plain = wasmtime::Engine::default();
    let compiled = wasmtime::component::Component::new(&plain, bytes).unwrap().serialize().unwrap();
    let file = dir.path().join("plain.cwasm");
    std::fs::write(&file, &compiled).unwrap();
    group.bench_function("deserialize_only", |b| {
        // SAFETY: bytes this process just produced with `serialize` for this engine.
        b.iter(|| {
            unsafe { wasmtime::component::Component::deserialize(&plain, &compiled) }.unwrap()
        })
    });
    group.bench_function("deserialize_file_only", |b| {
        // SAFETY: a file this process just wrote and nothing else touches.
        b.iter(|| {
            unsafe { wasmtime::component::Component::deserialize_file(&plain, &file) }.unwrap()
        })
    });
    group.finish();
}

/// What does and does not grow with the repository: the index's queries alone, and a policy
/// that asks them, at 100 and at 1,000,000 tags.
fn repository(c: &mut Criterion) {
    let engine = Engine::new().unwrap();
    let semver =
        engine.load_embedded("semver-series").unwrap().configure(&serde_json::json!({})).unwrap();
    let mut group = c.benchmark_group("repository");
    // The queries `semver-series` makes: the newest release of a series, and of the repository
    // (the guest SDK's `release_pattern`), a page of 8.
    let number = "(?:0|[1-9][0-9]*)";
    let series =
        TagQuery::new(&format!(r"v?7\.3\.{number}"), TagOrder::NewestFirst, 8, None).unwrap();
    let every =
        TagQuery::new(&format!(r"v?{number}\.{number}\.{number}"), TagOrder::NewestFirst, 8, None)
            .unwrap();
    for size in [100, 1_000_000] {
        let workload = workload::sized(size, Pushes::SeriesTags);
        let state: Arc<TagMap> = Arc::new(workload::index(&workload.entries));
        group.bench_function(format!("newest_of_series/{size}"), |b| {
            b.iter(|| black_box(state.find(&series)))
        });
        group.bench_function(format!("newest_release/{size}"), |b| {
            b.iter(|| black_box(state.find(&every)))
        });
        let view: Arc<dyn RepositoryView> = state.clone();
        let pushes = &workload.pushes;
        let mut next = 0;
        group.bench_function(format!("semver_series/{size}"), |b| {
            b.iter(|| {
                next = (next + 1) % pushes.len();
                black_box(semver.evaluate(&pushes[next], view.clone()).unwrap())
            })
        });
    }
    group.finish();
}

criterion_group!(benches, decisions, loading, repository);
criterion_main!(benches);
