//! Policies named by a reference the engine does not read itself, such as
//! `oci://registry.example.com/policies/floor@sha256:…`. An embedder hands the
//! [`Loader`](crate::Loader) a [`PolicySource`] that fetches them (the `tagpolicy-oci` crate
//! fetches and verifies them from registries), so the engine itself keeps no network code.
//!
//! ```
//! use std::sync::Arc;
//! use tagpolicy::{Fetched, PolicySource};
//! use tagpolicy::{Engine, Loader};
//!
//! /// Serves one embedded policy under a made-up scheme.
//! struct Mirror;
//! impl PolicySource for Mirror {
//!     fn fetch(&self, reference: &str) -> Result<Fetched, Box<dyn std::error::Error + Send + Sync>> {
//!         let name = reference.strip_prefix("mirror://").ok_or("not a mirror reference")?;
//!         let bytes = tagpolicy::embedded::bytes(name).ok_or("no such policy")?;
//!         Ok(Fetched { bytes: bytes.to_vec(), origin: format!("mirrored `{name}`") })
//!     }
//! }
//!
//! let loader = Loader::new(Engine::new()?).with_source(Arc::new(Mirror));
//! let policy = loader.load("mirror://immutable-tags", "".as_ref())?;
//! assert_eq!(policy.name(), "immutable-tags");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

/// A component fetched for a reference, and where it came from (for errors and logs).
#[derive(Debug, Clone)]
pub struct Fetched {
    /// The component bytes, verified as the source sees fit.
    pub bytes: Vec<u8>,
    /// E.g. ``oci://registry/repo:1.0@sha256:… (signed by `ci`)``.
    pub origin: String,
}

/// Fetches the components of references with a scheme (`scheme://…`).
pub trait PolicySource: Send + Sync {
    /// The component for `reference`, or why not: the error is kept as the source of the
    /// loader's [`Error::Fetch`](crate::Error::Fetch), whose message quotes it after the
    /// reference. A `String` or `&str` converts into it with `?` or `.into()`.
    fn fetch(&self, reference: &str) -> Result<Fetched, Box<dyn std::error::Error + Send + Sync>>;
}

/// Whether `reference` names a policy a [`PolicySource`] fetches (it has a scheme), rather
/// than an embedded policy or a file.
pub fn is_remote(reference: &str) -> bool {
    reference.split_once("://").is_some_and(|(scheme, _)| {
        !scheme.is_empty() && scheme.bytes().all(|b| b.is_ascii_alphanumeric())
    })
}
