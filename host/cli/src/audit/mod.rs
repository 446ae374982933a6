//! `tagpolicy audit`: which images of a registry today's rules would refuse, and what a rule
//! change would change. The reading and deciding is `tagpolicy_gate::audit`; this module
//! parses the command line, shows progress and prints the report; [`page`] writes it as HTML.

mod page;

use crate::Exit;
use crate::common;
use anyhow::{Context, bail};
use comfy_table::{
    ColumnConstraint, ContentArrangement, Table, Width, presets::UTF8_FULL_CONDENSED,
};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant as Clock};
use tagpolicy_gate::GateConfig;
use tagpolicy_gate::audit::{Audit, AuditReport, Comparison, Progress, Ruleset};

/// Audit a registry against a gate configuration, read-only: for every image (manifest) with
/// tags in every repository a rule governs, decide whether the rules would let it arrive with
/// the tags it carries now (one push of all its tags onto the repository without them, at the
/// time of the audit), and report every denial and warning by repository, tag and policy.
///
/// Policies that read image facts (labels, signatures, SBOMs) read them as the gate does.
/// The registry is the configuration's `upstream`, read with its `upstream_read` account
/// (else anonymously) and its TLS settings. Exit status: 0 when nothing would be refused,
/// 1 when something would (with `--compare`: when the other configuration newly refuses
/// something), 2 on invalid input, an unreachable registry, or repositories that could not
/// be read (the report names them; audit them again with `--repository`).
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  \
    tagpolicy audit --config gate.yaml\n  \
    tagpolicy audit --config gate.yaml --repository 'team/**' --actor ci-bot --group release\n  \
    tagpolicy audit --config gate.yaml --output json > audit.json\n  \
    tagpolicy audit --config gate.yaml --output html audit.html\n  \
    tagpolicy audit --config gate.yaml --compare gate-next.yaml")]
pub struct Args {
    /// The gate configuration: its registry, read account and rules.
    #[arg(long, short, value_name = "FILE")]
    config: PathBuf,
    /// Decide the same repositories under this configuration too, and report the images
    /// whose decision differs (newly denied, newly allowed).
    #[arg(long, value_name = "FILE")]
    compare: Option<PathBuf>,
    /// Audit only the repositories matching GLOB (`team/**`, `library/*`); repeat for more.
    #[arg(long = "repository", value_name = "GLOB")]
    repositories: Vec<String>,
    /// Who pushes, as the policies see it (default: anonymous).
    #[arg(long, value_name = "ID")]
    actor: Option<String>,
    /// A group of the actor; repeat for more.
    #[arg(long = "group", value_name = "GROUP")]
    groups: Vec<String>,
    /// When the pushes are decided, RFC 3339 (default: now).
    #[arg(long, value_name = "TIME")]
    time: Option<String>,
    /// Repositories read and decided at once (each reads up to 16 tags' digests at once).
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=64))]
    concurrency: u16,
    /// `text` (a table), `json` (one document; into FILE if given), or `html FILE` (one
    /// self-contained page with charts and a sortable table).
    #[arg(long, num_args = 1..=2, value_names = ["FORMAT", "FILE"], default_value = "text")]
    output: Vec<String>,
}

/// Where the report goes.
enum Output {
    Text,
    Json(Option<PathBuf>),
    Html(PathBuf),
}

fn output(values: &[String]) -> anyhow::Result<Output> {
    match values {
        [format] if format == "text" => Ok(Output::Text),
        [format] if format == "json" => Ok(Output::Json(None)),
        [format, file] if format == "json" => Ok(Output::Json(Some(file.into()))),
        [format, file] if format == "html" => Ok(Output::Html(file.into())),
        [format] if format == "html" => {
            bail!("--output html needs a file: `--output html audit.html`")
        }
        [format, ..] if !["text", "json", "html"].contains(&format.as_str()) => {
            bail!("--output: `{format}` is not a format; use `text`, `json` or `html FILE`")
        }
        _ => bail!("--output: `{}`: only `json` and `html` take a file", values.join(" ")),
    }
}

pub fn run(args: Args, global: &super::Global) -> anyhow::Result<Exit> {
    let output = output(&args.output)?;
    let globs = repository_globs(&args.repositories)?;
    let time = match &args.time {
        Some(text) => {
            tagpolicy::Instant::parse_rfc3339(text).map_err(|e| anyhow::anyhow!("--time: {e}"))?
        }
        None => tagpolicy::Instant::now(),
    };
    let config = GateConfig::from_file(&args.config)?;
    let current = Arc::new(Ruleset::load(&config, common::loader(global)?)?);
    let compared = match &args.compare {
        Some(path) => {
            // Checked before any policy of it is loaded: one registry, two configurations.
            let other = GateConfig::from_file(path)?;
            if other.upstream != config.upstream {
                bail!(
                    "`{}` audits `{}` and `{}` audits `{}`: --compare decides one registry's images under two configurations",
                    args.config.display(),
                    config.upstream,
                    path.display(),
                    other.upstream
                );
            }
            Some(Arc::new(Ruleset::load(&other, common::loader(global)?)?))
        }
        None => None,
    };
    let mut audit = Audit::new(&config)?;
    audit.concurrency = usize::from(args.concurrency);
    audit.actor = tagpolicy::Actor { id: args.actor.clone(), groups: args.groups.clone() };
    audit.time = time;

    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let (report, compared_report) = runtime.block_on(async {
        let catalog = audit.repositories().await?;
        let governed: Vec<String> = catalog
            .into_iter()
            .filter(|name| {
                current.governs(name) || compared.as_ref().is_some_and(|c| c.governs(name))
            })
            .filter(|name| globs.as_ref().is_none_or(|globs| globs.is_match(name)))
            .collect();
        eprintln!(
            "audit: {} of `{}` governed by `{}`{}, read {}",
            counted(governed.len() as u64, "repository", "repositories"),
            audit.registry(),
            args.config.display(),
            args.compare.as_ref().map(|p| format!(" and `{}`", p.display())).unwrap_or_default(),
            audit.reads_as()
        );
        let progress = ProgressLine::new();
        let result =
            audit.run(governed, current.clone(), compared.clone(), &|p| progress.show(p)).await;
        progress.done();
        anyhow::Ok(result)
    })?;

    let exit = match &compared_report {
        Some(compared_report) => {
            let comparison = Comparison::between(&report, compared_report);
            match &output {
                Output::Text => print_comparison(&comparison),
                Output::Json(file) => {
                    write(file.as_deref(), &serde_json::to_string_pretty(&comparison)?)?
                }
                Output::Html(_) => bail!("--compare reports as text or json"),
            }
            if comparison.newly_denied.is_empty() { Exit::Success } else { Exit::Denied }
        }
        None => {
            match &output {
                Output::Text => print_report(&report),
                Output::Json(file) => {
                    write(file.as_deref(), &serde_json::to_string_pretty(&report)?)?
                }
                Output::Html(file) => {
                    write(Some(file), &page::render(&report)?)?;
                    eprintln!("audit: wrote `{}`", file.display());
                }
            }
            if report.refuses_any() { Exit::Denied } else { Exit::Success }
        }
    };
    let unread: Vec<&str> =
        report.repositories.iter().filter(|r| r.error.is_some()).map(|r| r.name.as_str()).collect();
    if !unread.is_empty() {
        for repository in report.repositories.iter().filter(|r| r.error.is_some()) {
            eprintln!("error: {}", repository.error.as_deref().unwrap_or_default());
        }
        bail!(
            "{} repositories could not be read, so the audit is incomplete; audit them again with {}",
            unread.len(),
            unread
                .iter()
                .map(|name| format!("--repository '{name}'"))
                .collect::<Vec<_>>()
                .join(" ")
        );
    }
    Ok(exit)
}

fn repository_globs(patterns: &[String]) -> anyhow::Result<Option<globset::GlobSet>> {
    if patterns.is_empty() {
        return Ok(None);
    }
    let mut set = globset::GlobSetBuilder::new();
    for pattern in patterns {
        let glob = globset::GlobBuilder::new(pattern)
            .literal_separator(true)
            .build()
            .with_context(|| format!("--repository: `{pattern}` is not a glob"))?;
        set.add(glob);
    }
    Ok(Some(set.build()?))
}

fn write(file: Option<&Path>, text: &str) -> anyhow::Result<()> {
    match file {
        Some(file) => {
            std::fs::write(file, text).with_context(|| format!("cannot write `{}`", file.display()))
        }
        None => {
            println!("{text}");
            Ok(())
        }
    }
}

/// Progress on stderr: a line rewritten in place on a terminal, else a line every 10 seconds.
struct ProgressLine {
    terminal: bool,
    started: Clock,
    last: std::sync::Mutex<Option<Clock>>,
}

impl ProgressLine {
    fn new() -> Self {
        ProgressLine {
            terminal: std::io::stderr().is_terminal(),
            started: Clock::now(),
            last: Default::default(),
        }
    }

    fn show(&self, progress: &Progress) {
        let line = format!(
            "audit: {}/{} repositories, {} tags, {} images, {} refused ({} s)",
            progress.repositories_done,
            progress.repositories,
            progress.tags,
            progress.images,
            progress.refused_images,
            self.started.elapsed().as_secs()
        );
        if self.terminal {
            let done = (progress.repositories_done * 20).checked_div(progress.repositories);
            let filled = done.unwrap_or(20) as usize;
            eprint!("\r\x1b[2K[{}{}] {line}", "#".repeat(filled), " ".repeat(20 - filled));
            return;
        }
        let mut last = self.last.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let finished = progress.repositories_done == progress.repositories;
        if finished || last.is_none_or(|at| at.elapsed() >= Duration::from_secs(10)) {
            *last = Some(Clock::now());
            eprintln!("{line}");
        }
    }

    fn done(&self) {
        if self.terminal {
            eprintln!();
        }
    }
}

fn table(header: [&str; 5]) -> Table {
    let mut table = Table::new();
    table
        .load_preset(UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_header(header);
    if table.width().is_none() {
        table.set_width(160);
    }
    for column in [0, 1, 2] {
        if let Some(column) = table.column_mut(column) {
            column.set_constraint(ColumnConstraint::UpperBoundary(Width::Fixed(32)));
        }
    }
    table
}

fn print_report(report: &AuditReport) {
    let mut rows = table(["repository", "tags", "image", "decision", "reasons"]);
    for repository in &report.repositories {
        for image in &repository.findings {
            let reasons: Vec<String> =
                image.findings.iter().map(|f| format!("[{}] {}", f.policy, f.reason)).collect();
            rows.add_row([
                repository.name.clone(),
                image.affected_tags().join(", "),
                short(&image.digest),
                image.outcome.as_str().to_uppercase(),
                reasons.join("\n"),
            ]);
        }
    }
    let summary = &report.summary;
    if rows.row_count() > 0 {
        println!("{rows}");
    }
    println!(
        "{}, {}, {}: {} denied, {} refused because a policy failed, {} warned",
        counted(summary.repositories, "repository", "repositories"),
        counted(summary.images, "image", "images"),
        counted(summary.tags, "tag", "tags"),
        counted(summary.denied_images, "image", "images"),
        summary.failed_images,
        summary.warned_images
    );
    for (policy, counts) in &summary.policies {
        println!(
            "  {policy}: {}, {}, {}",
            counted(counts.denials, "denial", "denials"),
            counted(counts.warnings, "warning", "warnings"),
            counted(counts.errors, "error", "errors")
        );
    }
    println!(
        "{:.1} s, {} requests to `{}`",
        summary.seconds, summary.upstream_requests, report.registry
    );
}

fn print_comparison(comparison: &Comparison) {
    for (title, changes) in
        [("newly denied", &comparison.newly_denied), ("newly allowed", &comparison.newly_allowed)]
    {
        if changes.is_empty() {
            continue;
        }
        let mut rows = table(["repository", "tags", "image", "change", "reasons"]);
        for change in changes {
            rows.add_row([
                change.repository.clone(),
                change.tags.join(", "),
                short(&change.digest),
                title.to_uppercase(),
                change.reasons.join("\n"),
            ]);
        }
        println!("{rows}");
    }
    println!(
        "`{}` compared with `{}`: {} images newly denied, {} newly allowed ({} repositories, {} images; {:.1} s, {} requests)",
        comparison.compare,
        comparison.config,
        comparison.newly_denied.len(),
        comparison.newly_allowed.len(),
        comparison.repositories,
        comparison.images,
        comparison.seconds,
        comparison.upstream_requests
    );
}

/// `1 image`, `2 images`.
fn counted(count: u64, one: &str, many: &str) -> String {
    format!("{count} {}", if count == 1 { one } else { many })
}

/// `sha256:0123456789ab`: enough of a digest to find it.
fn short(digest: &str) -> String {
    digest.chars().take(19).collect()
}
