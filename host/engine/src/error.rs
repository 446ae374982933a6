//! Typed errors of the host library. Messages are lowercase, one line, with user input in
//! backticks; the CLI prints them as they are.

use std::error::Error as StdError;
use std::path::PathBuf;
use std::time::Duration;

/// An underlying error kept as the source of an [`Error`]: wasmtime's, or a
/// [`PolicySource`](crate::PolicySource)'s.
type Cause = Box<dyn StdError + Send + Sync>;

/// Why a policy could not be loaded or configured.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error("cannot read policy file `{}`: {source}", path.display())]
    Read { path: PathBuf, source: std::io::Error },

    #[error("{origin} is not a WebAssembly binary (it does not start with `\\0asm`)")]
    NotWasm { origin: String },

    #[error(
        "{origin} is a core WebAssembly module, not a component: build the policy for \
         `wasm32-wasip2` (`tagpolicy build`), or wrap the module with `wasm-tools component new`"
    )]
    CoreModule { origin: String },

    #[error("{origin} is not a valid WebAssembly component: {}", chain(&**source))]
    InvalidComponent { origin: String, source: Cause },

    #[error("{origin} imports what the host does not grant: {}", imports.join(", "))]
    ForbiddenImports { origin: String, imports: Vec<String> },

    #[error("{origin} does not implement the `{world}` world: {}", chain(&**source), world = crate::WORLD)]
    WrongWorld { origin: String, source: Cause },

    #[error(
        "{origin} targets the contract `tagpolicy:policy@{found}`, but this host runs `@{}`: \
         rebuild the policy with the current SDK (`tagpolicy build`)",
        crate::CONTRACT_VERSION
    )]
    ContractVersion { origin: String, found: String },

    #[error("{origin} has invalid metadata: {message}")]
    Metadata { origin: String, message: String },

    #[error("{origin} failed while loading: {failure}")]
    Load { origin: String, failure: Failure },

    #[error("policy `{policy}` rejected its settings: {message}")]
    Settings { policy: String, message: String },

    #[error("no embedded policy is named `{name}`; embedded policies: {}", crate::embedded::names().join(", "))]
    UnknownPolicy { name: String },

    #[error("{origin} does not match its pin: expected sha256 `{expected}`, got `{actual}`")]
    PinMismatch { origin: String, expected: String, actual: String },

    #[error("cannot fetch policy `{reference}`: {source}")]
    Fetch { reference: String, source: Cause },

    #[error(
        "policy `{reference}` is fetched from a registry, but nothing here fetches policies \
         (give the loader a policy source, e.g. from the `tagpolicy-oci` crate)"
    )]
    NoSource { reference: String },

    #[error("cannot create the WebAssembly engine: {source}")]
    Engine { source: Cause },

    #[error(transparent)]
    Limits(#[from] crate::limits::LimitError),
}

/// How a call into a policy went wrong. A failed call never yields a decision of the
/// policy's own: the policy set turns it into a denial (fail closed).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Failure {
    #[error("exceeded its {} ms deadline", .0.as_millis())]
    Deadline(Duration),
    /// The host spent more than [`Limits::lookups_deadline`](crate::Limits) answering the
    /// policy's queries and lookups in one call.
    #[error("kept the host busy with queries and lookups for over {} ms", .0.as_millis())]
    Lookups(Duration),
    #[error("exceeded its {} MiB memory limit", .0 >> 20)]
    Memory(usize),
    #[error("ran out of its {0} units of fuel")]
    Fuel(u64),
    #[error("overflowed its stack")]
    StackOverflow,
    #[error("panicked: {0}")]
    Panic(String),
    #[error("trapped: {0}")]
    Trap(String),
}

/// `error` and its causes on one line, outermost first. wasmtime's errors carry a chain of
/// contexts: the innermost says what is wrong, the outer ones where.
pub(crate) fn chain(error: &(dyn StdError + 'static)) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(inner) = cause {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        cause = inner.source();
    }
    text
}
