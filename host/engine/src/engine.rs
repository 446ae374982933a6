//! The shared engine: one wasmtime engine with its linker, limits and instance budget; it
//! compiles components (through the compile cache) and ticks the epoch that enforces
//! deadlines. It knows nothing of policies: their constructors, `Engine::load_*`, are in
//! policy.rs.

use crate::bindings::TagPolicyPre;
use crate::cache::CompileCache;
use crate::digest::Digest;
use crate::error::Error;
use crate::limits::{
    DEFAULT_INSTANCE_SLOTS, EPOCH_TICK, Limits, ParkingBudget, ParkingSpace, instance_pool,
};
use crate::sandbox::{self, HostState};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use wasmtime::component::{Component, Linker};

/// Create one per process and share it (it is cheap to clone and thread-safe). It owns a
/// background thread that advances the epoch every few milliseconds; the thread ends when
/// the last clone of the engine is dropped.
#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

struct Inner {
    wasmtime: wasmtime::Engine,
    linker: Linker<HostState>,
    limits: Limits,
    cache: Option<CompileCache>,
    /// Idle instances kept for reuse, across all policies, bounded to leave pool slots free.
    parking: Arc<ParkingBudget>,
}

/// Options for [`Engine`]; start with [`Engine::builder`].
#[derive(Debug, Clone)]
pub struct EngineBuilder {
    limits: Limits,
    cache_dir: Option<PathBuf>,
    /// `None`: allocate every instance on demand; else pooled slots.
    instance_slots: Option<u32>,
}

impl Default for EngineBuilder {
    fn default() -> Self {
        Self {
            limits: Limits::default(),
            cache_dir: None,
            instance_slots: Some(DEFAULT_INSTANCE_SLOTS),
        }
    }
}

impl EngineBuilder {
    /// Default limits of the policies loaded with this engine.
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Keep compiled components in `dir` and load them from there when the same component
    /// is loaded again (by this or a later process). The directory must be writable only by
    /// the operator: a compiled component is trusted when it is loaded.
    pub fn cache_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.cache_dir = Some(dir.into());
        self
    }

    /// Allocate instances from a pool of `slots` pre-reserved slots (the default, with
    /// [`DEFAULT_INSTANCE_SLOTS`]), with copy-on-write memory images: a fresh instance costs
    /// microseconds. `None` allocates each instance on demand (less address space reserved).
    pub fn instance_pool(mut self, slots: Option<u32>) -> Self {
        self.instance_slots = slots;
        self
    }

    /// Build the engine: check the limits, configure wasmtime (epoch deadlines, fuel if the
    /// limits give it, the instance pool) and start the epoch thread.
    pub fn build(self) -> Result<Engine, Error> {
        self.limits.check(self.limits.fuel.is_some())?;
        let engine_error = |e: wasmtime::Error| Error::Engine { source: e.into_boxed_dyn_error() };
        let mut config = wasmtime::Config::new();
        config.wasm_component_model(true);
        config.epoch_interruption(true);
        // Deep recursion must trap long before the host thread's own stack is at risk.
        config.max_wasm_stack(512 << 10);
        config.consume_fuel(self.limits.fuel.is_some());
        if let Some(slots) = self.instance_slots {
            config.allocation_strategy(wasmtime::InstanceAllocationStrategy::Pooling(
                instance_pool(slots, &self.limits),
            ));
        }
        let wasmtime = wasmtime::Engine::new(&config).map_err(engine_error)?;
        let linker = sandbox::linker(&wasmtime).map_err(engine_error)?;
        let cache = self.cache_dir.map(|dir| CompileCache::new(dir, &wasmtime));
        spawn_epoch_ticker(&wasmtime);
        let parking = Arc::new(ParkingBudget::for_slots(self.instance_slots));
        Ok(Engine {
            inner: Arc::new(Inner { wasmtime, linker, limits: self.limits, cache, parking }),
        })
    }
}

impl Engine {
    /// An engine whose policies get the default [`Limits`], without a compile cache.
    pub fn new() -> Result<Self, Error> {
        Self::builder().build()
    }

    /// An engine whose policies get `limits` (each policy may still override them).
    pub fn with_limits(limits: Limits) -> Result<Self, Error> {
        Self::builder().limits(limits).build()
    }

    /// Options for an engine, to set more than its limits.
    pub fn builder() -> EngineBuilder {
        EngineBuilder::default()
    }

    pub(crate) fn wasmtime(&self) -> &wasmtime::Engine {
        &self.inner.wasmtime
    }

    pub(crate) fn linker(&self) -> &Linker<HostState> {
        &self.inner.linker
    }

    /// A place to keep one idle instance for reuse, if the engine's budget has one.
    pub(crate) fn park(&self) -> Option<ParkingSpace> {
        self.inner.parking.park()
    }

    pub(crate) fn limits(&self) -> Limits {
        self.inner.limits
    }

    /// Whether the engine was built to count fuel (fuel metering is compiled in).
    pub(crate) fn counts_fuel(&self) -> bool {
        self.inner.limits.fuel.is_some()
    }

    /// Compile `bytes`, whose hex sha256 is `sha256`, or take the compilation from the
    /// compile cache.
    pub(crate) fn compile(&self, bytes: &[u8], sha256: &str) -> wasmtime::Result<Component> {
        let cache = self.cache();
        if let Some(component) = cache.and_then(|cache| cache.get(self.wasmtime(), sha256)) {
            return Ok(component);
        }
        let component = Component::new(self.wasmtime(), bytes)?;
        if let Some(cache) = cache {
            cache.put(sha256, &component);
        }
        Ok(component)
    }

    /// Compile `bytes` (through the cache) and link them against the host, ready to
    /// instantiate. For components already known to be policies of this world.
    pub(crate) fn prepare(&self, bytes: &[u8]) -> wasmtime::Result<TagPolicyPre<HostState>> {
        let component = self.compile(bytes, &Digest::of(bytes).hex())?;
        TagPolicyPre::new(self.linker().instantiate_pre(&component)?)
    }

    pub(crate) fn cache(&self) -> Option<&CompileCache> {
        self.inner.cache.as_ref()
    }

    /// Where compiled components are kept, if anywhere.
    pub fn cache_dir(&self) -> Option<&Path> {
        self.cache().map(CompileCache::dir)
    }
}

fn spawn_epoch_ticker(engine: &wasmtime::Engine) {
    let weak = engine.weak();
    std::thread::Builder::new()
        .name("tagpolicy-epoch".into())
        .spawn(move || {
            loop {
                std::thread::sleep(EPOCH_TICK);
                match weak.upgrade() {
                    Some(engine) => engine.increment_epoch(),
                    None => break,
                }
            }
        })
        .expect("cannot spawn the epoch thread");
}
