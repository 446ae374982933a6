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

#![deny(missing_docs)]

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

// Each type of the contract, re-exported with an example here; rustdoc shows the type's own
// docs (wit/policy.wit) after it.
/// Who asks: [`Request::actor`].
///
/// ```no_run
/// # let request = tagpolicy_guest::Request {
/// #     operation: tagpolicy_guest::Operation::DeleteTags(vec![]),
/// #     time: tagpolicy_guest::Instant { seconds: 0, nanoseconds: 0 },
/// # };
/// let actor = request.actor();
/// let anonymous = actor.id.is_none();
/// let admin = actor.groups.iter().any(|group| group == "release-admins");
/// ```
pub use bindings::tagpolicy::policy::types::Actor;
/// A blob or manifest that a [`Manifest`] refers to (its config, layers, the manifests of an
/// index, its subject).
///
/// ```no_run
/// use tagpolicy_guest::image;
/// # let digest = "sha256:7777";
///
/// if let Some(manifest) = image::manifest_of(digest) {
///     let size: u64 = manifest.layers.iter().map(|layer| layer.size).sum();
/// }
/// ```
pub use bindings::tagpolicy::policy::types::Descriptor;
/// A point in time: `request.time`, a tag's history, and times in settings (read with
/// [`Instant::parse`]). Ordered in time; displayed as RFC 3339 to the second.
///
/// ```
/// use tagpolicy_guest::Instant;
///
/// let freeze_ends = Instant::parse("2027-01-04T00:00:00Z").unwrap();
/// let time = Instant { seconds: 1_798_131_600, nanoseconds: 0 }; // `request.time`
/// assert!(time < freeze_ends);
/// assert_eq!(time.to_string(), "2026-12-24T17:00:00Z");
/// ```
pub use bindings::tagpolicy::policy::types::Instant;
/// An annotation or a label: [`image::labels_of`], [`Manifest::annotation`].
///
/// ```no_run
/// use tagpolicy_guest::image;
/// # let digest = "sha256:7777";
///
/// let keys: Vec<String> = image::labels_of(digest).into_iter().map(|label| label.key).collect();
/// ```
pub use bindings::tagpolicy::policy::types::KeyValue;
/// The facts of an image: [`image::manifest_of`].
///
/// ```no_run
/// use tagpolicy_guest::image;
/// # let digest = "sha256:7777";
///
/// let manifest = image::manifest_of(digest).expect("the pushed manifest is known");
/// let is_index = manifest.media_type == "application/vnd.oci.image.index.v1+json";
/// let revision = manifest.annotation("org.opencontainers.image.revision");
/// ```
pub use bindings::tagpolicy::policy::types::Manifest;
/// The deletion of a manifest and of its tags: [`Operation::DeleteManifest`].
///
/// ```
/// use tagpolicy_guest::{ChangeKind, Instant, ManifestDeletion, Operation, Request};
///
/// let request = Request {
///     operation: Operation::DeleteManifest(ManifestDeletion {
///         digest: "sha256:3333".into(),
///         tags: vec!["latest".into(), "v1.3.0".into()],
///     }),
///     time: Instant { seconds: 1_798_131_600, nanoseconds: 0 },
/// };
/// assert!(request.changes().iter().all(|change| change.kind == ChangeKind::Delete));
/// ```
pub use bindings::tagpolicy::policy::types::ManifestDeletion;
/// What a request does: [`Request::changes`] views every kind alike.
///
/// ```no_run
/// use tagpolicy_guest::Operation;
/// # let request = tagpolicy_guest::Request {
/// #     operation: tagpolicy_guest::Operation::DeleteTags(vec![]),
/// #     time: tagpolicy_guest::Instant { seconds: 0, nanoseconds: 0 },
/// # };
///
/// let what = match &request.operation {
///     Operation::Push(push) => format!("push of {}", push.digest),
///     Operation::DeleteTags(tags) => format!("deletion of {} tags", tags.len()),
///     Operation::DeleteManifest(deletion) => format!("deletion of {}", deletion.digest),
/// };
/// ```
pub use bindings::tagpolicy::policy::types::Operation;
/// The platform of a manifest of an index: [`Descriptor::platform`].
///
/// ```no_run
/// use tagpolicy_guest::image;
/// # let digest = "sha256:7777";
///
/// let manifest = image::manifest_of(digest).expect("the pushed manifest is known");
/// let has_arm = manifest.manifests.iter().any(|m| {
///     m.platform.as_ref().is_some_and(|p| p.os == "linux" && p.architecture == "arm64")
/// });
/// ```
pub use bindings::tagpolicy::policy::types::Platform;
/// What a policy says about itself, shown by `tagpolicy inspect`: [`export_policy!`] builds
/// it from the [`Policy`]'s constants.
///
/// ```
/// use tagpolicy_guest::PolicyMetadata;
///
/// let metadata = PolicyMetadata {
///     name: "min-tags".into(),
///     version: "0.1.0".into(),
///     description: "Keep at least `min_tags` tags".into(),
///     settings_example: r#"{"min_tags": 3}"#.into(),
/// };
/// ```
pub use bindings::tagpolicy::policy::types::PolicyMetadata;
/// A push: [`Operation::Push`], or [`Request::push`].
///
/// ```no_run
/// use tagpolicy_guest::image;
/// # let request = tagpolicy_guest::Request {
/// #     operation: tagpolicy_guest::Operation::DeleteTags(vec![]),
/// #     time: tagpolicy_guest::Instant { seconds: 0, nanoseconds: 0 },
/// # };
///
/// if let Some(push) = request.push() {
///     let signed = image::has_referrer(&push.digest, "application/vnd.dev.cosign.artifact.sig.v1+json");
///     let retagged: Vec<&str> =
///         push.tags.iter().filter(|t| t.current.is_some()).map(|t| t.tag.as_str()).collect();
/// }
/// ```
pub use bindings::tagpolicy::policy::types::Push;
/// An artifact that refers to an image, such as a signature or an SBOM:
/// [`image::referrers_of`].
///
/// ```no_run
/// use tagpolicy_guest::image;
/// # let digest = "sha256:7777";
///
/// let sboms = image::referrers_of(digest, Some("application/spdx+json"));
/// let first = sboms.first().map(|sbom| sbom.digest.clone());
/// ```
pub use bindings::tagpolicy::policy::types::Referrer;
/// The request [`Policy::evaluate`] decides. A test builds one to try a rule out (a rule that
/// asks the host, through [`Pattern`] or [`repository`], runs only in a component).
///
/// ```
/// use tagpolicy_guest::{Instant, Operation, Push, Request, TagChange};
///
/// let request = Request {
///     operation: Operation::Push(Push {
///         digest: "sha256:7777".into(),
///         tags: vec![
///             TagChange { tag: "1.3.1".into(), current: None },
///             TagChange { tag: "latest".into(), current: Some("sha256:3333".into()) },
///         ],
///     }),
///     time: Instant::parse("2026-12-24T17:00:00Z").unwrap(),
/// };
/// let verbs: Vec<&str> = request.changes().iter().map(|change| change.verb()).collect();
/// assert_eq!(verbs, ["create", "move"]);
/// ```
pub use bindings::tagpolicy::policy::types::Request;
/// When and by whom a tag was set: [`TagHistory`].
///
/// ```no_run
/// use tagpolicy_guest::repository;
///
/// if let Some(history) = repository::history_of("latest") {
///     let by_the_bot = history.changed.actor.as_deref() == Some("release-bot");
///     let when = history.changed.at.to_string();
/// }
/// ```
pub use bindings::tagpolicy::policy::types::Stamp;
/// A tag of a push or of a tag deletion, with its digest before the request.
///
/// ```
/// use tagpolicy_guest::{Instant, Operation, Request, TagChange};
///
/// let request = Request {
///     operation: Operation::DeleteTags(vec![TagChange {
///         tag: "pr-17".into(),
///         current: Some("sha256:4444".into()),
///     }]),
///     time: Instant { seconds: 1_798_131_600, nanoseconds: 0 },
/// };
/// assert_eq!(request.changes()[0].from, Some("sha256:4444"));
/// ```
pub use bindings::tagpolicy::policy::types::TagChange;
/// A tag and its digest: what the [`repository`] queries answer.
///
/// ```no_run
/// use tagpolicy_guest::repository;
///
/// if let Some(entry) = repository::newest(r"v?\d+\.\d+\.\d+") {
///     let (tag, digest) = (entry.tag, entry.digest);
/// }
/// ```
pub use bindings::tagpolicy::policy::types::TagEntry;
/// What the hosts recorded of a tag: [`repository::history_of`].
///
/// ```no_run
/// use tagpolicy_guest::repository;
///
/// if let Some(history) = repository::history_of("latest") {
///     let never_moved = history.created.as_ref() == Some(&history.changed);
/// }
/// ```
pub use bindings::tagpolicy::policy::types::TagHistory;
/// The order of a tag query: [`TagQuery`], [`repository::tags_matching`].
///
/// ```no_run
/// use tagpolicy_guest::{repository, TagOrder};
///
/// // `v1.3.0`, `1.2.10`, `1.2.9`: by the numbers, highest first.
/// let newest_first: Vec<String> =
///     repository::tags_matching(r"v?\d+(\.\d+)*", TagOrder::NewestFirst).map(|e| e.tag).collect();
/// // `1.2.10`, `1.2.9`, `v1.3.0`: byte by byte.
/// let by_name: Vec<String> =
///     repository::tags_matching(r"v?\d+(\.\d+)*", TagOrder::Name).map(|e| e.tag).collect();
/// ```
pub use bindings::tagpolicy::policy::types::TagOrder;
/// A page of a tag query: [`repository::find_tags`].
///
/// ```no_run
/// use tagpolicy_guest::{repository, TagOrder, TagQuery};
///
/// let query =
///     TagQuery { pattern: r"pr-\d+".into(), order: TagOrder::Name, limit: 1, after: Some("pr-17".into()) };
/// let next = repository::find_tags(&query); // the first `pr-N` tag after `pr-17`
/// ```
pub use bindings::tagpolicy::policy::types::TagQuery;
pub use change::{Change, ChangeKind};
pub use findings::{Decision, Finding, Findings};
pub use pattern::{Pattern, Patterns};

/// The facts of the repository's images: manifests, config labels, referrers. Each call can
/// cost the host a registry request; call only what the rule needs. The host answers them:
/// the examples are compiled, not run.
///
/// ```no_run
/// use tagpolicy_guest::image;
/// # let pushed = "sha256:7777";
///
/// let source = image::label(pushed, "org.opencontainers.image.source");
/// let signed = image::has_referrer(pushed, "application/vnd.dev.cosign.artifact.sig.v1+json");
/// ```
pub mod image {
    /// The labels of an image's config, as [`KeyValue`](crate::KeyValue)s; [`label`] reads
    /// one. From the contract:
    ///
    /// ```no_run
    /// use tagpolicy_guest::image;
    /// # let digest = "sha256:7777";
    ///
    /// let maintainer = image::labels_of(digest).into_iter().find(|kv| kv.key == "maintainer");
    /// ```
    pub use crate::bindings::tagpolicy::policy::image::labels_of;
    /// The manifest of an image, if the host knows it: a [`Manifest`](crate::Manifest). From
    /// the contract:
    ///
    /// ```no_run
    /// use tagpolicy_guest::image;
    /// # let digest = "sha256:7777";
    ///
    /// let layers = image::manifest_of(digest).map_or(0, |manifest| manifest.layers.len());
    /// ```
    pub use crate::bindings::tagpolicy::policy::image::manifest_of;
    /// The artifacts that refer to an image, such as signatures and SBOMs, as
    /// [`Referrer`](crate::Referrer)s; [`has_referrer`] asks whether there is one. From the
    /// contract:
    ///
    /// ```no_run
    /// use tagpolicy_guest::image;
    /// # let digest = "sha256:7777";
    ///
    /// let signatures = image::referrers_of(digest, Some("application/vnd.dev.cosign.artifact.sig.v1+json"));
    /// let everything = image::referrers_of(digest, None);
    /// ```
    pub use crate::bindings::tagpolicy::policy::image::referrers_of;

    /// The value of label `key` of the image `digest`'s config.
    ///
    /// ```no_run
    /// use tagpolicy_guest::image;
    /// # let pushed = "sha256:7777";
    ///
    /// if image::label(pushed, "org.opencontainers.image.licenses").is_none() {
    ///     // deny: every image says its license
    /// }
    /// ```
    pub fn label(digest: &str, key: &str) -> Option<String> {
        labels_of(digest).into_iter().find(|kv| kv.key == key).map(|kv| kv.value)
    }

    /// Whether at least one artifact of `artifact_type` refers to `digest`.
    ///
    /// ```no_run
    /// use tagpolicy_guest::image;
    /// # let pushed = "sha256:7777";
    ///
    /// let signed = image::has_referrer(pushed, "application/vnd.dev.cosign.artifact.sig.v1+json");
    /// ```
    pub fn has_referrer(digest: &str, artifact_type: &str) -> bool {
        !referrers_of(digest, Some(artifact_type)).is_empty()
    }
}

impl Request {
    /// The repository the request is for, e.g. `team/app`. A host call: ask once.
    ///
    /// ```no_run
    /// # let request = tagpolicy_guest::Request {
    /// #     operation: tagpolicy_guest::Operation::DeleteTags(vec![]),
    /// #     time: tagpolicy_guest::Instant { seconds: 0, nanoseconds: 0 },
    /// # };
    /// let in_team = request.repository().starts_with("team/");
    /// ```
    pub fn repository(&self) -> String {
        bindings::tagpolicy::policy::context::repository_name()
    }

    /// Who asks, as the host established it. A host call: ask once.
    ///
    /// ```no_run
    /// # let request = tagpolicy_guest::Request {
    /// #     operation: tagpolicy_guest::Operation::DeleteTags(vec![]),
    /// #     time: tagpolicy_guest::Instant { seconds: 0, nanoseconds: 0 },
    /// # };
    /// let actor = request.actor();
    /// let release_bot = actor.id.as_deref() == Some("release-bot");
    /// ```
    pub fn actor(&self) -> Actor {
        bindings::tagpolicy::policy::context::requested_by()
    }
}

impl Manifest {
    /// The value of annotation `key`.
    ///
    /// ```
    /// use tagpolicy_guest::{KeyValue, Manifest};
    ///
    /// let manifest = Manifest {
    ///     media_type: "application/vnd.oci.image.manifest.v1+json".into(),
    ///     artifact_type: None,
    ///     config: None,
    ///     layers: vec![],
    ///     manifests: vec![],
    ///     subject: None,
    ///     annotations: vec![KeyValue { key: "org.opencontainers.image.revision".into(), value: "4f2a9c1".into() }],
    /// };
    /// assert_eq!(manifest.annotation("org.opencontainers.image.revision"), Some("4f2a9c1"));
    /// ```
    pub fn annotation(&self, key: &str) -> Option<&str> {
        self.annotations.iter().find(|kv| kv.key == key).map(|kv| kv.value.as_str())
    }
}

/// A tag rule. Implement it for the type that holds your configured rule, then call
/// [`export_policy!`] with that type.
///
/// A test can configure and evaluate a rule out of a component, as long as the rule asks
/// the host nothing (no [`Pattern`], no [`repository`] query):
///
/// ```
/// use tagpolicy_guest::{Decision, Findings, Instant, Operation, Policy, Push, Request, TagChange};
///
/// #[derive(serde::Deserialize)]
/// #[serde(deny_unknown_fields)]
/// struct Settings {
///     fixed: Vec<String>,
/// }
///
/// struct FixedTags(Settings);
///
/// impl Policy for FixedTags {
///     type Settings = Settings;
///     const NAME: &'static str = "fixed-tags";
///     const DESCRIPTION: &'static str = "Listed tags never move";
///     const SETTINGS_EXAMPLE: &'static str = r#"{"fixed": ["stable"]}"#;
///
///     fn configure(settings: Settings) -> Result<Self, String> {
///         Ok(Self(settings))
///     }
///
///     fn evaluate(&self, request: &Request) -> Decision {
///         let mut findings = Findings::new();
///         for change in request.changes() {
///             let moved = change.from.is_some() && !change.is_identical();
///             if moved && self.0.fixed.iter().any(|tag| tag == change.tag) {
///                 findings.deny(change.tag, format!("`{}` never moves", change.tag));
///             }
///         }
///         findings.into_decision()
///     }
/// }
///
/// let settings = serde_json::from_str(FixedTags::SETTINGS_EXAMPLE).unwrap();
/// let rule = FixedTags::configure(settings).unwrap();
/// let request = Request {
///     operation: Operation::Push(Push {
///         digest: "sha256:7777".into(),
///         tags: vec![TagChange { tag: "stable".into(), current: Some("sha256:3333".into()) }],
///     }),
///     time: Instant { seconds: 1_798_131_600, nanoseconds: 0 },
/// };
/// assert!(matches!(rule.evaluate(&request), Decision::Deny(_)));
/// ```
pub trait Policy: Sized + 'static {
    /// The settings, deserialized from the JSON the operator wrote (YAML in scenario and
    /// gate files is converted to JSON by the host). Use `#[serde(deny_unknown_fields)]`
    /// so that typos are reported instead of ignored.
    ///
    /// ```
    /// # use tagpolicy_guest::{Decision, Policy, Request};
    /// # struct Rule;
    /// #[derive(serde::Deserialize)]
    /// #[serde(deny_unknown_fields)]
    /// struct Settings {
    ///     #[serde(default)]
    ///     fixed: Vec<String>,
    /// }
    ///
    /// impl Policy for Rule {
    ///     type Settings = Settings;
    ///     // …
    /// #   const NAME: &'static str = "fixed-tags";
    /// #   const DESCRIPTION: &'static str = "Listed tags never move";
    /// #   const SETTINGS_EXAMPLE: &'static str = "{}";
    /// #   fn configure(_: Self::Settings) -> Result<Self, String> { Ok(Rule) }
    /// #   fn evaluate(&self, _: &Request) -> Decision { Decision::Allow }
    /// }
    /// ```
    type Settings: serde::de::DeserializeOwned;
    /// Short, stable name (`lowercase-with-dashes`).
    ///
    /// ```
    /// # use tagpolicy_guest::{Decision, Policy, Request};
    /// # struct Rule;
    /// impl Policy for Rule {
    ///     const NAME: &'static str = "fixed-tags";
    ///     // …
    /// #   type Settings = serde::de::IgnoredAny;
    /// #   const DESCRIPTION: &'static str = "Listed tags never move";
    /// #   const SETTINGS_EXAMPLE: &'static str = "{}";
    /// #   fn configure(_: Self::Settings) -> Result<Self, String> { Ok(Rule) }
    /// #   fn evaluate(&self, _: &Request) -> Decision { Decision::Allow }
    /// }
    /// ```
    const NAME: &'static str;
    /// The policy's version; `None` (the default) is the crate's version from `Cargo.toml`.
    ///
    /// ```
    /// # use tagpolicy_guest::{Decision, Policy, Request};
    /// # struct Rule;
    /// impl Policy for Rule {
    ///     const VERSION: Option<&'static str> = Some("1.2.0");
    ///     // …
    /// #   type Settings = serde::de::IgnoredAny;
    /// #   const NAME: &'static str = "fixed-tags";
    /// #   const DESCRIPTION: &'static str = "Listed tags never move";
    /// #   const SETTINGS_EXAMPLE: &'static str = "{}";
    /// #   fn configure(_: Self::Settings) -> Result<Self, String> { Ok(Rule) }
    /// #   fn evaluate(&self, _: &Request) -> Decision { Decision::Allow }
    /// }
    /// ```
    const VERSION: Option<&'static str> = None;
    /// One line saying what the policy enforces.
    ///
    /// ```
    /// # use tagpolicy_guest::{Decision, Policy, Request};
    /// # struct Rule;
    /// impl Policy for Rule {
    ///     const DESCRIPTION: &'static str = "Listed tags never move";
    ///     // …
    /// #   type Settings = serde::de::IgnoredAny;
    /// #   const NAME: &'static str = "fixed-tags";
    /// #   const SETTINGS_EXAMPLE: &'static str = "{}";
    /// #   fn configure(_: Self::Settings) -> Result<Self, String> { Ok(Rule) }
    /// #   fn evaluate(&self, _: &Request) -> Decision { Decision::Allow }
    /// }
    /// ```
    const DESCRIPTION: &'static str;
    /// Example settings as JSON text, shown by `tagpolicy inspect`.
    ///
    /// ```
    /// # use tagpolicy_guest::{Decision, Policy, Request};
    /// # struct Rule;
    /// impl Policy for Rule {
    ///     const SETTINGS_EXAMPLE: &'static str = r#"{"fixed": ["stable", "v\\d+"]}"#;
    ///     // …
    /// #   type Settings = serde::de::IgnoredAny;
    /// #   const NAME: &'static str = "fixed-tags";
    /// #   const DESCRIPTION: &'static str = "Listed tags never move";
    /// #   fn configure(_: Self::Settings) -> Result<Self, String> { Ok(Rule) }
    /// #   fn evaluate(&self, _: &Request) -> Decision { Decision::Allow }
    /// }
    /// ```
    const SETTINGS_EXAMPLE: &'static str;

    /// Check the settings and build the configured rule. Runs once per loaded policy.
    /// The error is shown to the operator: say which field and value are wrong.
    ///
    /// ```
    /// # use tagpolicy_guest::{Decision, Policy, Request};
    /// # #[derive(serde::Deserialize)] struct Settings { fixed: Vec<String> }
    /// # struct Rule(Settings);
    /// impl Policy for Rule {
    ///     fn configure(settings: Self::Settings) -> Result<Self, String> {
    ///         if settings.fixed.is_empty() {
    ///             return Err("settings.fixed: empty; name at least one tag".into());
    ///         }
    ///         Ok(Self(settings))
    ///     }
    ///     // …
    /// #   const NAME: &'static str = "fixed-tags";
    /// #   const DESCRIPTION: &'static str = "Listed tags never move";
    /// #   const SETTINGS_EXAMPLE: &'static str = "{}";
    /// #   type Settings = Settings;
    /// #   fn evaluate(&self, _: &Request) -> Decision { Decision::Allow }
    /// }
    /// ```
    fn configure(settings: Self::Settings) -> Result<Self, String>;

    /// Decide one request: the findings of [`Findings`], or [`Decision::Allow`].
    ///
    /// ```
    /// use tagpolicy_guest::{ChangeKind, Decision, Findings, Policy, Request};
    /// # struct Rule;
    /// impl Policy for Rule {
    ///     fn evaluate(&self, request: &Request) -> Decision {
    ///         let mut findings = Findings::new();
    ///         for change in request.changes() {
    ///             if change.tag == "latest" && change.kind == ChangeKind::Delete {
    ///                 findings.deny(change.tag, "`latest` is never deleted");
    ///             }
    ///         }
    ///         findings.into_decision()
    ///     }
    ///     // …
    /// #   type Settings = serde::de::IgnoredAny;
    /// #   const NAME: &'static str = "fixed-tags";
    /// #   const DESCRIPTION: &'static str = "Listed tags never move";
    /// #   const SETTINGS_EXAMPLE: &'static str = "{}";
    /// #   fn configure(_: Self::Settings) -> Result<Self, String> { Ok(Rule) }
    /// }
    /// ```
    fn evaluate(&self, request: &Request) -> Decision;
}

/// Export a [`Policy`] implementation as the component's `policy` interface. Once per
/// policy crate (a `cdylib`), at its top level.
///
/// ```no_run
/// use tagpolicy_guest::{export_policy, Decision, Policy, Request};
///
/// struct AnythingGoes;
///
/// impl Policy for AnythingGoes {
///     type Settings = serde::de::IgnoredAny;
///     const NAME: &'static str = "anything-goes";
///     const DESCRIPTION: &'static str = "Allows every request";
///     const SETTINGS_EXAMPLE: &'static str = "{}";
///
///     fn configure(_: Self::Settings) -> Result<Self, String> {
///         Ok(AnythingGoes)
///     }
///
///     fn evaluate(&self, _: &Request) -> Decision {
///         Decision::Allow
///     }
/// }
///
/// export_policy!(AnythingGoes);
/// ```
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
