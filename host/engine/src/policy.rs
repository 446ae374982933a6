//! A loaded policy component, and a configured one that decides requests; the engine's
//! constructors of policies (`Engine::load_*`). The instances they run are in `instance.rs`.
//!
//! Loading compiles and checks the component once ([`Policy`]); configuring validates the
//! settings once ([`ConfiguredPolicy`]); evaluating runs the configured policy in an
//! instance taken from a small pool, so requests on many threads never wait on each other
//! for more than a pool pop.

use crate::bindings::{PolicyMetadata, TagPolicyPre};
use crate::decision::{self, Decision, truncate};
use crate::engine::Engine;
use crate::error::{Error, Failure};
use crate::instance::{Call, ConfigureError, Instance, Parked, Prepared};
use crate::limits::Limits;
use crate::output::Printed;
use crate::patterns::{HeldSets, PatternCache};
use crate::push::{RepositoryView, Request};
use crate::sandbox;
use crate::snapshot;
use parking_lot::Mutex;
use serde::Serialize;
use std::path::Path;
use std::sync::Arc;
use wasmtime::component::TypedFunc;

/// Idle configured instances kept per policy; more are created under load and dropped.
const MAX_IDLE_INSTANCES: usize = 32;
/// Longest metadata field kept, in bytes.
const MAX_METADATA_BYTES: usize = 4096;

/// What a policy says about itself, checked at load.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Metadata {
    /// Lowercase letters, digits and dashes; names the policy in findings and errors.
    pub name: String,
    /// The policy's own version, free-form, at most 64 bytes.
    pub version: String,
    /// What the policy checks, on one line (cut to 4 KiB).
    pub description: String,
    /// Example settings, as JSON text.
    pub settings_example: String,
}

/// A policy component, compiled and checked against the world, with the limits its
/// configured instances get. Cheap to clone.
#[derive(Clone)]
pub struct Policy {
    inner: Arc<Loaded>,
    limits: Limits,
    isolation: Isolation,
    snapshot: bool,
}

/// Whether requests share policy instances.
///
/// `Reuse` is the fast default: a configured instance decides request after request and is
/// replaced after [`Limits::recycle_after`] decisions or any failure. A policy could then
/// carry state from one request to the next (the reference policies do not). `Isolated`
/// gives every request a fresh instance, so nothing can leak between requests, at the cost
/// of an instantiation per request. The settings are not applied again for each: the
/// instance starts from a snapshot of the policy taken once, right after `configure`
/// (see [`ConfiguredPolicy::uses_snapshot`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Isolation {
    #[default]
    /// Instances are reused across requests (the default).
    Reuse,
    /// Every request gets a fresh instance.
    Isolated,
}

/// A name that is not an [`Isolation`] mode, as given (e.g. on a command line).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not an isolation mode; use `reuse` or `isolated`")]
pub struct ParseIsolationError(pub String);

impl std::str::FromStr for Isolation {
    type Err = ParseIsolationError;

    fn from_str(text: &str) -> Result<Self, ParseIsolationError> {
        match text {
            "reuse" => Ok(Isolation::Reuse),
            "isolated" => Ok(Isolation::Isolated),
            other => Err(ParseIsolationError(other.to_string())),
        }
    }
}

struct Loaded {
    pre: Prepared,
    /// The component and its engine, kept to make configured snapshots.
    bytes: Arc<[u8]>,
    engine: Engine,
    metadata: Metadata,
    sha256: String,
    imports: Vec<String>,
    exports: Vec<String>,
    size: usize,
    patterns: Arc<PatternCache>,
}

/// The engine's policy constructors. They live beside [`Policy`] so that the engine, which
/// policies are built on, knows nothing of them.
impl Engine {
    /// Load a policy component from a file.
    pub fn load_file(&self, path: impl AsRef<Path>) -> Result<Policy, Error> {
        let path = path.as_ref();
        let bytes = std::fs::read(path)
            .map_err(|source| Error::Read { path: path.to_path_buf(), source })?;
        Policy::load(self, &bytes, format!("`{}`", path.display()))
    }

    /// Load a policy component from bytes; `origin` names it in errors (e.g. a URL).
    pub fn load_bytes(&self, bytes: &[u8], origin: &str) -> Result<Policy, Error> {
        Policy::load(self, bytes, format!("`{origin}`"))
    }

    pub(crate) fn load_bytes_with_origin(
        &self,
        bytes: &[u8],
        origin: String,
    ) -> Result<Policy, Error> {
        Policy::load(self, bytes, origin)
    }

    /// Load one of the reference policies compiled into this library
    /// (`immutable-tags`, `min-tags`, `semver-series`).
    pub fn load_embedded(&self, name: &str) -> Result<Policy, Error> {
        let bytes = crate::embedded::bytes(name)
            .ok_or_else(|| Error::UnknownPolicy { name: name.to_string() })?;
        Policy::load(self, bytes, format!("embedded policy `{name}`"))
    }
}

impl Policy {
    pub(crate) fn load(engine: &Engine, bytes: &[u8], origin: String) -> Result<Self, Error> {
        check_is_component(bytes, &origin)?;
        let sha256 = crate::digest::Digest::of(bytes).hex();
        let component = engine.compile(bytes, &sha256).map_err(|e| Error::InvalidComponent {
            origin: origin.clone(),
            source: e.into_boxed_dyn_error(),
        })?;
        let component_type = component.component_type();
        let imports: Vec<String> =
            component_type.imports(engine.wasmtime()).map(|(name, _)| name.to_string()).collect();
        let exports: Vec<String> =
            component_type.exports(engine.wasmtime()).map(|(name, _)| name.to_string()).collect();
        // A component of another version of the contract names it in its imports and exports.
        if let Some(found) = imports
            .iter()
            .chain(&exports)
            .filter_map(|name| name.strip_prefix("tagpolicy:policy/")?.split_once('@'))
            .map(|(_, version)| version)
            .find(|version| !crate::loads_contract(version))
        {
            return Err(Error::ContractVersion { origin, found: found.to_string() });
        }
        let forbidden: Vec<String> =
            imports.iter().filter(|name| !sandbox::is_granted(name)).cloned().collect();
        if !forbidden.is_empty() {
            return Err(Error::ForbiddenImports { origin, imports: forbidden });
        }
        let wrong_world = |e: wasmtime::Error| Error::WrongWorld {
            origin: origin.clone(),
            source: e.into_boxed_dyn_error(),
        };
        let instance_pre = engine.linker().instantiate_pre(&component).map_err(wrong_world)?;
        let pre = Prepared::new(TagPolicyPre::new(instance_pre).map_err(wrong_world)?)
            .map_err(wrong_world)?;

        let limits = engine.limits();
        let patterns = Arc::new(PatternCache::default());
        let mut instance = Instance::new(&pre, &limits, &patterns)
            .map_err(|failure| Error::Load { origin: origin.clone(), failure })?;
        // The check every call's `TypedFunc::new_unchecked` relies on, done once.
        instance.evaluate.typed::<(Call<'static>,), ()>(&instance.store).map_err(wrong_world)?;
        instance.arm(limits.configure_deadline, &limits);
        let raw = instance
            .bindings
            .tagpolicy_policy_policy()
            .call_metadata(&mut instance.store)
            .map_err(|e| Error::Load {
                origin: origin.clone(),
                failure: instance.failure(e, &limits, limits.configure_deadline),
            })?;
        let metadata =
            check_metadata(raw).map_err(|message| Error::Metadata { origin, message })?;

        Ok(Self {
            inner: Arc::new(Loaded {
                pre,
                bytes: bytes.into(),
                engine: engine.clone(),
                metadata,
                sha256,
                imports,
                exports,
                size: bytes.len(),
                patterns,
            }),
            limits,
            isolation: Isolation::default(),
            snapshot: true,
        })
    }

    /// What the policy says about itself.
    pub fn metadata(&self) -> &Metadata {
        &self.inner.metadata
    }

    /// The policy's name, from its metadata.
    pub fn name(&self) -> &str {
        &self.inner.metadata.name
    }

    /// Hex sha256 of the component bytes, for pinning.
    pub fn sha256(&self) -> &str {
        &self.inner.sha256
    }

    /// Every import of the component (all of them granted, or it would not have loaded).
    pub fn imports(&self) -> &[String] {
        &self.inner.imports
    }

    /// Every export of the component.
    pub fn exports(&self) -> &[String] {
        &self.inner.exports
    }

    /// Whether anything besides this handle (a configured policy, another handle) holds the
    /// loaded component.
    pub(crate) fn in_use(&self) -> bool {
        Arc::strong_count(&self.inner) > 1
    }

    /// Size of the component in bytes.
    pub fn size(&self) -> usize {
        self.inner.size
    }

    /// The limits of the instances configured from this policy.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// The same policy with other limits for the instances configured from it; limits out
    /// of range, or fuel given to an engine without it (or missing on one with it), are
    /// refused naming the field.
    pub fn with_limits(&self, limits: Limits) -> Result<Self, Error> {
        limits.check(self.inner.engine.counts_fuel())?;
        Ok(Self { limits, ..self.clone() })
    }

    /// Whether configurations made from this policy share instances across requests.
    pub fn isolation(&self) -> Isolation {
        self.isolation
    }

    /// The same policy with another instance-sharing mode for configurations made from it.
    pub fn with_isolation(&self, isolation: Isolation) -> Self {
        Self { isolation, ..self.clone() }
    }

    /// The same policy, whose isolated configurations start each request from a snapshot
    /// taken after `configure` (`true`, the default) or instantiate the component and
    /// apply the settings again for every request (`false`: slower; for comparison, or
    /// for a policy that misbehaves when snapshotted). With the `testing` feature only.
    #[cfg(feature = "testing")]
    pub fn with_snapshot(&self, snapshot: bool) -> Self {
        Self { snapshot, ..self.clone() }
    }

    /// Validate and apply `settings` (a JSON object; `{}` for none).
    pub fn configure(&self, settings: &serde_json::Value) -> Result<ConfiguredPolicy, Error> {
        let settings = settings.to_string();
        let limits = self.limits;
        let instance =
            Instance::configured(&self.inner.pre, &limits, &self.inner.patterns, &settings)
                .map_err(|e| match e {
                    ConfigureError::Rejected(message) => Error::Settings {
                        policy: self.name().to_string(),
                        message: truncate(message, decision::MAX_REASON_BYTES),
                    },
                    ConfigureError::Failed(failure) => {
                        Error::Load { origin: format!("policy `{}`", self.name()), failure }
                    }
                })?;
        // The sets `configure` prepared stay while this configuration lives, for instances
        // that start from its snapshot.
        let mut sets = instance.store.data().sets.share();
        let instances = match self.isolation {
            Isolation::Reuse => {
                let parked =
                    self.inner.engine.park().map(|space| Parked { instance, _space: space });
                Instances::Idle(Mutex::new(parked.into_iter().collect()))
            }
            Isolation::Isolated if self.snapshot => {
                let loaded = &self.inner;
                match snapshot::configured(
                    &loaded.engine,
                    &loaded.bytes,
                    &settings,
                    &limits,
                    &loaded.patterns,
                ) {
                    Ok((pre, snapshot_sets)) => match Prepared::new(pre) {
                        Ok(pre) => {
                            sets.extend(snapshot_sets);
                            Instances::Snapshot(pre)
                        }
                        Err(error) => {
                            tracing::warn!(policy = self.name(), %error, "applying the settings per request instead");
                            Instances::ConfigureEach
                        }
                    },
                    Err(error) => {
                        tracing::warn!(policy = self.name(), %error, "applying the settings per request instead");
                        Instances::ConfigureEach
                    }
                }
            }
            Isolation::Isolated => Instances::ConfigureEach,
        };
        Ok(ConfiguredPolicy { policy: self.clone(), settings, instances, _sets: sets })
    }
}

/// A policy with its settings applied, ready to decide requests from any thread.
pub struct ConfiguredPolicy {
    policy: Policy,
    /// The settings as JSON text, applied to each new instance that does not start
    /// from a snapshot.
    settings: String,
    instances: Instances,
    /// Kept for what it releases on drop.
    _sets: HeldSets,
}

/// Where the instance of a request comes from.
enum Instances {
    /// Reuse mode: the configured instances idle between requests, each reused until it is
    /// recycled; a new one is configured when none is idle.
    Idle(Mutex<Vec<Parked>>),
    /// A new instance per request of the component snapshotted after `configure`.
    Snapshot(Prepared),
    /// A new instance per request of the original component, configured for it.
    ConfigureEach,
}

impl ConfiguredPolicy {
    /// The loaded policy this was configured from.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// The policy's name, from its metadata.
    pub fn name(&self) -> &str {
        self.policy.name()
    }

    /// Whether each request gets a fresh instance that starts from a snapshot taken right
    /// after `configure`. `false` in reuse mode, and in isolated mode when the policy
    /// could not be snapshotted (the reason is logged): its settings are then applied
    /// again for every request.
    pub fn uses_snapshot(&self) -> bool {
        matches!(self.instances, Instances::Snapshot(_))
    }

    /// In reuse mode, the linear memory of the idle instances: the largest any of them has
    /// grown to, in bytes, and how many decisions that one has made. For measuring how a
    /// policy's memory behaves over many decisions (`tagpolicy bench`); `None` when no
    /// instance is idle or in isolated mode. An instance that grows past half of its memory
    /// limit is replaced after the decision that grew it. With the `testing` feature only.
    #[cfg(feature = "testing")]
    pub fn idle_memory(&self) -> Option<(usize, u32)> {
        let Instances::Idle(idle) = &self.instances else { return None };
        let idle = idle.lock();
        idle.iter()
            .map(|Parked { instance, .. }| {
                (instance.store.data().limiter.memory_granted, instance.uses)
            })
            .max()
    }

    /// Decide `request`, letting the policy read `repository` (its state before the request).
    /// A trap, a timeout or a limit hit is a [`Failure`]; the instance is discarded and the
    /// next evaluation gets a fresh one. What the policy printed is in the decision's
    /// [`output`](Decision::output); [`evaluate_printing`](Self::evaluate_printing) keeps it
    /// for a failure too.
    pub fn evaluate(
        &self,
        request: &Request,
        repository: Arc<dyn RepositoryView>,
    ) -> Result<Decision, Failure> {
        let (result, printed) = self.evaluate_printing(request, repository);
        result.map(|mut decision| {
            decision.output.extend(printed);
            decision
        })
    }

    /// [`evaluate`](Self::evaluate), with what the policy printed to stdout and stderr during
    /// the call (`None` if nothing), whether it decided or failed: what it printed before
    /// failing is often what explains the failure.
    pub fn evaluate_printing(
        &self,
        request: &Request,
        repository: Arc<dyn RepositoryView>,
    ) -> (Result<Decision, Failure>, Option<Printed>) {
        let loaded = &self.policy.inner;
        let limits = self.policy.limits;
        let configure_new = || {
            Instance::configured(&loaded.pre, &limits, &loaded.patterns, &self.settings).map_err(
                |e| match e {
                    // The same settings were accepted at configure time; a policy that
                    // changes its mind is not to be trusted with a decision.
                    ConfigureError::Rejected(message) => {
                        Failure::Trap(format!("rejected its settings on a new instance: {message}"))
                    }
                    ConfigureError::Failed(failure) => failure,
                },
            )
        };
        let instance = match &self.instances {
            Instances::Idle(idle) => match idle.lock().pop() {
                Some(parked) => Ok(parked.instance),
                None => configure_new(),
            },
            Instances::Snapshot(pre) => Instance::new(pre, &limits, &loaded.patterns),
            Instances::ConfigureEach => configure_new(),
        };
        let mut instance = match instance {
            Ok(instance) => instance,
            Err(failure) => return (Err(failure), None),
        };
        let state = instance.store.data_mut();
        state.view = Some(repository);
        state.context.set(request);
        instance.arm(limits.evaluate_deadline, &limits);
        let call = Call { operation: &request.operation, time: request.time };
        // SAFETY: the function's type was checked against `Call` when the component was
        // prepared (`Prepared::new`); `Call` only borrows from `request`, which outlives the call.
        let evaluate = unsafe { TypedFunc::<(Call<'_>,), ()>::new_unchecked(instance.evaluate) };
        let result = evaluate.call(&mut instance.store, (call,));
        let state = instance.store.data_mut();
        state.view = None;
        state.context.clear();
        let mut reports = std::mem::take(&mut state.reports);
        match result {
            Ok(()) if let Some(reason) = reports.failed() => {
                // Not parked: a policy that gave up may have left its state half-changed.
                let printed = instance.store.data().output.take(self.name());
                (Err(Failure::Exception(reason)), printed)
            }
            Ok(()) => {
                // Drained on every call, so that each call's output, and the next call's
                // panic message, are its own.
                let printed = instance.store.data().output.take(self.name());
                instance.uses += 1;
                if let Instances::Idle(idle) = &self.instances
                    && instance.uses < limits.recycle_after
                    && !instance.store.data().limiter.grown_past_half()
                {
                    let mut idle = idle.lock();
                    if idle.len() < MAX_IDLE_INSTANCES
                        && let Some(space) = loaded.engine.park()
                    {
                        idle.push(Parked { instance, _space: space });
                    }
                }
                (Ok(reports.into_decision(self.name())), printed)
            }
            Err(error) => {
                let (failure, printed) = instance.failure_printed(error, &limits, self.name());
                (Err(failure), printed)
            }
        }
    }
}

fn check_is_component(bytes: &[u8], origin: &str) -> Result<(), Error> {
    if !bytes.starts_with(b"\0asm") || bytes.len() < 8 {
        return Err(Error::NotWasm { origin: origin.to_string() });
    }
    // The 2-byte version after the magic; the layer field that follows is 0 for core
    // modules and 1 for components.
    match bytes[6..8] {
        [0, 0] => Err(Error::CoreModule { origin: origin.to_string() }),
        _ => Ok(()),
    }
}

fn check_metadata(raw: PolicyMetadata) -> Result<Metadata, String> {
    let name_ok = !raw.name.is_empty()
        && raw.name.len() <= 64
        && raw.name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !raw.name.starts_with('-');
    if !name_ok {
        let shown = truncate(raw.name, 80);
        return Err(format!(
            "name `{shown}` must be 1 to 64 lowercase letters, digits and dashes, not starting with a dash"
        ));
    }
    if raw.version.trim().is_empty() || raw.version.len() > 64 {
        return Err(format!("policy `{}` has an empty or over-long version", raw.name));
    }
    if raw.description.contains('\n') {
        return Err(format!(
            "policy `{}` has a description of several lines; it must be one",
            raw.name
        ));
    }
    if serde_json::from_str::<serde_json::Value>(&raw.settings_example).is_err() {
        return Err(format!("policy `{}` has a settings example that is not JSON", raw.name));
    }
    Ok(Metadata {
        name: raw.name,
        version: raw.version,
        description: truncate(raw.description, MAX_METADATA_BYTES),
        settings_example: truncate(raw.settings_example, MAX_METADATA_BYTES),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_tell_core_modules_components_and_garbage_apart() {
        let core = b"\0asm\x01\0\0\0";
        let component = b"\0asm\x0d\0\x01\0";
        assert!(matches!(check_is_component(core, "x"), Err(Error::CoreModule { .. })));
        assert!(check_is_component(component, "x").is_ok());
        assert!(matches!(check_is_component(b"hello world", "x"), Err(Error::NotWasm { .. })));
        assert!(matches!(check_is_component(b"\0asm", "x"), Err(Error::NotWasm { .. })));
    }

    #[test]
    fn metadata_names_are_checked() {
        let raw = |name: &str| PolicyMetadata {
            name: name.into(),
            version: "1.0.0".into(),
            description: "d".into(),
            settings_example: "{}".into(),
        };
        assert!(check_metadata(raw("immutable-tags")).is_ok());
        for bad in ["", "Upper", "-dash", "a b", &"x".repeat(65)] {
            assert!(check_metadata(raw(bad)).is_err(), "{bad:?}");
        }
        let mut not_json = raw("ok");
        not_json.settings_example = "{".into();
        assert!(check_metadata(not_json).unwrap_err().contains("not JSON"));
    }
}
