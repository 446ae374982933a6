//! The Rust SDK for tagpolicy policies.
//!
//! A policy is a crate of type `cdylib` that implements [`Policy`] and exports it with
//! [`export_policy!`]. Built with `cargo build --release --target wasm32-wasip2` (or
//! `tagpolicy build`), it becomes a WebAssembly component of the `tagpolicy:policy` world.
//!
//! ```no_run
//! use tagpolicy_guest::{export_policy, Decision, Findings, Pattern, Policy, Request};
//!
//! /// Tags matching `protected` may only be changed by the actor `release-bot`.
//! #[derive(serde::Deserialize)]
//! #[serde(deny_unknown_fields)]
//! struct Settings {
//!     protected: Pattern,
//! }
//!
//! struct ReleaseBotOnly(Settings);
//!
//! impl Policy for ReleaseBotOnly {
//!     type Settings = Settings;
//!     const NAME: &'static str = "release-bot-only";
//!     const DESCRIPTION: &'static str = "Only release-bot changes protected tags";
//!     const SETTINGS_EXAMPLE: &'static str = r#"{"protected": "v\\d+.*"}"#;
//!
//!     fn configure(settings: Settings) -> Result<Self, String> {
//!         Ok(Self(settings))
//!     }
//!
//!     fn evaluate(&self, request: &Request) -> Decision {
//!         let mut findings = Findings::new();
//!         for change in request.changes() {
//!             if change.is_identical() || !self.0.protected.matches(change.tag) {
//!                 continue;
//!             }
//!             if request.actor().id.as_deref() != Some("release-bot") {
//!                 findings.deny(change.tag, format!("tag `{}` is protected: only `release-bot` may {} it", change.tag, change.verb()));
//!             }
//!         }
//!         findings.into_decision()
//!     }
//! }
//!
//! export_policy!(ReleaseBotOnly);
//! ```
//!
//! Regular expressions ([`Pattern`]) are evaluated by the host, so the policy needs no regex
//! engine of its own and its syntax is the same in every language. The repository as it is
//! before the request can be read with the functions in [`repository`], the facts of its
//! images (annotations, config labels, signatures and SBOMs) with those in [`image`], and the
//! time of the request is `request.time` ([`time`] reads it as a calendar date). The
//! repository is asked questions, never listed whole: the tags matching a pattern
//! ([`repository::tags_matching`], [`repository::newest`]), a tag's digest or history, the
//! tags of a digest. The host answers them from its index at the same cost whatever the
//! size of the repository.

/// The policies shown in docs/policies.md, compiled by `cargo test` so that the page cannot
/// drift from the SDK.
#[cfg(doctest)]
#[doc = include_str!("../../docs/policies.md")]
pub struct PoliciesPage;

// The generated export macro refers to this crate by its name, also from inside it.
extern crate self as tagpolicy_guest;

mod change;
mod findings;
mod metadata;
mod pattern;
pub mod repository;
mod settings;
pub mod tags;
pub mod time;

/// Generated bindings of the `tagpolicy:policy` world. Prefer the re-exports at the crate
/// root; this module is public so that the export macro can reach it.
#[doc(hidden)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "../wit",
        world: "tag-policy",
        pub_export_macro: true,
        export_macro_name: "__export_tag_policy",
        additional_derives: [PartialEq, Eq],
        default_bindings_module: "tagpolicy_guest::bindings",
        runtime_path: "tagpolicy_guest::__private::wit_bindgen::rt",
    });
}

pub use bindings::tagpolicy::policy::types::{
    Actor, Descriptor, Instant, KeyValue, Manifest, ManifestDeletion, Operation, Platform,
    PolicyMetadata, Push, Referrer, Request, Stamp, TagChange, TagEntry, TagHistory, TagOrder,
    TagQuery,
};
pub use change::{Change, ChangeKind};
pub use findings::{Decision, Finding, Findings};
pub use pattern::{Pattern, Patterns};

/// The facts of the repository's images: manifests, config labels, referrers. Each call can
/// cost the host a registry request; call only what the rule needs.
pub mod image {
    pub use crate::bindings::tagpolicy::policy::image::{labels_of, manifest_of, referrers_of};

    /// The value of label `key` of the image `digest`'s config.
    pub fn label(digest: &str, key: &str) -> Option<String> {
        labels_of(digest).into_iter().find(|kv| kv.key == key).map(|kv| kv.value)
    }

    /// Whether at least one artifact of `artifact_type` refers to `digest`.
    pub fn has_referrer(digest: &str, artifact_type: &str) -> bool {
        !referrers_of(digest, Some(artifact_type)).is_empty()
    }
}

impl Request {
    /// The repository the request is for, e.g. `team/app`. A host call: ask once.
    pub fn repository(&self) -> String {
        bindings::tagpolicy::policy::context::repository_name()
    }

    /// Who asks, as the host established it. A host call: ask once.
    pub fn actor(&self) -> Actor {
        bindings::tagpolicy::policy::context::requested_by()
    }
}

impl Manifest {
    /// The value of annotation `key`.
    pub fn annotation(&self, key: &str) -> Option<&str> {
        self.annotations.iter().find(|kv| kv.key == key).map(|kv| kv.value.as_str())
    }
}

/// A tag rule. Implement it for the type that holds your configured rule, then call
/// [`export_policy!`] with that type.
pub trait Policy: Sized + 'static {
    /// The settings, deserialized from the JSON the operator wrote (YAML in scenario and
    /// gate files is converted to JSON by the host). Use `#[serde(deny_unknown_fields)]`
    /// so that typos are reported instead of ignored.
    type Settings: serde::de::DeserializeOwned;
    /// Short, stable name (`lowercase-with-dashes`).
    const NAME: &'static str;
    /// The policy's version; `None` (the default) is the crate's version from `Cargo.toml`.
    const VERSION: Option<&'static str> = None;
    /// One line saying what the policy enforces.
    const DESCRIPTION: &'static str;
    /// Example settings as JSON text, shown by `tagpolicy inspect`.
    const SETTINGS_EXAMPLE: &'static str;

    /// Check the settings and build the configured rule. Runs once per loaded policy.
    /// The error is shown to the operator: say which field and value are wrong.
    fn configure(settings: Self::Settings) -> Result<Self, String>;

    /// Decide one request.
    fn evaluate(&self, request: &Request) -> Decision;
}

/// Export a [`Policy`] implementation as the component's `policy` interface.
#[macro_export]
macro_rules! export_policy {
    ($policy:ty) => {
        const _: () = {
            struct Export;
            impl $crate::bindings::exports::tagpolicy::policy::policy::Guest for Export {
                fn metadata() -> $crate::PolicyMetadata {
                    $crate::__private::metadata::<$policy>(env!("CARGO_PKG_VERSION"))
                }
                fn configure(settings: String) -> Result<(), String> {
                    $crate::__private::configure::<$policy>(&settings)
                }
                fn evaluate(request: $crate::Request) {
                    $crate::__private::evaluate::<$policy>(&request)
                }
            }
    $crate::bindings::__export_tag_policy!(Export with_types_in $crate::bindings);
        };
    };
}

/// The metadata items of a [`Policy`] impl (`NAME`, `VERSION`, `DESCRIPTION`,
/// `SETTINGS_EXAMPLE`) read at compile time from a JSON file, instead of written inline: for
/// a policy whose metadata other programs read too, such as its ports to other languages.
///
/// The path is relative to the file that invokes the macro, as for [`include_str!`]. The file
/// is one object of strings with exactly these fields:
///
/// ```json
/// {
///   "name": "release-bot-only",
///   "version": "1.2.0",
///   "description": "Only release-bot changes protected tags",
///   "settings_example": "{\"protected\": \"v\\\\d+.*\"}"
/// }
/// ```
///
/// `settings_example` is the example's JSON text as a string, so every reader gets the same
/// bytes. A malformed file, or a missing, repeated or unknown field, fails the build.
///
/// ```ignore
/// impl Policy for ReleaseBotOnly {
///     type Settings = Settings;
///     tagpolicy_guest::include_metadata!("../metadata.json");
///
///     fn configure(settings: Settings) -> Result<Self, String> {
///         Ok(Self(settings))
///     }
///     // …
/// }
/// ```
#[macro_export]
macro_rules! include_metadata {
    ($path:literal) => {
        const NAME: &'static str = $crate::__metadata_field!($path, "name");
        const VERSION: ::core::option::Option<&'static str> =
            ::core::option::Option::Some($crate::__metadata_field!($path, "version"));
        const DESCRIPTION: &'static str = $crate::__metadata_field!($path, "description");
        const SETTINGS_EXAMPLE: &'static str = $crate::__metadata_field!($path, "settings_example");
    };
}

/// One field of a metadata file, for [`include_metadata!`]; not part of the API.
#[doc(hidden)]
#[macro_export]
macro_rules! __metadata_field {
    ($path:literal, $field:literal) => {{
        const JSON: &str = ::core::include_str!($path);
        const LEN: usize = $crate::__private::metadata::field_len(JSON, $field);
        const BYTES: [u8; LEN] = $crate::__private::metadata::field::<LEN>(JSON, $field);
        $crate::__private::metadata::as_str(&BYTES)
    }};
}

/// Plumbing used by [`export_policy!`] and [`include_metadata!`]; not part of the API.
#[doc(hidden)]
pub mod __private {
    pub use wit_bindgen;

    /// The reading of a metadata file, for [`include_metadata!`](crate::include_metadata).
    pub mod metadata {
        pub use crate::metadata::{as_str, field, field_len};
    }

    use crate::{Decision, Findings, Policy, PolicyMetadata, Request};
    use std::any::Any;
    use std::cell::RefCell;

    thread_local! {
        // A component instance is single-threaded; the configured policy lives here
        // between `configure` and the `evaluate` calls.
        static CONFIGURED: RefCell<Option<Box<dyn Any>>> = const { RefCell::new(None) };
    }

    /// The metadata of `P`; `version` is the crate's, for a policy that gives none.
    pub fn metadata<P: Policy>(version: &str) -> PolicyMetadata {
        PolicyMetadata {
            name: P::NAME.to_string(),
            version: P::VERSION.unwrap_or(version).to_string(),
            description: P::DESCRIPTION.to_string(),
            settings_example: P::SETTINGS_EXAMPLE.to_string(),
        }
    }

    pub fn configure<P: Policy>(settings: &str) -> Result<(), String> {
        let settings: P::Settings = crate::settings::parse(settings)?;
        let policy = P::configure(settings)?;
        CONFIGURED.with(|slot| *slot.borrow_mut() = Some(Box::new(policy)));
        Ok(())
    }

    /// Decide with the configured policy and report the answer to the host.
    pub fn evaluate<P: Policy>(request: &Request) {
        decide::<P>(request).report()
    }

    fn decide<P: Policy>(request: &Request) -> Decision {
        CONFIGURED.with(|slot| {
            let slot = slot.borrow();
            match slot.as_ref().and_then(|policy| policy.downcast_ref::<P>()) {
                Some(policy) => policy.evaluate(request),
                None => {
                    let mut findings = Findings::new();
                    findings.deny_request("the policy was evaluated before it was configured");
                    findings.into_decision()
                }
            }
        })
    }
}
