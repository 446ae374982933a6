//! Decide the same push in a loop, for a profiler (`perf record`, `valgrind --tool=callgrind`):
//! `cargo run --release -p tagpolicy --example decide_loop -- [POLICY] [DECISIONS] [isolated]`
//! with POLICY an embedded name or `floor` (a policy that reads nothing).

use std::sync::Arc;
use tagpolicy::{
    Actor, Engine, Instant, Isolation, Operation, Push, RepositoryView, Request, TagChange, TagMap,
};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let name = args.get(1).map(String::as_str).unwrap_or("floor");
    let decisions: usize = args.get(2).map(|n| n.parse()).transpose()?.unwrap_or(1_000_000);
    let isolation = if args.get(3).map(String::as_str) == Some("isolated") {
        Isolation::Isolated
    } else {
        Isolation::Reuse
    };
    let engine = Engine::new()?;
    let policy = match name {
        "floor" => engine.load_bytes(tagpolicy::embedded::FLOOR, "floor")?,
        name => engine.load_embedded(name)?,
    };
    let policy = policy
        .with_isolation(isolation)
        .configure(&serde_json::json!({"mutable": ["latest", "\\d+\\.\\d+", "dev-.*"]}))
        .or_else(|_| policy.with_isolation(isolation).configure(&serde_json::json!({})))?;
    let old = format!("sha256:{}", "a".repeat(64));
    let new = format!("sha256:{}", "b".repeat(64));
    let state: Arc<dyn RepositoryView> =
        Arc::new([("1.2.3", old.as_str())].into_iter().collect::<TagMap>());
    let request = Request {
        repository: "team/app".into(),
        actor: Actor::anonymous(),
        operation: Operation::Push(Push {
            digest: new,
            tags: vec![TagChange { tag: "1.2.3".into(), current: Some(old) }],
        }),
        time: Instant::EPOCH,
    };
    let started = std::time::Instant::now();
    for _ in 0..decisions {
        std::hint::black_box(policy.evaluate(&request, state.clone())?);
    }
    let per = started.elapsed().as_nanos() as f64 / decisions as f64;
    println!("{name}: {per:.0} ns per decision ({decisions} decisions)");
    Ok(())
}
