//! What a policy decides on: the request, and the repository as it is before it, read
//! through [`RepositoryView`].

use crate::image::{KeyValue, Manifest, Referrer};
use crate::query::TagQuery;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub use crate::bindings::TagEntry;
use crate::bindings::tagpolicy::policy::types::TagHistory;
pub use crate::bindings::tagpolicy::policy::types::{
    Actor, Instant, ManifestDeletion, Operation, Push, TagChange,
};

/// One request to decide: where, who, what and when. A policy receives what is asked and
/// when; it asks the host for the repository and the actor if it needs them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The repository name, e.g. `team/app`.
    pub repository: String,
    /// Who asks.
    pub actor: Actor,
    /// What is asked.
    pub operation: Operation,
    /// When: a gate's clock, a scenario's fixed time.
    pub time: Instant,
}

impl Instant {
    /// The Unix epoch, the time of a request that says none.
    pub const EPOCH: Instant = Instant { seconds: 0, nanoseconds: 0 };

    /// The system clock's time (what a gate gives its requests).
    pub fn now() -> Instant {
        Instant::from(SystemTime::now())
    }

    /// Parse an RFC 3339 time in UTC, e.g. `2026-12-24T17:00:00Z`.
    pub fn parse_rfc3339(text: &str) -> Result<Instant, String> {
        humantime::parse_rfc3339(text).map(Instant::from).map_err(|e| {
            format!("`{text}` is not an RFC 3339 time in UTC such as `2026-12-24T17:00:00Z` ({e})")
        })
    }

    /// `2026-12-24T17:00:00Z` (fractions of a second when there are any).
    pub fn to_rfc3339(&self) -> String {
        let time = UNIX_EPOCH
            + Duration::from_secs(self.seconds.max(0) as u64)
            + Duration::from_nanos(u64::from(self.nanoseconds));
        if self.nanoseconds == 0 {
            humantime::format_rfc3339_seconds(time).to_string()
        } else {
            humantime::format_rfc3339_nanos(time).to_string()
        }
    }
}

impl From<SystemTime> for Instant {
    fn from(time: SystemTime) -> Self {
        match time.duration_since(UNIX_EPOCH) {
            Ok(since) => {
                Instant { seconds: since.as_secs() as i64, nanoseconds: since.subsec_nanos() }
            }
            Err(before) => {
                Instant { seconds: -(before.duration().as_secs() as i64), nanoseconds: 0 }
            }
        }
    }
}

impl Actor {
    /// Nobody in particular: no identity, no groups.
    pub fn anonymous() -> Self {
        Actor { id: None, groups: Vec::new() }
    }
}

impl Operation {
    /// The operation's name in every output (decision log, CLI JSON, metrics):
    /// `push`, `delete_tags` or `delete_manifest`.
    pub fn name(&self) -> &'static str {
        match self {
            Operation::Push(_) => "push",
            Operation::DeleteTags(_) => "delete_tags",
            Operation::DeleteManifest(_) => "delete_manifest",
        }
    }
}

impl Request {
    /// The tags the request touches, in request order.
    pub fn tags(&self) -> Vec<&str> {
        match &self.operation {
            Operation::Push(push) => push.tags.iter().map(|t| t.tag.as_str()).collect(),
            Operation::DeleteTags(tags) => tags.iter().map(|t| t.tag.as_str()).collect(),
            Operation::DeleteManifest(deletion) => {
                deletion.tags.iter().map(String::as_str).collect()
            }
        }
    }
}

/// Read-only access to a repository, answered for the policy's `repository` and `image`
/// imports: queries on its tags, and the facts of its images. The CLI answers from a
/// scenario ([`RepositoryState`](crate::RepositoryState)); a gate answers from its index of the registry. The image
/// facts default to "unknown" and the history to "not recorded", for hosts that know only
/// tags ([`TagMap`](crate::TagMap) alone).
///
/// Every method should cost about the same whatever the size of the repository:
/// [`TagMap`](crate::TagMap) shows how (and implements [`SortedTags`](crate::SortedTags), which
/// runs a [`TagQuery`] on two sorted lists).
pub trait RepositoryView: Send + Sync {
    /// The tags `query` asks for, with their digests, in its order, at most its limit.
    fn find_tags(&self, query: &TagQuery) -> Vec<TagEntry>;
    /// How many tags the repository has.
    fn count_tags(&self) -> u64;
    /// The digest `tag` points at.
    fn digest_of(&self, tag: &str) -> Option<String>;
    /// The tags pointing at `digest`, ordered by tag.
    fn tags_of(&self, digest: &str) -> Vec<String>;
    /// When `tag` got its current digest and who set it, and when it was created, if known.
    fn history_of(&self, _tag: &str) -> Option<TagHistory> {
        None
    }
    /// The manifest `digest`; for the digest being pushed, the manifest being pushed.
    fn manifest(&self, _digest: &str) -> Option<Manifest> {
        None
    }
    /// The labels of the image `digest`'s config, ordered by key.
    fn labels(&self, _digest: &str) -> Vec<KeyValue> {
        Vec::new()
    }
    /// The artifacts whose subject is `digest`, of `artifact_type` if given, ordered by digest.
    fn referrers(&self, _digest: &str, _artifact_type: Option<&str>) -> Vec<Referrer> {
        Vec::new()
    }
}
