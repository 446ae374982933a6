//! Typed errors of the engine: [`Error`] (loading, configuring, building an engine) and
//! [`Failure`] (a call into a policy). Messages are lowercase, one line, with user input in
//! backticks; an error that wraps another keeps it as its source and quotes it, so printing
//! the message alone loses nothing.

use std::error::Error as StdError;
use std::path::PathBuf;
use std::time::Duration;

/// An underlying error kept as the source of an [`Error`]: wasmtime's, or a
/// [`PolicySource`](crate::PolicySource)'s.
type Cause = Box<dyn StdError + Send + Sync>;

/// Why a policy could not be loaded or configured, or an engine not built. Each message is
/// one line that names the component by its origin (``embedded policy `min-tags` ``, a
/// quoted path or reference); variants that wrap another error keep it as their
/// [`source`](std::error::Error::source), and their message already quotes it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A policy file could not be read.
    #[error("cannot read policy file `{}`: {source}", path.display())]
    Read {
        /// The file, as given or resolved against the naming file's folder.
        path: PathBuf,
        /// What the file system said.
        source: std::io::Error,
    },

    /// The bytes are not WebAssembly at all.
    #[error("{origin} is not a WebAssembly binary (it does not start with `\\0asm`)")]
    NotWasm {
        /// The component's name in messages.
        origin: String,
    },

    /// The bytes are a core module, which the host does not run: policies are components.
    #[error(
        "{origin} is a core WebAssembly module, not a component: build the policy for \
         `wasm32-wasip2` (`tagpolicy build`), or wrap the module with `wasm-tools component new`"
    )]
    CoreModule {
        /// The component's name in messages.
        origin: String,
    },

    /// wasmtime refused to compile the component.
    #[error("{origin} is not a valid WebAssembly component: {}", chain(&**source))]
    InvalidComponent {
        /// The component's name in messages.
        origin: String,
        /// wasmtime's error, with its chain of contexts.
        source: Cause,
    },

    /// The component imports interfaces the sandbox does not link (filesystem, sockets…).
    #[error("{origin} imports what the host does not grant: {}", imports.join(", "))]
    ForbiddenImports {
        /// The component's name in messages.
        origin: String,
        /// The imports that are not granted.
        imports: Vec<String>,
    },

    /// The component does not export the policy interface with the expected types.
    #[error("{origin} does not implement the `{world}` world: {}", chain(&**source), world = crate::WORLD)]
    WrongWorld {
        /// The component's name in messages.
        origin: String,
        /// wasmtime's error on linking or typing the exports, with its contexts.
        source: Cause,
    },

    /// The component was built against another version of the contract.
    #[error(
        "{origin} targets the contract `tagpolicy:policy@{found}`, but this host runs `@{}` \
         (and loads the earlier `0.3` versions): rebuild the policy with this host's SDK \
         (`tagpolicy build`)",
        crate::CONTRACT_VERSION
    )]
    ContractVersion {
        /// The component's name in messages.
        origin: String,
        /// The version the component names in its imports or exports.
        found: String,
    },

    /// What the policy's `metadata` returned is unusable (bad name, empty version…).
    #[error("{origin} has invalid metadata: {message}")]
    Metadata {
        /// The component's name in messages.
        origin: String,
        /// What is wrong, naming the field.
        message: String,
    },

    /// The policy trapped or hit a limit while it was instantiated, described or
    /// configured.
    #[error("{origin} failed while loading: {failure}")]
    Load {
        /// The component's name in messages.
        origin: String,
        /// How the call failed.
        failure: Failure,
    },

    /// The policy's `configure` refused the settings.
    #[error("policy `{policy}` rejected its settings: {message}")]
    Settings {
        /// The policy's name (from its metadata).
        policy: String,
        /// The policy's own reason, cut to [`MAX_REASON_BYTES`](crate::MAX_REASON_BYTES).
        message: String,
    },

    /// A name that is neither an embedded policy nor an existing `.wasm` file.
    #[error("no embedded policy is named `{name}`; embedded policies: {}", crate::embedded::names().join(", "))]
    UnknownPolicy {
        /// The name as given.
        name: String,
    },

    /// The component's sha256 is not the one its entry pins.
    #[error("{origin} does not match its pin: expected sha256 `{expected}`, got `{actual}`")]
    PinMismatch {
        /// The component's name in messages.
        origin: String,
        /// The pinned hex sha256, as given.
        expected: String,
        /// The hex sha256 of the bytes read.
        actual: String,
    },

    /// The loader's [`PolicySource`](crate::PolicySource) could not fetch a reference.
    #[error("cannot fetch policy `{reference}`: {source}")]
    Fetch {
        /// The reference, as given.
        reference: String,
        /// The source's error.
        source: Cause,
    },

    /// A reference with a scheme, but the loader has no source to fetch it.
    #[error(
        "policy `{reference}` is fetched from a registry, but nothing here fetches policies \
         (give the loader a policy source, e.g. from the `tagpolicy-oci` crate)"
    )]
    NoSource {
        /// The reference, as given.
        reference: String,
    },

    /// wasmtime could not set up the engine (e.g. the pooling allocator could not reserve
    /// its address space).
    #[error("cannot create the WebAssembly engine: {source}")]
    Engine {
        /// wasmtime's error.
        source: Cause,
    },

    /// A limit is out of range, or fuel does not match the engine.
    #[error(transparent)]
    Limits(#[from] crate::limits::LimitError),
}

/// How a call into a policy went wrong. A failed call never yields a decision of the
/// policy's own: the policy set turns it into a [`Finding`](crate::Finding) that keeps it,
/// which refuses the request with [`Outcome::Error`](crate::Outcome::Error) (fail closed)
/// or warns (fail open).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Failure {
    /// The call ran past its deadline (epoch interruption); the deadline it had.
    #[error("exceeded its {} ms deadline", .0.as_millis())]
    Deadline(Duration),
    /// The host spent more than [`Limits::lookups_deadline`](crate::Limits) answering the
    /// policy's queries and lookups in one call.
    #[error("kept the host busy with queries and lookups for over {} ms", .0.as_millis())]
    Lookups(Duration),
    /// The policy tried to grow its memory past its limit, in bytes.
    #[error("exceeded its {} MiB memory limit", .0 >> 20)]
    Memory(usize),
    /// The call used up its fuel; the fuel it had.
    #[error("ran out of its {0} units of fuel")]
    Fuel(u64),
    /// The policy recursed past the host's wasm stack limit.
    #[error("overflowed its stack")]
    StackOverflow,
    /// A Rust policy panicked: its panic message and location, from what it printed.
    #[error("panicked: {0}")]
    Panic(String),
    /// The policy said it could not decide (`verdict.fail`): a Python or JavaScript
    /// exception its SDK caught, with the error and the policy's line.
    #[error("failed: {0}")]
    Exception(String),
    /// Any other trap or failed call, as wasmtime describes it.
    #[error("trapped: {0}")]
    Trap(String),
}

impl Failure {
    /// A word for what went wrong, as JSON output and logs give it: `deadline`, `lookups`,
    /// `memory`, `fuel`, `stack_overflow`, `panic`, `exception` or `trap` (which includes a
    /// result the host could not use).
    pub fn kind(&self) -> &'static str {
        match self {
            Failure::Deadline(_) => "deadline",
            Failure::Lookups(_) => "lookups",
            Failure::Memory(_) => "memory",
            Failure::Fuel(_) => "fuel",
            Failure::StackOverflow => "stack_overflow",
            Failure::Panic(_) => "panic",
            Failure::Exception(_) => "exception",
            Failure::Trap(_) => "trap",
        }
    }
}

/// `{"kind": "deadline", "message": "exceeded its 50 ms deadline"}`: the [kind](Failure::kind)
/// to match on and the message to show.
impl serde::Serialize for Failure {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut failure = serializer.serialize_struct("Failure", 2)?;
        failure.serialize_field("kind", self.kind())?;
        failure.serialize_field("message", &self.to_string())?;
        failure.end()
    }
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
