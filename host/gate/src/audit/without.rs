//! A repository as it would be without one image's tags: what the audit decides that image's
//! push on ("could this image arrive with the tags it carries now?"), answered from the
//! repository's snapshot without copying it for every image.

use std::sync::Arc;
use tagpolicy::TagQuery;
use tagpolicy::{RepositoryView, TagEntry, TagHistory, TagMap};

/// `tags` with `hidden` (tags it has) taken out.
pub struct Without {
    tags: Arc<TagMap>,
    /// Sorted, so that a lookup is a binary search.
    hidden: Vec<String>,
}

impl Without {
    pub fn new(tags: Arc<TagMap>, mut hidden: Vec<String>) -> Self {
        hidden.sort();
        Without { tags, hidden }
    }

    fn is_hidden(&self, tag: &str) -> bool {
        self.hidden.binary_search_by(|hidden| hidden.as_str().cmp(tag)).is_ok()
    }
}

impl RepositoryView for Without {
    fn find_tags(&self, query: &TagQuery) -> Vec<TagEntry> {
        // A page of the snapshot may hold hidden tags: read on until the page is full, so
        // that a short page still means "no more" to the policy.
        let mut found = Vec::new();
        let mut page = query.clone();
        loop {
            let read = self.tags.find(&page);
            let more = read.len() >= page.limit;
            page.after = read.last().map(|entry| entry.tag.clone());
            found.extend(read.into_iter().filter(|entry| !self.is_hidden(&entry.tag)));
            if found.len() >= query.limit || !more || page.after.is_none() {
                break;
            }
        }
        found.truncate(query.limit);
        found
    }

    fn count_tags(&self) -> u64 {
        let hidden = self.hidden.iter().filter(|tag| self.tags.digest_of(tag).is_some()).count();
        (self.tags.len() - hidden) as u64
    }

    fn digest_of(&self, tag: &str) -> Option<String> {
        if self.is_hidden(tag) { None } else { self.tags.digest_of(tag) }
    }

    fn tags_of(&self, digest: &str) -> Vec<String> {
        let mut tags = self.tags.tags_of(digest);
        tags.retain(|tag| !self.is_hidden(tag));
        tags
    }

    fn history_of(&self, tag: &str) -> Option<TagHistory> {
        if self.is_hidden(tag) { None } else { self.tags.history_of(tag) }
    }
    // Image facts: the trait's defaults (none). The audit's decisions read them from the
    // registry (`DecisionView`), never from here.
}

#[cfg(test)]
mod tests {
    use super::*;
    use tagpolicy::TagOrder;

    #[test]
    fn hidden_tags_are_gone_from_every_answer_and_pages_stay_full() {
        let mut map = TagMap::new();
        for n in 0..30 {
            map.set(&format!("1.0.{n}"), if n % 3 == 0 { "sha256:a" } else { "sha256:b" });
        }
        let hidden: Vec<String> = (0..30).step_by(3).map(|n| format!("1.0.{n}")).collect();
        let view = Without::new(Arc::new(map), hidden);
        assert_eq!(view.count_tags(), 20);
        assert_eq!(view.digest_of("1.0.3"), None);
        assert_eq!(view.digest_of("1.0.4").as_deref(), Some("sha256:b"));
        assert!(view.tags_of("sha256:a").is_empty());
        assert_eq!(view.tags_of("sha256:b").len(), 20);
        // Pages of 4, newest first: every visible tag once, in order, each page full but
        // the last.
        let mut query = TagQuery::new(r"1\.0\.\d+", TagOrder::NewestFirst, 4, None).unwrap();
        let mut seen = Vec::new();
        loop {
            let page = view.find_tags(&query);
            seen.extend(page.iter().map(|entry| entry.tag.clone()));
            if page.len() < 4 {
                break;
            }
            query.after = page.last().map(|entry| entry.tag.clone());
        }
        let expected: Vec<String> =
            (0..30).rev().filter(|n| n % 3 != 0).map(|n| format!("1.0.{n}")).collect();
        assert_eq!(seen, expected);
    }
}
