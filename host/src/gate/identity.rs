//! Who is asking: the actor a policy sees. Without an `identity` section every request is
//! anonymous; the gate never takes a user name from a request it has not verified.

use crate::push::Actor;
use serde::Deserialize;
use std::path::Path;

/// The `identity` section of the gate configuration.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdentitySpec {}

impl IdentitySpec {
    pub(crate) fn relative_to(self, _base: &Path) -> Self {
        self
    }
}

/// How the actor of a request was established, for the decision log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ActorSource {
    Anonymous,
}

/// Loaded identity sources.
#[derive(Debug, Default)]
pub struct Identity {}

impl Identity {
    pub fn anonymous() -> Self {
        Identity {}
    }

    pub(crate) fn load(_spec: &IdentitySpec) -> Result<Self, String> {
        Ok(Identity {})
    }

    pub fn is_anonymous(&self) -> bool {
        true
    }

    /// The actor of a request.
    pub fn establish(&self, _parts: &http::request::Parts) -> (Actor, ActorSource) {
        (Actor::anonymous(), ActorSource::Anonymous)
    }
}
