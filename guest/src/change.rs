//! One view over every kind of request: the tags it touches and how.

use crate::{Operation, Request};

/// How a request changes one tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    /// A push to a tag that does not exist yet.
    Create,
    /// A push that points an existing tag at another digest.
    Move,
    /// A push of the digest the tag already points at (a retry, a multi-arch re-push).
    Identical,
    /// A tag deletion, directly or by deleting the manifest it points at.
    Delete,
}

/// One tag touched by a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Change<'a> {
    pub tag: &'a str,
    pub kind: ChangeKind,
    /// The digest the tag points at before the request (`None` if it does not exist).
    pub from: Option<&'a str>,
    /// The digest the tag points at after the request (`None` for a deletion).
    pub to: Option<&'a str>,
}

impl Change<'_> {
    /// Whether the tag ends up exactly where it was.
    pub fn is_identical(&self) -> bool {
        self.kind == ChangeKind::Identical
    }

    /// The verb for messages: "create", "move", "re-push" or "delete".
    pub fn verb(&self) -> &'static str {
        match self.kind {
            ChangeKind::Create => "create",
            ChangeKind::Move => "move",
            ChangeKind::Identical => "re-push",
            ChangeKind::Delete => "delete",
        }
    }
}

impl Request {
    /// Every tag the request touches, in request order.
    pub fn changes(&self) -> Vec<Change<'_>> {
        match &self.operation {
            Operation::Push(push) => push
                .tags
                .iter()
                .map(|change| {
                    let from = change.current.as_deref();
                    let kind = match from {
                        None => ChangeKind::Create,
                        Some(current) if current == push.digest => ChangeKind::Identical,
                        Some(_) => ChangeKind::Move,
                    };
                    Change { tag: &change.tag, kind, from, to: Some(&push.digest) }
                })
                .collect(),
            Operation::DeleteTags(tags) => tags
                .iter()
                .map(|change| Change {
                    tag: &change.tag,
                    kind: ChangeKind::Delete,
                    from: change.current.as_deref(),
                    to: None,
                })
                .collect(),
            Operation::DeleteManifest(deletion) => deletion
                .tags
                .iter()
                .map(|tag| Change {
                    tag,
                    kind: ChangeKind::Delete,
                    from: Some(&deletion.digest),
                    to: None,
                })
                .collect(),
        }
    }

    /// The pushed digest and its tags, if the request is a push.
    pub fn push(&self) -> Option<&crate::Push> {
        match &self.operation {
            Operation::Push(push) => Some(push),
            _ => None,
        }
    }
}
