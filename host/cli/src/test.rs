//! `tagpolicy test`: run scenario files and check every push against its `expect`.

use super::Exit;
use super::common::{self, Output, SpecOverrides};
use super::eval::{describe, reasons};
use anyhow::bail;
use serde::Serialize;
use std::path::{Path, PathBuf};
use tagpolicy::{Loader, Outcome};
use tagpolicy_scenario::Scenario;

/// Run scenario files and compare each push's decision with its `expect`.
///
/// A directory stands for every `*.yaml` / `*.yml` file below it. Each failure is printed
/// with what was expected, what happened and the reasons; the last line is
/// `N passed, N failed`. Pushes without `expect` run (they shape the state) but are not
/// counted. A push where a policy failed (trapped, ran out of time or memory, threw)
/// matches only `expect: error`, never `deny`. Exit status: 0 all passed, 1 something failed, 2 a file is invalid.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Scenario files or directories.
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    #[command(flatten)]
    overrides: SpecOverrides,
    /// Policies named `oci://…` in scenarios are fetched with these.
    #[command(flatten)]
    registry: super::registry::RegistryArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    output: Output,
}

#[derive(Default, Serialize)]
struct Summary {
    passed: usize,
    failed: usize,
    invalid: usize,
    failures: Vec<Failure>,
    errors: Vec<String>,
}

#[derive(Serialize)]
struct Failure {
    file: String,
    push: usize,
    name: String,
    change: String,
    expected: Outcome,
    actual: Outcome,
    problem: String,
    reasons: String,
}

pub fn run(args: Args, global: &super::Global) -> anyhow::Result<Exit> {
    let files = scenario_files(&args.paths)?;
    super::registry::init_logging();
    let loader = args.registry.source_for(common::loader(global)?)?;
    let text = args.output == Output::Text;
    let mut summary = Summary::default();
    let progress = common::Progress::new("test");
    for file in &files {
        match run_file(&loader, file, &args.overrides, &progress, &mut summary) {
            Ok((passed, failed)) if text => {
                let mark = if failed == 0 { "ok  " } else { "FAIL" };
                println!("{mark} {} ({passed} passed, {failed} failed)", file.display());
            }
            Ok(_) => {}
            Err(error) => {
                summary.invalid += 1;
                if text {
                    println!("ERR  {}", file.display());
                }
                summary.errors.push(common::error_text(&error));
            }
        }
    }

    if let Err(error) = args.overrides.check_replacements_used() {
        summary.invalid += 1;
        summary.errors.push(common::error_text(&error));
    }
    match args.output {
        Output::Json => println!("{}", serde_json::to_string_pretty(&summary)?),
        Output::Text => {
            for failure in &summary.failures {
                println!(
                    "\nFAILED {} push {} `{}`: {}",
                    failure.file, failure.push, failure.name, failure.change
                );
                println!("  {}", failure.problem);
                if !failure.reasons.is_empty() {
                    println!("  reasons:\n    {}", failure.reasons.replace('\n', "\n    "));
                }
            }
            for error in &summary.errors {
                eprintln!("error: {error}");
            }
            println!("\n{} passed, {} failed", summary.passed, summary.failed);
        }
    }
    Ok(if summary.invalid > 0 {
        Exit::Invalid
    } else if summary.failed > 0 {
        Exit::Denied
    } else {
        Exit::Success
    })
}

/// Run one file; returns its (passed, failed) counts.
fn run_file(
    loader: &Loader,
    file: &Path,
    overrides: &SpecOverrides,
    progress: &common::Progress,
    summary: &mut Summary,
) -> anyhow::Result<(usize, usize)> {
    let scenario = Scenario::from_file(file)?;
    let policies =
        common::policy_set_with_progress(loader, &scenario, None, overrides, Some(progress))?;
    let results = scenario.run(&policies);
    let (mut passed, mut failed) = (0, 0);
    for (index, (step, result)) in scenario.steps.iter().zip(&results).enumerate() {
        let Some(expected) = step.expect else { continue };
        match step.mismatch(&result.decision) {
            None => passed += 1,
            Some(problem) => {
                failed += 1;
                summary.failures.push(Failure {
                    file: file.display().to_string(),
                    push: index + 1,
                    name: step.name.clone(),
                    change: describe(&scenario, &step.action, &result.request),
                    expected,
                    actual: tagpolicy_scenario::observed(&result.decision),
                    problem,
                    reasons: reasons(&result.decision),
                });
            }
        }
    }
    summary.passed += passed;
    summary.failed += failed;
    Ok((passed, failed))
}

/// Files as given, directories expanded to their YAML files (sorted, recursively).
fn scenario_files(paths: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for path in paths {
        if path.is_dir() {
            let mut found: Vec<PathBuf> = walkdir::WalkDir::new(path)
                .into_iter()
                .collect::<Result<Vec<_>, _>>()?
                .into_iter()
                .map(|entry| entry.into_path())
                .filter(|p| {
                    p.is_file()
                        && matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml"))
                })
                .collect();
            found.sort();
            if found.is_empty() {
                bail!("no scenario files (`*.yaml`) in `{}`", path.display());
            }
            files.extend(found);
        } else if path.is_file() {
            files.push(path.clone());
        } else {
            bail!("no such scenario file or directory: `{}`", path.display());
        }
    }
    Ok(files)
}
