//! `tagpolicy bench`: what a decision costs, against a native Rust baseline of the same
//! rule measured in the same run on the same synthetic pushes, in a repository of 200 tags or
//! of any size (`--tags`).

mod workload;

use super::Exit;
use super::common::{self, Output};
use anyhow::{Context, bail};
use serde::Serialize;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tagpolicy::{
    ConfiguredPolicy, Engine, Isolation, Outcome, Policy, RepositoryView, Request, TagMap,
};
use workload::{NativeImmutableTags, Pushes, Workload};

/// Measure decisions per push: a native Rust baseline of the `immutable-tags` rule, the
/// policy with a reused instance, with a fresh instance per push (started from the
/// configured snapshot, and for comparison configured anew), from all cores at once, and
/// the cost of compiling, snapshotting and loading from the compile cache.
///
/// With `--tags N`, the repository has N tags (releases over many series, CI tags, series
/// tags, `latest`) and the pushes are chosen for the policy so that it asks the host's index
/// what its rule asks: series tags for `semver-series`, new images for `min-tags`, moves for
/// `immutable-tags` (with a grace period, so that it reads tag histories), a mix of the three
/// for others. The report says what the pushes are and how many the policy allowed and
/// denied, how long the index took to build, and the process's resident memory.
///
/// Timings are medians over the run; ratios to the native baseline are what to compare
/// across machines. Progress goes to stderr.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The policy to measure: an embedded name or a `.wasm` file.
    #[arg(long, value_name = "NAME|FILE", default_value = "immutable-tags")]
    policy: String,
    /// Its settings (YAML or JSON). Default: for `immutable-tags`, three regex exceptions
    /// (the native baseline's rule; with `--tags`, also `grace: {period: 15m}`); for
    /// `min-tags` with `--tags`, `{min_tags: 2, required: ["v?\\d+\\.\\d+\\.\\d+"]}`; for
    /// other policies `{}`.
    #[arg(long, value_name = "FILE")]
    settings: Option<PathBuf>,
    /// Decide in a synthetic repository of N tags (100 to 10,000,000), with pushes chosen for
    /// the policy. Without it: the 200-tag repository and the 1000 mixed single-tag pushes
    /// of every earlier measurement.
    #[arg(long, value_name = "N")]
    tags: Option<usize>,
    /// Rough total running time, split between the measurements.
    #[arg(long, value_name = "N", default_value_t = 10)]
    seconds: u64,
    /// Allocate every instance on demand instead of from the pooling allocator (the
    /// default), to see what pooling and copy-on-write memory images save.
    #[arg(long)]
    on_demand: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    output: Output,
}

#[derive(Serialize)]
struct Report {
    policy: String,
    instance_pool: bool,
    /// The repository's size, and what it holds.
    tags: usize,
    repository: String,
    pushes: usize,
    /// What the pushes are.
    pushes_are: String,
    /// The settings the policy decided with.
    settings: serde_json::Value,
    /// How the policy decided the pushes (one pass, reused instance).
    decided: Decided,
    /// Building the index of the repository's tags, and the resident memory that added.
    index_build_ms: f64,
    index_resident_bytes: Option<u64>,
    /// The process's resident memory (VmRSS) and its peak (VmHWM) at the end of the run.
    resident_bytes: Option<u64>,
    peak_resident_bytes: Option<u64>,
    /// `None` when there is no native baseline of the policy with these pushes and settings.
    native_ns: Option<f64>,
    reused_ns: f64,
    reused_p99_ns: f64,
    isolated_ns: f64,
    isolated_p99_ns: f64,
    /// Whether the isolated instances started from a configured snapshot.
    isolated_from_snapshot: bool,
    /// Fresh instance per push, configured for each (no snapshot).
    isolated_configure_ns: f64,
    isolated_configure_p99_ns: f64,
    decisions_per_second: f64,
    threads: usize,
    compile_ms: f64,
    cached_load_us: f64,
    /// Time to configure an isolated policy: instrument, configure, snapshot, compile.
    snapshot_ms: f64,
    reused_vs_native: Option<f64>,
    isolated_vs_native: Option<f64>,
    /// The floor: a policy that allows without reading the request (entering the component,
    /// lowering the request, lifting the answer), reused and isolated.
    floor_reused_ns: f64,
    floor_isolated_ns: f64,
    /// The component's size.
    size_bytes: usize,
    /// Memory of a reused instance over `memory_decisions` decisions in a row.
    memory: MemoryReport,
}

/// How many pushes the policy allowed (without a warning), allowed with a warning, denied.
#[derive(Serialize, Default)]
struct Decided {
    allowed: usize,
    warned: usize,
    denied: usize,
}

/// How a reused instance's linear memory behaves over many decisions.
#[derive(Serialize)]
struct MemoryReport {
    decisions: u64,
    /// After the first decision.
    first_bytes: usize,
    /// The largest seen.
    peak_bytes: usize,
    /// After the last decision.
    last_bytes: usize,
    /// Instances replaced on the way: after `recycle_after` decisions, or earlier when an
    /// instance grew past half of its memory limit.
    replaced: u64,
}

pub fn run(args: Args) -> anyhow::Result<Exit> {
    if args.seconds == 0 {
        bail!("--seconds: must be at least 1");
    }
    if let Some(tags) = args.tags
        && !(workload::MIN_TAGS..=MAX_TAGS).contains(&tags)
    {
        bail!("--tags: {tags}; give between {} and {MAX_TAGS}", workload::MIN_TAGS);
    }
    let budget = Duration::from_secs(args.seconds) / 7;
    let bytes = match tagpolicy::embedded::bytes(&args.policy) {
        Some(bytes) => bytes.to_vec(),
        None => std::fs::read(&args.policy)
            .with_context(|| format!("cannot read policy `{}`", args.policy))?,
    };

    progress("compiling (no cache)");
    let slots = if args.on_demand { None } else { Some(tagpolicy::DEFAULT_INSTANCE_SLOTS) };
    let engine = Engine::builder().instance_pool(slots).build()?;
    let started = Instant::now();
    let policy = engine.load_bytes(&bytes, &args.policy)?;
    let compile_ms = started.elapsed().as_secs_f64() * 1e3;

    // The pushes are chosen by the policy's name, so that a port from a file gets those of
    // the policy it ports.
    let kind = match args.tags {
        None => Pushes::Mixed200,
        Some(_) => Pushes::for_policy(policy.name()),
    };
    let settings = match &args.settings {
        Some(path) => common::read_settings(path)?,
        None if policy.name() == "immutable-tags" || kind != Pushes::Mixed200 => kind.settings(),
        None => serde_json::json!({}),
    };
    // Settings the policy refuses fail here, before the measurements (a compile to the cache,
    // snapshots) that take longest for Python and JavaScript.
    let reused = configure_or_hint(&policy, &settings, args.settings.is_some())?;

    let workload = match args.tags {
        None => Workload::mixed200(),
        Some(tags) => {
            progress(&format!("generating a repository of {tags} tags"));
            workload::sized(tags, kind)
        }
    };
    let Workload { entries, pushes, kind, repository } = workload;
    let tags = entries.len();
    progress(&format!("indexing {tags} tags"));
    let before = resident();
    let started = Instant::now();
    let state: Arc<TagMap> = Arc::new(workload::index(&entries));
    let index_build_ms = started.elapsed().as_secs_f64() * 1e3;
    let index_resident_bytes = match (before, resident()) {
        (Some((before, _)), Some((after, _))) => Some(after.saturating_sub(before)),
        _ => None,
    };
    drop(entries);

    // Any build of `immutable-tags` (Rust, or a port from a file) is measured with the
    // native baseline's rule and checked against it; there is no baseline of other rules,
    // nor of other settings.
    let native = match kind.native() {
        Some(native) if policy.name() == "immutable-tags" && args.settings.is_none() => {
            Some(native)
        }
        _ => None,
    };

    progress("loading from the compile cache");
    let cached_load_us = cached_load(&bytes, &args.policy, budget)? * 1e6;

    let native_ns = native.as_ref().map(|native| {
        progress("native baseline");
        median_batch_ns(budget, pushes.len(), || {
            for push in &pushes {
                std::hint::black_box(native.outcome(push, state.as_ref()));
            }
        })
    });

    progress("deciding every push once");
    let decided = decide_all(native.as_ref(), &reused, &pushes, &state)?;
    progress("reused instance");
    let (reused_ns, reused_p99_ns) = per_call(budget, &reused, &pushes, &state);
    progress("snapshotting the configured policy");
    let started = Instant::now();
    let isolated = policy.with_isolation(Isolation::Isolated).configure(&settings)?;
    let snapshot_ms = started.elapsed().as_secs_f64() * 1e3;
    progress("isolated instance per push, from the snapshot");
    let (isolated_ns, isolated_p99_ns) = per_call(budget, &isolated, &pushes, &state);
    progress("isolated instance per push, configured per push");
    let configured =
        policy.with_isolation(Isolation::Isolated).with_snapshot(false).configure(&settings)?;
    let (isolated_configure_ns, isolated_configure_p99_ns) =
        per_call(budget, &configured, &pushes, &state);

    progress("the floor: a policy that reads nothing, reused and isolated");
    let floor = engine.load_bytes(tagpolicy::embedded::FLOOR, "floor")?;
    let (floor_reused_ns, _) =
        per_call(budget / 2, &floor.configure(&serde_json::json!({}))?, &pushes, &state);
    let floor_isolated =
        floor.with_isolation(Isolation::Isolated).configure(&serde_json::json!({}))?;
    let (floor_isolated_ns, _) = per_call(budget / 2, &floor_isolated, &pushes, &state);

    progress(&format!("memory of a reused instance over {MEMORY_DECISIONS} decisions"));
    let memory = memory_over(&policy.configure(&settings)?, &pushes, &state);

    let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    progress(&format!("throughput on {threads} threads"));
    let decisions_per_second = throughput(budget, threads, Arc::new(reused), &pushes, &state);

    let (resident_bytes, peak_resident_bytes) = resident().unzip();
    let report = Report {
        policy: policy_name(&policy),
        instance_pool: !args.on_demand,
        tags,
        repository,
        pushes: pushes.len(),
        pushes_are: kind.describe().to_string(),
        settings,
        decided,
        index_build_ms,
        index_resident_bytes,
        resident_bytes,
        peak_resident_bytes,
        native_ns,
        reused_ns,
        reused_p99_ns,
        isolated_ns,
        isolated_p99_ns,
        isolated_from_snapshot: isolated.uses_snapshot(),
        isolated_configure_ns,
        isolated_configure_p99_ns,
        decisions_per_second,
        threads,
        compile_ms,
        cached_load_us,
        snapshot_ms,
        reused_vs_native: native_ns.map(|native| reused_ns / native),
        isolated_vs_native: native_ns.map(|native| isolated_ns / native),
        floor_reused_ns,
        floor_isolated_ns,
        size_bytes: bytes.len(),
        memory,
    };
    match args.output {
        Output::Json => println!("{}", serde_json::to_string_pretty(&report)?),
        Output::Text => print_text(&report),
    }
    Ok(Exit::Success)
}

/// Configure `policy` with `settings`; when it refuses the defaults (no `--settings`), say
/// that it needs `--settings` and show the example it gives of its settings.
fn configure_or_hint(
    policy: &Policy,
    settings: &serde_json::Value,
    given: bool,
) -> anyhow::Result<ConfiguredPolicy> {
    policy.configure(settings).map_err(|error| match error {
        tagpolicy::Error::Settings { .. } if !given => anyhow::anyhow!(
            "{error}\n  `{}` needs settings: pass `--settings FILE` (YAML or JSON), e.g. with its \
             own example: {}",
            policy.name(),
            policy.metadata().settings_example
        ),
        error => error.into(),
    })
}

fn policy_name(policy: &Policy) -> String {
    format!("{} {}", policy.name(), policy.metadata().version)
}

fn progress(what: &str) {
    eprintln!("bench: {what}…");
}

fn print_text(r: &Report) {
    println!("{} on {} synthetic pushes, in a repository of {} tags", r.policy, r.pushes, r.tags);
    println!("  repository: {}", r.repository);
    println!("  pushes: {}", r.pushes_are);
    println!("  settings: {}", r.settings);
    let d = &r.decided;
    println!("  decided: {} allowed, {} warned, {} denied", d.allowed, d.warned, d.denied);
    let index_memory = match r.index_resident_bytes {
        Some(bytes) => format!(
            ", {:.1} MiB resident ({:.1} MiB per 100,000 tags)",
            bytes as f64 / MIB,
            bytes as f64 / MIB * 100_000.0 / r.tags as f64
        ),
        None => String::new(),
    };
    println!(
        "  index of {} tags         built in {:.1} ms{index_memory}",
        r.tags, r.index_build_ms
    );
    let native = |ns: f64| match r.native_ns {
        Some(native) => format!("  {:>7.1}× native", ns / native),
        None => String::new(),
    };
    match r.native_ns {
        Some(ns) => println!("  native baseline (immutable-tags in Rust)   {ns:>12.0} ns"),
        None => println!(
            "  native baseline          none: there is one of immutable-tags only, with its default settings"
        ),
    }
    println!(
        "  reused instance          median {:>12.0} ns  p99 {:>10.0} ns{}",
        r.reused_ns,
        r.reused_p99_ns,
        native(r.reused_ns)
    );
    let from = if r.isolated_from_snapshot { "snapshot" } else { "NO SNAPSHOT" };
    println!(
        "  isolated, {from:<12}   median {:>12.0} ns  p99 {:>10.0} ns{}",
        r.isolated_ns,
        r.isolated_p99_ns,
        native(r.isolated_ns)
    );
    println!(
        "  isolated, configured     median {:>12.0} ns  p99 {:>10.0} ns{}",
        r.isolated_configure_ns,
        r.isolated_configure_p99_ns,
        native(r.isolated_configure_ns)
    );
    println!(
        "  floor (reads nothing)    reused {:>12.0} ns  isolated {:>7.0} ns",
        r.floor_reused_ns, r.floor_isolated_ns
    );
    println!("  throughput, {} threads   {:>12.0} decisions/s", r.threads, r.decisions_per_second);
    println!("  compile                  {:>12.1} ms", r.compile_ms);
    println!("  load from cache          {:>12.1} µs", r.cached_load_us);
    println!("  snapshot (isolated configure) {:>7.1} ms", r.snapshot_ms);
    println!("  component size           {:>12.1} MiB", r.size_bytes as f64 / MIB);
    let m = &r.memory;
    println!(
        "  memory, reused, {} decisions: {:.1} MiB after the first, peak {:.1} MiB, {:.1} MiB at the end, {} instances replaced",
        m.decisions,
        m.first_bytes as f64 / MIB,
        m.peak_bytes as f64 / MIB,
        m.last_bytes as f64 / MIB,
        m.replaced
    );
    if let (Some(now), Some(peak)) = (r.resident_bytes, r.peak_resident_bytes) {
        println!(
            "  process memory           {:>12.1} MiB resident at the end (VmRSS), peak {:.1} MiB (VmHWM)",
            now as f64 / MIB,
            peak as f64 / MIB
        );
    }
}

const MIB: f64 = (1 << 20) as f64;
const MEMORY_DECISIONS: u64 = 100_000;
/// The largest `--tags`: about 2 GiB of index.
const MAX_TAGS: usize = 10_000_000;

/// The process's resident memory and its peak so far, in bytes (VmRSS and VmHWM of
/// /proc/self/status); `None` where there is no such file.
fn resident() -> Option<(u64, u64)> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let field = |name: &str| -> Option<u64> {
        let line = status.lines().find_map(|line| line.strip_prefix(name))?;
        let kib: u64 = line.trim().strip_suffix("kB")?.trim().parse().ok()?;
        Some(kib * 1024)
    };
    Some((field("VmRSS:")?, field("VmHWM:")?))
}

/// Decide `MEMORY_DECISIONS` pushes in a row on one reused instance, reading its memory
/// after each decision. Not timed.
fn memory_over(policy: &ConfiguredPolicy, pushes: &[Request], state: &Arc<TagMap>) -> MemoryReport {
    let mut report =
        MemoryReport { decisions: 0, first_bytes: 0, peak_bytes: 0, last_bytes: 0, replaced: 0 };
    let mut last_uses = 0;
    for push in pushes.iter().cycle().take(MEMORY_DECISIONS as usize) {
        let view: Arc<dyn RepositoryView> = state.clone();
        std::hint::black_box(policy.evaluate(push, view).ok());
        report.decisions += 1;
        // No idle instance: the one that decided was retired (grown, or failed).
        let (bytes, uses) = policy.idle_memory().unwrap_or((report.last_bytes, 0));
        if report.decisions == 1 {
            report.first_bytes = bytes;
        } else if uses <= last_uses {
            report.replaced += 1;
        }
        last_uses = uses;
        report.peak_bytes = report.peak_bytes.max(bytes);
        report.last_bytes = bytes;
    }
    report
}

/// Decide every push once, counting the outcomes; where there is a native baseline, check
/// that it decides the same: a baseline that decides differently would make the ratio
/// meaningless.
fn decide_all(
    native: Option<&NativeImmutableTags>,
    policy: &ConfiguredPolicy,
    pushes: &[Request],
    state: &Arc<TagMap>,
) -> anyhow::Result<Decided> {
    let mut decided = Decided::default();
    for (i, push) in pushes.iter().enumerate() {
        let outcome = policy.evaluate(push, state.clone())?.outcome;
        match outcome {
            Outcome::Allow => decided.allowed += 1,
            Outcome::Warn => decided.warned += 1,
            // A policy's own decision is never an error: its failures are `Err` above.
            Outcome::Deny | Outcome::Error => decided.denied += 1,
        }
        if let Some(native) = native {
            let expected = native.outcome(push, state.as_ref());
            if outcome != expected {
                bail!("push {i}: the native baseline says {expected}, the policy says {outcome}");
            }
        }
    }
    Ok(decided)
}

/// Median nanoseconds per decision over batches of `batch` decisions.
fn median_batch_ns(budget: Duration, batch: usize, mut run: impl FnMut()) -> f64 {
    let started = Instant::now();
    let mut samples = Vec::new();
    while started.elapsed() < budget || samples.len() < 5 {
        let t = Instant::now();
        run();
        samples.push(t.elapsed().as_nanos() as f64 / batch as f64);
    }
    percentile(&mut samples, 0.5)
}

/// Median and p99 of single decisions.
fn per_call(
    budget: Duration,
    policy: &ConfiguredPolicy,
    pushes: &[Request],
    state: &Arc<TagMap>,
) -> (f64, f64) {
    let started = Instant::now();
    let mut samples = Vec::new();
    'outer: loop {
        for push in pushes {
            let view: Arc<dyn RepositoryView> = state.clone();
            let t = Instant::now();
            let decision = policy.evaluate(push, view);
            samples.push(t.elapsed().as_nanos() as f64);
            std::hint::black_box(decision.ok());
            if started.elapsed() > budget && samples.len() >= pushes.len() {
                break 'outer;
            }
        }
    }
    let median = percentile(&mut samples, 0.5);
    (median, percentile(&mut samples, 0.99))
}

fn throughput(
    budget: Duration,
    threads: usize,
    policy: Arc<ConfiguredPolicy>,
    pushes: &[Request],
    state: &Arc<TagMap>,
) -> f64 {
    let pushes = Arc::new(pushes.to_vec());
    let started = Instant::now();
    let workers: Vec<_> = (0..threads)
        .map(|t| {
            let (policy, pushes, state) = (policy.clone(), pushes.clone(), state.clone());
            std::thread::spawn(move || {
                let mut done = 0u64;
                let mut i = t * 97;
                while started.elapsed() < budget {
                    for _ in 0..100 {
                        let view: Arc<dyn RepositoryView> = state.clone();
                        std::hint::black_box(policy.evaluate(&pushes[i % pushes.len()], view).ok());
                        i += 1;
                    }
                    done += 100;
                }
                done
            })
        })
        .collect();
    let total: u64 = workers.into_iter().map(|w| w.join().unwrap_or(0)).sum();
    total as f64 / started.elapsed().as_secs_f64()
}

/// Seconds to load the component from a warm compile cache (median): read, deserialize,
/// check imports and world, and ask for its metadata, as every load does.
fn cached_load(bytes: &[u8], origin: &str, budget: Duration) -> anyhow::Result<f64> {
    let dir = tempfile::tempdir()?;
    let engine = Engine::builder().cache_dir(dir.path()).build()?;
    engine.load_bytes(bytes, origin)?; // fills the cache
    let started = Instant::now();
    let mut samples = Vec::new();
    while started.elapsed() < budget || samples.len() < 5 {
        let t = Instant::now();
        std::hint::black_box(engine.load_bytes(bytes, origin)?);
        samples.push(t.elapsed().as_secs_f64());
    }
    Ok(percentile(&mut samples, 0.5))
}

fn percentile(samples: &mut [f64], q: f64) -> f64 {
    samples.sort_by(|a, b| a.total_cmp(b));
    let index = ((samples.len() - 1) as f64 * q).round() as usize;
    samples[index]
}
