//! Generated bindings for the whole WIT world, kept private: the public API re-exports
//! the request types and wraps the rest.

wasmtime::component::bindgen!({
    path: "../../wit",
    world: "tag-policy",
    additional_derives: [PartialEq, Eq],
});

pub use self::exports::tagpolicy::policy::policy::PolicyMetadata;
pub use self::tagpolicy::policy::types::TagEntry;
