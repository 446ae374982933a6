//! Generated bindings for the whole WIT world, kept private: the public API re-exports
//! the request types and wraps the rest.

// The request and image types are re-exported with the documentation the WIT gives them;
// fields the WIT leaves without a comment are described in wit/policy.wit's records.
#![allow(missing_docs)]

wasmtime::component::bindgen!({
    path: "../../wit",
    world: "tag-policy",
    additional_derives: [PartialEq, Eq],
});

pub use self::exports::tagpolicy::policy::policy::PolicyMetadata;
pub use self::tagpolicy::policy::types::TagEntry;
