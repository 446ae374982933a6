//! The store a policy runs in: what its imports answer, and the WASI it is (not) granted.
//!
//! Rust std (and Python and JavaScript runtimes) import a few WASI interfaces even when a
//! policy never uses them. The host links only those, backed by a context that grants
//! nothing: no environment, arguments or stdin, a clock frozen at zero, a fixed "random"
//! byte sequence, and stdout/stderr captured in memory. Filesystem, sockets and HTTP are
//! not linked at all, so a component that imports them is refused at load.

use crate::bindings::tagpolicy::policy::types::{
    Actor, TagEntry, TagHistory, TagQuery as WitQuery,
};
use crate::bindings::tagpolicy::policy::{context, image, output, patterns, repository, verdict};
use crate::decision::{Reports, Severity};
use crate::image::{KeyValue, Manifest, Referrer};
use crate::limits::{CallBudget, Limits, StoreLimiter};
use crate::output::PolicyOutput;
use crate::patterns::{HeldSets, PatternCache};
use crate::push::{RepositoryView, Request};
use crate::query::TagQuery;
use std::sync::Arc;
use std::time::Duration;
use wasmtime::component::{HasSelf, Linker, ResourceTable};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

/// Import prefixes the host satisfies. Everything else is refused at load with its name.
pub(crate) const GRANTED_IMPORTS: &[&str] = &[
    "tagpolicy:policy/context@",
    "tagpolicy:policy/repository@",
    "tagpolicy:policy/image@",
    "tagpolicy:policy/patterns@",
    "tagpolicy:policy/verdict@",
    "tagpolicy:policy/output@",
    "tagpolicy:policy/types@",
    "wasi:io/",
    "wasi:cli/environment@",
    "wasi:cli/exit@",
    "wasi:cli/stdin@",
    "wasi:cli/stdout@",
    "wasi:cli/stderr@",
    "wasi:cli/terminal-",
    "wasi:random/",
    "wasi:clocks/wall-clock@",
    "wasi:clocks/monotonic-clock@",
];

pub(crate) fn is_granted(import: &str) -> bool {
    GRANTED_IMPORTS.iter().any(|prefix| import.starts_with(prefix))
}

/// Everything a store holds for one policy instance.
pub(crate) struct HostState {
    /// Built on the first WASI call: most instances decide without making one, and building
    /// it is part of what every fresh instance would pay.
    wasi: Option<WasiCtx>,
    table: ResourceTable,
    pub(crate) limiter: StoreLimiter,
    pub(crate) output: PolicyOutput,
    /// The policy's compiled patterns, and the sets this instance prepared.
    pub(crate) sets: HeldSets,
    /// The repository of the request being evaluated; `None` outside `evaluate`.
    pub(crate) view: Option<Arc<dyn RepositoryView>>,
    /// What the policy reported during the call in progress.
    pub(crate) reports: Reports,
    /// The request of the call in progress, for `context`.
    pub(crate) context: CurrentRequest,
    /// The time of the call in progress: the policy's own, and the host's on its behalf.
    pub(crate) budget: CallBudget,
}

/// The request being evaluated, borrowed for the length of one `evaluate` call so that the
/// `context` import can answer without the host copying the repository and actor into every
/// call (most policies never ask).
#[derive(Default)]
pub(crate) struct CurrentRequest(Option<std::ptr::NonNull<Request>>);

// SAFETY: the pointer is only dereferenced while `evaluate` runs on the thread that holds
// both the store and the `&Request` it points to (see `set`).
unsafe impl Send for CurrentRequest {}

impl CurrentRequest {
    /// Point at `request` for the call that is about to run. The caller must `clear` before
    /// `request` goes out of scope; `ConfiguredPolicy::evaluate` does, right after the call.
    pub(crate) fn set(&mut self, request: &Request) {
        self.0 = Some(std::ptr::NonNull::from(request));
    }

    pub(crate) fn clear(&mut self) {
        self.0 = None;
    }

    fn get(&self) -> Option<&Request> {
        // SAFETY: set only for the duration of a call made with the request borrowed (see
        // `set`); imports run inside that call.
        self.0.map(|request| unsafe { request.as_ref() })
    }
}

impl HostState {
    pub(crate) fn new(limits: &Limits, patterns: Arc<PatternCache>) -> Self {
        let output = PolicyOutput::new(limits.output_bytes);
        Self {
            wasi: None,
            table: ResourceTable::new(),
            limiter: StoreLimiter::new(limits),
            output,
            sets: HeldSets::new(patterns),
            view: None,
            reports: Reports::default(),
            context: CurrentRequest::default(),
            budget: CallBudget::new(limits),
        }
    }
}

impl HostState {
    /// The WASI context, built on first use.
    fn wasi(&mut self) -> &mut WasiCtx {
        self.wasi.get_or_insert_with(|| grant_nothing(&self.output))
    }

    /// Ask the repository view, counting the time as the host's, not the policy's.
    fn ask<R: Default>(&mut self, ask: impl FnOnce(&dyn RepositoryView) -> R) -> R {
        let Some(view) = &self.view else { return R::default() };
        let started = std::time::Instant::now();
        let answer = ask(view.as_ref());
        self.budget.add_host_time(started.elapsed());
        answer
    }
}

/// A WASI context that grants nothing: no environment, arguments or stdin, frozen clocks,
/// fixed "randomness", stdout and stderr into `output`.
fn grant_nothing(output: &PolicyOutput) -> WasiCtx {
    WasiCtx::builder()
        .stdout(output.clone())
        .stderr(output.clone())
        .secure_random(wasmtime_wasi::Deterministic::new(vec![0x5a]))
        .insecure_random(wasmtime_wasi::Deterministic::new(vec![0xa5]))
        .insecure_random_seed(0)
        .wall_clock(FrozenClock)
        .monotonic_clock(FrozenClock)
        .allow_tcp(false)
        .allow_udp(false)
        .allow_ip_name_lookup(false)
        .build()
}

/// A store for one policy instance, with its limits applied and the budget of a
/// `configure` call (its deadline, and its fuel if the engine counts fuel).
pub(crate) fn store(
    engine: &wasmtime::Engine,
    limits: &Limits,
    patterns: &Arc<PatternCache>,
) -> wasmtime::Store<HostState> {
    let mut store = wasmtime::Store::new(engine, HostState::new(limits, patterns.clone()));
    store.limiter(|state| &mut state.limiter);
    // The epoch deadline is a first guess: when it passes, the time the host spent on the
    // policy's behalf (index queries, registry lookups) is given back, so that only the
    // policy's own time counts against its deadline.
    store.epoch_deadline_callback(|mut store| Ok(store.data_mut().budget.at_deadline()));
    store.data_mut().budget.start(limits.configure_deadline);
    store.set_epoch_deadline(crate::limits::ticks(limits.configure_deadline));
    if let Some(fuel) = limits.fuel {
        // Fails only on an engine without fuel, where the limit cannot apply.
        let _ = store.set_fuel(fuel);
    }
    store
}

impl HostState {
    /// Whether the instance holds no handle to a host resource (streams, pollables).
    pub(crate) fn holds_no_resources(&self) -> bool {
        self.table.is_empty()
    }
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        let ctx = self.wasi.get_or_insert_with(|| grant_nothing(&self.output));
        WasiCtxView { ctx, table: &mut self.table }
    }
}

impl repository::Host for HostState {
    fn find_tags(&mut self, query: WitQuery) -> Result<Vec<TagEntry>, String> {
        if query.limit == 0 {
            return Err("limit: 0; ask for at least one tag".into());
        }
        let pattern = self.sets.cache().query(&query.pattern)?;
        let query = TagQuery::planned(pattern, query.order, query.limit, query.after);
        Ok(self.ask(|view| view.find_tags(&query)))
    }

    fn count_tags(&mut self) -> u64 {
        self.ask(|view| view.count_tags())
    }

    fn digest_of(&mut self, tag: String) -> Option<String> {
        self.ask(|view| view.digest_of(&tag))
    }

    fn tags_of(&mut self, digest: String) -> Vec<String> {
        self.ask(|view| view.tags_of(&digest))
    }

    fn history_of(&mut self, tag: String) -> Option<TagHistory> {
        self.ask(|view| view.history_of(&tag))
    }
}

impl image::Host for HostState {
    fn manifest_of(&mut self, digest: String) -> Option<Manifest> {
        self.ask(|view| view.manifest(&digest))
    }

    fn labels_of(&mut self, digest: String) -> Vec<KeyValue> {
        self.ask(|view| view.labels(&digest))
    }

    fn referrers_of(&mut self, digest: String, artifact_type: Option<String>) -> Vec<Referrer> {
        self.ask(|view| view.referrers(&digest, artifact_type.as_deref()))
    }
}

impl context::Host for HostState {
    fn repository_name(&mut self) -> String {
        self.context.get().map(|r| r.repository.clone()).unwrap_or_default()
    }

    fn requested_by(&mut self) -> Actor {
        self.context.get().map_or_else(Actor::anonymous, |r| r.actor.clone())
    }
}

impl verdict::Host for HostState {
    fn deny(&mut self, tag: Option<String>, reason: String) {
        self.reports.push(Severity::Deny, tag, reason);
    }

    fn warn(&mut self, tag: Option<String>, reason: String) {
        self.reports.push(Severity::Warn, tag, reason);
    }

    fn fail(&mut self, reason: String) {
        self.reports.fail(reason);
    }
}

impl output::Host for HostState {
    fn write(&mut self, text: String) {
        self.output.append(text.as_bytes());
    }
}

impl patterns::Host for HostState {
    fn full_match(&mut self, pattern: String, text: String) -> Result<bool, String> {
        self.sets.cache().full_match(&pattern, &text)
    }

    fn find(&mut self, pattern: String, text: String) -> Result<bool, String> {
        self.sets.cache().find(&pattern, &text)
    }

    fn prepare_set(&mut self, patterns: Vec<String>) -> Result<u32, String> {
        self.sets.prepare(patterns)
    }

    fn first_in_set(&mut self, set: u32, text: String) -> Result<Option<u32>, String> {
        self.sets.cache().first_in_set(set, &text)
    }
}

impl crate::bindings::tagpolicy::policy::types::Host for HostState {}

/// Time does not pass for a policy: decisions must not depend on when they are made.
struct FrozenClock;

impl wasmtime_wasi::HostWallClock for FrozenClock {
    fn resolution(&self) -> Duration {
        Duration::from_secs(1)
    }
    fn now(&self) -> Duration {
        Duration::ZERO
    }
}

impl wasmtime_wasi::HostMonotonicClock for FrozenClock {
    fn resolution(&self) -> u64 {
        1_000_000_000
    }
    fn now(&self) -> u64 {
        0
    }
}

/// The linker every policy is instantiated with: our world's imports plus the WASI subset.
pub(crate) fn linker(engine: &wasmtime::Engine) -> wasmtime::Result<Linker<HostState>> {
    use wasmtime_wasi::cli::{WasiCli, WasiCliView};
    use wasmtime_wasi::clocks::{WasiClocks, WasiClocksView};
    use wasmtime_wasi::p2::bindings::sync as wasi;
    use wasmtime_wasi::random::WasiRandom;

    let mut linker = Linker::new(engine);
    crate::bindings::TagPolicy::add_to_linker::<HostState, HasSelf<HostState>>(&mut linker, |s| s)?;

    let l = &mut linker;
    wasi::io::error::add_to_linker::<HostState, HasIo>(l, |s| &mut s.table)?;
    wasi::io::poll::add_to_linker::<HostState, HasIo>(l, |s| &mut s.table)?;
    wasi::io::streams::add_to_linker::<HostState, HasIo>(l, |s| &mut s.table)?;
    wasi::cli::exit::add_to_linker::<HostState, WasiCli>(l, HostState::cli)?;
    wasi::cli::environment::add_to_linker::<HostState, WasiCli>(l, HostState::cli)?;
    wasi::cli::stdin::add_to_linker::<HostState, WasiCli>(l, HostState::cli)?;
    wasi::cli::stdout::add_to_linker::<HostState, WasiCli>(l, HostState::cli)?;
    wasi::cli::stderr::add_to_linker::<HostState, WasiCli>(l, HostState::cli)?;
    wasi::cli::terminal_input::add_to_linker::<HostState, WasiCli>(l, HostState::cli)?;
    wasi::cli::terminal_output::add_to_linker::<HostState, WasiCli>(l, HostState::cli)?;
    wasi::cli::terminal_stdin::add_to_linker::<HostState, WasiCli>(l, HostState::cli)?;
    wasi::cli::terminal_stdout::add_to_linker::<HostState, WasiCli>(l, HostState::cli)?;
    wasi::cli::terminal_stderr::add_to_linker::<HostState, WasiCli>(l, HostState::cli)?;
    wasi::random::random::add_to_linker::<HostState, WasiRandom>(l, |s| s.wasi().random())?;
    wasi::random::insecure::add_to_linker::<HostState, WasiRandom>(l, |s| s.wasi().random())?;
    wasi::random::insecure_seed::add_to_linker::<HostState, WasiRandom>(l, |s| s.wasi().random())?;
    wasi::clocks::wall_clock::add_to_linker::<HostState, WasiClocks>(l, HostState::clocks)?;
    wasi::clocks::monotonic_clock::add_to_linker::<HostState, WasiClocks>(l, HostState::clocks)?;
    Ok(linker)
}

struct HasIo;

impl wasmtime::component::HasData for HasIo {
    type Data<'a> = &'a mut ResourceTable;
}
