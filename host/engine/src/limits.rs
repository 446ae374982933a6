//! What a policy may consume. Every evaluation runs in a store with these limits, so a
//! policy that loops, allocates without end or recurses too deep is stopped and its
//! request denied, while the host goes on.

use std::time::{Duration, Instant};
use wasmtime::UpdateDeadline;

/// Resource limits for one policy. The defaults suit the reference policies with a wide
/// margin: they decide in microseconds and use well under 2 MiB.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Wall-clock budget of one `evaluate` call (epoch interruption): the policy's own time,
    /// without the time the host spends answering its queries and lookups.
    pub evaluate_deadline: Duration,
    /// Wall-clock budget of the host's work on behalf of one call: index queries, registry
    /// lookups. A host that reads a registry bounds each lookup with its own timeout; this
    /// bounds a policy that asks for too many.
    pub lookups_deadline: Duration,
    /// Budget of `metadata` + `configure` at load time, which may validate many patterns.
    pub configure_deadline: Duration,
    /// Linear memory the policy may grow to, in bytes.
    pub memory_bytes: usize,
    /// Table elements the policy may grow to.
    pub table_elements: usize,
    /// Bytes the policy may write to stdout and stderr per call (captured, for diagnostics).
    pub output_bytes: usize,
    /// Decisions a reused instance makes before it is replaced by a fresh one.
    pub recycle_after: u32,
    /// Fuel (roughly, wasm instructions) per call, for limits that do not depend on the
    /// machine's speed, e.g. in tests. Off by default: counting costs about 10% per call.
    /// Takes effect only on an engine built with these limits, as it is compiled in.
    pub fuel: Option<u64>,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            evaluate_deadline: Duration::from_millis(50),
            lookups_deadline: Duration::from_secs(10),
            configure_deadline: Duration::from_secs(1),
            memory_bytes: 64 << 20,
            table_elements: 20_000,
            output_bytes: 64 << 10,
            recycle_after: 10_000,
            fuel: None,
        }
    }
}

/// A limit out of range, named by its field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("limits.{field}: {message}")]
#[non_exhaustive]
pub struct LimitError {
    /// The field of [`Limits`] at fault.
    pub field: &'static str,
    /// What is wrong with its value.
    pub message: String,
}

impl Limits {
    /// Check every limit is in range, and that fuel is given exactly when the engine counts
    /// it (`engine_counts_fuel`): on an engine without fuel a fuel limit would be ignored,
    /// and on one with fuel a policy without a limit would trap at its first instruction.
    pub fn check(&self, engine_counts_fuel: bool) -> Result<(), LimitError> {
        let error = |field, message: String| Err(LimitError { field, message });
        let durations = [
            ("evaluate_deadline", self.evaluate_deadline, Duration::from_secs(60)),
            ("lookups_deadline", self.lookups_deadline, Duration::from_secs(600)),
            ("configure_deadline", self.configure_deadline, Duration::from_secs(600)),
        ];
        for (field, value, max) in durations {
            if value.is_zero() || value > max {
                return error(
                    field,
                    format!("`{value:?}` is out of range (more than 0, at most {max:?})"),
                );
            }
        }
        if !(64 << 10..=POOLED_MEMORY_BYTES).contains(&self.memory_bytes) {
            return error(
                "memory_bytes",
                format!("`{}` is out of range (64 KiB to 4 GiB)", self.memory_bytes),
            );
        }
        if self.table_elements == 0 || self.output_bytes == 0 || self.recycle_after == 0 {
            let field = match () {
                () if self.table_elements == 0 => "table_elements",
                () if self.output_bytes == 0 => "output_bytes",
                () => "recycle_after",
            };
            return error(field, "must be at least 1".into());
        }
        match (self.fuel, engine_counts_fuel) {
            (Some(0), _) => error("fuel", "must be at least 1".into()),
            (Some(fuel), false) => error(
                "fuel",
                format!(
                    "`{fuel}` is given, but the engine was built without fuel: build it with a fuel limit"
                ),
            ),
            (None, true) => {
                error("fuel", "the engine counts fuel, so every policy needs a fuel limit".into())
            }
            _ => Ok(()),
        }
    }
}

/// Component instances the pooling allocator keeps slots for: every idle and running
/// instance of every loaded policy needs one. When all are taken, a new instance fails and
/// its request is denied (fail closed) rather than the host allocating without bound.
pub const DEFAULT_INSTANCE_SLOTS: u32 = 1000;

/// Share of the pool's slots that idle (parked) instances may hold, so that the rest stay
/// free for instances in use: each reusing configuration keeps an instance between requests,
/// and a gate with as many rules as slots would otherwise fill the pool with idle instances
/// and deny every request that needs one more.
const PARKED_SHARE_OF_SLOTS: u32 = 2;

/// How many instances may be parked (idle, kept for reuse) at once across an engine.
pub(crate) struct ParkingBudget {
    max: usize,
    parked: std::sync::atomic::AtomicUsize,
}

impl ParkingBudget {
    /// Half of `slots` pooled slots; without a pool (instances allocated on demand), as many
    /// as the configurations keep.
    pub(crate) fn for_slots(slots: Option<u32>) -> Self {
        let max = slots.map_or(usize::MAX, |slots| (slots / PARKED_SHARE_OF_SLOTS) as usize);
        Self { max, parked: std::sync::atomic::AtomicUsize::new(0) }
    }

    /// A place for one more idle instance, if the budget has one.
    pub(crate) fn park(self: &std::sync::Arc<Self>) -> Option<ParkingSpace> {
        use std::sync::atomic::Ordering;
        self.parked
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |parked| {
                (parked < self.max).then_some(parked + 1)
            })
            .ok()
            .map(|_| ParkingSpace(self.clone()))
    }
}

/// One idle instance's share of the [`ParkingBudget`], given back when dropped.
pub(crate) struct ParkingSpace(std::sync::Arc<ParkingBudget>);

impl Drop for ParkingSpace {
    fn drop(&mut self) {
        self.0.parked.fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
    }
}

/// Largest linear memory a pooled slot can hold: the largest `memory_mib` a policy entry may
/// ask for. Only address space is reserved; pages are committed as a policy touches them
/// and returned (copy-on-write images reset) when its instance is dropped.
const POOLED_MEMORY_BYTES: usize = 4 << 30;

/// Memory (and table) bytes a pooled slot may keep mapped between instances when the
/// kernel tracks touched pages: a Rust guest's stack, data and usual heap fit; a policy
/// that touches more has the rest given back to the kernel.
const KEEP_RESIDENT_BYTES: usize = 2 << 20;

/// The pooling allocator's shape for `slots` component instances. A Rust `wasm32-wasip2`
/// component has a handful of core instances and one or two memories and tables; the
/// per-component maxima leave room for policies built by other toolchains.
pub(crate) fn instance_pool(slots: u32, limits: &Limits) -> wasmtime::PoolingAllocationConfig {
    let mut pool = wasmtime::PoolingAllocationConfig::new();
    pool.total_component_instances(slots)
        .total_core_instances(slots * 8)
        .total_memories(slots * 2)
        .total_tables(slots * 2)
        .max_core_instances_per_component(64)
        .max_memories_per_component(4)
        .max_tables_per_component(8)
        .max_memory_size(POOLED_MEMORY_BYTES)
        .table_elements(limits.table_elements.max(20_000));
    // Resetting a slot for its next instance: by default wasmtime gives the touched pages
    // back with madvise and the next instance faults them in again, which was most of a
    // fresh instance's cost (criterion: 42 us). Where the kernel can report which pages
    // were touched (PAGEMAP_SCAN, Linux 6.7+), only those are restored in place and stay
    // mapped: 16-19 us. Without it, keeping memory resident would memset the whole kept
    // range on every reset (54 us with 1 MiB), so nothing is kept.
    if wasmtime::PoolingAllocationConfig::is_pagemap_scan_available() {
        pool.pagemap_scan(wasmtime::Enabled::Yes)
            .linear_memory_keep_resident(KEEP_RESIDENT_BYTES)
            .table_keep_resident(KEEP_RESIDENT_BYTES);
    }
    pool
}

/// Granularity of the deadlines: the engine's epoch advances this often.
pub(crate) const EPOCH_TICK: Duration = Duration::from_millis(5);

/// Deadline expressed in epoch ticks, rounded up, at least one tick.
pub(crate) fn ticks(deadline: Duration) -> u64 {
    let tick = EPOCH_TICK.as_nanos();
    (deadline.as_nanos().div_ceil(tick) as u64).max(1)
}

/// The time of the call in progress, split between the policy and the host: the epoch
/// deadline is set for the policy's whole budget, and when it passes the host's time is
/// given back (the deadline is extended by what the policy has left).
#[derive(Debug)]
pub(crate) struct CallBudget {
    started: Instant,
    deadline: Duration,
    host: Duration,
    host_deadline: Duration,
    /// The host's time ran out (rather than the policy's).
    pub(crate) host_exceeded: bool,
}

impl CallBudget {
    pub(crate) fn new(limits: &Limits) -> Self {
        CallBudget {
            started: Instant::now(),
            deadline: limits.evaluate_deadline,
            host: Duration::ZERO,
            host_deadline: limits.lookups_deadline,
            host_exceeded: false,
        }
    }

    /// A call with `deadline` for the policy's own time starts now.
    pub(crate) fn start(&mut self, deadline: Duration) {
        self.started = Instant::now();
        self.deadline = deadline;
        self.host = Duration::ZERO;
        self.host_exceeded = false;
    }

    pub(crate) fn add_host_time(&mut self, spent: Duration) {
        self.host += spent;
    }

    /// The epoch deadline passed: stop, or go on for what the policy has left.
    pub(crate) fn at_deadline(&mut self) -> UpdateDeadline {
        if self.host >= self.host_deadline {
            self.host_exceeded = true;
            return UpdateDeadline::Interrupt;
        }
        let own = self.started.elapsed().saturating_sub(self.host);
        match self.deadline.checked_sub(own) {
            Some(left) if !left.is_zero() => UpdateDeadline::Continue(ticks(left)),
            _ => UpdateDeadline::Interrupt,
        }
    }
}

/// The store-side enforcement of [`Limits`]; remembers whether a limit was hit so that the
/// denial can say so instead of reporting a bare trap.
pub(crate) struct StoreLimiter {
    memory_bytes: usize,
    table_elements: usize,
    pub(crate) memory_exceeded: bool,
    /// The largest linear memory granted so far, in bytes.
    pub(crate) memory_granted: usize,
}

impl StoreLimiter {
    pub(crate) fn new(limits: &Limits) -> Self {
        Self {
            memory_bytes: limits.memory_bytes,
            table_elements: limits.table_elements,
            memory_exceeded: false,
            memory_granted: 0,
        }
    }

    /// Whether a reused instance has grown so much that it should be replaced before it
    /// reaches the cap: runtimes with a garbage collector (JavaScript, Python) keep growing
    /// across calls, and an instance that hits the cap would deny a request through no fault
    /// of the request.
    pub(crate) fn grown_past_half(&self) -> bool {
        self.memory_granted > self.memory_bytes / 2
    }
}

impl wasmtime::ResourceLimiter for StoreLimiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let allowed = desired <= self.memory_bytes;
        self.memory_exceeded |= !allowed;
        if allowed {
            self.memory_granted = self.memory_granted.max(desired);
        }
        Ok(allowed)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= self.table_elements)
    }

    // A policy is one component: a handful of core instances, memories and tables.
    fn instances(&self) -> usize {
        64
    }

    fn tables(&self) -> usize {
        64
    }

    fn memories(&self) -> usize {
        16
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadlines_round_up_to_whole_ticks() {
        assert_eq!(ticks(Duration::from_millis(50)), 10);
        assert_eq!(ticks(Duration::from_millis(51)), 11);
        assert_eq!(ticks(Duration::ZERO), 1);
    }

    #[test]
    fn the_hosts_time_is_given_back_to_the_policy() {
        let limits = Limits { lookups_deadline: Duration::from_secs(10), ..Limits::default() };
        let mut budget = CallBudget::new(&limits);
        budget.start(Duration::from_millis(50));
        budget.add_host_time(Duration::from_secs(5));
        std::thread::sleep(Duration::from_millis(60));
        // 60 ms passed, all of it the host's (as the call says): the policy goes on.
        assert!(matches!(budget.at_deadline(), UpdateDeadline::Continue(_)));
        budget.start(Duration::from_millis(50));
        std::thread::sleep(Duration::from_millis(60));
        assert!(matches!(budget.at_deadline(), UpdateDeadline::Interrupt));
        assert!(!budget.host_exceeded);
        budget.start(Duration::from_millis(50));
        budget.add_host_time(Duration::from_secs(10));
        assert!(matches!(budget.at_deadline(), UpdateDeadline::Interrupt));
        assert!(budget.host_exceeded, "the host's own budget ran out");
    }

    #[test]
    fn limiter_refuses_growth_past_the_cap_and_remembers_it() {
        use wasmtime::ResourceLimiter;
        let mut limiter = StoreLimiter::new(&Limits { memory_bytes: 1 << 20, ..Limits::default() });
        assert!(limiter.memory_growing(0, 1 << 20, None).unwrap());
        assert!(!limiter.memory_exceeded);
        assert!(!limiter.memory_growing(1 << 20, 2 << 20, None).unwrap());
        assert!(limiter.memory_exceeded);
        assert!(limiter.grown_past_half());
    }
}
