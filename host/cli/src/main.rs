//! The `tagpolicy` command line: evaluate and test push scenarios, create, build, inspect and
//! benchmark policy components, run the registry gate, and audit a registry. One module per subcommand; this
//! one parses the command line and maps results to exit codes: 0 allowed / passed,
//! 1 denied / failed, 2 invalid input.

mod audit;
mod bench;
mod build;
mod common;
mod eval;
mod inspect;
mod new;
mod pull;
mod push;
mod registry;
mod serve;
mod sign;
mod test;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// Tag-mutation rules for OCI registries, as sandboxed WebAssembly components.
///
/// A policy decides every push, tag move and deletion: release tags that never move,
/// `latest` that may, tags only CI may touch, a minimum set of tags on a new image.
/// The five reference policies are built in (`tagpolicy inspect NAME` describes one):
/// `immutable-tags`, `min-tags`, `semver-series`, `image-requirements`, `change-freeze`.
#[derive(Parser)]
#[command(name = "tagpolicy", version, propagate_version = true)]
#[command(after_help = "Examples:\n  \
    tagpolicy eval examples/release.yaml\n  \
    tagpolicy eval push.yaml --policy immutable-tags --settings settings.yaml --output json\n  \
    tagpolicy test tests/scenarios\n  \
    tagpolicy new release-bot-only && tagpolicy build release-bot-only\n  \
    tagpolicy inspect immutable-tags\n  \
    tagpolicy push floor.wasm registry.example.com/policies/floor:1.0.0 && tagpolicy sign --key ci.key registry.example.com/policies/floor:1.0.0\n  \
    tagpolicy serve --config gate.yaml\n  \
    tagpolicy audit --config gate.yaml --compare gate-next.yaml")]
struct Cli {
    #[command(subcommand)]
    command: Command,
    #[command(flatten)]
    global: Global,
}

/// Options every subcommand takes.
#[derive(Debug, Clone, clap::Args)]
pub struct Global {
    /// Compile policies every time instead of keeping compiled components in the cache
    /// directory ($TAGPOLICY_CACHE_DIR, else $XDG_CACHE_HOME/tagpolicy, else ~/.cache/tagpolicy).
    #[arg(long, global = true)]
    pub no_cache: bool,
}

#[derive(Subcommand)]
enum Command {
    Eval(eval::Args),
    Audit(audit::Args),
    Test(test::Args),
    New(new::Args),
    Build(build::Args),
    Inspect(inspect::Args),
    Bench(bench::Args),
    Push(push::Args),
    Pull(pull::Args),
    Sign(sign::Args),
    Serve(serve::Args),
}

/// How a subcommand ended, as the process exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Everything allowed / every expectation met.
    Success = 0,
    /// Something was denied / an expectation failed.
    Denied = 1,
    /// The input (file, YAML, settings, policy) is invalid.
    Invalid = 2,
}

fn run() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Eval(args) => eval::run(args, &cli.global),
        Command::Audit(args) => audit::run(args, &cli.global),
        Command::Test(args) => test::run(args, &cli.global),
        Command::New(args) => new::run(args),
        Command::Build(args) => build::run(args, &cli.global),
        Command::Inspect(args) => inspect::run(args, &cli.global),
        Command::Bench(args) => bench::run(args),
        Command::Push(args) => push::run(args, &cli.global),
        Command::Pull(args) => pull::run(args),
        Command::Sign(args) => sign::run(args),
        Command::Serve(args) => serve::run(args, &cli.global),
    };
    match result {
        Ok(exit) => ExitCode::from(exit as u8),
        Err(error) => {
            eprintln!("error: {}", common::error_text(&error));
            ExitCode::from(Exit::Invalid as u8)
        }
    }
}

fn main() -> ExitCode {
    // Like other command-line tools, end quietly when the reader of our output goes away
    // (`tagpolicy eval ... | head`) instead of panicking on a failed write.
    #[cfg(unix)]
    // SAFETY: restoring the default disposition of SIGPIPE before any thread exists.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    run()
}
