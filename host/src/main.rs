//! The `tagpolicy` command line: evaluate and test push scenarios, create, build and
//! inspect policy components.

mod cli;

fn main() -> std::process::ExitCode {
    cli::main()
}
