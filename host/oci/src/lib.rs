//! Policy components shipped through OCI registries: policy [references](reference)
//! (`oci://host[:port]/repo:tag@sha256:…`), the CNCF TAG-Runtime [Wasm artifact
//! layout](artifact), cosign-compatible key-pair [signatures](signature) (simple signing,
//! verified against the operator's keys with a threshold; no transparency log), a
//! content-addressed [cache], [credentials] where podman and docker keep them, a registry
//! [client] (reads bounded in bytes, total time and redirects; pushes through `oci-client`),
//! and the [fetcher](fetch::Fetcher) that gives the engine its
//! `oci://` policies: verified, cached, tags followed without rollbacks.
//!
//! The one entry point for an embedder: settings (as under `policy_registries` in a gate
//! configuration) make a fetcher, and the engine's loader fetches through it.
//!
//! ```
//! use std::sync::Arc;
//! use tagpolicy_oci::config::RegistriesConfig;
//! # let dir = tempfile::tempdir()?;
//! let settings: RegistriesConfig = serde_yaml_ng::from_str("insecure: [\"127.0.0.1:1\"]")?;
//! let fetcher = Arc::new(settings.fetcher(dir.path())?);
//! let loader = tagpolicy::Loader::new(tagpolicy::Engine::new()?).with_source(fetcher);
//! // Nothing listens on port 1 and nothing is cached: refused, saying why.
//! let digest = "sha256:".to_string() + &"0".repeat(64);
//! let loaded = loader.load(&format!("oci://127.0.0.1:1/policies/floor@{digest}"), "".as_ref());
//! let Err(error) = loaded else { panic!("loaded from nowhere") };
//! assert!(error.to_string().contains("cannot be reached"), "{error}");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Without the network, artifacts are built and checked like this:
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
mod bounded;
pub mod cache;
pub mod client;
pub mod config;
pub mod credentials;
pub mod fetch;
pub mod reference;
pub mod signature;

pub use reference::Reference;
