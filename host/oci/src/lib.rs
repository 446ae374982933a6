//! Policy components shipped through OCI registries, without the network: policy
//! [references](reference) (`oci://host[:port]/repo:tag@sha256:…`), the CNCF TAG-Runtime
//! [Wasm artifact layout](artifact), cosign-compatible key-pair [signatures](signature)
//! (simple signing, verified offline against operator keys with a threshold; no transparency
//! log) and a content-addressed [cache] of blobs and tag resolutions. Pushing and pulling
//! over the network builds on these.
//!
//! ```
//! use tagpolicy_oci::{artifact, reference::Reference};
//! let reference = Reference::parse("oci://registry.example.com/policies/floor:1.2.0")?;
//! let spec = artifact::ArtifactSpec {
//!     created: "2026-01-31T12:00:00Z".into(),
//!     exports: vec!["tagpolicy:policy/rule@0.1.0".into()],
//!     ..Default::default()
//! };
//! let built = artifact::build(b"\0asm\x0d\0\x01\0", &spec)?;
//! let pinned = reference.with_digest(built.manifest.digest);
//! let info = artifact::inspect(&built.manifest.bytes, &built.config.bytes)?;
//! info.verify_component(b"\0asm\x0d\0\x01\0")?;
//! assert!(pinned.to_string().contains(":1.2.0@sha256:"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod artifact;
pub mod cache;
pub mod client;
pub mod config;
pub mod credentials;
pub mod digest;
pub mod fetch;
pub mod reference;
pub mod signature;

pub use digest::Digest;
pub use reference::Reference;
