//! What an audit reports, for people and machines: per repository the images whose push the
//! rules would not simply allow, with every finding; a summary; and, between two
//! configurations, the images whose decision differs. The JSON form is documented in
//! docs/audit.md (`schema` is bumped on any change that is not an addition).

use serde::Serialize;
use std::collections::BTreeMap;
use tagpolicy::{Finding, Outcome, Severity};

/// The version of the JSON documents below.
pub const SCHEMA: u32 = 1;

/// One audit: a registry's repositories under one configuration.
#[derive(Debug, Clone, Serialize)]
pub struct AuditReport {
    pub schema: u32,
    /// The registry audited (the configuration's `upstream`).
    pub registry: String,
    /// The configuration file the rules came from.
    pub config: String,
    /// When each push is decided, RFC 3339.
    pub time: String,
    /// Who pushes, as the policies see it (`null`: anonymous).
    pub actor: Option<String>,
    pub groups: Vec<String>,
    pub summary: Summary,
    /// Every repository audited, by name.
    pub repositories: Vec<RepositoryReport>,
}

/// The totals of an audit.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Summary {
    /// Repositories audited (read and decided).
    pub repositories: u64,
    /// Repositories that could not be read: see their `error`.
    pub unread_repositories: u64,
    /// Images (manifests with at least one tag) decided.
    pub images: u64,
    /// Tags read.
    pub tags: u64,
    /// Images whose push would be denied by a rule.
    pub denied_images: u64,
    /// Images whose push would be refused because a policy failed (or a fact could not be read).
    pub failed_images: u64,
    /// Images whose push would pass with warnings.
    pub warned_images: u64,
    /// Findings by policy.
    pub policies: BTreeMap<String, PolicyCounts>,
    /// Requests the audit sent to the registry.
    pub upstream_requests: u64,
    pub seconds: f64,
}

/// How many findings of each kind one policy made.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct PolicyCounts {
    pub denials: u64,
    pub warnings: u64,
    /// Failures of the policy (or of a lookup for it), which refuse the push.
    pub errors: u64,
}

/// One repository.
#[derive(Debug, Clone, Serialize)]
pub struct RepositoryReport {
    pub name: String,
    /// The globs of the rule that governs it.
    pub rule: Vec<String>,
    pub tags: u64,
    pub images: u64,
    /// Why it could not be read; then nothing else of it is known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The images whose push is not simply allowed, by digest.
    pub findings: Vec<ImageReport>,
}

impl RepositoryReport {
    /// A repository that could not be read.
    pub fn unread(name: &str, rule: Vec<String>, error: String) -> Self {
        RepositoryReport {
            name: name.to_string(),
            rule,
            tags: 0,
            images: 0,
            error: Some(error),
            findings: Vec::new(),
        }
    }
}

/// The decision on one image's push.
#[derive(Debug, Clone, Serialize)]
pub struct ImageReport {
    pub digest: String,
    /// Every tag it carries, by name.
    pub tags: Vec<String>,
    pub outcome: Outcome,
    pub findings: Vec<Finding>,
}

impl ImageReport {
    /// The tags the deciding findings name: all of the image's when one names none.
    pub fn affected_tags(&self) -> Vec<String> {
        let deciding = if self.outcome.refuses() { Severity::Deny } else { Severity::Warn };
        let deciding: Vec<&Finding> =
            self.findings.iter().filter(|finding| finding.severity == deciding).collect();
        if deciding.iter().any(|finding| finding.tag.is_none()) {
            return self.tags.clone();
        }
        self.tags
            .iter()
            .filter(|tag| {
                deciding.iter().any(|finding| finding.tag.as_deref() == Some(tag.as_str()))
            })
            .cloned()
            .collect()
    }
}

impl AuditReport {
    /// Add up the repositories into the summary (the time and requests are the caller's).
    pub fn summarize(&mut self) {
        let mut summary = Summary {
            upstream_requests: self.summary.upstream_requests,
            seconds: self.summary.seconds,
            ..Summary::default()
        };
        for repository in &self.repositories {
            if repository.error.is_some() {
                summary.unread_repositories += 1;
                continue;
            }
            summary.repositories += 1;
            summary.images += repository.images;
            summary.tags += repository.tags;
            for image in &repository.findings {
                match image.outcome {
                    Outcome::Deny => summary.denied_images += 1,
                    Outcome::Error => summary.failed_images += 1,
                    Outcome::Warn => summary.warned_images += 1,
                    Outcome::Allow => {}
                }
                for finding in &image.findings {
                    let counts = summary.policies.entry(finding.policy.clone()).or_default();
                    match (finding.failure.is_some(), finding.severity) {
                        (true, _) => counts.errors += 1,
                        (false, Severity::Deny) => counts.denials += 1,
                        (false, Severity::Warn) => counts.warnings += 1,
                    }
                }
            }
        }
        self.summary = summary;
    }

    /// Whether a push of something the registry holds would be refused.
    pub fn refuses_any(&self) -> bool {
        self.summary.denied_images + self.summary.failed_images > 0
    }
}

/// The same snapshot decided under two configurations.
#[derive(Debug, Clone, Serialize)]
pub struct Comparison {
    pub schema: u32,
    pub registry: String,
    /// The configuration as it is.
    pub config: String,
    /// The configuration compared with it.
    pub compare: String,
    pub time: String,
    /// Images the compared configuration refuses and the current one lets through.
    pub newly_denied: Vec<Change>,
    /// Images the current configuration refuses and the compared one lets through.
    pub newly_allowed: Vec<Change>,
    pub repositories: u64,
    pub images: u64,
    pub upstream_requests: u64,
    pub seconds: f64,
}

/// One image whose decision differs.
#[derive(Debug, Clone, Serialize)]
pub struct Change {
    pub repository: String,
    pub digest: String,
    /// The tags the refusing configuration's findings name.
    pub tags: Vec<String>,
    /// The refusing configuration's reasons.
    pub reasons: Vec<String>,
}

impl Comparison {
    /// What differs between `current` and `compared`, audits of the same snapshot.
    pub fn between(current: &AuditReport, compared: &AuditReport) -> Comparison {
        let refused = |report: &AuditReport| -> BTreeMap<(String, String), ImageReport> {
            report
                .repositories
                .iter()
                .flat_map(|repository| {
                    repository.findings.iter().filter(|image| image.outcome.refuses()).map(
                        |image| ((repository.name.clone(), image.digest.clone()), image.clone()),
                    )
                })
                .collect()
        };
        let (before, after) = (refused(current), refused(compared));
        let change = |(repository, digest): &(String, String), image: &ImageReport| Change {
            repository: repository.clone(),
            digest: digest.clone(),
            tags: image.affected_tags(),
            reasons: image
                .findings
                .iter()
                .filter(|finding| finding.severity == Severity::Deny)
                .map(|finding| format!("[{}] {}", finding.policy, finding.reason))
                .collect(),
        };
        let only = |these: &BTreeMap<(String, String), ImageReport>,
                    those: &BTreeMap<(String, String), ImageReport>| {
            these
                .iter()
                .filter(|(key, _)| !those.contains_key(*key))
                .map(|(key, image)| change(key, image))
                .collect()
        };
        Comparison {
            schema: SCHEMA,
            registry: current.registry.clone(),
            config: current.config.clone(),
            compare: compared.config.clone(),
            time: current.time.clone(),
            newly_denied: only(&after, &before),
            newly_allowed: only(&before, &after),
            repositories: current.summary.repositories,
            images: current.summary.images,
            upstream_requests: current.summary.upstream_requests,
            seconds: current.summary.seconds,
        }
    }
}
