//! `tagpolicy audit`: would what a registry holds today pass the rules of a gate
//! configuration? Read-only. For every image (manifest) with tags in every repository a rule
//! governs, the push of all its tags onto the repository without them, at the time of the
//! audit, is decided by the policies of that rule, with image facts read as the gate reads
//! them ([`DecisionView`]), with the gate's read account (`upstream_read`), else anonymously.
//!
//! A repository is read once (its tag list, then each tag's digest: the distribution API has
//! no call for both) into a [`Snapshot`], which can be decided under several configurations
//! (`--compare`). Repositories are read and decided a few at a time ([`Audit::concurrency`]);
//! one that cannot be read is reported with its error and the audit goes on.

mod report;
mod without;

pub use report::{
    AuditReport, Change, Comparison, ImageReport, PolicyCounts, RepositoryReport, SCHEMA, Summary,
};

use crate::config::{ConfigError, GateConfig, Rules};
use crate::metrics::Metrics;
use crate::state::{self, DecisionView, Tags};
use crate::upstream::{Reader, Upstream, UpstreamError};
use futures_util::StreamExt;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant as Clock;
use tagpolicy::{Actor, Instant, Loader, Operation, Push, Request};
use tagpolicy::{TagChange, TagMap};
use without::Without;

/// Most repository names read from the catalog: past it the registry is refused as too big
/// to list, and the operator names repositories with `--repository`.
pub const MAX_REPOSITORIES: usize = 1_000_000;

/// Why an audit cannot start or go on.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuditError {
    /// The registry's catalog could not be read.
    #[error("cannot list the repositories of `{registry}` (GET /v2/_catalog): {source}")]
    Catalog {
        registry: String,
        #[source]
        source: UpstreamError,
    },
    /// The catalog holds more than [`MAX_REPOSITORIES`] names.
    #[error(
        "the catalog of `{registry}` lists more than {MAX_REPOSITORIES} repositories; audit some of them with `--repository`"
    )]
    TooManyRepositories { registry: String },
}

/// The rules of one configuration, loaded.
pub struct Ruleset {
    path: String,
    rules: Rules,
}

impl Ruleset {
    /// Load the rules of `config` and every policy they name (compiles policies: call it from
    /// a blocking context).
    pub fn load(config: &GateConfig, loader: Loader) -> Result<Ruleset, ConfigError> {
        let loader = loader.with_source(crate::policy_fetcher(config)?);
        Ok(Ruleset { path: config.path.display().to_string(), rules: config.load(&loader)? })
    }

    /// Whether a rule governs `repository`.
    pub fn governs(&self, repository: &str) -> bool {
        self.rules.rule_for(repository).is_some()
    }
}

/// One repository as read: its tags, and its images with the tags each carries.
pub struct Snapshot {
    repository: String,
    tags: Arc<TagMap>,
    /// By digest; each image's tags by name.
    images: Vec<(String, Vec<String>)>,
}

impl Snapshot {
    fn new(repository: &str, tags: TagMap) -> Snapshot {
        // The map iterates by tag, so each image's tags come out by name.
        let mut images: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (tag, digest) in tags.iter() {
            images.entry(digest.to_string()).or_default().push(tag.to_string());
        }
        let images = images.into_iter().collect();
        Snapshot { repository: repository.to_string(), tags: Arc::new(tags), images }
    }
}

/// Progress of an audit, as it goes.
#[derive(Debug, Clone, Copy, Default)]
pub struct Progress {
    pub repositories: u64,
    pub repositories_done: u64,
    pub tags: u64,
    pub images: u64,
    pub refused_images: u64,
}

/// An audit of one registry: what it reads with, and how.
pub struct Audit {
    upstream: Arc<Upstream>,
    metrics: Arc<Metrics>,
    reader: Reader,
    registry: String,
    max_config_bytes: usize,
    /// Repositories read and decided at once (each reads up to 16 digests at once).
    pub concurrency: usize,
    /// Who pushes, as the policies see it.
    pub actor: Actor,
    /// When the pushes are decided.
    pub time: Instant,
}

impl Audit {
    /// An audit of the registry `config` names, reading with its `upstream_read` account (or
    /// anonymously), its TLS settings and its limits.
    pub fn new(config: &GateConfig) -> Result<Audit, ConfigError> {
        let metrics = Arc::new(Metrics::new());
        let upstream = Arc::new(crate::upstream(config, metrics.clone())?);
        let reader = if upstream.has_account() { Reader::Gate } else { Reader::Client(None) };
        Ok(Audit {
            upstream,
            metrics,
            reader,
            registry: config.upstream.to_string().trim_end_matches('/').to_string(),
            max_config_bytes: config.limits.max_config_bytes,
            concurrency: 4,
            actor: Actor { id: None, groups: Vec::new() },
            time: Instant::now(),
        })
    }

    /// The registry audited.
    pub fn registry(&self) -> &str {
        &self.registry
    }

    /// Who the audit reads as.
    pub fn reads_as(&self) -> String {
        match self.reader {
            Reader::Gate => self.upstream.account_description(),
            Reader::Client(_) => "anonymously".to_string(),
        }
    }

    /// Requests sent to the registry so far.
    pub fn upstream_requests(&self) -> u64 {
        self.metrics.upstream_requests()
    }

    /// Every repository of the registry's catalog, in its order.
    pub async fn repositories(&self) -> Result<Vec<String>, AuditError> {
        let failed = |source| AuditError::Catalog { registry: self.registry.clone(), source };
        let mut pages = self.upstream.repository_pages(&self.reader);
        let mut names = Vec::new();
        while let Some(batch) = pages.next_batch().await.map_err(failed)? {
            names.extend(batch);
            if names.len() > MAX_REPOSITORIES {
                return Err(AuditError::TooManyRepositories { registry: self.registry.clone() });
            }
        }
        Ok(names)
    }

    /// Read `repository`: its tags and their digests.
    pub async fn snapshot(&self, repository: &str) -> Result<Snapshot, UpstreamError> {
        let tags = state::fetch(&self.upstream, repository, &self.reader).await?;
        Ok(Snapshot::new(repository, tags))
    }

    /// Decide every image of `snapshot` under `rules`.
    pub async fn decide(&self, snapshot: &Arc<Snapshot>, rules: &Arc<Ruleset>) -> RepositoryReport {
        let name = snapshot.repository.clone();
        let Some(rule) = rules.rules.rule_for(&name) else {
            return RepositoryReport {
                name,
                rule: Vec::new(),
                tags: snapshot.tags.len() as u64,
                images: snapshot.images.len() as u64,
                error: None,
                findings: Vec::new(),
            };
        };
        let (globs, policies) = (rule.repositories.clone(), rule.policies.clone());
        let (tags, images) = (snapshot.tags.len() as u64, snapshot.images.len() as u64);
        let snapshot = snapshot.clone();
        let (upstream, reader) = (self.upstream.clone(), self.reader.clone());
        let (actor, time, max_config_bytes) =
            (self.actor.clone(), self.time, self.max_config_bytes);
        // Policies run, and block on the lookups they ask for, off the async threads.
        let decided = tokio::task::spawn_blocking(move || {
            let mut findings = Vec::new();
            for (digest, tags) in &snapshot.images {
                let request = Request {
                    repository: snapshot.repository.clone(),
                    actor: actor.clone(),
                    operation: Operation::Push(Push {
                        digest: digest.clone(),
                        tags: tags
                            .iter()
                            .map(|tag| TagChange { tag: tag.clone(), current: None })
                            .collect(),
                    }),
                    time,
                };
                let without = Without::new(snapshot.tags.clone(), tags.clone());
                let view = Arc::new(DecisionView::new(
                    upstream.clone(),
                    &snapshot.repository,
                    reader.clone(),
                    Tags::Snapshot(Arc::new(without)),
                    None,
                    max_config_bytes,
                ));
                // As the gate: a fact that could not be read refuses the push.
                let decision = view.settle(policies.evaluate(&request, view.clone()));
                if decision.outcome != tagpolicy::Outcome::Allow {
                    findings.push(ImageReport {
                        digest: digest.clone(),
                        tags: tags.clone(),
                        outcome: decision.outcome,
                        findings: decision.findings,
                    });
                }
            }
            findings
        })
        .await;
        match decided {
            Ok(findings) => {
                RepositoryReport { name, rule: globs, tags, images, error: None, findings }
            }
            Err(error) => {
                RepositoryReport::unread(&name, globs, format!("the decisions failed: {error}"))
            }
        }
    }

    /// Audit `repositories` under `current` (and `compared`, on the same snapshots), a few at
    /// a time, telling `progress` after each. Reports come back by repository name.
    pub async fn run(
        &self,
        repositories: Vec<String>,
        current: Arc<Ruleset>,
        compared: Option<Arc<Ruleset>>,
        progress: &(dyn Fn(&Progress) + Sync),
    ) -> (AuditReport, Option<AuditReport>) {
        let started = Clock::now();
        let total = repositories.len() as u64;
        let counters = [(); 4].map(|_| AtomicU64::new(0));
        let [done, tags, images, refused] = &counters;
        let tell = || {
            progress(&Progress {
                repositories: total,
                repositories_done: done.load(Ordering::Relaxed),
                tags: tags.load(Ordering::Relaxed),
                images: images.load(Ordering::Relaxed),
                refused_images: refused.load(Ordering::Relaxed),
            })
        };
        tell();
        let audited: Vec<(RepositoryReport, Option<RepositoryReport>)> =
            futures_util::stream::iter(repositories)
                .map(|name| {
                    let (current, compared) = (current.clone(), compared.clone());
                    async move {
                        let rule = |rules: &Ruleset| {
                            rules
                                .rules
                                .rule_for(&name)
                                .map(|r| r.repositories.clone())
                                .unwrap_or_default()
                        };
                        let reports = match self.snapshot(&name).await {
                            Ok(snapshot) => {
                                let snapshot = Arc::new(snapshot);
                                tags.fetch_add(snapshot.tags.len() as u64, Ordering::Relaxed);
                                images.fetch_add(snapshot.images.len() as u64, Ordering::Relaxed);
                                let mine = self.decide(&snapshot, &current).await;
                                let theirs = match &compared {
                                    Some(compared) => Some(self.decide(&snapshot, compared).await),
                                    None => None,
                                };
                                (mine, theirs)
                            }
                            Err(error) => {
                                let why = format!("cannot read `{name}` ({error})");
                                let theirs = compared
                                    .as_ref()
                                    .map(|c| RepositoryReport::unread(&name, rule(c), why.clone()));
                                (RepositoryReport::unread(&name, rule(&current), why), theirs)
                            }
                        };
                        let refusing =
                            reports.0.findings.iter().filter(|i| i.outcome.refuses()).count();
                        refused.fetch_add(refusing as u64, Ordering::Relaxed);
                        done.fetch_add(1, Ordering::Relaxed);
                        tell();
                        reports
                    }
                })
                .buffer_unordered(self.concurrency.max(1))
                .collect()
                .await;
        let (mine, theirs): (Vec<_>, Vec<Option<_>>) = audited.into_iter().unzip();
        let theirs: Option<Vec<RepositoryReport>> = theirs.into_iter().collect();
        let report = |rules: &Ruleset, mut repositories: Vec<RepositoryReport>| {
            repositories.sort_by(|a, b| a.name.cmp(&b.name));
            let mut report = AuditReport {
                schema: SCHEMA,
                registry: self.registry.clone(),
                config: rules.path.clone(),
                time: self.time.to_rfc3339(),
                actor: self.actor.id.clone(),
                groups: self.actor.groups.clone(),
                summary: Summary {
                    upstream_requests: self.upstream_requests(),
                    seconds: started.elapsed().as_secs_f64(),
                    ..Summary::default()
                },
                repositories,
            };
            report.summarize();
            report
        };
        let compared_report = match (&compared, theirs) {
            (Some(rules), Some(theirs)) => Some(report(rules, theirs)),
            _ => None,
        };
        (report(&current, mine), compared_report)
    }
}
