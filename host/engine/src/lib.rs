//! tagpolicy: tag-mutation rules for OCI registries, as sandboxed WebAssembly components.
//!
//! Create one [`Engine`], load each policy once, configure it with its settings, then
//! decide requests from any thread:
//!
//! ```
//! use std::sync::Arc;
//! use tagpolicy::{
//!     Actor, Engine, Instant, Mode, Operation, PolicySet, Push, Request, TagChange, TagMap,
//! };
//!
//! # fn main() -> Result<(), tagpolicy::Error> {
//! let engine = Engine::new()?;
//! let immutable = engine
//!     .load_embedded("immutable-tags")?
//!     .configure(&serde_json::json!({ "mutable": ["latest", "\\d+\\.\\d+"] }))?;
//! let policies = PolicySet::new().with(immutable, Mode::Enforce);
//!
//! // The repository as it is: `1.2.10` and `latest` point at one image.
//! let old = format!("sha256:{}", "a".repeat(64));
//! let new = format!("sha256:{}", "b".repeat(64));
//! let state: TagMap = [("1.2.10", &old), ("latest", &old)].into_iter().collect();
//!
//! // Someone pushes another image as `1.2.10` and `latest`.
//! let request = Request {
//!     repository: "team/app".into(),
//!     actor: Actor::anonymous(),
//!     operation: Operation::Push(Push {
//!         digest: new.clone(),
//!         tags: vec![
//!             TagChange { tag: "1.2.10".into(), current: Some(old.clone()) },
//!             TagChange { tag: "latest".into(), current: Some(old.clone()) },
//!         ],
//!     }),
//!     time: Instant::now(),
//! };
//! let decision = policies.evaluate(&request, Arc::new(state));
//! assert!(!decision.is_allowed());
//! assert!(decision.summary().contains("tag `1.2.10` is immutable"));
//! # Ok(())
//! # }
//! ```
//!
//! A policy that traps, runs past its deadline or exceeds its memory limit refuses the
//! request with the outcome [`Outcome::Error`] (not [`Outcome::Deny`]: no rule decided it)
//! and a reason that says so; the host goes on. See [`Limits`] and [`FailMode`].
//!
//! Every type is at the crate root; the modules [`embedded`] and [`oci`] hold functions and
//! constants only. Scenario files (the YAML of `tagpolicy eval` and `test`) are read by the
//! `tagpolicy-scenario` crate, not by the engine.

#![deny(missing_docs)]

mod bindings;
mod cache;
mod decision;
mod digest;
pub mod embedded;
mod engine;
mod error;
mod image;
mod instance;
mod limits;
pub mod oci;
mod output;
mod patterns;
mod policy;
mod policy_set;
mod push;
mod query;
mod sandbox;
mod snapshot;
mod source;
mod tag_map;

pub use decision::{
    Decision, Finding, MAX_FINDINGS, MAX_REASON_BYTES, Outcome, Severity, truncate,
};
pub use digest::{Digest, DigestError};
pub use engine::{Engine, EngineBuilder};
pub use error::{Error, Failure};
pub use image::{
    Descriptor, ImageFacts, Images, KeyValue, Manifest, OCI_MANIFEST, Platform, Referrer,
    config_labels, filter_referrers, key_values,
};
pub use limits::{DEFAULT_INSTANCE_SLOTS, LimitError, Limits};
pub use output::Printed;
pub use policy::{ConfiguredPolicy, Isolation, Metadata, ParseIsolationError, Policy};
pub use policy_set::{Enforcement, FailMode, LimitsSpec, Loader, Mode, PolicySet, PolicySpec};
pub use push::{
    Actor, Instant, ManifestDeletion, Operation, Push, RepositoryView, Request, TagChange, TagEntry,
};
pub use query::{MAX_PAGE, SortedTags, TagOrder, TagQuery, version_key};
pub use source::{Fetched, PolicySource, is_remote};
pub use tag_map::{RepositoryState, Stamp, TagHistory, TagMap};

/// The WIT world every policy component must implement.
pub const WORLD: &str = "tagpolicy:policy/tag-policy@0.3.1";

/// The version of the contract, as components name it in their imports and exports.
/// Components of an earlier version of the same `0.3` series load too: 0.3.1 only added.
pub const CONTRACT_VERSION: &str = "0.3.1";

/// Whether this host loads a component that names contract `version`: the same `0.3`
/// series, not newer than [`CONTRACT_VERSION`] (wasmtime links `@0.3.0` imports and exports
/// to the host's `@0.3.1` ones; a newer component may call what this host lacks).
pub(crate) fn loads_contract(version: &str) -> bool {
    let series = |v: &str| {
        v.rsplit_once('.').map(|(series, patch)| (series.to_owned(), patch.parse::<u32>()))
    };
    match (series(version), series(CONTRACT_VERSION)) {
        (Some((theirs, Ok(patch))), Some((ours, Ok(max)))) => theirs == ours && patch <= max,
        _ => false,
    }
}

// The Rust examples of the README and of the engine's pages are compiled and run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
struct ReadmeDoctests;

#[cfg(doctest)]
#[doc = include_str!("../../../docs/embedding.md")]
struct EmbeddingDoctests;

// docs/policies.md shows policies (guest code): the guest SDK compiles them.
