//! Host side of the `patterns` interface: one regex dialect for policies in every language,
//! each pattern compiled once per loaded policy.

use crate::query::QueryPattern;
use regex::{Regex, RegexBuilder, RegexSet, RegexSetBuilder};
use std::collections::HashMap;
use std::sync::{Arc, RwLock};

/// Longest pattern a policy may ask for, in bytes.
const MAX_PATTERN_BYTES: usize = 4096;
/// Compiled-program size cap: keeps compilation (which the epoch deadline cannot
/// interrupt, as it runs in the host) fast.
const MAX_COMPILED_BYTES: usize = 1 << 20;
/// Distinct patterns cached per policy; past this, patterns are compiled per call.
const MAX_CACHED: usize = 1024;
/// Distinct pattern sets a policy may prepare.
const MAX_SETS: usize = 256;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Anchoring {
    Whole,
    Anywhere,
}

type Compiled = Result<Arc<Regex>, String>;

/// Compiled patterns of one loaded policy, shared by all of its instances and threads.
#[derive(Default)]
pub(crate) struct PatternCache {
    // One map per anchoring, keyed by the pattern text, so that a lookup borrows the
    // guest's string instead of allocating a key on every call.
    whole: RwLock<HashMap<String, Compiled>>,
    anywhere: RwLock<HashMap<String, Compiled>>,
    sets: RwLock<Sets>,
    /// Patterns of `find-tags`, compiled and planned.
    queries: RwLock<HashMap<String, Result<Arc<QueryPattern>, String>>>,
}

/// Prepared pattern sets: a handle is an index into `compiled`.
#[derive(Default)]
struct Sets {
    by_list: HashMap<Vec<String>, u32>,
    compiled: Vec<RegexSet>,
}

impl PatternCache {
    pub(crate) fn full_match(&self, pattern: &str, text: &str) -> Result<bool, String> {
        Ok(self.get(Anchoring::Whole, pattern)?.is_match(text))
    }

    /// Compile `patterns` as one set of whole-text matches; the same list gets the same
    /// handle, so instances configured again (or per request) add nothing.
    pub(crate) fn prepare_set(&self, patterns: Vec<String>) -> Result<u32, String> {
        if let Some(&handle) =
            self.sets.read().unwrap_or_else(|e| e.into_inner()).by_list.get(&patterns)
        {
            return Ok(handle);
        }
        // Each pattern on its own first, so that an error names the one at fault.
        for pattern in &patterns {
            self.get(Anchoring::Whole, pattern)
                .map_err(|why| format!("pattern `{pattern}`: {why}"))?;
        }
        let set = RegexSetBuilder::new(patterns.iter().map(|pattern| format!("^(?:{pattern})$")))
            .size_limit(MAX_COMPILED_BYTES)
            .build()
            .map_err(|error| {
                format!("the set of {} patterns: {}", patterns.len(), describe(error))
            })?;
        let mut sets = self.sets.write().unwrap_or_else(|e| e.into_inner());
        if let Some(&handle) = sets.by_list.get(&patterns) {
            return Ok(handle); // prepared meanwhile by another instance
        }
        if sets.compiled.len() >= MAX_SETS {
            return Err(format!("a policy may prepare at most {MAX_SETS} distinct pattern sets"));
        }
        let handle = sets.compiled.len() as u32;
        sets.compiled.push(set);
        sets.by_list.insert(patterns, handle);
        Ok(handle)
    }

    /// The index of the first pattern of set `handle` that matches all of `text`.
    pub(crate) fn first_in_set(&self, handle: u32, text: &str) -> Result<Option<u32>, String> {
        let sets = self.sets.read().unwrap_or_else(|e| e.into_inner());
        let set = sets
            .compiled
            .get(handle as usize)
            .ok_or_else(|| format!("no pattern set {handle} was prepared"))?;
        // Set indices come back in ascending order; they fit in u32, as the list did.
        Ok(set.matches(text).iter().next().map(|index| index as u32))
    }

    /// `pattern` compiled for whole matches and planned for index queries.
    pub(crate) fn query(&self, pattern: &str) -> Result<Arc<QueryPattern>, String> {
        if let Some(hit) = self.queries.read().unwrap_or_else(|e| e.into_inner()).get(pattern) {
            return hit.clone();
        }
        let planned = self
            .get(Anchoring::Whole, pattern)
            .map(|regex| Arc::new(QueryPattern::new(pattern, Regex::clone(&regex))));
        let mut cache = self.queries.write().unwrap_or_else(|e| e.into_inner());
        if cache.len() < MAX_CACHED {
            cache.insert(pattern.to_string(), planned.clone());
        }
        planned
    }

    pub(crate) fn find(&self, pattern: &str, text: &str) -> Result<bool, String> {
        Ok(self.get(Anchoring::Anywhere, pattern)?.is_match(text))
    }

    fn get(&self, anchoring: Anchoring, pattern: &str) -> Compiled {
        let map = match anchoring {
            Anchoring::Whole => &self.whole,
            Anchoring::Anywhere => &self.anywhere,
        };
        if let Some(hit) = map.read().unwrap_or_else(|e| e.into_inner()).get(pattern) {
            return hit.clone();
        }
        let compiled = compile(anchoring, pattern);
        let mut cache = map.write().unwrap_or_else(|e| e.into_inner());
        if cache.len() < MAX_CACHED {
            cache.insert(pattern.to_string(), compiled.clone());
        }
        compiled
    }
}

fn compile(anchoring: Anchoring, pattern: &str) -> Compiled {
    if pattern.len() > MAX_PATTERN_BYTES {
        return Err(format!(
            "pattern is {} bytes long; the limit is {MAX_PATTERN_BYTES}",
            pattern.len()
        ));
    }
    let source = match anchoring {
        Anchoring::Whole => format!("^(?:{pattern})$"),
        Anchoring::Anywhere => pattern.to_string(),
    };
    // Validate the pattern on its own first: wrapped, an error would point at the wrapper.
    RegexBuilder::new(pattern).size_limit(MAX_COMPILED_BYTES).build().map_err(describe)?;
    RegexBuilder::new(&source)
        .size_limit(MAX_COMPILED_BYTES)
        .build()
        .map(Arc::new)
        .map_err(describe)
}

fn describe(error: regex::Error) -> String {
    match error {
        regex::Error::Syntax(text) => {
            // The regex crate's message spans several lines with a caret diagram;
            // the last line says what is wrong.
            text.lines()
                .rev()
                .find(|line| !line.trim().is_empty())
                .unwrap_or("syntax error")
                .trim()
                .trim_start_matches("error: ")
                .to_string()
        }
        regex::Error::CompiledTooBig(limit) => {
            format!("the compiled pattern exceeds the {limit}-byte limit")
        }
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_match_is_anchored_and_find_is_not() {
        let cache = PatternCache::default();
        assert!(cache.full_match(r"\d+\.\d+", "1.2").unwrap());
        assert!(!cache.full_match(r"\d+\.\d+", "1.2.3").unwrap());
        assert!(cache.find(r"\d+\.\d+", "v1.2.3").unwrap());
        // Alternation must not escape the anchors.
        assert!(!cache.full_match("latest|stable", "latest-rc").unwrap());
    }

    #[test]
    fn invalid_patterns_say_why() {
        let cache = PatternCache::default();
        let err = cache.full_match("[a-", "a").unwrap_err();
        assert!(err.contains("unclosed character class"), "{err}");
        let err = cache.full_match("(?=x)", "x").unwrap_err();
        assert!(err.contains("look-around"), "{err}");
        let err = cache.full_match(&"a".repeat(5000), "a").unwrap_err();
        assert!(err.contains("4096"), "{err}");
        let err = cache.full_match(r"\w{1000}\w{1000}", "a").unwrap_err();
        assert!(err.contains("limit"), "{err}");
    }

    #[test]
    fn a_prepared_set_answers_the_first_whole_match() {
        let cache = PatternCache::default();
        let list = |items: &[&str]| items.iter().map(|p| p.to_string()).collect::<Vec<_>>();
        let set = cache.prepare_set(list(&["latest", r"\d+\.\d+", r"\d+.*"])).unwrap();
        assert_eq!(cache.first_in_set(set, "latest"), Ok(Some(0)));
        assert_eq!(cache.first_in_set(set, "1.2"), Ok(Some(1)));
        assert_eq!(cache.first_in_set(set, "1.2.3"), Ok(Some(2)));
        // Whole-text matches only, and alternation stays inside the anchors.
        assert_eq!(cache.first_in_set(set, "latest-rc"), Ok(None));
        let alternation = cache.prepare_set(list(&["a|b"])).unwrap();
        assert_eq!(cache.first_in_set(alternation, "ab"), Ok(None));
        assert_eq!(cache.first_in_set(alternation, "b"), Ok(Some(0)));
        // The same list is the same set; another list is another.
        assert_eq!(cache.prepare_set(list(&["latest", r"\d+\.\d+", r"\d+.*"])), Ok(set));
        assert_ne!(alternation, set);
        let err = cache.first_in_set(99, "x").unwrap_err();
        assert_eq!(err, "no pattern set 99 was prepared");
    }

    #[test]
    fn a_set_with_an_invalid_pattern_names_it_and_sets_are_bounded() {
        let cache = PatternCache::default();
        let err = cache.prepare_set(vec!["ok".into(), "[a-".into()]).unwrap_err();
        assert!(err.starts_with("pattern `[a-`: ") && err.contains("unclosed"), "{err}");
        for n in 0..MAX_SETS {
            cache.prepare_set(vec![format!("p{n}")]).unwrap();
        }
        let err = cache.prepare_set(vec!["one-more".into()]).unwrap_err();
        assert!(err.contains("at most 256"), "{err}");
    }

    #[test]
    fn flags_work() {
        let cache = PatternCache::default();
        assert!(cache.full_match("(?i)latest", "LATEST").unwrap());
    }
}
