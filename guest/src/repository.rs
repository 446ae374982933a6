//! Queries on the repository named in the request, as it is before the request. The host
//! answers each from its index at about the same cost whatever the size of the repository;
//! ask for what the rule needs, not for every tag.

use crate::bindings::tagpolicy::policy::repository as host;
use crate::{TagEntry, TagOrder, TagQuery};

pub use host::{count_tags, digest_of, history_of, tags_of};

/// Tags a page holds when [`tags_matching`] reads a repository (the host's largest page).
const PAGE: u32 = 1000;

/// One page of the tags matching a query: see [`TagQuery`]. Most rules want
/// [`tags_matching`] or [`newest`] instead.
///
/// # Panics
/// If the host refuses the query (an invalid pattern, a limit of 0): the pattern is the
/// policy's own, and a policy that cannot ask its question must not answer (the host then
/// denies, saying why).
pub fn find_tags(query: &TagQuery) -> Vec<TagEntry> {
    match host::find_tags(query) {
        Ok(page) => page,
        Err(why) => panic!("the query `{}` was refused: {why}", query.pattern),
    }
}

/// The tag matching `pattern` (whole) with the highest version (see [`TagOrder`]), if any:
/// `newest(r"v?1\.2\.\d+")` is the newest `1.2.x` release, however many tags there are.
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
pub fn tags_matching(pattern: &str, order: TagOrder) -> TagsMatching {
    TagsMatching {
        query: TagQuery { pattern: pattern.to_string(), order, limit: PAGE, after: None },
        page: Vec::new(),
        done: false,
    }
}

/// The iterator of [`tags_matching`].
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
