//! `tagpolicy eval`: decide a scenario's pushes in order and show each decision.

use super::Exit;
use super::common::{self, Output, PolicyOverride, SpecOverrides};
use comfy_table::{
    ColumnConstraint, ContentArrangement, Table, Width, presets::UTF8_FULL_CONDENSED,
};
use serde::Serialize;
use std::path::PathBuf;
use tagpolicy::{Decision, Finding, Outcome};
use tagpolicy_scenario::{Action, Scenario, StepResult};

/// Evaluate a scenario's pushes in order and print each decision with its reasons.
///
/// An allowed push changes the repository state for the pushes after it, as the registry
/// would. A push refused because a policy failed (trapped, ran out of time or memory,
/// threw) shows the decision `error`, not `deny`. Exit status: 0 when everything is allowed
/// (warnings included), 1 when something is denied or refused by a failure, 2 when the
/// input is invalid.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Scenario file (YAML): repository, policies, starting state and pushes.
    scenario: PathBuf,
    #[command(flatten)]
    policy: PolicyOverride,
    #[command(flatten)]
    overrides: SpecOverrides,
    /// Policies named `oci://…` in scenarios are fetched with these.
    #[command(flatten)]
    registry: super::registry::RegistryArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    output: Output,
}

pub fn run(args: Args, global: &super::Global) -> anyhow::Result<Exit> {
    let scenario = Scenario::from_file(&args.scenario)?;
    let spec = args.policy.spec()?;
    super::registry::init_logging();
    let loader = args.registry.source_for(common::loader(global)?)?;
    let policies = common::policy_set(&loader, &scenario, spec.as_ref(), &args.overrides)?;
    args.overrides.check_replacements_used()?;
    let results = scenario.run(&policies);

    match args.output {
        Output::Text => print_table(&scenario, &results),
        Output::Json => {
            println!("{}", serde_json::to_string_pretty(&Report::new(&scenario, &results))?)
        }
    }
    let denied = results.iter().any(|r| !r.decision.is_allowed());
    Ok(if denied { Exit::Denied } else { Exit::Success })
}

fn print_table(scenario: &Scenario, results: &[StepResult]) {
    let mut table = Table::new();
    table
        .load_preset(UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_header(["#", "push", "change", "actor", "decision", "reasons"]);
    if table.width().is_none() {
        // Not a terminal (a CI log, a pipe): wrap at a width that reads well there too.
        table.set_width(160);
    }
    // Names and changes stay readable; reasons get the rest of the width.
    for column in [1, 2] {
        if let Some(column) = table.column_mut(column) {
            column.set_constraint(ColumnConstraint::UpperBoundary(Width::Fixed(34)));
        }
    }
    for (index, (step, result)) in scenario.steps.iter().zip(results).enumerate() {
        table.add_row([
            (index + 1).to_string(),
            step.name.clone(),
            describe(scenario, &step.action, &result.request),
            step.actor.id.clone().unwrap_or_else(|| "-".into()),
            result.decision.outcome.as_str().to_uppercase(),
            reasons(&result.decision),
        ]);
    }
    println!("{} ({})", scenario.repository, scenario.path.display());
    println!("{table}");
    let mut totals = format!(
        "{} allowed, {} warned, {} denied",
        count(results, Outcome::Allow),
        count(results, Outcome::Warn),
        count(results, Outcome::Deny)
    );
    // Only said when it happened: a policy that fails is a bug to fix, not a result.
    let failed = count(results, Outcome::Error);
    if failed > 0 {
        totals.push_str(&format!(", {failed} refused because a policy failed"));
    }
    println!("{totals}");
}

fn count(results: &[StepResult], outcome: Outcome) -> usize {
    results.iter().filter(|r| r.decision.outcome == outcome).count()
}

/// "app-1211 → 1.2.11, 1.2, latest", "delete 1.2.10", "delete app-1210 (1.2.10, latest)".
pub fn describe(scenario: &Scenario, action: &Action, request: &tagpolicy::Request) -> String {
    let tags = request.tags().join(", ");
    match action {
        Action::Push { digest, .. } => format!("{} → {tags}", scenario.image_name(digest)),
        Action::DeleteTags(_) => format!("delete {tags}"),
        Action::DeleteImage(digest) => {
            format!(
                "delete {} ({})",
                scenario.image_name(digest),
                if tags.is_empty() { "no tags" } else { &tags }
            )
        }
    }
}

/// One line per finding: "[immutable-tags] tag `1.2.10` is immutable ...", as a scenario's
/// `reason` matches it; then what each policy printed, "[immutable-tags] printed: ...", at
/// most [`PRINTED_SHOWN`] bytes of it (JSON output has it all, up to the engine's cap).
pub fn reasons(decision: &Decision) -> String {
    let findings = decision.findings.iter().map(tagpolicy_scenario::printed);
    let printed = decision.output.iter().map(|p| {
        let all = p.text.trim_end();
        let cut = (0..=PRINTED_SHOWN.min(all.len())).rev().find(|&i| all.is_char_boundary(i));
        let cut = cut.unwrap_or(0);
        let mut text = format!("[{}] printed:\n{}", p.policy, &all[..cut]);
        if cut < all.len() {
            text.push_str("\n… (the rest in --output json)");
        }
        if p.dropped_bytes > 0 {
            text.push_str(&format!(
                "\n… ({} more bytes dropped: the cap is reached)",
                p.dropped_bytes
            ));
        }
        text
    });
    findings.chain(printed).collect::<Vec<_>>().join("\n")
}

/// Most bytes of a policy's printed output shown in the table, per push.
const PRINTED_SHOWN: usize = 1024;

#[derive(Serialize)]
struct Report<'a> {
    scenario: String,
    repository: &'a str,
    allowed: usize,
    warned: usize,
    denied: usize,
    /// Refused because a policy failed (outcome `error`).
    failed: usize,
    results: Vec<StepReport<'a>>,
}

#[derive(Serialize)]
struct StepReport<'a> {
    index: usize,
    name: &'a str,
    operation: &'static str,
    digest: Option<&'a str>,
    image: Option<String>,
    tags: Vec<&'a str>,
    actor: Option<&'a str>,
    groups: &'a [String],
    outcome: Outcome,
    findings: &'a [Finding],
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    output: &'a [tagpolicy::Printed],
}

impl<'a> Report<'a> {
    fn new(scenario: &'a Scenario, results: &'a [StepResult]) -> Self {
        Report {
            scenario: scenario.path.display().to_string(),
            repository: &scenario.repository,
            allowed: count(results, Outcome::Allow),
            warned: count(results, Outcome::Warn),
            denied: count(results, Outcome::Deny),
            failed: count(results, Outcome::Error),
            results: scenario
                .steps
                .iter()
                .zip(results)
                .enumerate()
                .map(|(index, (step, result))| {
                    let digest = match &step.action {
                        Action::Push { digest, .. } | Action::DeleteImage(digest) => {
                            Some(digest.as_str())
                        }
                        Action::DeleteTags(_) => None,
                    };
                    StepReport {
                        index: index + 1,
                        name: &step.name,
                        operation: result.request.operation.name(),
                        digest,
                        image: digest.map(|d| scenario.image_name(d)),
                        tags: result.request.tags(),
                        actor: step.actor.id.as_deref(),
                        groups: &step.actor.groups,
                        outcome: result.decision.outcome,
                        findings: &result.decision.findings,
                        output: &result.decision.output,
                    }
                })
                .collect(),
        }
    }
}
