//! One view over every kind of request: the tags it touches and how.

use crate::{Operation, Request};

/// How a request changes one tag.
///
/// ```
/// use tagpolicy_guest::ChangeKind;
/// # use tagpolicy_guest::{Instant, Operation, Push, Request, TagChange};
/// # let request = Request {
/// #     operation: Operation::Push(Push {
/// #         digest: "sha256:7777".into(),
/// #         tags: vec![
/// #             TagChange { tag: "1.3.1".into(), current: None },
/// #             TagChange { tag: "latest".into(), current: Some("sha256:3333".into()) },
/// #         ],
/// #     }),
/// #     time: Instant { seconds: 1_798_131_600, nanoseconds: 0 },
/// # };
/// let kinds: Vec<ChangeKind> = request.changes().iter().map(|change| change.kind).collect();
/// assert_eq!(kinds, [ChangeKind::Create, ChangeKind::Move]);
/// ```
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
///
/// ```
/// use tagpolicy_guest::ChangeKind;
/// # use tagpolicy_guest::{Instant, Operation, Push, Request, TagChange};
/// # let request = Request {
/// #     operation: Operation::Push(Push {
/// #         digest: "sha256:7777".into(),
/// #         tags: vec![
/// #             TagChange { tag: "1.3.1".into(), current: None },
/// #             TagChange { tag: "latest".into(), current: Some("sha256:3333".into()) },
/// #         ],
/// #     }),
/// #     time: Instant { seconds: 1_798_131_600, nanoseconds: 0 },
/// # };
/// // A push of `1.3.1` (new) and `latest` (moved from sha256:3333).
/// let change = request.changes()[1];
/// assert_eq!((change.tag, change.kind), ("latest", ChangeKind::Move));
/// assert_eq!((change.from, change.to), (Some("sha256:3333"), Some("sha256:7777")));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Change<'a> {
    /// The tag.
    pub tag: &'a str,
    /// How the request changes it.
    pub kind: ChangeKind,
    /// The digest the tag points at before the request (`None` if it does not exist).
    pub from: Option<&'a str>,
    /// The digest the tag points at after the request (`None` for a deletion).
    pub to: Option<&'a str>,
}

impl Change<'_> {
    /// Whether the tag ends up exactly where it was.
    ///
    /// ```
    /// # use tagpolicy_guest::{Instant, Operation, Push, Request, TagChange};
    /// # let request = Request {
    /// #     operation: Operation::Push(Push {
    /// #         digest: "sha256:7777".into(),
    /// #         tags: vec![
    /// #             TagChange { tag: "1.3.1".into(), current: None },
    /// #             TagChange { tag: "latest".into(), current: Some("sha256:3333".into()) },
    /// #         ],
    /// #     }),
    /// #     time: Instant { seconds: 1_798_131_600, nanoseconds: 0 },
    /// # };
    /// let changed: Vec<_> = request.changes().into_iter().filter(|c| !c.is_identical()).collect();
    /// assert_eq!(changed.len(), 2);
    /// ```
    pub fn is_identical(&self) -> bool {
        self.kind == ChangeKind::Identical
    }

    /// The verb for messages: "create", "move", "re-push" or "delete".
    ///
    /// ```
    /// # use tagpolicy_guest::{Instant, Operation, Push, Request, TagChange};
    /// # let request = Request {
    /// #     operation: Operation::Push(Push {
    /// #         digest: "sha256:7777".into(),
    /// #         tags: vec![
    /// #             TagChange { tag: "1.3.1".into(), current: None },
    /// #             TagChange { tag: "latest".into(), current: Some("sha256:3333".into()) },
    /// #         ],
    /// #     }),
    /// #     time: Instant { seconds: 1_798_131_600, nanoseconds: 0 },
    /// # };
    /// let said: Vec<String> =
    ///     request.changes().iter().map(|c| format!("may not {} `{}`", c.verb(), c.tag)).collect();
    /// assert_eq!(said, ["may not create `1.3.1`", "may not move `latest`"]);
    /// ```
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
    ///
    /// ```
    /// # use tagpolicy_guest::{Instant, Operation, Push, Request, TagChange};
    /// # let request = Request {
    /// #     operation: Operation::Push(Push {
    /// #         digest: "sha256:7777".into(),
    /// #         tags: vec![
    /// #             TagChange { tag: "1.3.1".into(), current: None },
    /// #             TagChange { tag: "latest".into(), current: Some("sha256:3333".into()) },
    /// #         ],
    /// #     }),
    /// #     time: Instant { seconds: 1_798_131_600, nanoseconds: 0 },
    /// # };
    /// let tags: Vec<&str> = request.changes().iter().map(|change| change.tag).collect();
    /// assert_eq!(tags, ["1.3.1", "latest"]);
    /// ```
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
    ///
    /// ```
    /// # use tagpolicy_guest::{Instant, Operation, Push, Request, TagChange};
    /// # let request = Request {
    /// #     operation: Operation::Push(Push {
    /// #         digest: "sha256:7777".into(),
    /// #         tags: vec![
    /// #             TagChange { tag: "1.3.1".into(), current: None },
    /// #             TagChange { tag: "latest".into(), current: Some("sha256:3333".into()) },
    /// #         ],
    /// #     }),
    /// #     time: Instant { seconds: 1_798_131_600, nanoseconds: 0 },
    /// # };
    /// let push = request.push().expect("a push");
    /// assert_eq!(push.digest, "sha256:7777");
    /// assert_eq!(push.tags[1].current.as_deref(), Some("sha256:3333"));
    /// ```
    pub fn push(&self) -> Option<&crate::Push> {
        match &self.operation {
            Operation::Push(push) => Some(push),
            _ => None,
        }
    }
}
