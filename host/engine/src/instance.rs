//! One instantiated policy in its own store, and what it takes to make one: the prepared
//! component, the budget of each call, and how a failed call is named ([`Failure`]).

use crate::bindings::tagpolicy::policy::types as wit;
use crate::bindings::{TagPolicy, TagPolicyPre};
use crate::decision::{self, truncate};
use crate::error::{Failure, chain};
use crate::limits::{Limits, ParkingSpace, ticks};
use crate::output::Printed;
use crate::patterns::PatternCache;
use crate::sandbox::{self, HostState};
use std::sync::Arc;
use std::time::Duration;
use wasmtime::component::{ComponentExportIndex, Func};
use wasmtime::{Store, Trap};

/// An idle instance kept for the next request, holding its place in the engine's budget.
pub(crate) struct Parked {
    pub(crate) instance: Instance,
    pub(crate) _space: ParkingSpace,
}

/// A component ready to instantiate, with its `evaluate` export found, so that each call
/// lowers the request from borrowed parts ([`Call`]). Its type is checked against `Call` once,
/// when the policy is loaded.
pub(crate) struct Prepared {
    pub(crate) pre: TagPolicyPre<HostState>,
    pub(crate) evaluate: ComponentExportIndex,
}

impl Prepared {
    pub(crate) fn new(pre: TagPolicyPre<HostState>) -> wasmtime::Result<Self> {
        let component = pre.instance_pre().component();
        let interface = format!("tagpolicy:policy/policy@{}", crate::CONTRACT_VERSION);
        let (_, policy) = component
            .get_export(None, &interface)
            .ok_or_else(|| wasmtime::format_err!("no `{interface}` export"))?;
        let (_, evaluate) = component
            .get_export(Some(&policy), "evaluate")
            .ok_or_else(|| wasmtime::format_err!("no `evaluate` in `{interface}`"))?;
        Ok(Prepared { pre, evaluate })
    }
}

/// The `request` record `evaluate` takes, lowered from borrowed parts of a [`Request`]: a
/// call copies nothing on the host.
#[derive(wasmtime::component::ComponentType, wasmtime::component::Lower)]
#[component(record)]
pub(crate) struct Call<'a> {
    pub(crate) operation: &'a wit::Operation,
    pub(crate) time: wit::Instant,
}

pub(crate) enum ConfigureError {
    Rejected(String),
    Failed(Failure),
}

/// One instantiated policy in its own store.
pub(crate) struct Instance {
    pub(crate) store: Store<HostState>,
    pub(crate) bindings: TagPolicy,
    /// The `evaluate` export, called through [`Call`].
    pub(crate) evaluate: Func,
    /// Evaluations it has made.
    pub(crate) uses: u32,
}

impl Instance {
    pub(crate) fn new(
        pre: &Prepared,
        limits: &Limits,
        patterns: &Arc<PatternCache>,
    ) -> Result<Self, Failure> {
        let mut store = sandbox::store(pre.pre.engine(), limits, patterns);
        let instantiated = pre.pre.instance_pre().instantiate(&mut store).and_then(|instance| {
            let bindings = TagPolicy::new(&mut store, &instance)?;
            let evaluate = instance
                .get_func(&mut store, pre.evaluate)
                .ok_or_else(|| wasmtime::format_err!("no `evaluate` export"))?;
            Ok((bindings, evaluate))
        });
        match instantiated {
            Ok((bindings, evaluate)) => Ok(Self { store, bindings, evaluate, uses: 0 }),
            Err(error) => Err(classify(&store, error, limits, limits.configure_deadline)),
        }
    }

    pub(crate) fn configured(
        pre: &Prepared,
        limits: &Limits,
        patterns: &Arc<PatternCache>,
        settings: &str,
    ) -> Result<Self, ConfigureError> {
        let mut instance = Self::new(pre, limits, patterns).map_err(ConfigureError::Failed)?;
        instance.arm(limits.configure_deadline, limits);
        match instance
            .bindings
            .tagpolicy_policy_policy()
            .call_configure(&mut instance.store, settings)
        {
            Ok(Ok(())) => {
                // What `configure` printed is not any evaluation's.
                if let Some(printed) = instance.store.data().output.take("") {
                    tracing::debug!(output = %printed, "policy output while configuring");
                }
                Ok(instance)
            }
            Ok(Err(message)) => Err(ConfigureError::Rejected(message)),
            Err(error) => Err(ConfigureError::Failed(instance.failure(
                error,
                limits,
                limits.configure_deadline,
            ))),
        }
    }

    /// Set the budget of the next call: its deadline, and its fuel if the engine counts fuel.
    pub(crate) fn arm(&mut self, deadline: Duration, limits: &Limits) {
        self.store.data_mut().budget.start(deadline);
        // A reused instance may have hit its memory limit in an earlier call; this call's
        // failure is its own.
        self.store.data_mut().limiter.memory_exceeded = false;
        self.store.set_epoch_deadline(ticks(deadline));
        if let Some(fuel) = limits.fuel {
            let _ = self.store.set_fuel(fuel);
        }
    }

    pub(crate) fn failure(
        &self,
        error: wasmtime::Error,
        limits: &Limits,
        deadline: Duration,
    ) -> Failure {
        classify(&self.store, error, limits, deadline)
    }

    /// The failure of an `evaluate` call, and what `policy` printed before it.
    pub(crate) fn failure_printed(
        &self,
        error: wasmtime::Error,
        limits: &Limits,
        policy: &str,
    ) -> (Failure, Option<Printed>) {
        let printed = self.store.data().output.take(policy);
        let text = printed.as_ref().map_or("", |p| p.text.as_str());
        (classify_with(&self.store, error, limits, limits.evaluate_deadline, text), printed)
    }
}

/// Name what went wrong in terms an operator can act on.
fn classify(
    store: &Store<HostState>,
    error: wasmtime::Error,
    limits: &Limits,
    deadline: Duration,
) -> Failure {
    let printed = store.data().output.take("");
    classify_with(store, error, limits, deadline, printed.as_ref().map_or("", |p| p.text.as_str()))
}

/// [`classify`], given what the policy printed during the call (where a panic message is).
fn classify_with(
    store: &Store<HostState>,
    error: wasmtime::Error,
    limits: &Limits,
    deadline: Duration,
    printed: &str,
) -> Failure {
    let state = store.data();
    if state.limiter.memory_exceeded {
        return Failure::Memory(limits.memory_bytes);
    }
    let trap = error.downcast_ref::<Trap>();
    match trap {
        Some(Trap::Interrupt) if state.budget.host_exceeded => {
            return Failure::Lookups(limits.lookups_deadline);
        }
        Some(Trap::Interrupt) => return Failure::Deadline(deadline),
        Some(Trap::StackOverflow) => return Failure::StackOverflow,
        Some(Trap::OutOfFuel) => return Failure::Fuel(limits.fuel.unwrap_or_default()),
        _ => {}
    }
    if let Some(message) = panic_message(printed) {
        return Failure::Panic(truncate(message, decision::MAX_REASON_BYTES));
    }
    // The trap itself says what happened; the wasm backtrace around it is for debugging.
    let message = match trap {
        Some(trap) => trap.to_string(),
        None => chain(&*error),
    };
    Failure::Trap(truncate(message, decision::MAX_REASON_BYTES))
}

/// The message of a Rust panic as printed to stderr:
/// "thread '<unnamed>' panicked at src/lib.rs:3:5:\nthe message\nnote: ...".
fn panic_message(output: &str) -> Option<String> {
    let start = output.find("panicked at ")?;
    let rest = &output[start..];
    let mut lines = rest.lines();
    let location = lines.next()?.trim_start_matches("panicked at ").trim_end_matches(':');
    let message: Vec<&str> = lines.take_while(|line| !line.starts_with("note:")).collect();
    Some(format!("{} (at {location})", message.join(" ").trim()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn panic_messages_are_extracted_from_rust_stderr() {
        let stderr = "\nthread '<unnamed>' panicked at src/lib.rs:12:9:\nindex out of bounds\nnote: run with `RUST_BACKTRACE=1`\n";
        assert_eq!(
            panic_message(stderr).as_deref(),
            Some("index out of bounds (at src/lib.rs:12:9)")
        );
        assert_eq!(panic_message("nothing here"), None);
    }
}
