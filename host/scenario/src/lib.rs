//! Scenario files: a repository's starting state, the policies to apply and a sequence of
//! pushes and deletions with the decisions expected of them. `tagpolicy eval` runs one;
//! `tagpolicy test` checks the expectations of many.
//!
//! ```yaml
//! repository: team/app
//! policies:
//!   - policy: immutable-tags          # embedded name, or a path to a .wasm (relative to this file)
//!     settings: {mutable: ["latest"]}
//!     mode: enforce                   # enforce (default) | audit
//! state: {"1.2.10": app-1210, latest: app-1210}
//! state_file: tags.txt                # more state: one `tag image` per line (a label or a digest)
//! history:                            # what the hosts recorded of tags of the state (optional)
//!   "1.2.10": {changed: 2026-12-24T16:50:00Z, by: ci-bot}   # created then too, unless `created`
//! time: 2026-12-24T17:00:00Z          # the time of every push (default: 1970-01-01T00:00:00Z)
//! images:                             # what policies can read of images (all optional)
//!   app-1211:
//!     annotations: {org.opencontainers.image.version: "1.2.11"}
//!     labels: {maintainer: team}
//!     referrers: [{artifact_type: application/spdx+json}]
//!   sig-2:                            # a cosign signature manifest: its layers, as listed
//!     layers: [{digest: payload, media_type: application/vnd.dev.cosign.simplesigning.v1+json}]
//!     subject: app-1211               # also `manifests: [...]` (an index), like `layers`
//! pushes:
//!   - name: a release tag never moves
//!     image: app-other                # a label (a digest is derived from it) or `digest: sha256:…`
//!     tags: ["1.2.10"]
//!     expect: deny                    # allow | deny | warn | error (a policy failed)
//!     reason: immutable               # a substring of a reason of the expected kind, as
//!                                     # printed: `[immutable-tags] tag `1.2.10` is …`
//!   - delete: ["latest"]              # or `delete_image: LABEL|DIGEST`
//! ```

use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tagpolicy::Digest;
use tagpolicy::TagQuery;
use tagpolicy::oci;
use tagpolicy::{
    Actor, Instant, ManifestDeletion, Operation, Push, RepositoryState, RepositoryView, Request,
    Stamp, TagChange, TagEntry, TagHistory, TagMap,
};
use tagpolicy::{Decision, Finding, Outcome, Severity};
use tagpolicy::{Descriptor, ImageFacts, Images, KeyValue, Manifest, Referrer, key_values};
use tagpolicy::{PolicySet, PolicySpec};

/// The media type assumed for pushes that do not name one.
pub const DEFAULT_MEDIA_TYPE: &str = tagpolicy::OCI_MANIFEST;

/// Why a scenario file cannot be used. The message names the file and the field.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ScenarioError {
    #[error("cannot read scenario `{}`: {source}", path.display())]
    Read { path: PathBuf, source: std::io::Error },
    #[error("`{}`: {message}", path.display())]
    Invalid { path: PathBuf, message: String },
    #[error("`{}`: policies[{index}] (`{policy}`): {source}", path.display())]
    Policy { path: PathBuf, index: usize, policy: String, source: Box<tagpolicy::Error> },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    repository: String,
    #[serde(default)]
    policies: Vec<PolicySpec>,
    #[serde(default)]
    state: BTreeMap<String, String>,
    /// More state, one `tag image` per line (relative to the scenario file).
    state_file: Option<PathBuf>,
    /// What the hosts recorded of tags of the state.
    #[serde(default)]
    history: BTreeMap<String, HistoryFile>,
    /// The time of every push that gives none (RFC 3339, UTC).
    time: Option<String>,
    #[serde(default)]
    images: BTreeMap<String, ImageFile>,
    pushes: Vec<StepFile>,
}

/// The recorded history of a tag of the state.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HistoryFile {
    /// When the tag got its digest (RFC 3339, UTC).
    changed: String,
    /// Who set it (absent: anonymous).
    by: Option<String>,
    /// When it was created: absent for "when it got its digest", `unknown` for "before the
    /// records began".
    created: Option<String>,
    /// Who created it (with `created`).
    created_by: Option<String>,
}

/// What a scenario says about one image (by label or digest).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ImageFile {
    media_type: Option<String>,
    artifact_type: Option<String>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    referrers: Vec<ReferrerFile>,
    /// The layers of an image manifest, in order (a signature manifest's signatures).
    #[serde(default)]
    layers: Vec<EntryFile>,
    /// The manifests an index lists (a referrers index's referrers).
    #[serde(default)]
    manifests: Vec<EntryFile>,
    /// The image this manifest refers to (a label or a digest).
    subject: Option<String>,
}

/// One descriptor a manifest lists: a layer, or a manifest of an index.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EntryFile {
    /// A label (a digest is derived from it) or a digest.
    digest: String,
    media_type: Option<String>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
}

/// An artifact attached to an image (its `subject`).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReferrerFile {
    artifact_type: String,
    /// A label for the referrer's own digest (default: derived from the image and position).
    name: Option<String>,
    media_type: Option<String>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StepFile {
    name: Option<String>,
    image: Option<String>,
    digest: Option<String>,
    media_type: Option<String>,
    tags: Option<Vec<String>>,
    delete: Option<Vec<String>>,
    delete_image: Option<String>,
    actor: Option<String>,
    #[serde(default)]
    groups: Vec<String>,
    /// When the push is made (RFC 3339, UTC); default: the scenario's `time`.
    time: Option<String>,
    expect: Option<Outcome>,
    reason: Option<String>,
}

/// A parsed and validated scenario.
#[derive(Debug, Clone)]
pub struct Scenario {
    pub path: PathBuf,
    pub repository: String,
    pub policies: Vec<PolicySpec>,
    pub state: Arc<TagMap>,
    /// What policies can read of the images.
    pub images: Arc<Images>,
    pub steps: Vec<Step>,
    /// Image labels by digest, to show `app-1211` rather than a hash.
    labels: BTreeMap<String, String>,
}

/// One push or deletion.
#[derive(Debug, Clone)]
pub struct Step {
    pub name: String,
    pub action: Action,
    pub actor: Actor,
    pub time: Instant,
    pub expect: Option<Outcome>,
    pub reason: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Push { digest: String, media_type: String, tags: Vec<String> },
    DeleteTags(Vec<String>),
    DeleteImage(String),
}

/// A step with the request built for it and the decision it got.
#[derive(Debug, Clone)]
pub struct StepResult {
    pub request: Request,
    pub decision: Decision,
}

impl Scenario {
    pub fn from_file(path: &Path) -> Result<Self, ScenarioError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| ScenarioError::Read { path: path.to_path_buf(), source })?;
        Self::from_yaml(&text, path)
    }

    /// Parse `text`; `path` names the file in errors and anchors relative policy paths.
    pub fn from_yaml(text: &str, path: &Path) -> Result<Self, ScenarioError> {
        let invalid =
            |message: String| ScenarioError::Invalid { path: path.to_path_buf(), message };
        let file: File = serde_yaml_ng::from_str(text).map_err(|e| invalid(e.to_string()))?;
        oci::check_repository(&file.repository).map_err(|e| invalid(format!("repository: {e}")))?;
        for (index, spec) in file.policies.iter().enumerate() {
            spec.check().map_err(|e| invalid(format!("policies[{index}]: {e}")))?;
        }

        let mut labels = BTreeMap::new();
        let mut state = TagMap::new();
        for (tag, image) in &file.state {
            oci::check_tag(tag).map_err(|e| invalid(format!("state: {e}")))?;
            let digest = image_digest(image, &mut labels)
                .map_err(|e| invalid(format!("state.{tag}: {e}")))?;
            state.set(tag, &digest);
        }
        if let Some(relative) = &file.state_file {
            let base = path.parent().unwrap_or(Path::new("."));
            read_state_file(&base.join(relative), &mut state, &mut labels)
                .map_err(|e| invalid(format!("state_file: {e}")))?;
        }
        for (tag, history) in &file.history {
            let at = format!("history.{tag}");
            let digest = state.digest_of(tag).ok_or_else(|| {
                invalid(format!(
                    "{at}: `{tag}` is not a tag of the state; give it in `state` or `state_file`"
                ))
            })?;
            let history = history.validate().map_err(|e| invalid(format!("{at}.{e}")))?;
            state.set_with_history(tag, &digest, Some(history));
        }

        let time = match &file.time {
            Some(text) => {
                Instant::parse_rfc3339(text).map_err(|e| invalid(format!("time: {e}")))?
            }
            None => Instant::EPOCH,
        };
        let mut steps = Vec::with_capacity(file.pushes.len());
        for (index, step) in file.pushes.into_iter().enumerate() {
            let name = step.name.clone().unwrap_or_else(|| format!("push {}", index + 1));
            let at = format!("pushes[{index}] (`{name}`)");
            let step = step
                .validate(name, time, &mut labels)
                .map_err(|e| invalid(format!("{at}: {e}")))?;
            steps.push(step);
        }
        if steps.is_empty() {
            return Err(invalid("pushes: empty; a scenario needs at least one push".into()));
        }
        let images = images(file.images, &steps, &mut labels).map_err(invalid)?;
        Ok(Scenario {
            path: path.to_path_buf(),
            repository: file.repository,
            policies: file.policies,
            state: Arc::new(state),
            images: Arc::new(images),
            steps,
            labels,
        })
    }

    /// The folder relative policy paths are resolved against.
    pub fn base_dir(&self) -> &Path {
        self.path.parent().unwrap_or(Path::new("."))
    }

    /// Evaluate the steps in order. An allowed step changes the state for the next ones,
    /// as the registry would.
    pub fn run(&self, policies: &PolicySet) -> Vec<StepResult> {
        // Shared with each step's view; copied once, at the first change, however large.
        let mut state = self.state.clone();
        self.steps
            .iter()
            .map(|step| {
                let request = step.request(&self.repository, &state);
                let view = ScenarioView(RepositoryState {
                    tags: state.clone(),
                    images: self.images.clone(),
                });
                let decision = policies.evaluate(&request, Arc::new(view));
                if decision.is_allowed() {
                    Arc::make_mut(&mut state).apply(&request);
                }
                StepResult { request, decision }
            })
            .collect()
    }

    /// `app-1211` for a digest derived from that label, else the digest shortened.
    pub fn image_name(&self, digest: &str) -> String {
        match self.labels.get(digest) {
            Some(label) => label.clone(),
            None => digest.get(..19).unwrap_or(digest).to_string(),
        }
    }
}

/// A scenario's repository: its tags, and its images, where a tagged image the file says
/// nothing of is a bare manifest of the default media type (made when asked, so that a state
/// of a million tags stays small).
struct ScenarioView(RepositoryState);

impl RepositoryView for ScenarioView {
    fn find_tags(&self, query: &TagQuery) -> Vec<TagEntry> {
        self.0.find_tags(query)
    }
    fn count_tags(&self) -> u64 {
        self.0.count_tags()
    }
    fn digest_of(&self, tag: &str) -> Option<String> {
        self.0.digest_of(tag)
    }
    fn tags_of(&self, digest: &str) -> Vec<String> {
        self.0.tags_of(digest)
    }
    fn history_of(&self, tag: &str) -> Option<TagHistory> {
        self.0.history_of(tag)
    }
    fn manifest(&self, digest: &str) -> Option<Manifest> {
        self.0.manifest(digest).or_else(|| {
            let tagged = !self.0.tags_of(digest).is_empty();
            tagged.then(|| Manifest::bare(DEFAULT_MEDIA_TYPE))
        })
    }
    fn labels(&self, digest: &str) -> Vec<KeyValue> {
        self.0.labels(digest)
    }
    fn referrers(&self, digest: &str, artifact_type: Option<&str>) -> Vec<Referrer> {
        self.0.referrers(digest, artifact_type)
    }
}

impl Step {
    /// The request this step makes against `state`.
    pub fn request(&self, repository: &str, state: &TagMap) -> Request {
        let current = |tag: &String| TagChange { tag: tag.clone(), current: state.digest_of(tag) };
        let operation = match &self.action {
            Action::Push { digest, tags, .. } => Operation::Push(Push {
                digest: digest.clone(),
                tags: tags.iter().map(current).collect(),
            }),
            Action::DeleteTags(tags) => Operation::DeleteTags(tags.iter().map(current).collect()),
            Action::DeleteImage(digest) => Operation::DeleteManifest(ManifestDeletion {
                digest: digest.clone(),
                tags: state.tags_of(digest),
            }),
        };
        Request {
            repository: repository.to_string(),
            actor: self.actor.clone(),
            operation,
            time: self.time,
        }
    }

    /// Why `decision` does not meet this step's expectation, if it does not. The decision
    /// counts as [`observed`]: `expect: error` matches a push where a policy failed, and
    /// nothing else does. A `reason` is a substring of a finding of the expected kind, as
    /// the output prints it (`[policy] reason`).
    pub fn mismatch(&self, decision: &Decision) -> Option<String> {
        let expected = self.expect?;
        let actual = observed(decision);
        if actual != expected {
            let problem = format!("expected {expected}, got {actual}");
            return Some(match decision.failures().next() {
                Some(failure) => format!("{problem}: {}", failure.reason),
                None => problem,
            });
        }
        let wanted = self.reason.as_deref()?;
        let kind = |finding: &Finding| match expected {
            Outcome::Error => finding.failure.is_some(),
            Outcome::Deny => finding.severity == Severity::Deny,
            Outcome::Warn | Outcome::Allow => finding.severity == Severity::Warn,
        };
        let found = decision.findings.iter().any(|f| kind(f) && printed(f).contains(wanted));
        (!found).then(|| format!("expected a reason containing `{wanted}`"))
    }
}

/// A finding as `eval` and `test` print it, and as a step's `reason` matches it:
/// `[immutable-tags] tag `1.2.10` is immutable …`.
pub fn printed(finding: &Finding) -> String {
    format!("[{}] {}", finding.policy, finding.reason)
}

/// The outcome a scenario's `expect` is checked against: [`Outcome::Error`] when a policy
/// failed, whether the failure refused the push (`fail: closed`) or only warned
/// (`fail: open`, `mode: audit`); otherwise the decision's outcome.
pub fn observed(decision: &Decision) -> Outcome {
    if decision.failures().next().is_some() { Outcome::Error } else { decision.outcome }
}

impl StepFile {
    fn validate(
        self,
        name: String,
        time: Instant,
        labels: &mut BTreeMap<String, String>,
    ) -> Result<Step, String> {
        let actor = Actor { id: self.actor, groups: self.groups };
        let time = match &self.time {
            Some(text) => Instant::parse_rfc3339(text).map_err(|e| format!("time: {e}"))?,
            None => time,
        };
        if self.reason.is_some()
            && !matches!(self.expect, Some(Outcome::Deny | Outcome::Warn | Outcome::Error))
        {
            return Err(
                "reason: only checked with `expect: deny`, `expect: warn` or `expect: error`"
                    .into(),
            );
        }
        let kinds = [self.tags.is_some(), self.delete.is_some(), self.delete_image.is_some()];
        if kinds.iter().filter(|present| **present).count() != 1 {
            return Err("give exactly one of `tags` (a push), `delete` or `delete_image`".into());
        }
        let action = if let Some(tags) = self.tags {
            let digest = match (self.image, self.digest) {
                (Some(image), None) => {
                    image_digest(&image, labels).map_err(|e| format!("image: {e}"))?
                }
                (None, Some(digest)) => {
                    oci::check_digest(&digest).map_err(|e| format!("digest: {e}"))?;
                    digest
                }
                _ => return Err("a push needs exactly one of `image` (a label) or `digest`".into()),
            };
            if tags.is_empty() {
                return Err("tags: empty; a push applies at least one tag".into());
            }
            check_tags(&tags)?;
            let media_type = self.media_type.unwrap_or_else(|| DEFAULT_MEDIA_TYPE.to_string());
            Action::Push { digest, media_type, tags }
        } else {
            if self.image.is_some() || self.digest.is_some() || self.media_type.is_some() {
                return Err(
                    "`image`, `digest` and `media_type` belong to pushes, not deletions".into()
                );
            }
            if let Some(tags) = self.delete {
                if tags.is_empty() {
                    return Err("delete: empty; list the tags to delete".into());
                }
                check_tags(&tags).map_err(|e| e.replacen("tags", "delete", 1))?;
                Action::DeleteTags(tags)
            } else {
                let image = self.delete_image.unwrap_or_default();
                Action::DeleteImage(
                    image_digest(&image, labels).map_err(|e| format!("delete_image: {e}"))?,
                )
            }
        };
        Ok(Step { name, action, actor, time, expect: self.expect, reason: self.reason })
    }
}

/// The image facts: every image the state and the pushes name gets a manifest (of the pushed
/// media type, else the default), completed by what `images` declares; referrers get
/// manifests of their own whose subject is their image.
fn images(
    declared: BTreeMap<String, ImageFile>,
    steps: &[Step],
    labels: &mut BTreeMap<String, String>,
) -> Result<Images, String> {
    let mut images = Images::new();
    let mut media_types: BTreeMap<String, String> = BTreeMap::new();
    for step in steps {
        if let Action::Push { digest, media_type, .. } = &step.action {
            media_types.entry(digest.clone()).or_insert_with(|| media_type.clone());
        }
    }
    // Tagged images the file says nothing of are bare manifests of the default type, made
    // when asked (`RepositoryState::manifest`): a state of a million tags stays small.
    for digest in media_types.keys() {
        let facts = ImageFacts {
            manifest: Some(Manifest::bare(&media_types[digest])),
            ..ImageFacts::default()
        };
        images.insert(digest, facts);
    }
    for (image, file) in declared {
        let at = |field: &str| format!("images.{image}.{field}");
        let digest = image_digest(&image, labels).map_err(|e| format!("images.{image}: {e}"))?;
        let mut manifest =
            images.manifest(&digest).unwrap_or_else(|| Manifest::bare(DEFAULT_MEDIA_TYPE));
        if let Some(media_type) = file.media_type {
            if media_types.get(&digest).is_some_and(|pushed| *pushed != media_type) {
                return Err(format!(
                    "{}: `{media_type}`, but a push of this image says `{}`",
                    at("media_type"),
                    media_types[&digest]
                ));
            }
            manifest.media_type = media_type;
        }
        manifest.artifact_type = file.artifact_type;
        manifest.annotations = key_values(file.annotations);
        manifest.layers = entries(file.layers, labels, &at("layers"))?;
        manifest.manifests = entries(file.manifests, labels, &at("manifests"))?;
        if let Some(subject) = file.subject {
            let subject_digest =
                image_digest(&subject, labels).map_err(|e| format!("{}: {e}", at("subject")))?;
            manifest.subject = Some(descriptor(DEFAULT_MEDIA_TYPE, subject_digest, Vec::new()));
        }
        let subject = Descriptor {
            media_type: manifest.media_type.clone(),
            digest: digest.clone(),
            size: 0,
            artifact_type: manifest.artifact_type.clone(),
            annotations: Vec::new(),
            platform: None,
        };
        let mut referrers = Vec::new();
        for (index, referrer) in file.referrers.into_iter().enumerate() {
            let name = referrer.name.unwrap_or_else(|| format!("{image}-referrer-{index}"));
            let referrer_digest = image_digest(&name, labels)
                .map_err(|e| format!("{}: {e}", at(&format!("referrers[{index}].name"))))?;
            let media_type = referrer.media_type.unwrap_or_else(|| DEFAULT_MEDIA_TYPE.to_string());
            let annotations = key_values(referrer.annotations);
            let mut own = Manifest::bare(&media_type);
            own.artifact_type = Some(referrer.artifact_type.clone());
            own.annotations = annotations.clone();
            own.subject = Some(subject.clone());
            images.insert(
                &referrer_digest,
                ImageFacts { manifest: Some(own), ..ImageFacts::default() },
            );
            referrers.push(Referrer {
                digest: referrer_digest,
                media_type,
                artifact_type: referrer.artifact_type,
                annotations,
            });
        }
        images.insert(
            &digest,
            ImageFacts { manifest: Some(manifest), labels: key_values(file.labels), referrers },
        );
    }
    Ok(images)
}

/// The descriptors a manifest lists, as the file gives them under `field`.
fn entries(
    files: Vec<EntryFile>,
    labels: &mut BTreeMap<String, String>,
    field: &str,
) -> Result<Vec<Descriptor>, String> {
    files
        .into_iter()
        .enumerate()
        .map(|(index, entry)| {
            let digest = image_digest(&entry.digest, labels)
                .map_err(|e| format!("{field}[{index}].digest: {e}"))?;
            let media_type = entry.media_type.as_deref().unwrap_or(DEFAULT_MEDIA_TYPE);
            Ok(descriptor(media_type, digest, key_values(entry.annotations)))
        })
        .collect()
}

fn descriptor(media_type: &str, digest: String, annotations: Vec<KeyValue>) -> Descriptor {
    Descriptor {
        media_type: media_type.to_string(),
        digest,
        size: 0,
        artifact_type: None,
        annotations,
        platform: None,
    }
}

fn check_tags(tags: &[String]) -> Result<(), String> {
    let mut seen = BTreeSet::new();
    for (index, tag) in tags.iter().enumerate() {
        oci::check_tag(tag).map_err(|e| format!("tags[{index}]: {e}"))?;
        if !seen.insert(tag) {
            return Err(format!("tags[{index}]: `{tag}` is listed twice"));
        }
    }
    Ok(())
}

/// A digest as written, or one derived from a label (remembered for display).
fn image_digest(image: &str, labels: &mut BTreeMap<String, String>) -> Result<String, String> {
    if image.contains(':') {
        oci::check_digest(image)?;
        return Ok(image.to_string());
    }
    if image.is_empty() {
        return Err("empty; give a label such as `app-1.2.3` or a digest".into());
    }
    let digest = label_digest(image);
    labels.insert(digest.clone(), image.to_string());
    Ok(digest)
}

impl HistoryFile {
    fn validate(&self) -> Result<TagHistory, String> {
        let changed = Instant::parse_rfc3339(&self.changed).map_err(|e| format!("changed: {e}"))?;
        let changed = Stamp { at: changed, actor: self.by.clone() };
        let created = match (self.created.as_deref(), &self.created_by) {
            (None, None) => Some(changed.clone()),
            (None, Some(_)) => return Err("created_by: give `created` (a time) with it".into()),
            (Some("unknown"), None) => None,
            (Some("unknown"), Some(_)) => {
                return Err("created_by: not with `created: unknown`".into());
            }
            (Some(text), by) => {
                let at = Instant::parse_rfc3339(text)
                    .map_err(|e| format!("created: {e}, or `unknown`"))?;
                if (at.seconds, at.nanoseconds) > (changed.at.seconds, changed.at.nanoseconds) {
                    return Err(format!("created: `{text}` is after `changed`"));
                }
                Some(Stamp { at, actor: by.clone() })
            }
        };
        Ok(TagHistory { changed, created })
    }
}

/// Add the `tag image` lines of `path` to `state`; an error names the line.
fn read_state_file(
    path: &Path,
    state: &mut TagMap,
    labels: &mut BTreeMap<String, String>,
) -> Result<(), String> {
    use std::io::BufRead;
    let file =
        std::fs::File::open(path).map_err(|e| format!("cannot read `{}`: {e}", path.display()))?;
    for (index, line) in std::io::BufReader::new(file).lines().enumerate() {
        let at = |what: String| format!("`{}` line {}: {what}", path.display(), index + 1);
        let line = line.map_err(|e| at(e.to_string()))?;
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut fields = line.split_whitespace();
        let (Some(tag), Some(image), None) = (fields.next(), fields.next(), fields.next()) else {
            return Err(at(format!("`{line}`: expected `tag image` (a label or a digest)")));
        };
        oci::check_tag(tag).map_err(at)?;
        let digest = image_digest(image, labels).map_err(|e| at(format!("`{tag}`: {e}")))?;
        state.set(tag, &digest);
    }
    Ok(())
}

/// The stable digest the CLI gives the image labelled `label`.
pub fn label_digest(label: &str) -> String {
    Digest::of(label.as_bytes()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Scenario, String> {
        Scenario::from_yaml(text, Path::new("s.yaml")).map_err(|e| e.to_string())
    }

    const OK: &str = "repository: team/app\nstate: {\"1.0.0\": a}\npushes:\n  - {image: b, tags: [latest], expect: allow}\n";

    #[test]
    fn a_valid_scenario_parses_and_labels_become_digests() {
        let scenario = parse(OK).unwrap();
        assert_eq!(scenario.state.iter().next().unwrap().1, label_digest("a"));
        assert_eq!(scenario.image_name(&label_digest("b")), "b");
        assert_eq!(scenario.steps[0].name, "push 1");
    }

    #[test]
    fn errors_name_file_push_and_field() {
        let cases = [
            (OK.replace("expect: allow", "expect: allow, colour: red"), "unknown field `colour`"),
            (
                OK.replace("[latest]", "[\"1.2.x!\"]"),
                "pushes[0] (`push 1`): tags[0]: `1.2.x!` is not a valid tag",
            ),
            (OK.replace("[latest]", "[]"), "pushes[0] (`push 1`): tags: empty"),
            (
                OK.replace("team/app", "Team/App"),
                "repository: `Team/App` is not a valid repository name",
            ),
            (
                OK.replace("image: b", "digest: sha256:xyz"),
                "pushes[0] (`push 1`): digest: `sha256:xyz` is not a valid digest",
            ),
            (OK.replace("a}", "\"sha256:12\"}"), "state.1.0.0: `sha256:12` is not a valid digest"),
            (OK.replace("image: b, ", ""), "needs exactly one of `image`"),
            (OK.replace("[latest]", "[a, a]"), "tags[1]: `a` is listed twice"),
            (OK.replace("expect: allow", "expect: allow, reason: x"), "reason: only checked"),
            (
                OK.replace("{image: b, tags: [latest]", "{delete: [\"-x\"]"),
                "delete[0]: `-x` is not a valid tag",
            ),
        ];
        for (text, wanted) in cases {
            let err = parse(&text).unwrap_err();
            assert!(err.starts_with("`s.yaml`: "), "{err}");
            assert!(err.contains(wanted), "wanted `{wanted}` in: {err}");
        }
    }

    #[test]
    fn unknown_fields_in_images_and_referrers_name_the_file_and_field() {
        let images = |image: &str| format!("{OK}images:\n  b:\n{image}");
        let cases = [
            (images("    labels: {a: b}\n    colour: red\n"), "images.b: unknown field `colour`"),
            (
                images("    referrers: [{artifact_type: application/spdx+json, colour: red}]\n"),
                "images.b.referrers[0]: unknown field `colour`",
            ),
        ];
        for (text, wanted) in cases {
            let err = parse(&text).unwrap_err();
            assert!(err.starts_with("`s.yaml`: "), "{err}");
            assert!(err.contains(wanted), "wanted `{wanted}` in: {err}");
        }
        // Without the unknown field, the same images parse.
        let known =
            images("    labels: {a: b}\n    referrers: [{artifact_type: application/spdx+json}]\n");
        assert!(parse(&known).is_ok(), "{known}");
    }

    /// A step of `OK` expecting `expect`, with `reason` if given.
    fn step(expect: Outcome, reason: Option<&str>) -> Step {
        let step = parse(OK).unwrap().steps.remove(0);
        Step { expect: Some(expect), reason: reason.map(String::from), ..step }
    }

    fn failed(severity: Severity) -> Decision {
        Decision::from_findings(vec![Finding {
            failure: Some(tagpolicy::Failure::Trap("wasm `unreachable` executed".into())),
            ..Finding::new("crashy", severity, None, "policy `crashy` trapped: wasm …")
        }])
    }

    #[test]
    fn a_failed_policy_matches_error_and_nothing_else() {
        let closed = failed(Severity::Deny);
        assert_eq!(
            step(Outcome::Deny, None).mismatch(&closed).unwrap(),
            "expected deny, got error: policy `crashy` trapped: wasm …"
        );
        assert_eq!(step(Outcome::Error, None).mismatch(&closed), None);
        assert_eq!(
            step(Outcome::Error, Some("[crashy] policy `crashy` trapped")).mismatch(&closed),
            None
        );
        // Failing open the push goes ahead with a warning, and is still a failure.
        let open = failed(Severity::Warn);
        assert!(step(Outcome::Warn, None).mismatch(&open).is_some());
        assert_eq!(step(Outcome::Error, None).mismatch(&open), None);
        // A rule's denial is not an error, and its reason does not match `error`.
        let denied =
            Decision::from_findings(vec![Finding::new("rule", Severity::Deny, None, "no")]);
        assert_eq!(
            step(Outcome::Error, None).mismatch(&denied).unwrap(),
            "expected error, got deny"
        );
        assert_eq!(step(Outcome::Deny, None).mismatch(&denied), None);
    }

    #[test]
    fn a_reason_matches_as_printed_with_its_policy() {
        let denied = Decision::from_findings(vec![Finding::new(
            "immutable-tags",
            Severity::Deny,
            None,
            "tag `1.0` is immutable",
        )]);
        for reason in
            ["immutable", "[immutable-tags] tag `1.0`", "[immutable-tags] tag `1.0` is immutable"]
        {
            assert_eq!(step(Outcome::Deny, Some(reason)).mismatch(&denied), None, "{reason}");
        }
        for reason in ["[min-tags] tag", "[immutable-tags]  tag"] {
            assert!(step(Outcome::Deny, Some(reason)).mismatch(&denied).is_some(), "{reason}");
        }
    }

    #[test]
    fn requests_carry_current_digests() {
        let scenario = parse(OK).unwrap();
        let request = scenario.steps[0].request("team/app", &scenario.state);
        let Operation::Push(push) = &request.operation else { panic!("a push") };
        assert_eq!(push.tags[0].current, None);
        let deletion =
            Step { action: Action::DeleteImage(label_digest("a")), ..scenario.steps[0].clone() };
        let Operation::DeleteManifest(m) = deletion.request("team/app", &scenario.state).operation
        else {
            panic!()
        };
        assert_eq!(m.tags, vec!["1.0.0".to_string()]);
    }
}
