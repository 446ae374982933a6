//! Configured snapshots: isolation without applying the settings on every request.
//!
//! An isolated policy gets a fresh instance per request. Rather than instantiate the
//! original component and call `configure` each time, the host runs `configure` once in an
//! instrumented copy of the component and writes the resulting memories and globals back
//! into a new component (Wizer's snapshot). A fresh instance of that component starts
//! already configured; with the pooling allocator its memory is a copy-on-write mapping of
//! the snapshot, so no state of one request reaches the next.
//!
//! Not every component can be snapshotted: one that holds a host resource after
//! `configure` (say, a stderr stream it printed to) would keep a handle that means nothing
//! in a new instance. Those, and components whose shape Wizer does not support, are
//! reported as a [`SnapshotError`]; the caller then configures per request instead.

use crate::bindings::TagPolicyPre;
use crate::engine::Engine;
use crate::error::chain;
use crate::limits::Limits;
use crate::patterns::{HeldSets, PatternCache};
use crate::sandbox::{self, HostState};
use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use wasmtime::Store;
use wasmtime::component::{Instance, WasmList};
use wasmtime_wizer::{ComponentInstanceState, Wizer};

/// Why a configured snapshot could not be made; the policy still works, configured per
/// request.
#[derive(Debug, thiserror::Error)]
#[error("cannot snapshot the configured policy: {0}")]
pub(crate) struct SnapshotError(String);

impl SnapshotError {
    fn from_wasmtime(context: &str, error: wasmtime::Error) -> Self {
        Self(format!("{context}: {}", chain(&*error)))
    }
}

/// The component `bytes` with `settings` applied, compiled and ready to instantiate, and
/// the pattern sets its `configure` prepared, which its instances use without preparing
/// them. `settings` were already accepted by the same component.
pub(crate) fn configured(
    engine: &Engine,
    bytes: &[u8],
    settings: &str,
    limits: &Limits,
    patterns: &Arc<PatternCache>,
) -> Result<(TagPolicyPre<HostState>, HeldSets), SnapshotError> {
    // Wizer rewrites a component we did not write; an internal assertion failing on an
    // unusual one must cost the snapshot, not the process (a gate reloading its policies).
    let attempt = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        snapshot(engine, bytes, settings, limits, patterns)
    }));
    attempt.unwrap_or_else(|panic| {
        let message = panic
            .downcast_ref::<&str>()
            .map(|text| text.to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "no message".into());
        Err(SnapshotError(format!("the snapshot tool failed: {message}")))
    })
}

fn snapshot(
    engine: &Engine,
    bytes: &[u8],
    settings: &str,
    limits: &Limits,
    patterns: &Arc<PatternCache>,
) -> Result<(TagPolicyPre<HostState>, HeldSets), SnapshotError> {
    let wizer = Wizer::new();
    let (context, instrumented) = wizer
        .instrument_component(bytes)
        .map_err(|e| SnapshotError::from_wasmtime("instrumenting", e))?;
    let pre = engine
        .prepare(&instrumented)
        .map_err(|e| SnapshotError::from_wasmtime("compiling the instrumented copy", e))?;

    let mut store = sandbox::store(engine.wasmtime(), limits, patterns);
    let instance = pre
        .instance_pre()
        .instantiate(&mut store)
        .map_err(|e| SnapshotError::from_wasmtime("instantiating", e))?;
    let bindings = crate::bindings::TagPolicy::new(&mut store, &instance)
        .map_err(|e| SnapshotError::from_wasmtime("binding", e))?;
    match bindings.tagpolicy_policy_policy().call_configure(&mut store, settings) {
        Ok(Ok(())) => {}
        Ok(Err(message)) => {
            return Err(SnapshotError(format!("it rejected its settings this time: {message}")));
        }
        Err(e) => return Err(SnapshotError::from_wasmtime("configuring", e)),
    }
    if !store.data().holds_no_resources() {
        return Err(SnapshotError(
            "it holds host resources (such as an output stream) after `configure`".into(),
        ));
    }

    let mut state = Running { store: &mut store, instance, failure: None };
    let snapshot = run_to_completion(wizer.snapshot_component(&context, &mut state))
        .ok_or_else(|| SnapshotError("the snapshot did not complete".into()))?
        .map_err(|e| SnapshotError::from_wasmtime("snapshotting", e))?;
    if let Some(failure) = state.failure {
        return Err(SnapshotError(failure));
    }
    let pre = engine
        .prepare(&snapshot)
        .map_err(|e| SnapshotError::from_wasmtime("compiling the snapshot", e))?;
    Ok((pre, store.data().sets.share()))
}

/// Wizer's snapshot API is async for the sake of async hosts; ours answers every call
/// synchronously, so the future is ready at its first poll.
fn run_to_completion<F: Future>(future: F) -> Option<F::Output> {
    let mut future = pin!(future);
    match future.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(output) => Some(output),
        Poll::Pending => None,
    }
}

/// The configured instance, read through the accessors Wizer's instrumentation exports.
struct Running<'a> {
    store: &'a mut Store<HostState>,
    instance: Instance,
    /// The first accessor call that failed. Wizer's interface has no errors, so a failed
    /// read answers a zero value and the snapshot is discarded afterwards.
    failure: Option<String>,
}

impl Running<'_> {
    fn call<R>(&mut self, interface: &str, func: &str) -> Option<R>
    where
        R: wasmtime::component::Lift + wasmtime::component::ComponentType + 'static,
    {
        let result = (|| {
            let interface_index = self
                .instance
                .get_export_index(&mut *self.store, None, interface)
                .ok_or_else(|| wasmtime::format_err!("no export `{interface}`"))?;
            let func_index = self
                .instance
                .get_export_index(&mut *self.store, Some(&interface_index), func)
                .ok_or_else(|| wasmtime::format_err!("no export `{interface}#{func}`"))?;
            let typed = self.instance.get_typed_func::<(), (R,)>(&mut *self.store, &func_index)?;
            Ok::<R, wasmtime::Error>(typed.call(&mut *self.store, ())?.0)
        })();
        match result {
            Ok(value) => Some(value),
            Err(error) => {
                self.failure.get_or_insert_with(|| format!("reading `{func}`: {error}"));
                None
            }
        }
    }
}

impl ComponentInstanceState for Running<'_> {
    async fn call_func_ret_list_u8(
        &mut self,
        interface: &str,
        func: &str,
        contents: impl FnOnce(&[u8]) + Send,
    ) {
        match self.call::<WasmList<u8>>(interface, func) {
            Some(list) => contents(list.as_le_slice(&*self.store)),
            None => contents(&[]),
        }
    }

    async fn call_func_ret_s32(&mut self, interface: &str, func: &str) -> i32 {
        self.call(interface, func).unwrap_or_default()
    }

    async fn call_func_ret_s64(&mut self, interface: &str, func: &str) -> i64 {
        self.call(interface, func).unwrap_or_default()
    }

    async fn call_func_ret_f32(&mut self, interface: &str, func: &str) -> u32 {
        self.call::<f32>(interface, func).unwrap_or_default().to_bits()
    }

    async fn call_func_ret_f64(&mut self, interface: &str, func: &str) -> u64 {
        self.call::<f64>(interface, func).unwrap_or_default().to_bits()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A snapshot of the embedded `immutable-tags` with `settings`, and its engine.
    fn snapshot_of(settings: &str) -> (Engine, Result<TagPolicyPre<HostState>, SnapshotError>) {
        let engine = Engine::new().unwrap();
        let bytes = crate::embedded::bytes("immutable-tags").unwrap();
        let limits = engine.limits();
        let pre = configured(&engine, bytes, settings, &limits, &Arc::new(PatternCache::default()));
        (engine, pre.map(|(pre, _)| pre))
    }

    #[test]
    fn the_snapshot_exports_only_the_policy_interface() {
        let (engine, pre) = snapshot_of(r#"{"mutable":["latest"]}"#);
        let exports: Vec<String> = pre
            .unwrap()
            .instance_pre()
            .component()
            .component_type()
            .exports(engine.wasmtime())
            .map(|(name, _)| name.to_string())
            .collect();
        // Wizer's accessors were only in the instrumented copy.
        assert_eq!(exports, ["tagpolicy:policy/policy@0.3.1"]);
    }

    #[test]
    fn settings_the_component_rejects_make_no_snapshot() {
        let (_, pre) = snapshot_of(r#"{"colour":"blue"}"#);
        let error = pre.err().unwrap();
        assert!(error.to_string().contains("rejected its settings"), "{error}");
    }
}
