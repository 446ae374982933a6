//! Queries on the repository named in the request, as it is before the request. The host
//! answers each from its index at about the same cost whatever the size of the repository;
//! ask for what the rule needs, not for every tag.
//!
//! The host answers these queries: the examples are compiled, not run.
//!
//! ```no_run
//! use tagpolicy_guest::{repository, TagOrder};
//!
//! let newest = repository::newest(r"v?1\.2\.\d+"); // the newest 1.2.x tag, or None
//! for entry in repository::tags_matching(r"pr-\d+", TagOrder::Name) {
//!     // read a page at a time
//! }
//! let history = repository::history_of("1.2.3"); // when and by whom it was set
//! ```

use crate::bindings::tagpolicy::policy::repository as host;
use crate::{TagEntry, TagOrder, TagQuery};

/// How many tags the repository has. From the contract:
///
/// ```no_run
/// use tagpolicy_guest::repository;
///
/// if repository::count_tags() > 10_000 {
///     // warn: the repository needs cleaning up
/// }
/// ```
pub use host::count_tags;
/// The digest a tag points at. From the contract:
///
/// ```no_run
/// use tagpolicy_guest::repository;
///
/// let moved_from = repository::digest_of("latest"); // None if `latest` does not exist
/// ```
pub use host::digest_of;
/// What the hosts recorded of a tag: a [`TagHistory`](crate::TagHistory). From the contract:
///
/// ```no_run
/// use tagpolicy_guest::time::Period;
/// use tagpolicy_guest::{repository, Instant};
/// # let now = Instant { seconds: 0, nanoseconds: 0 };
///
/// // Was `latest` moved within the last 15 minutes (by anyone but the release bot)?
/// let recent = repository::history_of("latest").is_some_and(|history| {
///     Period::parse("15m").unwrap().contains(history.changed.at, now)
///         && history.changed.actor.as_deref() != Some("release-bot")
/// });
/// ```
pub use host::history_of;
/// The tags that point at a digest. From the contract:
///
/// ```no_run
/// use tagpolicy_guest::repository;
/// # let pushed = "sha256:7777";
///
/// let already: Vec<String> = repository::tags_of(pushed); // by name
/// ```
pub use host::tags_of;

/// Tags a page holds when [`tags_matching`] reads a repository (the host's largest page).
const PAGE: u32 = 1000;

/// One page of the tags matching a query: see [`TagQuery`]. Most rules want
/// [`tags_matching`] or [`newest`] instead.
///
/// # Panics
/// If the host refuses the query (an invalid pattern, a limit of 0): the pattern is the
/// policy's own, and a policy that cannot ask its question must not answer (the host then
/// denies, saying why).
///
/// ```no_run
/// use tagpolicy_guest::{repository, TagOrder, TagQuery};
///
/// let mut query =
///     TagQuery { pattern: "ci-.*".into(), order: TagOrder::Name, limit: 50, after: None };
/// let page = repository::find_tags(&query);
/// if page.len() == 50 {
///     query.after = page.last().map(|entry| entry.tag.clone()); // the next page
/// }
/// ```
pub fn find_tags(query: &TagQuery) -> Vec<TagEntry> {
    match host::find_tags(query) {
        Ok(page) => page,
        Err(why) => panic!("the query `{}` was refused: {why}", query.pattern),
    }
}

/// The tag matching `pattern` (whole) with the highest version (see [`TagOrder`]), if any:
/// `newest(r"v?1\.2\.\d+")` is the newest `1.2.x` release, however many tags there are.
///
/// ```no_run
/// use tagpolicy_guest::repository;
///
/// if let Some(newest) = repository::newest(r"v?1\.2\.\d+") {
///     let (tag, digest) = (newest.tag, newest.digest); // `1.2.10` and what it points at
/// }
/// ```
pub fn newest(pattern: &str) -> Option<TagEntry> {
    let query = TagQuery {
        pattern: pattern.to_string(),
        order: TagOrder::NewestFirst,
        limit: 1,
        after: None,
    };
    find_tags(&query).into_iter().next()
}

/// Every tag matching `pattern` (whole), in `order`, read from the host a page at a time as
/// the iterator is consumed: stop early and the rest is never read.
///
/// ```no_run
/// use tagpolicy_guest::{repository, TagOrder};
///
/// let open: Vec<String> =
///     repository::tags_matching(r"pr-\d+", TagOrder::NewestFirst).map(|e| e.tag).take(10).collect();
/// ```
pub fn tags_matching(pattern: &str, order: TagOrder) -> TagsMatching {
    TagsMatching {
        query: TagQuery { pattern: pattern.to_string(), order, limit: PAGE, after: None },
        page: Vec::new(),
        done: false,
    }
}

/// The iterator of [`tags_matching`]: [`TagEntry`]s, read a page at a time.
///
/// ```no_run
/// use tagpolicy_guest::repository::{self, TagsMatching};
/// use tagpolicy_guest::TagOrder;
///
/// let entries: TagsMatching = repository::tags_matching(".*", TagOrder::Name);
/// let first = entries.take(3).count();
/// ```
pub struct TagsMatching {
    query: TagQuery,
    /// The current page, in reverse (its next entry last).
    page: Vec<TagEntry>,
    done: bool,
}

impl Iterator for TagsMatching {
    type Item = TagEntry;

    fn next(&mut self) -> Option<TagEntry> {
        if self.page.is_empty() && !self.done {
            let mut page = find_tags(&self.query);
            self.done = page.len() < self.query.limit as usize;
            self.query.after = page.last().map(|entry| entry.tag.clone());
            page.reverse();
            self.page = page;
        }
        self.page.pop()
    }
}
